"""Padding, resampling and rearranging images: ``pad``, ``interpolate``, ``pixel_shuffle``, ``pixel_unshuffle``.

All are composites: numpy computes an index map (for each output element, the flat index of the input
element it reads) and ``ops.gather_map`` applies it, a linear primitive whose adjoint (``scatter_map``)
accumulates repeated reads (reflect and replicate padding, upsampling). Linear interpolation is a weighted
sum of a few such gathers with constant weights.
"""

import warnings

import numpy as np

from ... import cuda as _cuda
from ... import observe as _observe
from ... import ops
from ...grad_mode import no_grad
from ...tensor import Tensor, wrap_array


def _check_tensor(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def _flat_index(shape):
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def _const(arr, like):
    """A constant array (weights, masks) as a tensor on ``like``'s device, told to ``ad.compile`` as a factory's
    (the replay re-creates it from the recorded values, which both recordings must agree on)."""
    return _observe.created(_cuda.index_tensor(arr, like))


def _gather(x, shape, idx):
    """``ops.gather_map`` of an index map that follows from shapes alone (told to ``ad.compile``, whose replay
    then recomputes it instead of running eagerly)."""
    out = ops.gather_map(x, shape, idx)
    if _observe.observer is not None:
        _observe.observer.shape_map(out)
    return out


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
            # torch's order: a negative pad crops first, and the padding wraps around what is left
            lo = max(-a, 0)
            kept = s - lo - max(-_, 0)
            if a > kept or _ > kept:
                raise RuntimeError("Padding value causes wrapping around more than once.")
            c = lo + np.mod(np.arange(out_shape[d]) - max(a, 0), kept)
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
    gathered = _gather(input, out_shape, idx)
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


_GENERIC_MODES = "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact"
_SPATIAL_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2, "lanczos": 2}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,  # noqa: A002
                recompute_scale_factor=None, antialias=False):
    """Resamples the spatial dims of ``input`` (N, C, *spatial) to ``size`` or by ``scale_factor``, as torch.

    Args:
        mode: ``"nearest"``, ``"nearest-exact"``, ``"area"`` (``adaptive_avg_pool``), ``"linear"`` (3-D input),
            ``"bilinear"``, ``"bicubic"`` (4-D; cubic convolution with a = -0.75), ``"trilinear"`` (5-D),
            ``"lanczos"`` (4-D, needs ``antialias=True``: Lanczos-3); ``align_corners`` only for the
            interpolating modes (torch's default False).
        antialias: bilinear, bicubic and lanczos on 4-D input: when downsampling, the filter widens by the
            scale (torch's ``_upsample_*_aa``: with ``align_corners=False`` it matches Pillow's resize).

    Every mode is a sum of gathers with constant weights (separable: one dim at a time), so gradients of every
    order, CUDA tensors and ``ad.compile``'s replay come from ``gather_map``. Integer input: the nearest modes
    gather it; uint8 images interpolate bilinearly / bicubically per pass, rounded (torch's fixed-point kernel
    may differ by 1); other integer inputs raise NotImplementedError, as torch.
    """
    _check_tensor(input, "interpolate")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                             "bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    nd = input.ndim - 2
    spatial = input.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (tuple, list)):
            if len(size) != nd:
                raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                                 f"with spatial dimensions of {list(spatial)} and output size of {size}. Please "
                                 f"provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                                 f"(o1, o2, ...,oK) format.")
            if not all(isinstance(s, (int, np.integer)) for s in size):
                raise TypeError(f"expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, "
                                f"int], but got size with types {[type(s) for s in size]}")
            size = tuple(int(s) for s in size)
        else:
            size = (int(size),) * nd
        scales = (None,) * nd
    elif scale_factor is not None:
        if isinstance(scale_factor, (tuple, list)):
            if len(scale_factor) != nd:
                raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got "
                                 f"input with spatial dimensions of {list(spatial)} and scale_factor of shape "
                                 f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                                 f"scale_factor in (s1, s2, ...,sK) format.")
            scales = tuple(float(f) for f in scale_factor)
        else:
            scales = (float(scale_factor),) * nd
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if size is None:
        size = tuple(int(s * f) for s, f in zip(spatial, scales))  # (torch: the C++ truncation of in * scale)
        if recompute_scale_factor or mode == "area":
            scales = (None,) * nd
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D tensor as input"
        )
    if not (mode in ("nearest", "nearest-exact", "area") and 1 <= nd <= 3 or _SPATIAL_DIMS.get(mode) == nd):
        named = {"linear": 3, "bilinear": 4, "trilinear": 5}
        if mode in named and 3 <= input.ndim <= 5:
            raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {named[mode]}D input")
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: {_GENERIC_MODES} (got {mode})")
    if mode == "lanczos":
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if input.dtype.kind in "iub" and not mode.startswith("nearest") and mode != "area":
        return _interpolate_uint8(input, size, scales, mode, align_corners, antialias)
    if mode == "area":
        from .pooling import _adaptive

        return _adaptive(nd, input, size, f"adaptive_avg_pool{nd}d", False)
    full = input.shape[:2] + size
    base = _flat_index(input.shape)
    if mode.startswith("nearest"):
        coords = [np.arange(input.shape[0]), np.arange(input.shape[1])]
        coords += [_source_index(o, i, s, None, mode) for o, i, s in zip(size, spatial, scales)]
        return _gather(input, full, base[np.ix_(*coords)])
    if antialias or mode == "bicubic":
        out = input
        for d in reversed(range(nd)):  # (torch's separable passes: the last dim first)
            if antialias:
                taps = _aa_taps(size[d], spatial[d], scales[d], align_corners, mode)
            else:
                taps = _cubic_taps(size[d], spatial[d], scales[d], align_corners)
            out = _resample_dim(out, 2 + d, *taps)
        return out
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
        corner_weight = _const(weight.astype(input.dtype), input)
        term = _gather(input, full, base[np.ix_(*coords)]) * corner_weight
        out = term if out is None else out + term
    return out


def _interpolate_uint8(input, size, scales, mode, align_corners, antialias):  # noqa: A002
    """torch interpolates integer images only as uint8 and only bilinearly or bicubically (2-D): computed in float64
    here, then rounded to the nearest integer and clamped to [0, 255] (not differentiable)."""
    from ...ops.linalg import torch_dtype_name

    if input.dtype != np.uint8 or mode not in ("bilinear", "bicubic", "lanczos"):
        raise NotImplementedError(f'"upsample_{mode}" not implemented for \'{torch_dtype_name(input.dtype)}\'')
    out = input
    with no_grad():
        for d in (1, 0):  # torch's separable passes, the last dim first, each rounded to uint8
            if scales[d] is None:  # (the other dim kept: its own size, or a scale of 1)
                step = {"size": tuple(size[k] if k == d else out.shape[2 + k] for k in range(2))}
            else:
                step = {"scale_factor": tuple(scales[k] if k == d else 1.0 for k in range(2))}
            out = interpolate(out.double(), mode=mode, align_corners=align_corners, antialias=antialias, **step)
            data = np.clip(np.floor(_cuda.host_copy(out._data) + 0.5), 0, 255).astype(np.uint8)
            out = _cuda.index_tensor(data, input)
    return out


def _pixel_scale(out_size, in_size, scale, align_corners):
    """Input pixels per output pixel (torch's area_pixel_compute_scale)."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else in_size / out_size


def _cubic(x, a):
    """The cubic convolution kernel (Keys) at distances ``x``: a = -0.75 (torch's bicubic), -0.5 (antialias)."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _cubic_taps(out_size, in_size, scale, align_corners):
    """torch's upsample_bicubic2d along one dim: 4 taps around the source coordinate (not clamped at 0), indices
    clamped to the edge. Returns (indices, weights), each (4, out_size)."""
    r = _pixel_scale(out_size, in_size, scale, align_corners)
    o = np.arange(out_size, dtype=np.float64)
    src = r * o if align_corners else r * (o + 0.5) - 0.5
    first = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    t = np.clip(src - first, 0.0, 1.0)
    weights = np.stack([_cubic(t + 1.0, -0.75), _cubic(t, -0.75), _cubic(1.0 - t, -0.75), _cubic(2.0 - t, -0.75)])
    idx = np.clip(first + np.arange(-1, 3)[:, None], 0, in_size - 1)
    return idx, weights


def _lanczos3(x):
    return np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)


_AA_FILTERS = {  # mode: (support at scale 1, filter)
    "bilinear": (1.0, lambda x: np.maximum(1.0 - np.abs(x), 0.0)),
    "bicubic": (2.0, lambda x: _cubic(x, -0.5)),
    "lanczos": (3.0, _lanczos3),
}


def _aa_taps(out_size, in_size, scale, align_corners, mode):
    """torch's antialiased resampling along one dim (_compute_weights_aa): downsampling widens the filter's
    support by the scale; each output's weights over its input window are normalized to sum 1. Returns
    (indices, weights), each (taps, out_size); taps past a window's end have weight 0."""
    half, filt = _AA_FILTERS[mode]
    r = _pixel_scale(out_size, in_size, scale, align_corners)
    support = half * r if r >= 1.0 else half
    taps = int(np.ceil(support)) * 2 + 1
    inv = 1.0 / r if r >= 1.0 else 1.0
    center = r * (np.arange(out_size, dtype=np.float64) + 0.5)
    lo = np.maximum((center - support + 0.5).astype(np.int64), 0)  # (C++ casts truncate toward zero)
    count = np.clip(np.minimum((center + support + 0.5).astype(np.int64), in_size) - lo, 0, taps)
    j = np.arange(taps)[:, None]
    weights = np.where(j < count, filt((j + lo - center + 0.5) * inv), 0.0)
    total = weights.sum(0)
    weights = np.where(total != 0.0, weights / np.where(total != 0.0, total, 1.0), weights)
    return np.minimum(lo + j, in_size - 1), weights


def _resample_dim(x, axis, idx, weights):
    """``sum_k x[..., idx[k], ...] * weights[k]`` along ``axis``: a weighted sum of gathers."""
    shape = x.shape[:axis] + (idx.shape[1],) + x.shape[axis + 1:]
    base = _flat_index(x.shape)
    coords = [np.arange(s) for s in x.shape]
    bshape = [1] * x.ndim
    bshape[axis] = idx.shape[1]
    out = None
    for k in range(idx.shape[0]):
        if not weights[k].any():
            continue
        coords[axis] = idx[k]
        w = _const(weights[k].astype(x.dtype).reshape(bshape), x)
        term = _gather(x, shape, base[np.ix_(*coords)]) * w
        out = term if out is None else out + term
    return out if out is not None else _gather(x, shape, base[np.ix_(*coords)]) * 0.0


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
    return _gather(input, idx.shape, idx)


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
    for name, size, dim in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                               f"input.size({dim})={size} is not divisible by {r}")
    idx = _flat_index(input.shape).reshape(*lead, c, h // r, r, w // r, r)
    k = len(lead)
    perm = list(range(k)) + [k, k + 2, k + 4, k + 1, k + 3]
    idx = idx.transpose(perm).reshape(*lead, c * r * r, h // r, w // r)
    return _gather(input, idx.shape, idx)


# ---------------------------------------------------------------------------------------------------------
# channel shuffle, and torch's deprecated upsample_* aliases
# ---------------------------------------------------------------------------------------------------------


def channel_shuffle(input, groups):  # noqa: A002
    """``(N, C, *)``: the channels, seen as ``(groups, C / groups)``, transposed to ``(C / groups, groups)``
    (ShuffleNet's shuffle). An index map, so every derivative order comes from ``gather_map``.

    Raises: RuntimeError (torch's messages) for an input of fewer than 3 dims, a non-positive ``groups`` or
    channels not divisible by it. Example: ``F.channel_shuffle(x, 2)`` reorders channels 0..3 as 0, 2, 1, 3.
    """
    _check_tensor(input, "channel_shuffle")
    if input.ndim <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes "
                           f"{list(input.shape)}")
    g = int(groups)
    if g <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{g}")
    n, c, *rest = input.shape
    if c % g:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {g} groups.")
    idx = _flat_index(input.shape).reshape(n, g, c // g, *rest).swapaxes(1, 2).reshape(input.shape)
    return _gather(input, input.shape, idx)


def native_channel_shuffle(input, groups):  # noqa: A002
    """torch's kernel-level ``channel_shuffle`` (same result)."""
    return channel_shuffle(input, groups)


def upsample_nearest(input, size=None, scale_factor=None):  # noqa: A002
    """Deprecated (as in torch, with its warning): ``interpolate(input, size, scale_factor, mode="nearest")``."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):  # noqa: A002
    """Deprecated (as in torch, with its warning): ``interpolate(..., mode="bilinear", align_corners=True)``."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
