"""Pooling: ``max_pool1d/2d/3d``, ``avg_pool1d/2d/3d``, ``adaptive_avg_pool1d/2d/3d``, ``adaptive_max_pool1d/2d/3d``,
``lp_pool1d/2d/3d``, ``max_unpool1d/2d/3d``, ``fractional_max_pool2d/3d`` and torch's ``*_with_indices`` names.

Each pooling is described by its windows: for every spatial dim, an int array ``(O, K)`` of input
coordinates (output position, tap) and a mask of the taps that fall inside the input. Their product over
dims gives, for every output element, the flat input indices of its window: ``(N, C, O..., K)``.

- max pooling: a kernel (``kernels/conv.py``) finds the (first) largest element of each window, and
  ``ops.gather_map`` picks it (on CUDA: ``pooling_device.py``, the same pick on the device and
  ``ops.gather_indexed``, no copy back), so the gradient goes to that element only, as torch's
  (``return_indices`` gives torch's per-plane flat indices);
- average pooling (plain and adaptive): separable, so one constant matrix per spatial dim, ``A[o, i]`` the
  weight of input coordinate ``i`` in output ``o``'s window (``1 / window length`` along that dim: torch's
  divisors are products of per-dim lengths), applied by ``matmul`` along that dim (BLAS, and the gradient
  and every derivative order come from matmul's rules); input holding a NaN or inf gathers the taps instead
  (a matrix's zeros would spread it along the rows); int64 input divides each window's integer sum, truncated
  (torch's integer kernel). On CUDA the windows are summed by a reshaped ``sum`` or shifted strided slices
  instead (adaptive windows of varying width or spacing as interleaved sets of regular ones), NaN-safe without
  a look at the values (the check would be a host round trip per call);
- power-average pooling: torch's composite over ``avg_pool`` (``max_pool`` of ``|x|`` for p = +-inf);
- max unpooling: ``scatter_map`` of the values to their pooling indices (adjoint: a gather); CUDA indices: a
  gather through each output's source, found on the device (``pooling_device._device_max_unpool``);
- fractional max pooling: per-plane windows from torch's interval sequences (host data), the maximum found in
  numpy and gathered, as max pooling (on CUDA: found and gathered on the device).
"""

import math

import numpy as np

from kernels import conv as kconv

from ... import cuda as _cuda
from ... import ops
from ...grad_mode import no_grad
from ...ops.linalg import torch_dtype_name
from ...tensor import Tensor, wrap_array
from .pooling_device import (
    _device_fractional_max,
    _device_max_pool,
    _device_max_unpool,
    _device_picks,
    _device_separable_max,
    _fits_indexed,
)


def _tuple(value, n, name):
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = tuple(value) * n
        if len(value) != n:
            raise RuntimeError(f"{name} must either be a single int, or a tuple of {n} ints")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _pool_out(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input or left padding
        out -= 1
    return out


def _check_input(input, nd, fn):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"{fn}: Expected {nd + 1}D or {nd + 2}D (batch mode) tensor for input, but got: {list(input.shape)}"
        )
    if any(s == 0 for s in input.shape[-nd:]):
        raise RuntimeError(f"{fn}: Expected input's non-batch dimensions to have positive length, but input has a "
                           f"shape of {list(input.shape)}")


def _as_batched(input, nd):  # noqa: A002
    return (input, True) if input.ndim == nd + 2 else (ops.unsqueeze(input, 0), False)


def _windows(size, k, s, p, d, out):
    """Input coordinates ``(out, k)`` of each window tap, and whether each lies inside the input."""
    coord = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return coord, (coord >= 0) & (coord < size)


def _combine(spatial, coords, masks):
    """Flat within-plane indices ``(O1, .., On, K1 * .. * Kn)`` and their validity, from per-dim windows."""
    nd = len(spatial)
    index = np.zeros((), np.int64)
    valid = np.ones((), bool)
    for dim in range(nd):
        c = np.clip(coords[dim], 0, spatial[dim] - 1)
        m = masks[dim]
        # axes: O_dim at position dim, K_dim at position nd + dim
        shape = [1] * (2 * nd)
        shape[dim] = c.shape[0]
        shape[nd + dim] = c.shape[1]
        stride = int(np.prod(spatial[dim + 1:]))
        index = index + (c * stride).reshape(shape)
        valid = valid & m.reshape(shape)
    outs = index.shape[:nd]
    return index.reshape(outs + (-1,)), valid.reshape(outs + (-1,))


def _geometry(input, nd, kernel_size, stride, padding, dilation, ceil_mode, fn):  # noqa: A002
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(stride, nd, "stride") if stride is not None and (not isinstance(stride, (tuple, list)) or stride) \
        else k
    p = _tuple(padding, nd, "padding")
    d = _tuple(dilation, nd, "dilation")
    if any(v <= 0 for v in k):
        raise RuntimeError(f"{fn}: kernel_size must be greater than zero, but got {k}")
    if any(v <= 0 for v in s):
        raise RuntimeError(f"{fn}: stride must be greater than zero, but got {s}")
    if any(v <= 0 for v in d):
        raise RuntimeError(f"{fn}: dilation must be greater than zero, but got {d}")
    for kk, pp, dd in zip(k, p, d):
        if pp < 0 or pp > ((kk - 1) * dd + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={pp}, "
                               f"kernel_size={kk} and dilation={dd}")
    spatial = input.shape[-nd:]
    out = tuple(_pool_out(sz, kk, ss, pp, dd, ceil_mode) for sz, kk, ss, pp, dd in zip(spatial, k, s, p, d))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"Given input size: {tuple(input.shape[-nd - 1:])}. Calculated output size: "
                           f"{(input.shape[-nd - 1],) + out}. Output size is too small")
    return k, s, p, d, out


# ---------------------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------------------


def _max_over_windows(x, plane_index, valid):
    """``x`` (N, C, *spatial), windows ``(O..., K)``: the per-plane index of each window's maximum (N, C, O...)."""
    n, c = x.shape[:2]
    if x._dev is not None:  # a CUDA tensor: the index map on the host (values are gathered on the device)
        vals = _cuda.host_copy(x._data).reshape(n, c, -1)[:, :, plane_index]  # (N, C, O..., K)
        arg = np.argmax(np.where(valid, vals, -np.inf), axis=-1)  # the first maximum (a NaN counts as it)
        return np.take_along_axis(np.broadcast_to(plane_index, vals.shape), arg[..., None], -1)[..., 0]
    outs = plane_index.shape[:-1]
    indices = np.empty((n * c, int(np.prod(outs))), np.int64)
    if indices.size:
        kconv.window_argmax(
            np.ascontiguousarray(x._data).reshape(n * c, -1),
            np.ascontiguousarray(plane_index.reshape(indices.shape[1], -1)),
            np.ascontiguousarray(valid.reshape(indices.shape[1], -1)),
            indices,
        )
    return indices.reshape((n, c) + outs)


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, fn):  # noqa: A002
    _check_input(input, nd, fn)
    x, batched = _as_batched(input, nd)
    k, s, p, d, out = _geometry(x, nd, kernel_size, stride, padding, dilation, ceil_mode, fn)
    spatial = x.shape[2:]
    coords, masks = zip(*(_windows(*a) for a in zip(spatial, k, s, p, d, out)))
    if x._dev is not None and _fits_indexed(x, spatial):
        plane_index, valid = _combine(spatial, coords, masks)
        result, indices = _device_picks(x, np.where(valid, plane_index, -1), out, True)
        if not batched:
            result, indices = ops.squeeze(result, 0), ops.squeeze(indices, 0)
        return (result, indices) if return_indices else result
    if x._dev is not None and not return_indices:
        result = _device_max_pool(x, k, s, p, d, out, masks)
        return result if batched else ops.squeeze(result, 0)
    if x._dev is not None:
        passes = [[(-pp, ss, kk, dd, o)] for kk, ss, pp, dd, o in zip(k, s, p, d, out)]
        result, indices = _device_separable_max(x, passes)
        if not batched:
            result, indices = ops.squeeze(result, 0), ops.squeeze(indices, 0)
        return result, indices
    plane_index, valid = _combine(spatial, coords, masks)
    indices = _max_over_windows(x, plane_index, valid)  # (N, C, O...)
    n, c = x.shape[:2]
    plane = int(np.prod(spatial))
    flat = indices + (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * nd)
    result = ops.gather_map(x, (n, c) + out, flat)
    if not batched:
        result = ops.squeeze(result, 0)
        indices = indices[0]
    if return_indices:
        return result, _cuda.index_tensor(indices.astype(np.int64), input)
    return result


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over sliding windows of (N, C, L) or (C, L); ``return_indices``: also the argmax positions."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over sliding windows of (N, C, H, W) or (C, H, W).

    Example:
        >>> F.max_pool2d(ad.arange(16.0).reshape(1, 1, 4, 4), 2).flatten().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over sliding windows of (N, C, D, H, W) or (C, D, H, W)."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool3d")


def max_pool1d_with_indices(*args, **kwargs):
    return max_pool1d(*args, **{**kwargs, "return_indices": True})


def max_pool2d_with_indices(*args, **kwargs):
    return max_pool2d(*args, **{**kwargs, "return_indices": True})


# ---------------------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------------------


def _window_means(x, coords, masks, weights, gather=False):
    """``x`` (N, C, *spatial) averaged over windows: per spatial dim ``d``, taps ``coords[d]`` (O_d, K_d), their
    validity ``masks[d]`` and each output's weight ``weights[d]`` (O_d,); a window's weight is the product over
    dims (separable). Finite input: one constant matrix per dim, ``A[o, i]`` the weight of input coordinate ``i``
    in output ``o``'s window, applied by ``matmul`` (BLAS; 3-15x faster than gathering the taps). A NaN or inf
    would meet every zero of those matrices (0 * inf is NaN) and spread along its rows: such input (or tangent)
    gathers its taps instead, so it reaches only the outputs whose window holds it, as torch's (``gather``:
    gather anyway, for a caller that knows its cotangent may hold NaN)."""
    if x._dev is not None:  # CUDA: no check of the values (one device reduction read back: a sync per call)
        classes = _window_classes(coords, masks, x.shape[2:])
        if classes is not None:
            return _shifted_means(x, classes, weights)
    if not gather and _all_finite(x):
        mats = [_window_matrix(c, m, sz, w) for c, m, sz, w in zip(coords, masks, x.shape[2:], weights)]
        return _along_dims(x, mats)
    return _gathered_means(x, coords, masks, weights)


def _regular_windows(coord, valid, size):
    """``(first, step, taps, outputs, left, right)`` when every window of one dim (``coord``, ``valid``: (O, K)) is
    ``taps`` consecutive coordinates, the windows ``step`` apart from ``first``, and a tap is valid exactly when it
    lies inside the input (plain average pooling; adaptive pooling when its windows share one width and spacing, as
    6 -> 3 or 7 -> 3); ``left`` / ``right``: the zeros to pad so that every tap is inside. None for other windows
    (5 -> 3)."""
    o, k = coord.shape
    first = int(coord[0, 0])
    step = int(coord[1, 0] - coord[0, 0]) if o > 1 else k  # (one window: any step, the widest sums at once)
    expected = first + step * np.arange(o)[:, None] + np.arange(k)[None, :]
    if step <= 0 or not np.array_equal(coord, expected) or not np.array_equal(valid, (coord >= 0) & (coord < size)):
        return None
    reach = first + (o * step if step >= k else (o - 1) * step + k)  # (past the last element read)
    return first, step, k, o, max(0, -first), max(0, reach - size)


def _periodic_windows(coord, valid, size):
    """Windows of one dim as ``period`` interleaved regular sets: output ``o`` is window ``o // period`` of set
    ``o % period`` (``_regular_windows`` each, its taps cut to its own width). Adaptive windows always split so
    (``[floor(o * S / O), ceil((o + 1) * S / O))`` repeats every ``O / gcd(S, O)`` outputs, shifted by
    ``S / gcd(S, O)``: 5 -> 3 is three sets of one window, 10 -> 4 two sets of two); the smallest period that
    works is taken. A window's taps must be its valid ones, first. None when no period works."""
    o = coord.shape[0]
    widths = valid.sum(-1)
    if not np.array_equal(valid, np.arange(coord.shape[1])[None, :] < widths[:, None]):
        return None
    for period in range(1, o + 1):
        if o % period:
            continue
        sets = []
        for r in range(period):
            k = int(widths[r])
            rows = slice(r, None, period)
            if k == 0 or (widths[rows] != k).any():
                break
            regular = _regular_windows(coord[rows, :k], valid[rows, :k], size)
            if regular is None:
                break
            sets.append(regular)
        else:
            return sets
    return None


def _window_classes(coords, masks, spatial):
    """Per spatial dim, its windows as interleaved regular sets (``_periodic_windows``; one set for plain average
    pooling); None when a dim's windows do not split so."""
    out = []
    for coord, valid, size in zip(coords, masks, spatial):
        regular = _regular_windows(coord, valid, size)
        sets = [regular] if regular is not None else _periodic_windows(coord, valid, size)
        if sets is None:
            return None
        out.append(sets)
    return out


def _shifted_means(x, classes, weights):
    """``_window_means`` of windows split into regular sets (``_window_classes``), summed dim by dim: each set
    after zero padding (``cat``), windows that do not overlap (step >= taps: strides equal to the kernel, adaptive
    pooling) as one ``sum`` over a reshaped axis ``(outputs, step)``, overlapping ones as sums of ``taps`` shifted
    strided slices; interleaved sets (uneven adaptive windows) stacked after their window axis and merged into it.
    A window's sum adds only its own elements, so a NaN or inf reaches only the windows that hold it (in values,
    tangents and cotangents) without looking at the values: the CUDA path, with no host round trip. Slices,
    reshapes and stacks are views or strided copies: no index map of the tensor's size, so the host sends the
    same few bytes (the weights) whatever the batch."""
    for d, sets in enumerate(classes):
        axis = 2 + d
        if len(sets) == 1:
            x = _regular_sums(x, axis, *sets[0])
            continue
        parts = ops.stack([_regular_sums(x, axis, *s) for s in sets], axis + 1)  # (.., windows per set, sets, ..)
        x = ops.reshape(parts, x.shape[:axis] + (parts.shape[axis] * len(sets),) + x.shape[axis + 1:])
    weight = np.ones(())
    for w in weights:  # the windows' weights, (O_1, .., O_n): the product of the per-dim ones
        weight = np.multiply.outer(weight, w)
    return x * _cuda.index_tensor(np.ascontiguousarray(weight, dtype=x.dtype), x)


def _regular_sums(x, axis, first, step, k, o, left, right):
    """The sums along ``axis`` of ``o`` windows of ``k`` consecutive elements, ``step`` apart from ``first``
    (``_regular_windows``), after ``left`` and ``right`` zeros of padding."""
    if left or right:
        pieces = [_zeros(x, axis, left)] if left else []
        pieces.append(x)
        if right:
            pieces.append(_zeros(x, axis, right))
        x = ops.cat(pieces, axis)
    begin = first + left
    index = [slice(None)] * x.ndim
    if step >= k:
        index[axis] = slice(begin, begin + o * step)
        blocks = ops.reshape(x[tuple(index)], x.shape[:axis] + (o, step) + x.shape[axis + 1:])
        if k < step:
            index = [slice(None)] * blocks.ndim
            index[axis + 1] = slice(0, k)
            blocks = blocks[tuple(index)]
        return ops.sum(blocks, axis + 1)
    total = None
    for j in range(k):
        index[axis] = slice(begin + j, begin + j + (o - 1) * step + 1, step)
        tap = x[tuple(index)]
        total = tap if total is None else total + tap
    return total


def _zeros(x, axis, width):
    """Zeros shaped as ``x`` but ``width`` long along ``axis``, on ``x``'s device (filled there)."""
    shape = list(x.shape)
    shape[axis] = width
    if x._dev is None:
        return wrap_array(np.zeros(shape, x.dtype))
    from ...cuda.ops import full

    return full(tuple(shape), 0.0, x._data.dtype, x._dev)


def _all_finite(x):
    """Whether ``x`` and its tangents (every dual level: their JVP is the same matmul) hold no NaN or inf."""
    if x._tangents and not all(_all_finite(t) for t in x._tangents.values()):
        return False
    if x._dev is not None:  # one reduction on the device: x * 0 sums to 0 unless x holds a NaN or inf
        with no_grad():
            return math.isfinite(float(ops.sum(x * 0.0)))
    return bool(np.isfinite(x._data).all())


def _along_dims(x, mats):
    """``x`` (N, C, *spatial) with each spatial dim ``d`` mapped through ``mats[d]`` (O_d, S_d) by ``matmul``."""
    for d, m in enumerate(mats):
        axis, last = 2 + d, x.ndim - 1
        a = wrap_array(np.ascontiguousarray(m, dtype=x.dtype))
        if x._dev is not None:
            a = a.to(x.device)
        if axis == last:
            x = ops.matmul(x, ops.transpose(a, 0, 1))
        elif axis == last - 1:
            x = ops.matmul(a, x)
        else:
            x = ops.transpose(ops.matmul(a, ops.transpose(x, axis, last - 1)), axis, last - 1)
    return x


def _window_matrix(coord, valid, size, weight):
    """``A (O, size)``: ``weight[o]`` at every valid tap ``coord[o, k]`` of output ``o``'s window."""
    out = coord.shape[0]
    a = np.zeros((out, size))
    rows = np.broadcast_to(np.arange(out)[:, None], coord.shape)
    a[rows[valid], coord[valid]] = np.broadcast_to(weight[:, None], coord.shape)[valid]
    return a


def _gathered_means(x, coords, masks, weights):
    """``_window_means`` by gathering each window's taps (``gather_map``; an invalid tap reads an appended zero,
    weight 0) and summing them times the window's weight."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    nd = len(spatial)
    plane_index, valid = _combine(spatial, coords, masks)
    weight = np.ones(())
    for dim, w in enumerate(weights):
        shape = [1] * (2 * nd)
        shape[dim] = w.shape[0]
        weight = weight * np.asarray(w, dtype=np.float64).reshape(shape)
    weight = np.broadcast_to(weight, plane_index.shape[:-1] + tuple(m.shape[1] for m in masks))
    weight = np.where(valid, weight.reshape(plane_index.shape), 0.0)
    plane = int(np.prod(spatial))
    size = n * c * plane
    flat = plane_index + (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * (nd + 1))
    flat = np.where(valid, flat, size)
    zero = wrap_array(np.zeros(1, dtype=x.dtype))
    w = wrap_array(np.ascontiguousarray(weight, dtype=x.dtype))
    if x._dev is not None:
        zero, w = zero.to(x.device), w.to(x.device)
    taps = ops.gather_map(ops.cat([ops.reshape(x, (size,)), zero]), flat.shape, flat)
    return ops.sum(taps * w, -1)


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, fn,  # noqa: A002
              gather=False):
    _check_input(input, nd, fn)
    x, batched = _as_batched(input, nd)
    k, s, p, d, out = _geometry(x, nd, kernel_size, stride, padding, 1, ceil_mode, fn)
    spatial = x.shape[2:]
    integer = x.dtype.kind in "iub"
    if integer and x.dtype != np.int64:  # (torch's int64 kernel divides in integers; no other integer dtype)
        raise NotImplementedError(f'"avg_pool{max(nd, 2)}d" not implemented for \'{torch_dtype_name(x.dtype)}\'')
    coords, masks, weights = [], [], []
    for sz, kk, ss, pp, o in zip(spatial, k, s, p, out):
        coord, valid = _windows(sz, kk, ss, pp, 1, o)
        # torch: the window clipped to the padded input (count_include_pad) or to the input itself
        start = np.arange(o) * ss - pp
        end = np.minimum(start + kk, sz + pp)
        if not count_include_pad:
            end = np.minimum(end, sz)
            start = np.maximum(start, 0)
        coords.append(coord)
        masks.append(valid)
        weights.append(np.ones(o) if divisor_override else 1.0 / (end - start))
    if divisor_override:
        weights[0] = weights[0] / float(divisor_override)
    if integer:
        result = _integer_means(x, coords, masks, weights)
    else:
        result = _window_means(x, coords, masks, weights, gather)
    return result if batched else ops.squeeze(result, 0)


def _integer_means(x, coords, masks, weights):
    """int64 average pooling as torch's: each window's integer sum divided by its integer divisor, truncated toward
    zero (not differentiable). The sums are exact in float64 (below 2 ** 53)."""
    with no_grad():
        sums = _window_means(x.double(), coords, masks, [np.ones(len(w)) for w in weights])
    divisor = np.ones(())
    for dim, w in enumerate(weights):
        shape = [1] * len(weights)
        shape[dim] = len(w)
        divisor = divisor * np.rint(1.0 / w).reshape(shape)
    data = np.fix(_cuda.host_copy(sums._data) / divisor).astype(np.int64)
    return _cuda.index_tensor(data, x)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):  # noqa: A002
    """Mean over sliding windows of (N, C, L) or (C, L)."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,  # noqa: A002
               divisor_override=None):
    """Mean over sliding windows of (N, C, H, W) or (C, H, W); ``count_include_pad``: padding counts in the
    divisor; ``divisor_override``: a fixed divisor."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                     "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,  # noqa: A002
               divisor_override=None):
    """Mean over sliding windows of (N, C, D, H, W) or (C, D, H, W)."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                     "avg_pool3d")


# ---------------------------------------------------------------------------------------------------------
# adaptive pooling
# ---------------------------------------------------------------------------------------------------------


def _adaptive_windows(size, out):
    """torch's adaptive windows: ``[floor(i * size / out), ceil((i + 1) * size / out))``, padded to the
    widest window with invalid taps."""
    start = (np.arange(out) * size) // out
    end = -((-(np.arange(out) + 1) * size) // out)
    k = int((end - start).max())
    coord = start[:, None] + np.arange(k)[None, :]
    return coord, coord < end[:, None]


def _adaptive_size(input, nd, output_size, fn):  # noqa: A002
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise RuntimeError(f"{fn}: output_size must be {nd}")
        sizes = tuple(input.shape[-nd + i] if o is None else int(o) for i, o in enumerate(output_size))
    else:
        sizes = (int(output_size),) * nd
    if any(o < 0 for o in sizes):
        raise RuntimeError(f"{fn}: elements of output_size must be greater than or equal to 0 but received "
                           f"{list(sizes)}")
    return sizes


def _adaptive(nd, input, output_size, fn, is_max, return_indices=False):  # noqa: A002
    _check_input(input, nd, fn)
    x, batched = _as_batched(input, nd)
    out = _adaptive_size(x, nd, output_size, fn)
    spatial = x.shape[2:]
    coords, masks = zip(*(_adaptive_windows(sz, o) for sz, o in zip(spatial, out)))
    if is_max and x._dev is not None and _fits_indexed(x, spatial):
        plane_index, valid = _combine(spatial, coords, masks)
        result, indices = _device_picks(x, np.where(valid, plane_index, -1), out, True)
        if not batched:
            result, indices = ops.squeeze(result, 0), ops.squeeze(indices, 0)
        return (result, indices) if return_indices else result
    classes = _window_classes(coords, masks, spatial) if is_max and x._dev is not None else None
    if classes is not None:  # (adaptive windows always split so)
        passes = [[(first, step, k, 1, o) for first, step, k, o, _, _ in sets] for sets in classes]
        result, indices = _device_separable_max(x, passes)
        if not batched:
            result, indices = ops.squeeze(result, 0), ops.squeeze(indices, 0)
        return (result, indices) if return_indices else result
    if is_max:
        n, c = x.shape[:2]
        plane_index, valid = _combine(spatial, coords, masks)
        indices = _max_over_windows(x, plane_index, valid)
        plane = int(np.prod(spatial))
        flat = indices + (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * nd)
        result = ops.gather_map(x, (n, c) + out, flat)
        if not batched:
            result, indices = ops.squeeze(result, 0), indices[0]
        return (result, _cuda.index_tensor(indices.astype(np.int64), input)) if return_indices else result
    if x.dtype.kind in "iub":
        raise NotImplementedError(f'"adaptive_avg_pool{max(nd, 2)}d" not implemented for '
                                  f"'{torch_dtype_name(x.dtype)}'")
    result = _window_means(x, coords, masks, [1.0 / m.sum(-1) for m in masks])
    return result if batched else ops.squeeze(result, 0)


def adaptive_avg_pool1d(input, output_size):  # noqa: A002
    """Mean over ``output_size`` adaptive windows of (N, C, L) or (C, L)."""
    return _adaptive(1, input, output_size, "adaptive_avg_pool1d", False)


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    """Mean over adaptive windows of (N, C, H, W) or (C, H, W); ``None`` in ``output_size`` keeps that size."""
    return _adaptive(2, input, output_size, "adaptive_avg_pool2d", False)


def adaptive_avg_pool3d(input, output_size):  # noqa: A002
    return _adaptive(3, input, output_size, "adaptive_avg_pool3d", False)


def adaptive_max_pool1d(input, output_size, return_indices=False):  # noqa: A002
    """Max over adaptive windows of (N, C, L) or (C, L)."""
    return _adaptive(1, input, output_size, "adaptive_max_pool1d", True, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):  # noqa: A002
    """Max over adaptive windows of (N, C, H, W) or (C, H, W)."""
    return _adaptive(2, input, output_size, "adaptive_max_pool2d", True, return_indices)


# ---------------------------------------------------------------------------------------------------------
# power-average pooling
# ---------------------------------------------------------------------------------------------------------


def _lp_pool(nd, input, norm_type, kernel_size, stride, ceil_mode):  # noqa: A002
    """torch's composite: ``(sum over the window of x ** p) ** (1 / p)`` as ``avg_pool(x ** p) * window size``;
    ``p = +-inf``: the max (min) of ``|x|``. Where the pooled sum is 0 the gradient is 0, as torch's (its
    ``sign(out) * relu(|out|)``): a select, since the root's infinite slope there times a zero partial would
    be NaN (and it would reach the avg_pool's other windows)."""
    if isinstance(norm_type, (int, float)) and abs(norm_type) == float("inf"):
        max_pool = (max_pool1d, max_pool2d, max_pool3d)[nd - 1]
        if norm_type > 0:
            return max_pool(ops.abs(input), kernel_size, stride, 0, 1, ceil_mode)
        return -max_pool(-ops.abs(input), kernel_size, stride, 0, 1, ceil_mode)
    window = int(np.prod(_tuple(kernel_size, nd, "kernel_size")))
    powered = input ** norm_type
    # a negative window sum has a NaN root (torch's too), whose cotangent must stay in its window (CUDA's shifted
    # sums keep it there anyway: no look at the values, which would be a host round trip)
    negative = isinstance(powered, Tensor) and powered._dev is None and bool((powered < 0).any())
    out = _avg_pool(nd, powered, kernel_size, stride, 0, ceil_mode, True, None, f"avg_pool{nd}d", negative)
    return (ops.where(out != 0, out, 0.0) * window) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    """The ``norm_type``-norm of each sliding window of (N, C, L) or (C, L) (torch's power-average pooling).

    Example: ``F.lp_pool1d(ad.tensor([[3.0, 4.0]]), 2, 2)`` is ``[[5.0]]``.
    """
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    """The ``norm_type``-norm of each sliding window of (N, C, H, W) or (C, H, W)."""
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    """The ``norm_type``-norm of each sliding window of (N, C, D, H, W) or (C, D, H, W)."""
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode)


# ---------------------------------------------------------------------------------------------------------
# the *_with_indices names torch exports, adaptive_max_pool3d
# ---------------------------------------------------------------------------------------------------------


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
                            return_indices=False):
    """``max_pool3d`` with its indices (torch's name; ``return_indices`` is ignored, as torch's)."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool3d(input, output_size, return_indices=False):  # noqa: A002
    """Max over adaptive windows of (N, C, D, H, W) or (C, D, H, W)."""
    if isinstance(input, Tensor) and input.ndim not in (4, 5):
        raise RuntimeError(f"adaptive_max_pool3d(): Expected 4D or 5D tensor, but got: {list(input.shape)}")
    return _adaptive(3, input, output_size, "adaptive_max_pool3d", True, return_indices)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):  # noqa: A002
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):  # noqa: A002
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):  # noqa: A002
    return adaptive_max_pool3d(input, output_size, return_indices=True)


# ---------------------------------------------------------------------------------------------------------
# max unpooling
# ---------------------------------------------------------------------------------------------------------


def _unpool_output_size(input, kernel_size, stride, padding, output_size):  # noqa: A002
    """torch's ``_unpool_output_size``: the default ``(in - 1) * stride + kernel - 2 * padding``, or the given
    size (its last ``nd`` entries), which must lie strictly within a stride of the default."""
    nd = len(kernel_size)
    default = [(input.shape[-nd + d] - 1) * stride[d] + kernel_size[d] - 2 * padding[d] for d in range(nd)]
    if output_size is None:
        size = default
    else:
        if len(output_size) == nd + 2:
            output_size = output_size[2:]
        if len(output_size) != nd:
            raise ValueError(f"output_size should be a sequence containing {nd} or {nd + 2} elements, but it has a "
                             f"length of '{len(output_size)}'")
        for d in range(nd):
            low, high = default[d] - stride[d], default[d] + stride[d]
            if not low < output_size[d] < high:
                raise ValueError(f'invalid output_size "{output_size}" (dim {d} must be between {low} and {high})')
        size = [int(s) for s in output_size]
    for d in range(nd):
        if size[d] < 0:
            raise ValueError(f"max_unpooling: output_size must contain non-negative spatial dimensions, but got "
                             f"output_size[{d}]={size[d]}")
    return size


def _max_unpool(nd, input, indices, kernel_size, stride, padding, output_size):  # noqa: A002
    """Each value of ``input`` written at its per-plane flat index ``indices`` (as ``max_pool``'s
    ``return_indices`` gives) in a zero output: ``scatter_map``, whose adjoint gathers the gradient back. Where
    two values share an index the last one is written (torch's loop), so only it gets a gradient."""
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(stride, nd, "stride") if stride is not None else k
    p = _tuple(padding, nd, "padding")
    size = _unpool_output_size(input, k, s, p, output_size)
    # torch runs max_unpool1d as max_unpool2d over (L, 1) planes: its checks and messages are the 2-D ones
    kernel_nd = max(nd, 2)
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Input to max_unpooling{kernel_nd}d should be a {kernel_nd + 1}d or {kernel_nd + 2}d "
                           f"Tensor, but got a tensor with {input.ndim + (nd == 1)} dimensions.")
    if not isinstance(indices, Tensor):
        raise TypeError(f"max_unpool{kernel_nd}d(): argument 'indices' (position 2) must be Tensor, not "
                        f"{type(indices).__name__}")
    idx = indices._data
    if idx.shape != tuple(input.shape):
        shape = list(input.shape) + [1] * (nd == 1)
        got = list(idx.shape) + [1] * (nd == 1)
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor ({shape}) but got "
                           f"indices tensor with shape: {got}")
    if idx.dtype != np.int64:
        raise RuntimeError(f"elements in indices should be type int64 but got: "
                           f"{ops._torch_dtype(idx.dtype).capitalize()}")
    plane = int(np.prod(size))
    if input._dev is not None and indices._dev is not None and _fits_indexed(input, input.shape[-nd:], size):
        return _device_max_unpool(input, indices, tuple(input.shape[:-nd]) + tuple(size), nd)
    idx = _cuda.host_copy(idx)  # (an index map)
    bad = (idx < 0) | (idx >= plane)
    if bad.any():
        volume = "x".join(str(v) for v in size + [1] * (nd == 1))
        raise RuntimeError(f"Found an invalid max index: {int(idx[bad].flat[0])} (output volumes are of size "
                           f"{volume})")
    lead = input.shape[:-nd]
    planes = int(np.prod(lead))
    flat = (idx.reshape(planes, -1) + (np.arange(planes, dtype=np.int64) * plane)[:, None]).reshape(-1)
    out_shape = tuple(lead) + tuple(size)
    # the last write of each output index: np.unique on the reversed order finds each index's last position
    _, last = np.unique(flat[::-1], return_index=True)
    if len(last) == flat.size:
        return ops.scatter_map(input, out_shape, flat)
    kept = np.sort(flat.size - 1 - last)
    values = ops.gather_map(input, (len(kept),), kept)
    return ops.scatter_map(values, out_shape, flat[kept])


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """The partial inverse of ``max_pool1d``: each value put back at its index, zeros elsewhere.

    Example:
        >>> out, idx = F.max_pool1d(ad.tensor([[1.0, 3.0, 2.0, 0.0]]), 2, return_indices=True)
        >>> F.max_unpool1d(out, idx, 2).tolist()
        [[0.0, 3.0, 2.0, 0.0]]
    """
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """The partial inverse of ``max_pool2d`` on (N, C, H, W) or (C, H, W)."""
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """The partial inverse of ``max_pool3d`` on (N, C, D, H, W) or (C, D, H, W)."""
    return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


# ---------------------------------------------------------------------------------------------------------
# fractional max pooling
# ---------------------------------------------------------------------------------------------------------


def _fractional_starts(sample, size, out, k):
    """torch's ``generate_intervals``: the window starts ``(P, out)`` of each plane's pseudo-random sequence, from
    its sample ``u`` in [0, 1): ``int((i + u) * alpha) - int(u * alpha)`` with ``alpha = (size - k) / (out - 1)``,
    and the last window flush with the end. (C++ casts truncate toward zero.)"""
    starts = np.empty((sample.shape[0], out), np.int64)
    if out > 1:
        alpha = sample.dtype.type(size - k) / sample.dtype.type(out - 1)  # (in the samples' precision, as torch)
        i = np.arange(out - 1, dtype=sample.dtype)
        starts[:, :-1] = np.trunc((i[None, :] + sample[:, None]) * alpha).astype(np.int64) - \
            np.trunc(sample * alpha).astype(np.int64)[:, None]
    if out > 0:
        starts[:, -1] = size - k
    return starts


def _fractional_max_pool(nd, input, kernel_size, output_size, output_ratio, _random_samples, fn):  # noqa: A002
    if output_size is None and output_ratio is None:
        raise ValueError(f"{fn} requires specifying either an output_size or an output_ratio")
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}(): Expected {nd + 1}D or {nd + 2}D tensor, but got: {list(input.shape)}")
    spatial = input.shape[-nd:]
    for d in range(input.ndim - nd, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(f"{fn}(): Expected input to have non-zero size for non-batch dimensions, but got"
                               f"{list(input.shape)} with dimension {d} being empty.")
    if output_size is None:
        if nd == 2 and isinstance(output_ratio, (tuple, list)) and len(output_ratio) > 2:
            raise ValueError(f"{fn} requires output_ratio to either be a single Int or tuple of Ints.")
        ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * nd
        output_size = [int(s * r) for s, r in zip(spatial, ratio)]
    out = _tuple(output_size, nd, "output_size")
    k = _tuple(kernel_size, nd, "kernel_size")
    names = ("height", "width") if nd == 2 else ("time", "height", "width")
    prefix = fn if nd == 2 else "fractional_max_pool3d_out"
    for name, o, kk, s in zip(names, out, k, spatial):
        if kk <= 0:
            raise RuntimeError(f"{prefix}(): kernel_size must be greater than zero, but got {kk}")
        if not o + kk - 1 < s:
            raise RuntimeError(f"{prefix}(): pool {name} {kk} too large relative to input {name} {s}")
    x, batched = _as_batched(input, nd)
    n, c = x.shape[:2]
    if _random_samples is None:
        from ...creation import rand

        samples = rand(n, c, nd, dtype=input.dtype)._data  # (ad's generator, as torch.rand)
    else:
        if isinstance(_random_samples, Tensor) and _random_samples.requires_grad:
            raise RuntimeError(f"The function '{fn}' is not differentiable with respect to argument 'random_samples'. "
                               "This input cannot have requires_grad True.")
        samples = _cuda.host_copy(_random_samples._data) if isinstance(_random_samples, Tensor) \
            else np.asarray(_random_samples)
        if samples.dtype != input.dtype:
            raise RuntimeError("Expect _random_samples to have the same dtype as input")
        if samples.ndim != 3:
            raise RuntimeError(f"Expect _random samples to have 3 dimensions, got {samples.ndim}")
        if samples.shape[0] < n:
            raise RuntimeError("Expect _random_samples.size(0) no less then input batch size.")
        if samples.shape[1] != c:
            raise RuntimeError("Expect _random_samples.size(1) equals to input channel size.")
        if samples.shape[2] != nd:
            raise RuntimeError(f"Expect _random_samples.size(2) equals to {nd}; got {samples.shape[2]}.")
    planes = samples[:n].reshape(n * c, nd)
    # torch's sample order: (w, h) for 2-D, (t, h, w) for 3-D
    which = (1, 0) if nd == 2 else (0, 1, 2)
    index = np.zeros((n * c,) + out + (1,) * nd, np.int64)  # (P, O..., K...) within-plane flat indices
    for d in range(nd):
        starts = _fractional_starts(planes[:, which[d]], spatial[d], out[d], k[d])  # (P, O_d)
        coord = starts[:, :, None] + np.arange(k[d])[None, None, :]  # (P, O_d, K_d)
        shape = [n * c] + [1] * (2 * nd)
        shape[1 + d] = out[d]
        shape[1 + nd + d] = k[d]
        index = index + coord.reshape(shape) * int(np.prod(spatial[d + 1:]))
    index = index.reshape((n * c, int(np.prod(out)), -1))  # (P, O, K): the taps in row-major order
    if x._dev is not None and _fits_indexed(x, spatial):
        result, indices = _device_picks(x, index, out, False)
        return (result, indices) if batched else (ops.squeeze(result, 0), ops.squeeze(indices, 0))
    if x._dev is not None:
        result, indices = _device_fractional_max(x, index, out)
        return (result, indices) if batched else (ops.squeeze(result, 0), ops.squeeze(indices, 0))
    values = _cuda.host_copy(x._data).reshape(n * c, -1)
    window = np.take_along_axis(values, index.reshape(n * c, -1), 1).reshape(index.shape)
    best = np.take_along_axis(index, np.argmax(window, axis=-1)[..., None], -1)[..., 0]  # (the first maximum)
    plane = int(np.prod(spatial))
    flat = best + (np.arange(n * c, dtype=np.int64) * plane)[:, None]
    result = ops.gather_map(x, (n, c) + out, flat.reshape((n, c) + out))
    indices = best.reshape((n, c) + out)
    if not batched:
        result, indices = ops.squeeze(result, 0), indices[0]
    return result, _cuda.index_tensor(indices.astype(np.int64), input)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,  # noqa: A002
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool2d`` and its indices (torch's name; ``return_indices`` is ignored, as torch's)."""
    return _fractional_max_pool(2, input, kernel_size, output_size, output_ratio, _random_samples,
                                "fractional_max_pool2d")


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,  # noqa: A002
                          _random_samples=None):
    """Max pooling of (N, C, H, W) or (C, H, W) over pseudo-random windows (Graham's fractional max pooling):
    each plane's window starts follow from a sample in [0, 1) per dim (``_random_samples`` (N, C, 2), else drawn
    from ad's generator), to an output of ``output_size`` or ``output_ratio`` times the input.

    Raises: ValueError without output_size and output_ratio; RuntimeError (torch's messages) for windows that do
    not fit or samples of the wrong shape or dtype.
    """
    out = fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio, True, _random_samples)
    return out if return_indices else out[0]


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,  # noqa: A002
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool3d`` and its indices (torch's name)."""
    return _fractional_max_pool(3, input, kernel_size, output_size, output_ratio, _random_samples,
                                "fractional_max_pool3d")


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,  # noqa: A002
                          _random_samples=None):
    """Fractional max pooling of (N, C, D, H, W) or (C, D, H, W); ``_random_samples`` (N, C, 3)."""
    out = fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio, True, _random_samples)
    return out if return_indices else out[0]
