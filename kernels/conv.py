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

Both kernels run over ``(n, c)`` planes serially and release the GIL. They are not numba-parallel: numba's
default OpenMP layer spins its threads after each parallel loop, and the conv alternates these loops with
OpenBLAS GEMMs whose threads spin too, so at default threads on 2 cores a W8 step took 640 ms instead of 31
(cured by OMP_WAIT_POLICY=PASSIVE or one numba thread). Each plane's columns are written by one pass, so
``col2im`` (a scatter-add: taps overlap when stride < kernel) needs no atomics. Along an
output row, the positions whose tap falls inside the image form one range ``[lo, hi)`` per tap (``_inside``):
the inner loops copy or add that range without a bounds test per element (a contiguous copy at stride 1) and
write the padding's zeros around it. With unit strides and "same" padding in W (``_runs``: the common 3x3,
padding 1 case), a tap's whole block of rows is one contiguous run in both arrays, moved by one loop, and
only the few positions under the padding are fixed up around it: rows of 32 elements no longer pay a
loop's set-up each.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def _inside(offset, stride, size, n_out):
    """The range ``[lo, hi)`` of output positions ``o`` with ``0 <= o * stride + offset < size``."""
    lo = max(0, -(offset // stride))
    hi = min(n_out, -((offset - size) // stride))
    return lo, max(lo, hi)


@njit(cache=True)
def _copy(dst, src):
    """``dst[:] = src``. Indexed by a range variable (numba then knows the index is not negative, drops its
    wraparound test and vectorizes the loop): several times faster than a slice assignment on short rows."""
    for e in range(dst.size):
        dst[e] = src[e]


@njit(cache=True)
def _add(dst, src):
    """``dst[:] += src`` (as ``_copy``: a slice's ``+=`` is several times slower)."""
    for e in range(dst.size):
        dst[e] += src[e]


@njit(cache=True)
def _zero(dst):
    for e in range(dst.size):
        dst[e] = 0


@njit(cache=True)
def _runs(geometry, w_):
    """Whether a plane's rows can be moved as one run per tap: unit strides in H and W and output rows as
    long as the input's (``padding = dilation * (kernel - 1) / 2`` in W, torch's "same"), so that tap
    ``(kh, kw)`` maps output position ``l`` to input position ``l + constant`` over the whole plane, except
    at the row ends that fall in the padding (fixed up around the run)."""
    return geometry[4] == 1 and geometry[5] == 1 and geometry[14] == w_


@njit(cache=True, nogil=True)
def im2col(x, geometry, cols, batch_inner=False):
    """``cols[n, row(c, tap), l] = x[n, c, at(tap, l)]`` or 0 in the padding (see the module docstring)."""
    n_, c_, d_, h_, w_ = x.shape
    kd_, kh_, kw_, sd, sh, sw, pd, ph, pw, dd, dh, dw, od_, oh_, ow_ = geometry
    taps = kd_ * kh_ * kw_
    length = od_ * oh_ * ow_
    plane_size = d_ * h_ * w_
    block = oh_ * ow_  # one output depth slice
    runs = _runs(geometry, w_)
    xf = x.reshape(-1)  # flat offsets: no array view to build per output row
    cf = cols.reshape(-1)
    for p in range(n_ * c_):
        n = p // c_
        c = p % c_
        for kd in range(kd_):
            for kh in range(kh_):
                for kw in range(kw_):
                    r = c * taps + (kd * kh_ + kh) * kw_ + kw
                    dst = (r * n_ + n) * length if batch_inner else (n * c_ * taps + r) * length
                    off = kw * dw - pw
                    lo, hi = _inside(off, sw, w_, ow_)
                    jlo, jhi = _inside(kh * dh - ph, sh, h_, oh_)  # the output rows whose input row exists
                    for od in range(od_):
                        i = od * sd - pd + kd * dd
                        out = cf[dst : dst + block]
                        dst += block
                        if not (0 <= i < d_) or jlo >= jhi or lo >= hi:
                            _zero(out)
                            continue
                        _zero(out[: jlo * ow_])
                        _zero(out[jhi * ow_ :])
                        src = p * plane_size + i * h_ * w_ + off  # + the input row's offset, j * w_
                        if runs:  # one copy from (jlo, lo) to (jhi - 1, hi), then the padding's zeros over it
                            a, b = jlo * ow_ + lo, (jhi - 1) * ow_ + hi
                            j0 = jlo - ph + kh * dh
                            _copy(out[a:b], xf[src + j0 * w_ + lo : src + j0 * w_ + lo + b - a])
                            for oh in range(jlo, jhi):
                                _zero(out[oh * ow_ : oh * ow_ + lo])
                                _zero(out[oh * ow_ + hi : (oh + 1) * ow_])
                            continue
                        for oh in range(jlo, jhi):
                            j = oh * sh - ph + kh * dh
                            row = out[oh * ow_ : (oh + 1) * ow_]
                            at = src + j * w_
                            _zero(row[:lo])
                            if sw == 1:
                                _copy(row[lo:hi], xf[at + lo : at + hi])
                            else:
                                for ow in range(lo, hi):
                                    row[ow] = xf[at + ow * sw]
                            _zero(row[hi:])


@njit(cache=True, nogil=True)
def col2im(cols, geometry, x, batch_inner=False):
    """The adjoint of ``im2col``: ``x[n, c, at(tap, l)] += cols[n, row(c, tap), l]``; ``x`` starts zeroed."""
    n_, c_, d_, h_, w_ = x.shape
    kd_, kh_, kw_, sd, sh, sw, pd, ph, pw, dd, dh, dw, od_, oh_, ow_ = geometry
    taps = kd_ * kh_ * kw_
    length = od_ * oh_ * ow_
    plane_size = d_ * h_ * w_
    block = oh_ * ow_
    runs = _runs(geometry, w_)
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    for p in range(n_ * c_):
        n = p // c_
        c = p % c_
        # a run's add also reaches, from the padding positions at a row's end, the next row's first pixels
        # (and from a row's start, the previous row's last): their values are kept here and put back after it
        kept = np.empty(oh_ * ow_ if runs else 0, x.dtype)
        for kd in range(kd_):
            for kh in range(kh_):
                for kw in range(kw_):
                    r = c * taps + (kd * kh_ + kh) * kw_ + kw
                    src = (r * n_ + n) * length if batch_inner else (n * c_ * taps + r) * length
                    off = kw * dw - pw
                    lo, hi = _inside(off, sw, w_, ow_)
                    jlo, jhi = _inside(kh * dh - ph, sh, h_, oh_)
                    for od in range(od_):
                        i = od * sd - pd + kd * dd
                        col = cf[src : src + block]
                        src += block
                        if not (0 <= i < d_) or jlo >= jhi or lo >= hi:
                            continue
                        dst = p * plane_size + i * h_ * w_ + off  # + the input row's offset, j * w_
                        if runs:
                            # with unit strides and w_ == ow_, output position l lands on pixel base + l
                            base = dst + (kh * dh - ph) * w_
                            a, b = jlo * ow_ + lo, (jhi - 1) * ow_ + hi
                            k = 0
                            for oh in range(jlo, jhi - 1):  # the pixels under the padding positions in (a, b)
                                for ow in range(hi, ow_ + lo):
                                    kept[k] = xf[base + oh * ow_ + ow]
                                    k += 1
                            _add(xf[base + a : base + b], col[a:b])
                            k = 0
                            for oh in range(jlo, jhi - 1):
                                for ow in range(hi, ow_ + lo):
                                    xf[base + oh * ow_ + ow] = kept[k]
                                    k += 1
                            continue
                        for oh in range(jlo, jhi):
                            j = oh * sh - ph + kh * dh
                            row = col[oh * ow_ : (oh + 1) * ow_]
                            at = dst + j * w_
                            if sw == 1:
                                _add(xf[at + lo : at + hi], row[lo:hi])
                            else:
                                for ow in range(lo, hi):
                                    xf[at + ow * sw] += row[ow]


@njit(cache=True, nogil=True)
def window_argmax(x, plane_index, valid, indices):
    """``indices[p, o]``: the within-plane index of the largest element of window ``o`` of plane ``p``.

    ``x`` is ``(P, plane)``; window ``o``'s taps are ``plane_index[o, k]`` where ``valid[o, k]``. The first
    maximum wins a tie, and the first NaN counts as the maximum (torch's max pooling)."""
    n_taps = plane_index.shape[1]
    for p in range(x.shape[0]):
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
