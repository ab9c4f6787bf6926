"""Padding, resampling and rearranging images: ``pad``, ``interpolate``, ``pixel_shuffle``, ``pixel_unshuffle``.

All are composites: numpy computes an index map (for each output element, the flat index of the input
element it reads) and ``ops.gather_map`` applies it, a linear primitive whose adjoint (``scatter_map``)
accumulates repeated reads (reflect and replicate padding, upsampling). Linear interpolation is a weighted
sum of a few such gathers with constant weights.
"""

import numpy as np

from ... import cuda as _cuda
from ... import observe as _observe
from ... import ops
from ...tensor import Tensor, wrap_array


def _check_tensor(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def _flat_index(shape):
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def pad(input, pad, mode="constant", value=None):  # noqa: A002 - torch's names
    """Pads the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_2nd_last, ...)``.

    Args:
        mode: ``"constant"`` (with ``value``, default 0; negative pads crop), ``"reflect"``, ``"replicate"``,
            ``"circular"``.
    Raises:
        ValueError for an odd-length ``pad`` or unknown mode; RuntimeError / NotImplementedError for
        padding that the mode cannot do, as torch.

    Example:
        >>> F.pad(ad.tensor([1.0, 2.0]), (1, 2)).tolist()
        [0.0, 1.0, 2.0, 0.0, 0.0]
    """
    _check_tensor(input, "pad")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    k = len(pad) // 2
    if k > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant":
        if value is not None and value != 0:
            raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
        if not (1 <= k <= 3) or input.ndim not in (k + 1, k + 2):
            raise NotImplementedError(
                f"Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now (got {mode} padding "
                f"of {k} dims on a {input.ndim}-D input)"
            )
    shape = input.shape
    widths = [(0, 0)] * input.ndim
    for i in range(k):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    out_shape = tuple(s + a + b for s, (a, b) in zip(shape, widths))
    if any(s < 0 for s in out_shape) or (mode != "constant" and any(s <= 0 for s in out_shape)):
        raise RuntimeError(f"The input size {list(shape)}, plus negative padding {list(pad)} resulted in a "
                           f"negative output size, which is invalid. Check dimension of your input.")
    coords = []
    valid = np.ones(out_shape, bool)
    for d, (s, (a, _)) in enumerate(zip(shape, widths)):
        c = np.arange(out_shape[d]) - a
        if mode == "reflect" and (a or _):
            if a >= s or _ >= s:
                raise RuntimeError(
                    f"Argument #4: Padding size should be less than the corresponding input dimension, but got: "
                    f"padding ({a}, {_}) at dimension {d} of input {list(shape)}"
                )
            period = 2 * (s - 1) if s > 1 else 1
            c = np.abs(np.mod(c, period)) if s > 1 else np.zeros_like(c)
            c = np.where(c >= s, period - c, c)
        elif mode == "replicate":
            c = np.clip(c, 0, s - 1)
        elif mode == "circular" and (a or _):
            if a > s or _ > s:
                raise RuntimeError("Padding value causes wrapping around more than once.")
            c = np.mod(c, s)
        else:
            inside = (c >= 0) & (c < s)
            shp = [1] * input.ndim
            shp[d] = out_shape[d]
            valid &= inside.reshape(shp)
            c = np.clip(c, 0, max(s - 1, 0))
        coords.append(c)
    if input.numel() == 0 or not all(len(c) for c in coords):
        return ops.reshape(input, shape) if out_shape == shape else _constant(input, out_shape, value)
    idx = _flat_index(shape)[np.ix_(*coords)]
    gathered = ops.gather_map(input, out_shape, idx)
    if _observe.observer is not None:  # (ad.compile: the map follows from the shapes alone, not from values)
        _observe.observer.shape_map(gathered)
    if mode == "constant" and not valid.all():
        fill = 0.0 if value is None else value
        return ops.where(wrap_array(valid), gathered, _cuda.index_tensor(np.full(out_shape, fill, input.dtype), input))
    return gathered


def _constant(input, shape, value):
    return _cuda.index_tensor(np.full(shape, 0.0 if value is None else value, input.dtype), input)


# ---------------------------------------------------------------------------------------------------------
# interpolate
# ---------------------------------------------------------------------------------------------------------


def _source_index(out_size, in_size, scale, align_corners, mode):
    """Source coordinate of each output index, as torch computes it (area_pixel_compute_source_index)."""
    o = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        r = (in_size / out_size) if scale is None else 1.0 / scale
        return np.minimum(np.floor(o * r).astype(np.int64), in_size - 1)
    if mode == "nearest-exact":
        r = (in_size / out_size) if scale is None else 1.0 / scale
        return np.minimum(np.floor((o + 0.5) * r).astype(np.int64), in_size - 1)
    if align_corners:
        r = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return o * r
    r = (in_size / out_size) if scale is None else 1.0 / scale
    return np.maximum(r * (o + 0.5) - 0.5, 0.0)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,  # noqa: A002
                recompute_scale_factor=None, antialias=False):
    """Resamples the spatial dims of ``input`` (N, C, *spatial) to ``size`` or by ``scale_factor``.

    Args:
        mode: ``"nearest"``, ``"nearest-exact"``, ``"linear"`` (3-D input), ``"bilinear"`` (4-D),
            ``"trilinear"`` (5-D); ``align_corners`` only for the linear modes (torch's default False).
    """
    _check_tensor(input, "interpolate")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by ad")
    nd = input.ndim - 2
    if nd < 1 or nd > 3:
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the modes: nearest | "
            f"linear | bilinear | bicubic | trilinear | area | nearest-exact (got {mode})"
        )
    linear_modes = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                             "bicubic | trilinear")
    elif mode in linear_modes:
        if linear_modes[mode] != nd:
            raise NotImplementedError(
                f"Got {input.ndim}D input, but {mode} mode needs {linear_modes[mode] + 2}D input"
            )
        align_corners = bool(align_corners)
    else:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported by ad")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    spatial = input.shape[2:]
    if size is not None:
        size = tuple(int(s) for s in size) if isinstance(size, (tuple, list)) else (int(size),) * nd
        if len(size) != nd:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(spatial)} and output size of {list(size)}. Please provide "
                             f"input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) "
                             f"format.")
        scales = (None,) * nd
    else:
        sf = tuple(float(s) for s in scale_factor) if isinstance(scale_factor, (tuple, list)) else (
            float(scale_factor),) * nd
        if len(sf) != nd:
            raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {list(spatial)} and scale_factor of shape {list(sf)}.")
        size = tuple(int(np.floor(s * f)) for s, f in zip(spatial, sf))
        scales = (None,) * nd if recompute_scale_factor else sf
    full = input.shape[:2] + size
    base = _flat_index(input.shape)
    if mode.startswith("nearest"):
        coords = [np.arange(input.shape[0]), np.arange(input.shape[1])]
        coords += [_source_index(o, i, s, None, mode) for o, i, s in zip(size, spatial, scales)]
        return ops.gather_map(input, full, base[np.ix_(*coords)])
    # linear modes: each output is a weighted sum of 2 ** nd corners
    lo, hi, frac = [], [], []
    for o, i, s in zip(size, spatial, scales):
        src = _source_index(o, i, s, align_corners, mode)
        l0 = np.minimum(np.floor(src).astype(np.int64), i - 1)
        lo.append(l0)
        hi.append(np.minimum(l0 + 1, i - 1))
        frac.append(src - l0)
    out = None
    n_c = [np.arange(input.shape[0]), np.arange(input.shape[1])]
    for corner in range(2**nd):
        coords = list(n_c)
        weight = np.ones(size)
        for d in range(nd):
            take_hi = (corner >> (nd - 1 - d)) & 1
            coords.append(hi[d] if take_hi else lo[d])
            w = frac[d] if take_hi else 1.0 - frac[d]
            shp = [1] * nd
            shp[d] = size[d]
            weight = weight * w.reshape(shp)
        corner_weight = _cuda.index_tensor(weight.astype(input.dtype), input)
        term = ops.gather_map(input, full, base[np.ix_(*coords)]) * corner_weight
        out = term if out is None else out + term
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):  # noqa: A002
    return interpolate(input, size, scale_factor, mode, align_corners)


# ---------------------------------------------------------------------------------------------------------
# pixel shuffle
# ---------------------------------------------------------------------------------------------------------


def pixel_shuffle(input, upscale_factor):  # noqa: A002
    """``(*, C * r * r, H, W) -> (*, C, H * r, W * r)``."""
    _check_tensor(input, "pixel_shuffle")
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    oc = c // (r * r)
    idx = _flat_index(input.shape).reshape(*lead, oc, r, r, h, w)
    k = len(lead)
    perm = list(range(k)) + [k, k + 3, k + 1, k + 4, k + 2]
    idx = idx.transpose(perm).reshape(*lead, oc, h * r, w * r)
    return ops.gather_map(input, idx.shape, idx)


def pixel_unshuffle(input, downscale_factor):  # noqa: A002
    """``(*, C, H * r, W * r) -> (*, C * r * r, H, W)`` (the inverse of pixel_shuffle)."""
    _check_tensor(input, "pixel_unshuffle")
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by downscale_factor, but "
                           f"got height={h}, width={w}, downscale_factor={r}")
    idx = _flat_index(input.shape).reshape(*lead, c, h // r, r, w // r, r)
    k = len(lead)
    perm = list(range(k)) + [k, k + 2, k + 4, k + 1, k + 3]
    idx = idx.transpose(perm).reshape(*lead, c * r * r, h // r, w // r)
    return ops.gather_map(input, idx.shape, idx)
