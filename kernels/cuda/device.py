"""Device functions of the CUDA kernels: the per-element formulas of ``kernels/pointwise.py`` (the one source of
each value and derivative, shared with the CPU sweep and ``ad``'s differentiable rules) and the offsets of the
``meta`` layouts of ``launch.py``."""

from numba import cuda

from .. import pointwise

unary_value = cuda.jit(device=True)(pointwise.unary_value)
binary_value = cuda.jit(device=True)(pointwise.binary_value)
unary_partial = cuda.jit(device=True)(pointwise.unary_partial)
binary_partial_x = cuda.jit(device=True)(pointwise.binary_partial_x)
binary_partial_y = cuda.jit(device=True)(pointwise.binary_partial_y)
maximum_value = pointwise.maximum_value  # register_jitable: callable from device code as they are
minimum_value = pointwise.minimum_value


@cuda.jit(device=True)
def broadcast_offset(i, meta, k):
    """Offset in operand ``k`` of flat output index ``i`` (the broadcast meta of launch.py)."""
    ndim = meta[0]
    strides = 2 + ndim + k * ndim
    off = 0
    rem = i
    for d in range(ndim - 1, -1, -1):
        extent = meta[2 + d]
        off += (rem % extent) * meta[strides + d]
        rem //= extent
    return off


@cuda.jit(device=True)
def view_offset(i, meta):
    """``base + sum_d i_d * stride_d`` of flat index ``i`` (the strided-view meta of launch.py)."""
    ndim = meta[0]
    off = meta[1]
    rem = i
    for d in range(ndim - 1, -1, -1):
        extent = meta[2 + d]
        off += (rem % extent) * meta[2 + ndim + d]
        rem //= extent
    return off
