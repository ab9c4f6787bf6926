"""Sampling at continuous coordinates: ``affine_grid`` and ``grid_sample`` (4-D and 5-D, as torch).

Both are composites, so gradients of every order (to the input AND to the grid), forward mode and CUDA come
from the ops they are made of:

- ``affine_grid``: a constant base grid ``(D*H*W, nd + 1)`` of normalized coordinates (and ones) times
  ``theta`` transposed: one ``matmul``.
- ``grid_sample``: per spatial dim, the grid's normalized coordinate becomes a source coordinate by maps that
  are affine piece by piece (unnormalize, then ``border`` clipping or ``reflection``): ``x * m + b`` with the
  slope ``m`` (0 or +-1, torch's ``*_set_grad`` multipliers) and offset ``b`` computed in numpy from the values.
  The sample is then a sum over the corners (bilinear: 2 ** nd; bicubic: 16 taps) of ``gather_map`` (the
  input at the corner, an index map from the floored coordinates) times a weight that is a polynomial, in ad
  ops, of the fractional coordinate: the input's gradient comes from the gathers, the grid's from the weights.
"""

import warnings
from fractions import Fraction

import numpy as np

from ... import cuda as _cuda
from ... import ops
from ...tensor import Tensor

_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. Please "
                  "specify align_corners=True if the old behavior is desired. See the documentation of grid_sample "
                  "for details.")


def _const(arr, like):
    return _cuda.index_tensor(np.ascontiguousarray(arr, dtype=like.dtype), like)


def _torch_dtype_name(dtype):
    return ops._torch_dtype(np.dtype(dtype)).capitalize()


# ---------------------------------------------------------------------------------------------------------
# affine_grid
# ---------------------------------------------------------------------------------------------------------


def _linspace_from_neg_one(steps, align_corners):
    """torch's ``linspace_from_neg_one``: pixel centres in [-1, 1] (corners with ``align_corners``)."""
    if steps <= 1:
        return np.zeros(max(steps, 0))
    grid = np.linspace(-1.0, 1.0, steps)
    return grid if align_corners else grid * (steps - 1) / steps


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of a batch of affine maps ``theta`` (N, 2, 3) or (N, 3, 4) over an output of ``size``
    (N, C, H, W) or (N, C, D, H, W): ``(N, H, W, 2)`` or ``(N, D, H, W, 3)`` normalized ``(x, y[, z])``.

    Raises: ValueError / NotImplementedError as torch (theta not floating point or of the wrong shape, sizes that
    are not 4-D or 5-D or not positive). Warns (UserWarning) when ``align_corners`` is not given, as torch.
    Example: ``F.affine_grid(ad.tensor([[[1.0, 0, 0], [0, 1, 0]]]), [1, 1, 2, 2], align_corners=False)`` is
    the grid of pixel centres ``+-0.5``.
    """
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid(): argument 'theta' (position 1) must be Tensor, not {type(theta).__name__}")
    if theta.dtype.kind != "f":
        raise ValueError(f"Expected theta to have floating point type, but got torch.{theta.dtype.name}")
    size = [int(s) for s in size]
    shape = f"torch.Size({list(theta.shape)})"
    if len(size) == 4:
        if theta.ndim != 3 or theta.shape[-2:] != (2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got {shape}.")
    elif len(size) == 5:
        if theta.ndim != 3 or theta.shape[-2:] != (3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. Got {shape}.")
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation of "
                      "affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    if theta.shape[0] != size[0]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{size[0]}, "
                           f"{len(spatial) + 1}] but got: [{theta.shape[0]}, {len(spatial) + 1}].")
    nd = len(spatial)
    # base[..., i]: the coordinate along spatial dim nd - 1 - i (x along the last dim), then a column of ones
    axes = [_linspace_from_neg_one(s, align_corners) for s in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([mesh[nd - 1 - i] for i in range(nd)] + [np.ones(spatial)], axis=-1).reshape(-1, nd + 1)
    grid = ops.matmul(_const(base, theta), ops.transpose(theta, 1, 2))  # (N, prod(spatial), nd)
    return ops.reshape(grid, (size[0], *spatial, nd))


# ---------------------------------------------------------------------------------------------------------
# grid_sample
# ---------------------------------------------------------------------------------------------------------


# torch's CPU kernels compute the source coordinate in the input's dtype two ways, which differ beyond about 2 ** 53
# (float32: 2 ** 24) where the operations round: 4-D input (a vectorized kernel) with fused multiply-adds and a
# reflection that folds over twice the span; 5-D input (a scalar kernel) with separate operations, a reflection
# whose flips are counted in a 32-bit int (beyond 2 ** 31 flips the count is INT_MIN, even), and a clipping that
# sends NaN to the far border. Each was learned by sampling a ramp image at far coordinates and matches torch 2.13
# there (tests/test_grid_sample_far.py).


def _exact_fma(a, b, c):
    """``a * b + c`` rounded once, to the dtype of ``a`` (numpy scalars), through exact rationals."""
    dtype = a.dtype.type
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return dtype(a * b + c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    info = np.finfo(dtype)
    if abs(exact) >= 2**info.maxexp - Fraction(2) ** (info.maxexp - info.nmant - 2):  # (rounds to infinity)
        return dtype(np.inf if exact > 0 else -np.inf)
    near = float(exact)
    if dtype is np.float64:
        return near
    # float32: of the float32 neighbours of the float64 rounding, the nearest to the exact value (ties to even)
    first = np.float32(near)
    candidates = [first, np.nextafter(first, np.float32(np.inf)), np.nextafter(first, np.float32(-np.inf))]
    finite = [v for v in candidates if np.isfinite(v)]
    return min(finite, key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.int32)) & 1))


def _fma(a, b, c):
    """``a * b + c`` with one rounding (torch's fused multiply-add), elementwise in the dtype of array ``a``;
    ``b`` is a scalar (here a half-integer: its low half is 0, which saves the work), ``c`` a scalar or an array.

    Boldo and Melquiond's emulation: the product split exactly into ``uh + ul`` (Veltkamp / Dekker), ``c + uh``
    into ``th + tl`` (Knuth's two-sum), ``tl + ul`` rounded to odd, then one rounding to nearest of ``th`` plus
    it, which is the correctly rounded result where nothing overflows or underflows; the few finite elements
    outside that range (huge or tiny) go through exact rationals."""
    dtype = a.dtype.type
    b, c = dtype(b), np.asarray(c, a.dtype)
    info = np.finfo(dtype)
    factor = dtype(2.0 ** ((info.nmant + 2) // 2) + 1)

    def split(v):
        t = v * factor
        hi = t - (t - v)
        return hi, v - hi

    def two_sum(x, y):
        s = x + y
        bp = s - x
        return s, (x - (s - bp)) + (y - bp)

    with np.errstate(all="ignore"):
        uh = a * b
        size = np.maximum(np.abs(uh), np.abs(c))
        # finite, no overflow in the split, and an error term above the subnormals (or an exact zero product)
        safe = (size < dtype(2.0 ** (info.maxexp - 40))) & (
            (np.abs(uh) > dtype(2.0 ** (info.minexp + 2 * info.nmant + 4))) | (uh == 0)
        )
        whole = safe.all()
        if not whole:
            kept = np.broadcast_arrays(a, c)
            a, uh, c = np.where(safe, a, 0), np.where(safe, uh, 0), np.where(safe, c, 0)
        ah, al = split(a)
        bh, bl = split(b)
        ul = (ah * bh - uh) + al * bh
        if bl != 0:
            ul = (ul + ah * bl) + al * bl
        th, tl = two_sum(c, uh)
        v, err = two_sum(tl, ul)
        inexact_even = np.flatnonzero((err != 0) & ((v.view(np.int64 if dtype is np.float64 else np.int32) & 1) == 0))
        if inexact_even.size:  # rounded to odd: the neighbour towards the exact sum
            towards = np.where(err.flat[inexact_even] > 0, dtype(np.inf), dtype(-np.inf))
            v.flat[inexact_even] = np.nextafter(v.flat[inexact_even], towards)
        out = th + v
    if not whole:
        a, c = kept
        for i in zip(*np.nonzero(~safe)):
            with np.errstate(all="ignore"):
                out[i] = _exact_fma(a[i], b, c[i]) if np.isfinite(size[i]) else a[i] * b + c[i]
    return out


def _reflect(x, twice_low, twice_high, vectorized):
    """torch's ``reflect_coordinates_set_grad``: ``x`` reflected into [low, high]; returns (value, slope)."""
    if twice_low == twice_high:
        return np.zeros_like(x), np.zeros_like(x)
    dtype = x.dtype.type
    low = dtype(twice_low / 2)
    d = x - low
    sign = np.where(d < 0, -1.0, 1.0)
    d = np.abs(d)
    if vectorized:  # folded over twice the span: the remainder from a fused multiply-add, then the nearer side
        twice_span = dtype(twice_high - twice_low)
        extra = _fma(-np.trunc(d / twice_span), twice_span, d)
        back = twice_span - extra
        ahead = extra <= back
        return np.minimum(extra, back) + low, np.where(ahead, sign, -sign)
    span = dtype((twice_high - twice_low) / 2)
    extra = np.fmod(d, span)
    flips = np.floor(d / span)
    even = (np.fmod(flips, 2) == 0) | ~(np.abs(flips) < 2.0**31)  # (a 32-bit count: INT_MIN beyond, even)
    value = np.where(even, extra + low, span - extra + low)
    return value, np.where(even, sign, -sign)


def _clip(x, size, vectorized):
    """torch's ``clip_coordinates_set_grad``: the borders count as outside (slope 0 there); NaN goes to 0 in
    the vectorized kernel, to ``size - 1`` in the scalar one (as torch's, so that ``border`` and ``reflection``
    samples of a non-finite grid are finite)."""
    inside = (x > 0) & (x < size - 1)
    nan = 0.0 if vectorized else size - 1
    return np.where(inside, x, np.nan_to_num(np.clip(x, 0, size - 1), nan=nan)), inside.astype(np.float64)


def _padded(x, size, padding_mode, align_corners, vectorized):
    """The source coordinate after ``padding_mode`` (``x`` unnormalized, numpy): (value, slope d value / d x)."""
    slope = np.ones_like(x)
    if padding_mode == "reflection":
        twice = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        x, slope = _reflect(x, *twice, vectorized)
    if padding_mode in ("border", "reflection"):
        x, inside = _clip(x, size, vectorized)
        slope = slope * inside
    return x, slope


def _unnormalized(g, size, align_corners, vectorized):
    """torch's ``grid_sampler_unnormalize`` of the grid's values ``g`` (numpy), in their dtype: the source
    coordinate before padding."""
    one = g.dtype.type(1)
    with np.errstate(over="ignore"):  # (a far grid overflows to inf, as torch's)
        return _unnormalized_in(g, one, size, align_corners, vectorized)


def _unnormalized_in(g, one, size, align_corners, vectorized):
    if vectorized:
        if align_corners:
            return (g + one) * g.dtype.type((size - 1) / 2)
        return _fma(g + one, g.dtype.type(size / 2), g.dtype.type(-0.5))
    if align_corners:
        return ((g + one) / 2) * g.dtype.type(size - 1)
    return ((g + one) * g.dtype.type(size) - one) / 2


def _unnormalize_scale(size, align_corners):
    """d x / d g of ``_unnormalized``: pixels per unit of the normalized [-1, 1] grid."""
    return (size - 1) / 2 if align_corners else size / 2


def _cubic_weights(t):
    """The 4 cubic convolution coefficients (A = -0.75, torch's) at fractional offsets ``t`` (ad tensors)."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def _with_zero_slope(values, coords, grid):
    """The constant ``values`` (N, 1, *out) as a function of the grid with derivative 0: exactly ``values`` (the
    grid's NaN and inf included). A nearest sample times them keeps its value while its gradient to the grid is
    zeros rather than unconnected (torch's), in reverse and forward mode and for the input's gradient
    differentiated again."""
    comp = coords[0]
    for c in coords[1:]:
        comp = comp + c
    comp = ops.unsqueeze(comp, 1)
    return ops.where(_cuda.index_tensor(np.ones(comp.shape, bool), grid), _const(values, grid), comp)


def _check_grid_sample(input, grid, mode):  # noqa: A002
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample(): argument '{name}' must be Tensor, not {type(t).__name__}")
    nd = input.ndim - 2
    if grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected {input.ndim}D input and grid with same number of dimensions, but "
                           f"got input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if input.ndim not in (4, 5):
        raise RuntimeError(f"grid_sampler(): expected grid to have size {max(nd, 1)} in last dimension, but got grid "
                           f"with sizes {list(grid.shape)}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.shape[-1] != nd:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {nd} in last dimension, but got grid with "
                           f"sizes {list(grid.shape)}")
    for d in range(2, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
                               f"sizes {list(input.shape)} with dimension {d} being empty")
    if mode == "bicubic" and nd != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    if input.dtype.kind != "f":
        raise NotImplementedError(f"\"grid_sampler_{nd}d_cpu_kernel_impl\" not implemented for "
                                  f"'{_torch_dtype_name(input.dtype)}'")
    if grid.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {_torch_dtype_name(input.dtype)} but found "
                           f"{_torch_dtype_name(grid.dtype)}")


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):  # noqa: A002
    """Samples ``input`` (N, C, H, W) at the normalized ``(x, y)`` of ``grid`` (N, Ho, Wo, 2), or (N, C, D, H, W)
    at the ``(x, y, z)`` of ``grid`` (N, Do, Ho, Wo, 3): ``(N, C, Ho, Wo)`` / ``(N, C, Do, Ho, Wo)``, as torch.

    Args:
        mode: ``"bilinear"`` (trilinear on 5-D input), ``"nearest"`` (ties to even, torch's nearbyint; the grid
            gets a zero gradient, not None, as torch), ``"bicubic"`` (4-D only; cubic convolution with A = -0.75).
        padding_mode: ``"zeros"`` (samples outside read 0), ``"border"`` (coordinates clipped to the edge),
            ``"reflection"`` (coordinates reflected at the border: the edge pixels' centres with
            ``align_corners``, their outer edges without).
        align_corners: -1 and 1 are the centres of the corner pixels (True) or their outer edges (False, the
            default, with torch's warning when not given).
    Raises: ValueError for an unknown mode or padding mode; RuntimeError (torch's messages) for shapes that do not
    fit, an empty spatial dim, bicubic on 5-D input, or a grid of another dtype.
    Example: an identity ``affine_grid`` samples the input back: ``F.grid_sample(x, F.affine_grid(eye, x.shape,
    align_corners=False), align_corners=False)`` equals ``x``.
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', but "
                         f"got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    _check_grid_sample(input, grid, mode)
    n, c, *spatial = input.shape
    nd = len(spatial)
    out_spatial = tuple(grid.shape[1:-1])
    out_shape = (n, c) + out_spatial
    if 0 in out_shape:  # (connected to the grid, whose gradient is then zeros as torch's: an empty product)
        empty = ops.gather_map(input, out_shape, np.zeros(out_shape, np.int64))
        return empty + ops.unsqueeze(ops.sum(grid, -1), 1) * 0.0
    g = _cuda.host_copy(grid._data)  # (the corners' index maps follow from the grid's values)
    vectorized = nd == 2  # (which of torch's CPU kernels: see _fma)
    # per spatial dim d (input dim 2 + d), the grid component nd - 1 - d: its source coordinate, value and slope
    coords, values = [], []
    with np.errstate(invalid="ignore"):  # (a non-finite grid: inf - inf and fmod(inf) are NaN, as in torch)
        for d in range(nd):
            size = spatial[d]
            comp = grid[..., nd - 1 - d]  # (N, *out_spatial)
            scale = _unnormalize_scale(size, align_corners)
            raw = _unnormalized(g[..., nd - 1 - d], size, align_corners, vectorized)
            if mode == "bicubic":  # (bicubic pads each integer tap instead of the coordinate)
                value, slope = raw, np.ones_like(raw)
            else:
                value, slope = _padded(raw, size, padding_mode, align_corners, vectorized)
            # x = (comp - its values) * (scale * slope) + value: exactly the value computed in numpy (an offset
            # added to comp * slope would round it away at far coordinates), the slope torch's gradient multiplier
            slope = scale * slope
            moves = slope != 0
            if moves.all():
                still = comp - _const(g[..., nd - 1 - d], grid)
            else:  # a clipped coordinate is the constant value (a NaN or inf grid entry times slope 0 is no 0)
                zeros = _const(np.zeros(moves.shape), grid)
                still = ops.where(_cuda.index_tensor(moves, grid), comp, zeros) - _const(
                    np.where(moves, g[..., nd - 1 - d], 0), grid
                )
            coords.append(still * _const(slope, grid) + _const(value, grid))
            values.append(value)
    plane = int(np.prod(spatial))
    base = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * nd)  # each (n, c) plane's start
    strides = [int(np.prod(spatial[d + 1:])) for d in range(nd)]

    def integer(coordinate):
        """Whole-numbered float coordinates as int64; a non-finite one (whose cast is undefined) as -2 ** 62, outside
        (a corner above it too, as torch's INT64_MIN)."""
        finite = np.isfinite(coordinate)
        return np.where(finite, np.clip(coordinate, -(2**62), 2**62), -(2**62)).astype(np.int64)

    def tap(positions, link_grid=False, weight=None):
        """``input`` at the integer ``positions`` (one (N, *out) array per dim), 0 outside: (N, C, *out), times
        ``weight`` if given; with ``link_grid``, its 0 / 1 mask of the inside positions depends on the grid with
        derivative 0."""
        inside = np.ones(positions[0].shape, bool)
        flat = np.zeros(positions[0].shape, np.int64)
        for d in range(nd):
            inside &= (positions[d] >= 0) & (positions[d] < spatial[d])
            flat += np.clip(positions[d], 0, spatial[d] - 1) * strides[d]
        index = base + flat[:, None]
        sample = ops.gather_map(input, out_shape, np.broadcast_to(index, out_shape))
        if link_grid:
            return sample * _with_zero_slope(inside[:, None].astype(np.float64), coords, grid)
        if inside.all():
            return sample if weight is None else sample * weight
        # a select, not a product with 0: an outside tap reads a clipped pixel, whose inf must not make the sample
        # NaN, and whose cotangent (times a NaN weight of a non-finite coordinate) must not reach the input
        where_inside = _cuda.index_tensor(inside[:, None], input)
        sample = ops.where(where_inside, sample, 0.0)
        if weight is None:
            return sample
        if vectorized:
            return sample * weight
        return ops.where(where_inside, sample * weight, 0.0)  # (torch's scalar kernel skips it, NaN weight too)

    if mode == "nearest":  # (the grid linked only when something differentiates it: the link costs a product)
        link = ops._recording(grid) or grid._tangents is not None
        return tap([integer(np.rint(v)) for v in values], link_grid=link)
    floors = [np.floor(v) for v in values]
    frac = [ops.unsqueeze(x - _const(f, grid), 1) for x, f in zip(coords, floors)]  # (N, 1, *out), in ad
    if not vectorized:
        # torch's scalar kernel skips every tap of a point with a non-finite coordinate (all outside), NaN weights
        # and their gradients too: its weights are made finite here, and its taps are all selected away
        finite = np.logical_and.reduce([np.isfinite(v) for v in values])
        if not finite.all():
            keep = _cuda.index_tensor(finite[:, None], grid)
            frac = [ops.where(keep, f, 0.0) for f in frac]
    first = [integer(f) for f in floors]
    out = None
    if mode == "bilinear":
        for corner in range(2**nd):
            weight, positions = None, []
            for d in range(nd):
                high = (corner >> (nd - 1 - d)) & 1
                positions.append(first[d] + high)
                w = frac[d] if high else 1.0 - frac[d]
                weight = w if weight is None else weight * w
            term = tap(positions, weight=weight)
            out = term if out is None else out + term
        return out
    # bicubic: 4 x 4 taps around the floor, each tap's integer coordinate padded as torch's get_value_bounded
    wy, wx = _cubic_weights(frac[0]), _cubic_weights(frac[1])
    for i in range(4):
        row = None
        for j in range(4):
            positions = []
            for d, k in ((0, i), (1, j)):
                # in floating point, one addition, as torch's: beyond 2 ** 53 (float32: 2 ** 24) it rounds
                p = floors[d] + floors[d].dtype.type(k - 1)
                if padding_mode != "zeros":
                    with np.errstate(invalid="ignore"):  # (a non-finite tap reflects to NaN and clips to 0, as torch's)
                        # to a pixel as torch's: float64 rounded to the nearest (ties to even), float32 truncated;
                        # beyond 2 ** 52 (float32: 2 ** 23) a tap's reflection can be a half-integer
                        p = _padded(p, spatial[d], padding_mode, align_corners, vectorized)[0]
                        p = np.rint(p) if p.dtype == np.float64 else np.trunc(p)
                positions.append(integer(p))
            term = tap(positions, weight=wx[j])
            row = term if row is None else row + term
        term = row * wy[i]
        out = term if out is None else out + term
    return out
