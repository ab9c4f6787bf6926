"""Pooling of CUDA tensors in device ops, with no copy of a tensor back to the host (``pooling.py`` holds the
geometry, the checks and the CPU paths, and calls these for CUDA operands).

- ``_device_picks``: max pooling (plain, ``return_indices``, adaptive, fractional) in two launches: a kernel
  (``kernels/cuda/pool.py``) finds each window's first maximum from a table of its taps, and
  ``ops.gather_indexed`` picks the values (its row adds the gradient to the picked elements in the device
  sweep); the indices it returns are torch's per-plane flat ones.
- ``_device_max_unpool``: max unpooling by CUDA indices, a gather through each output's source.
- Planes too big for the indices to be exact in the dtype (``_fits_indexed``: float32 holds integers up to 2 **
  24) take device ops without indexed gathers: ``_device_max_pool`` (strided taps and a chain of ``where``),
  ``_device_separable_max`` (one such pass per dim, carrying the index), ``_device_fractional_max`` (the taps
  gathered by host-known windows).
"""

import numpy as np

from ... import cuda as _cuda
from ... import ops
from ...grad_mode import no_grad


def _device_max_pool(x, kernel, stride, padding, dilation, out, masks):
    """Max pooling of a CUDA tensor in device ops, no host copy of the values (``_max_over_windows`` reads them
    back for the index map): the taps are strided slices of the input padded with -inf; ``m`` their maximum; the
    result selects, by a chain of ``where`` from the last tap to the first, the first valid tap equal to ``m`` or
    NaN (a NaN is the maximum: the first NaN), which is the CPU's pick (``window_argmax``). The gradient and the
    tangent are that tap's only, as the CPU's gather; a padding tap is never picked (an all -inf window picks its
    first element)."""
    from ...cuda.ops import full

    for dim, (kk, st, pp, dl, o) in enumerate(zip(kernel, stride, padding, dilation, out)):
        axis = 2 + dim
        right = max(0, (o - 1) * st + (kk - 1) * dl + 1 - pp - x.shape[axis])  # (ceil_mode's last windows)
        if pp or right:
            pieces = []
            for width in (pp, None, right):
                if width is None:
                    pieces.append(x)
                elif width:
                    shape = x.shape[:axis] + (width,) + x.shape[axis + 1:]
                    pieces.append(full(shape, -np.inf, x._data.dtype, x._dev))
            x = ops.cat(pieces, axis)
    taps, valid = [], []
    for offsets in np.ndindex(*kernel):  # (the windows' tap order: row-major over the kernel)
        window = tuple(slice(j * dl, j * dl + (o - 1) * st + 1, st)
                       for j, dl, o, st in zip(offsets, dilation, out, stride))
        taps.append(x[(slice(None), slice(None)) + window])
        inside = np.ones((), bool)
        for dim, j in enumerate(offsets):
            inside = np.multiply.outer(inside, masks[dim][:, j])
        valid.append(None if inside.all() else _cuda.index_tensor(inside, x))
    with no_grad():
        m = ops.amax(ops.stack(taps, 2), 2) if len(taps) > 1 else taps[0]
    result = taps[-1]
    for tap, inside in zip(reversed(taps[:-1]), reversed(valid[:-1])):
        pick = (tap == m) | ops.isnan(tap)
        if inside is not None:
            pick = pick & inside
        result = ops.where(pick, tap, result)
    return result


def _device_picks(x, taps, out, shared):
    """Max pooling of CUDA tensor ``x`` (N, C, *spatial) in two launches, no copy back: ``kernels/cuda/pool.py``'s
    ``window_argmax_kernel`` finds each window's first maximum (NaN first) from ``taps`` (in-plane indices of each
    window's taps, -1 outside the input: ``(*out, K)`` shared by every plane, or ``(N * C, *out, K)`` when not
    ``shared``), and ``gather_indexed`` picks the values (its adjoint adds the gradient to the picked elements, as
    the CPU's ``gather_map``). Returns the values and the int64 indices ``(N, C, *out)``, torch's per-plane flat
    layout. (Planes too big for the dtype's exact integers: ``_device_max_pool`` and ``_device_separable_max``.)"""
    from kernels.cuda import pool as kp
    from kernels.cuda.ad_glue import launch

    from ...cuda.arrays import dense, empty, to_device, wrap

    n, c = x.shape[:2]
    per_in, per_out = int(np.prod(x.shape[2:])), int(np.prod(out))
    t = empty((n * c * per_out,), np.int64)
    if t.size:
        values = dense(x._data)
        taps = to_device(np.ascontiguousarray(taps, dtype=np.int64).reshape(-1))
        launch(kp.window_argmax_kernel, t.size, values.reshape(values.size), taps, t, per_in, per_out, shared)
    result = ops.gather_indexed(x, (n, c) + tuple(out), t, per_out, per_in)
    return result, wrap(t.reshape((n, c) + tuple(out)), x._dev)


def _device_separable_max(x, passes):
    """Max pooling of CUDA tensor ``x`` (N, C, *spatial) and its indices (int64, torch's per-plane flat index of each
    window's maximum), no host copy: one pass per spatial dim, as a window's maximum is the maximum along the last
    dim of the maxima along the others. ``passes[d]``: the windows of dim ``d`` as interleaved regular sets
    ``(first, step, taps, dilation, outputs)`` (output ``o`` is window ``o // len(sets)`` of set
    ``o % len(sets)``; max pooling has one set, uneven adaptive windows several, ``_window_classes``). Each pass
    picks, per window, the first valid tap equal to the maximum or NaN (``_first_max_along``) and carries the
    index of the picked element with it: the first maximum of a window in row-major order is the first row
    holding the maximum and that row's first, so the pick, the gradient and the tangent are the CPU's
    (``window_argmax``: the first maximum, a NaN counting as one)."""
    spatial = x.shape[2:]
    iota = np.arange(int(np.prod(spatial)), dtype=np.int64).reshape((1, 1) + tuple(spatial))
    index = _cuda.index_tensor(iota, x)
    for d in reversed(range(len(passes))):  # (the last dim first: the first maximum of each row, then the rows)
        sets, axis = passes[d], 2 + d
        picked = [_first_max_along(x, index, axis, *window) for window in sets]
        if len(picked) == 1:
            x, index = picked[0]
            continue
        merged = []
        for part in zip(*picked):  # (values, then indices): stacked after the window axis, merged into it
            stacked = ops.stack(list(part), axis + 1)
            merged.append(ops.reshape(stacked, stacked.shape[:axis] + (-1,) + stacked.shape[axis + 2:]))
        x, index = merged
    return x, index


def _first_max_along(x, index, axis, first, step, taps, dilation, outputs):
    """``outputs`` windows along ``axis`` of ``taps`` elements ``dilation`` apart, ``step`` apart from ``first``
    (which may lie in the padding): each window's first valid tap equal to its maximum or NaN (by a chain of
    ``where`` from the last tap to the first), and the index (``index``, broadcast against ``x``) of that tap.
    The input is padded with -inf where windows reach past it (a padding tap is never picked: an all -inf
    window picks its first element)."""
    from ...cuda.ops import full

    size = x.shape[axis]
    reach = first + (outputs - 1) * step + (taps - 1) * dilation + 1
    left, right = max(0, -first), max(0, reach - size)
    if left or right:
        x = ops.cat(_padded(x, axis, left, right, lambda shape: full(shape, -np.inf, x._data.dtype, x._dev)), axis)
        zeros = lambda shape: _cuda.index_tensor(np.zeros(shape, np.int64), index)  # noqa: E731
        index = ops.cat(_padded(index, axis, left, right, zeros), axis)
    start = first + left
    coords = first + step * np.arange(outputs)
    cut = [slice(None)] * x.ndim
    taps_x, taps_i, inside = [], [], []
    for j in range(taps):
        cut[axis] = slice(start + j * dilation, start + j * dilation + (outputs - 1) * step + 1, step)
        taps_x.append(x[tuple(cut)])
        taps_i.append(index[tuple(cut)])
        c = coords + j * dilation
        valid = (c >= 0) & (c < size)
        shape = [1] * x.ndim
        shape[axis] = outputs
        inside.append(None if valid.all() else _cuda.index_tensor(valid.reshape(shape), x))
    with no_grad():
        m = ops.amax(ops.stack(taps_x, axis), axis) if taps > 1 else taps_x[0]
    return _pick_first_max(taps_x, taps_i, inside, m)


def _pick_first_max(taps_x, taps_i, inside, m):
    """The first of the taps ``taps_x`` (each with its index ``taps_i`` and validity ``inside``, None: all valid)
    equal to the maximum ``m`` or NaN, by a chain of ``where`` from the last tap to the first: the value (its
    gradient and tangent go to that tap only) and the index."""
    value, where_from = taps_x[-1], taps_i[-1]
    for tap, tap_index, valid in zip(reversed(taps_x[:-1]), reversed(taps_i[:-1]), reversed(inside[:-1])):
        with no_grad():
            pick = (tap == m) | ops.isnan(tap)
            if valid is not None:
                pick = pick & valid
            where_from = ops.where(pick, tap_index, where_from)
        value = ops.where(pick, tap, value)
    return value, where_from


def _padded(x, axis, left, right, filled):
    """``[left piece, x, right piece]`` for ``cat`` along ``axis`` (a piece of width 0 left out), the pieces
    ``filled(shape)``."""
    pieces = [x]
    for width, at in ((left, 0), (right, 2)):
        if width:
            shape = list(x.shape)
            shape[axis] = width
            pieces.insert(min(at, len(pieces)), filled(tuple(shape)))
    return pieces


def _fits_indexed(x, *planes):
    """Whether indices within planes of these shapes are exact in ``x``'s dtype, as ``gather_indexed``'s row keeps
    them in the value arena (float32: up to 2 ** 24); float data only."""
    if x._data.dtype.kind != "f":
        return False
    limit = 1 << (24 if x._data.dtype == np.float32 else 53)
    return all(int(np.prod(p)) <= limit for p in planes)


def _device_max_unpool(input, indices, out_shape, nd):  # noqa: A002
    """Max unpooling of a CUDA tensor by CUDA indices with no copy of them to the host: ``kernels/cuda/pool.py``
    finds each output's source (the last input that names it, as torch's loop and the CPU path) and each input's
    output, and ``gather_indexed`` gathers the values through the first (its adjoint gathers the gradient through
    the second). An index outside its plane (torch: RuntimeError on the CPU, a device-side assert on CUDA) makes
    its plane NaN: checking on the host would cost a copy back per call."""
    from kernels.cuda import pool as kp
    from kernels.cuda.ad_glue import launch

    from ...cuda.arrays import dense, empty

    per_in = int(np.prod(input.shape[-nd:]))
    per_out = int(np.prod(out_shape[-nd:]))
    planes = int(np.prod(out_shape[:-nd]))
    index = dense(indices._data)
    index = index.reshape(index.size)
    source = empty((planes * per_out,), np.int64)
    target = empty((index.size,), np.int64)
    bad = empty((max(planes, 1),), np.uint8)
    launch(kp.unpool_clear_kernel, max(source.size, bad.size), source, bad)
    if index.size:
        launch(kp.unpool_sources_kernel, index.size, index, source, bad, per_in, per_out)
    launch(kp.unpool_targets_kernel, max(index.size, source.size), index, source, bad, target, per_in, per_out)
    return ops.gather_indexed(input, out_shape, source, per_out, per_in, inverse=target)


def _device_fractional_max(x, index, out):
    """Fractional max pooling of CUDA tensor ``x`` (N, C, *spatial) over the windows ``index`` (P, O, K: per-plane
    flat indices of each window's taps, host data from the samples), no copy of the input back: the taps gathered
    on the device (one ``gather_map``, whose adjoint scatters the gradient back), each window's first maximum or NaN
    picked by ``_pick_first_max``; the values and the int64 indices ``(N, C, *out)``."""
    n, c = x.shape[:2]
    planes, outputs, k = index.shape
    plane = int(np.prod(x.shape[2:]))
    flat = index + (np.arange(planes, dtype=np.int64) * plane)[:, None, None]
    taps = ops.gather_map(x, (n, c) + tuple(out) + (k,), flat)
    at = _cuda.index_tensor(index.reshape((n, c) + tuple(out) + (k,)), x)
    with no_grad():
        m = ops.amax(taps, -1)
    taps_x = [taps[..., j] for j in range(k)]
    taps_i = [at[..., j] for j in range(k)]
    return _pick_first_max(taps_x, taps_i, [None] * k, m)
