"""im2col / col2im for convolutions, folds and pooling (CPU, ``@njit``).

Data layout (torch's ``F.unfold``): an image batch ``x`` is ``(N, C, D, H, W)`` (1-D and 2-D images are
given with ``D = H = 1`` or ``D = 1``), C-contiguous. Its columns ``cols`` are ``(N, C * KD * KH * KW, L)``
with ``L = OD * OH * OW`` output positions: row ``((c * KD + kd) * KH + kh) * KW + kw`` holds, for every
output position, the input element under kernel tap ``(kd, kh, kw)`` of channel ``c`` (zero where the tap
falls in the padding). With ``batch_inner`` the columns are instead ``(C * KD * KH * KW, N, L)``, C-contiguous:
the layout of one GEMM over the whole batch (``weight (O, C * taps) @ cols (C * taps, N * L)``), written and
read in place, without a transposing copy. ``geometry`` is an int64 array
``(KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW, OD, OH, OW)``: kernel size, stride, padding (before;
whatever lies after is cut off by the output size), dilation and output size.

Both kernels run over ``(n, c)`` planes in parallel: each plane's columns are read or written by one
thread only, so ``col2im`` (a scatter-add: taps overlap when stride < kernel) needs no atomics. Along an
output row, the positions whose tap falls inside the image form one range ``[lo, hi)`` per tap (``_inside``):
the inner loops copy or add that range without a bounds test per element (a contiguous copy at stride 1) and
write the padding's zeros around it.
"""

from numba import njit, prange


@njit(cache=True)
def _inside(offset, stride, size, n_out):
    """The range ``[lo, hi)`` of output positions ``o`` with ``0 <= o * stride + offset < size``."""
    lo = max(0, -(offset // stride))
    hi = min(n_out, -((offset - size) // stride))
    return lo, max(lo, hi)


@njit(cache=True, parallel=True)
def im2col(x, geometry, cols, batch_inner=False):
    """``cols[n, row(c, tap), l] = x[n, c, at(tap, l)]`` or 0 in the padding (see the module docstring)."""
    n_, c_, d_, h_, w_ = x.shape
    kd_, kh_, kw_, sd, sh, sw, pd, ph, pw, dd, dh, dw, od_, oh_, ow_ = geometry
    taps = kd_ * kh_ * kw_
    length = od_ * oh_ * ow_
    plane_size = d_ * h_ * w_
    xf = x.reshape(-1)  # flat offsets: no array view to build per output row
    cf = cols.reshape(-1)
    for p in prange(n_ * c_):
        n = p // c_
        c = p % c_
        for kd in range(kd_):
            for kh in range(kh_):
                for kw in range(kw_):
                    r = c * taps + (kd * kh_ + kh) * kw_ + kw
                    dst = (r * n_ + n) * length if batch_inner else (n * c_ * taps + r) * length
                    off = kw * dw - pw
                    lo, hi = _inside(off, sw, w_, ow_)
                    for od in range(od_):
                        i = od * sd - pd + kd * dd
                        for oh in range(oh_):
                            j = oh * sh - ph + kh * dh
                            if 0 <= i < d_ and 0 <= j < h_:
                                src = p * plane_size + (i * h_ + j) * w_ + off
                                cf[dst : dst + lo] = 0.0
                                if sw == 1:
                                    cf[dst + lo : dst + hi] = xf[src + lo : src + hi]
                                else:
                                    for ow in range(lo, hi):
                                        cf[dst + ow] = xf[src + ow * sw]
                                cf[dst + hi : dst + ow_] = 0.0
                            else:  # a whole row of padding
                                cf[dst : dst + ow_] = 0.0
                            dst += ow_


@njit(cache=True, parallel=True)
def col2im(cols, geometry, x, batch_inner=False):
    """The adjoint of ``im2col``: ``x[n, c, at(tap, l)] += cols[n, row(c, tap), l]``; ``x`` starts zeroed."""
    n_, c_, d_, h_, w_ = x.shape
    kd_, kh_, kw_, sd, sh, sw, pd, ph, pw, dd, dh, dw, od_, oh_, ow_ = geometry
    taps = kd_ * kh_ * kw_
    length = od_ * oh_ * ow_
    plane_size = d_ * h_ * w_
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    for p in prange(n_ * c_):
        n = p // c_
        c = p % c_
        for kd in range(kd_):
            for kh in range(kh_):
                for kw in range(kw_):
                    r = c * taps + (kd * kh_ + kh) * kw_ + kw
                    src = (r * n_ + n) * length if batch_inner else (n * c_ * taps + r) * length
                    off = kw * dw - pw
                    lo, hi = _inside(off, sw, w_, ow_)
                    for od in range(od_):
                        i = od * sd - pd + kd * dd
                        for oh in range(oh_):
                            j = oh * sh - ph + kh * dh
                            if 0 <= i < d_ and 0 <= j < h_:
                                dst = p * plane_size + (i * h_ + j) * w_ + off
                                if sw == 1:
                                    xf[dst + lo : dst + hi] += cf[src + lo : src + hi]
                                else:
                                    for ow in range(lo, hi):
                                        xf[dst + ow * sw] += cf[src + ow]
                            src += ow_


@njit(cache=True, parallel=True)
def window_argmax(x, plane_index, valid, indices):
    """``indices[p, o]``: the within-plane index of the largest element of window ``o`` of plane ``p``.

    ``x`` is ``(P, plane)``; window ``o``'s taps are ``plane_index[o, k]`` where ``valid[o, k]``. The first
    maximum wins a tie, and the first NaN counts as the maximum (torch's max pooling)."""
    n_taps = plane_index.shape[1]
    for p in prange(x.shape[0]):
        for o in range(plane_index.shape[0]):
            best = -1
            top = x[p, 0]
            for k in range(n_taps):
                if valid[o, k]:
                    j = plane_index[o, k]
                    v = x[p, j]
                    if best < 0 or v > top or (v != v and top == top):
                        best = j
                        top = v
            indices[p, o] = best
