"""Strided and index-map gathers and their adjoints (scatter-adds) on the GPU.

- ``gather_strided``: ``out[i] = x[base + sum_d i_d * strides[d]]`` over the C-ordered index ``i`` of
  ``shape``: views, expand (stride 0), permute, slicing, and so copies of non-contiguous views. Its layout is
  the strided-view ``meta`` of ``launch.py``, the same as a ``GATHER_STRIDED`` row's aux entries.
- ``scatter_add_strided``: its transpose, ``out[base + sum_d i_d * strides[d]] += scale * x[i]``. Elements of
  ``out`` hit more than once (stride-0 dims: the adjoint of expand) are owner-computed: a block reduction
  (``reduce.py``) per target element over the stride-0 dims, no atomics; only views whose other dims overlap
  (``as_strided`` tricks) fall back to ``cuda.atomic.add``.
- ``gather_map`` / ``scatter_add_map``: ``out[i] = x[index[i]]`` and ``out[index[i]] += scale * x[i]``
  (integer indexing, gather, index_select; repeated indices are added atomically).
"""

from numba import cuda

from . import launch as L
from . import reduce as R
from .device import view_offset


def gather_strided_kernel(x, out, meta):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = x[view_offset(i, meta)]


def scatter_add_strided_atomic_kernel(x, out, meta, scale):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(out, view_offset(i, meta), scale * x[i])


def gather_map_kernel(x, index, out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = x[index[i]]


def scatter_add_map_kernel(x, index, out, scale):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(out, index[i], scale * x[i])


_FLOATS = ("float32", "float64")
_GATHERED = (*_FLOATS, "int64", "boolean")  # (gathers move any dtype: ad's integer and bool views too)
PTX_KERNELS = [
    (gather_strided_kernel, [f"void({t}[::1], {t}[::1], int64[::1])" for t in _GATHERED]),
    (scatter_add_strided_atomic_kernel, [f"void({t}[::1], {t}[::1], int64[::1], float64)" for t in _FLOATS]),
    (gather_map_kernel, [f"void({t}[::1], int64[::1], {t}[::1])" for t in _GATHERED]),
    (scatter_add_map_kernel, [f"void({t}[::1], int64[::1], {t}[::1], float64)" for t in _FLOATS]),
]

_gather_strided = cuda.jit(cache=True)(gather_strided_kernel)
_scatter_add_strided_atomic = cuda.jit(cache=True)(scatter_add_strided_atomic_kernel)
_gather_map = cuda.jit(cache=True)(gather_map_kernel)
_scatter_add_map = cuda.jit(cache=True)(scatter_add_map_kernel)


def _check_view(buffer, base, shape, strides):
    """ValueError unless every offset of the view lies in ``buffer``."""
    if len(shape) != len(strides):
        raise ValueError(f"shape {tuple(shape)} and strides {tuple(strides)} differ in length")
    if any(s < 0 for s in shape):
        raise ValueError(f"negative extent in shape {tuple(shape)}")
    if 0 in shape:
        return
    lo = base + sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = base + sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    if lo < 0 or hi >= buffer.size:
        raise ValueError(
            f"view (base {base}, shape {tuple(shape)}, strides {tuple(strides)}) reaches offsets {lo}..{hi} "
            f"outside a buffer of {buffer.size} elements"
        )


def _one_dtype(a, b):
    if a.dtype != b.dtype:
        raise TypeError(f"expected arrays of one dtype, got {a.dtype} and {b.dtype}")


def _same_dtype(a, b):
    if a.dtype != b.dtype or a.dtype.kind != "f":
        raise TypeError(f"expected float32 or float64 arrays of one dtype, got {a.dtype} and {b.dtype}")


def gather_strided(x, out, base, shape, strides):
    """``out[i] = x[base + sum_d i_d * strides[d]]`` for each C-ordered index ``i`` of ``shape``.

    Args: ``x``: a flat (1-D, C-contiguous) device array, e.g. a value arena (any dtype); ``out``: a
    C-contiguous device array of ``prod(shape)`` elements, of ``x``'s dtype; ``base``, ``strides``: in elements
    (a stride may be 0 or negative). Raises ValueError if the view reaches outside ``x``.
    """
    x, out = L.flat(x), L.flat(out)
    _one_dtype(x, out)
    shape, strides = [int(s) for s in shape], [int(s) for s in strides]
    _check_view(x, int(base), shape, strides)
    L.check_size("out", out, _prod(shape))
    if out.size:
        _gather_strided[L.flat_grid(out.size)](x, out, L.view_meta(int(base), shape, strides))


def _overlaps(shape, strides):
    """Whether two indices of the view can reach one offset (dims sorted by stride, each must step past all the
    smaller ones together)."""
    span = 0
    for n, s in sorted(((n, abs(s)) for n, s in zip(shape, strides) if n > 1), key=lambda p: p[1]):
        if s <= span:
            return True
        span += (n - 1) * s
    return False


def scatter_add_strided(x, out, base, shape, strides, scale=1.0, chunks=None):
    """``out[base + sum_d i_d * strides[d]] += scale * x[i]`` for each C-ordered index ``i`` of ``shape`` (the
    adjoint of ``gather_strided``).

    Args: ``x``: a C-contiguous device array of ``prod(shape)`` elements; ``out``: a flat device array of
    ``x``'s dtype (e.g. a cotangent arena); ``base``, ``strides`` in elements; ``chunks``: see
    ``reduce.reduce``. Repeated targets (stride 0) are summed by block reductions; overlapping non-zero strides
    use atomics.
    """
    x, out = L.flat(x), L.flat(out)
    _same_dtype(x, out)
    shape, strides, base = [int(s) for s in shape], [int(s) for s in strides], int(base)
    _check_view(out, base, shape, strides)
    L.check_size("x", x, _prod(shape))
    if x.size == 0:
        return
    rdims = [d for d in range(len(shape)) if strides[d] == 0 and shape[d] > 1]
    kdims = [d for d in range(len(shape)) if d not in rdims]
    kept = [strides[d] for d in kdims]
    if any(s < 0 for s in kept) or _overlaps([shape[d] for d in kdims], kept):
        _scatter_add_strided_atomic[L.flat_grid(x.size)](x, out, L.view_meta(base, shape, strides), float(scale))
        return
    own = L.contiguous_strides(shape)
    zk, zr = [0] * len(kdims), [0] * len(rdims)
    kstrides = [[own[d] for d in kdims], zk, zk, kept]
    rstrides = [[own[d] for d in rdims], zr, zr]
    dst = out[base:] if base else out
    R.run_groups(
        R.PLAIN,
        R.SUM,
        0,
        (x, x, x, x),
        [shape[d] for d in kdims],
        kstrides,
        [shape[d] for d in rdims],
        rstrides,
        dst,
        float(scale),
        True,
        chunks,
    )


def _check_index(index, n):
    if index.dtype.kind not in "iu" or index.dtype.itemsize != 8:
        raise TypeError(f"index must be an int64 device array, got {index.dtype}")
    L.check_size("index", index, n)


def gather_map(x, index, out):
    """``out[i] = x[index[i]]``.

    Args: ``x``: a flat device array (any dtype); ``index``: an int64 device array of ``out.size`` indices into
    ``x`` (in ``[0, x.size)``: not checked on the device, the caller validates them as torch does); ``out``: a
    C-contiguous device array of ``x``'s dtype.
    """
    x, index, out = L.flat(x), L.flat(index), L.flat(out)
    _one_dtype(x, out)
    _check_index(index, out.size)
    if out.size:
        _gather_map[L.flat_grid(out.size)](x, index, out)


def scatter_add_map(x, index, out, scale=1.0):
    """``out[index[i]] += scale * x[i]`` (repeated indices add up: ``cuda.atomic.add``).

    Args: ``x``: a C-contiguous float device array; ``index``: an int64 device array of ``x.size`` indices into
    ``out`` (in range: the caller's check); ``out``: a flat device array of ``x``'s dtype.
    """
    x, index, out = L.flat(x), L.flat(index), L.flat(out)
    _same_dtype(x, out)
    _check_index(index, x.size)
    if x.size:
        _scatter_add_map[L.flat_grid(x.size)](x, index, out, float(scale))


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


# --- writes through strided views (ad's CUDA views share their base's storage: ad/cuda/arrays.py) -----------


def assign_strided_kernel(x, out, meta):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[view_offset(i, meta)] = x[i]


PTX_KERNELS.append((assign_strided_kernel, [f"void({t}[::1], {t}[::1], int64[::1])" for t in _GATHERED]))
_assign_strided = cuda.jit(cache=True)(assign_strided_kernel)


def assign_strided(x, out, base, shape, strides):
    """``out[base + sum_d i_d * strides[d]] = x[i]`` for each C-ordered index ``i`` of ``shape`` (the write of
    ``gather_strided``: a view's values stored into its storage).

    Args: ``x``: a C-contiguous device array of ``prod(shape)`` elements; ``out``: a flat device array of
    ``x``'s dtype (the storage); ``base``, ``strides`` in elements. The view must not overlap itself (two
    indices reaching one offset would race): ValueError.
    """
    x, out = L.flat(x), L.flat(out)
    _one_dtype(x, out)
    shape, strides, base = [int(s) for s in shape], [int(s) for s in strides], int(base)
    _check_view(out, base, shape, strides)
    L.check_size("x", x, _prod(shape))
    if _overlaps(shape, strides):
        raise ValueError(f"view (shape {tuple(shape)}, strides {tuple(strides)}) overlaps itself: cannot assign")
    if x.size:
        _assign_strided[L.flat_grid(x.size)](x, out, L.view_meta(base, shape, strides))
