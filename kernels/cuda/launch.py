"""Host-side helpers of the CUDA kernels: device arrays, launch sizes, and the int64 ``meta`` arrays.

Kernels take shapes and strides (in elements) as one small int64 device array, ``meta``, with one of these
layouts:

- broadcast (``broadcast_meta``): ``[ndim, nops, shape[0..ndim), strides of operand 0, strides of operand 1,
  ...]``: flat index ``i`` of the C-ordered output of ``shape`` reads operand ``k`` at
  ``sum_d i_d * strides_k[d]`` (0 on a broadcast dim).
- strided view (``view_meta``): ``[ndim, base, shape[0..ndim), strides[0..ndim)]``: flat index ``i`` maps
  to ``base + sum_d i_d * strides[d]``; the layout of a ``GATHER_STRIDED`` row's aux entries (kernels/cpu.py).
- group reduction (``reduce.group_meta``): see ``kernels/cuda/reduce.py``.
"""

import functools
import math

import numpy as np
from numba import config, cuda

# Threads of a block: the shared arrays of block reductions hold BLOCK entries. The simulator runs every
# thread as a Python thread (~75 us each), so it gets few threads and grid-stride loops do the rest.
BLOCK = 128
SIMULATOR = bool(config.ENABLE_CUDASIM)
FLAT_THREADS = 32 if SIMULATOR else 256
MAX_BLOCKS = 1 if SIMULATOR else 65535


def device_array(a):
    """``a`` as a numba device array: itself, or a zero-copy view of an object with
    ``__cuda_array_interface__`` (CuPy, torch)."""
    if hasattr(a, "copy_to_host"):  # numba's (or the simulator's) device array
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return cuda.as_cuda_array(a)
    raise TypeError(f"expected a CUDA device array (with __cuda_array_interface__), got {type(a).__name__}")


def interface(a):
    """``a``'s ``__cuda_array_interface__`` as consumers (CuPy, torch) must read it. numba's own calls an array
    C-contiguous (``strides: None``) when only its broadcast (stride 0) dimensions break contiguity: its
    ``is_contiguous`` skips them, so a consumer reads an expanded view as dense memory, past the end of the
    buffer (found on the first real GPU run: a batched ``linalg.solve`` with a broadcast right-hand side)."""
    cai = a.__cuda_array_interface__
    if cai["strides"] is None and any(n > 1 and s == 0 for n, s in zip(a.shape, a.strides)):
        cai = dict(cai, strides=tuple(a.strides))
    return cai


def flat(a):
    """A C-contiguous device array as 1-D (a view)."""
    a = device_array(a)
    if a.ndim == 1:
        return a
    if a.size and not a.is_c_contiguous():
        raise ValueError("expected a C-contiguous device array; gather_strided copies a view into one")
    return a.reshape(a.size)


def flat_grid(n, threads=None):
    """``(blocks, threads)`` for a grid-stride loop over ``n`` elements."""
    threads = threads or FLAT_THREADS
    if SIMULATOR:
        threads = max(1, min(threads, n))  # every simulated thread costs ~75 us, idle ones too
    return max(1, min(MAX_BLOCKS, math.ceil(n / threads))), threads


def pow2_at_least(n, cap=BLOCK):
    """The smallest power of two >= ``n``, at most ``cap`` (threads of a block reduction)."""
    t = 1
    while t < n and t < cap:
        t *= 2
    return t


def contiguous_strides(shape):
    """Element strides of a C-contiguous array of ``shape``."""
    strides = [0] * len(shape)
    step = 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = step
        step *= shape[d]
    return strides


def broadcast_shape(*shapes):
    """numpy's broadcast of ``shapes``; ValueError naming them if they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast") from None


def broadcast_strides(shape, out_shape):
    """Element strides reading a C-contiguous operand of ``shape`` at each index of ``out_shape`` (numpy's
    broadcasting: leading dims added, 0 on dims where the operand has extent 1)."""
    lead = len(out_shape) - len(shape)
    own = contiguous_strides(shape)
    strides = [0] * len(out_shape)
    for d in range(len(shape)):
        if shape[d] != 1:
            strides[lead + d] = own[d]
    return strides


def to_meta(values):
    """An int64 device array of ``values`` (shapes and strides for a kernel), kept for the next call with the
    same values: kernels only read it, and a host-to-device copy per launch would cost more than the launch."""
    return _meta(tuple(int(v) for v in values))


@functools.lru_cache(maxsize=4096)
def _meta(values):
    return cuda.to_device(np.asarray(values, dtype=np.int64))


def broadcast_meta(out_shape, operand_shapes):
    """The broadcast ``meta`` (see the module docstring) of operands of ``operand_shapes`` read at each index
    of ``out_shape``; dims of extent 1 are dropped (they index nothing) and neighbours contiguous in every
    operand merged (fewer divisions per element)."""
    strides = [broadcast_strides(s, out_shape) for s in operand_shapes]
    shape, merged = [], [[] for _ in strides]
    for d in range(len(out_shape)):
        if out_shape[d] == 1:
            continue
        if shape and all(m[-1] == st[d] * out_shape[d] for m, st in zip(merged, strides)):
            shape[-1] *= out_shape[d]  # contiguous with the previous dim in every operand: one dim
            for m, st in zip(merged, strides):
                m[-1] = st[d]
        else:
            shape.append(out_shape[d])
            for m, st in zip(merged, strides):
                m.append(st[d])
    meta = [len(shape), len(operand_shapes), *shape]
    for m in merged:
        meta += m
    return to_meta(meta)


def view_meta(base, shape, strides):
    """The strided-view ``meta``: ``[ndim, base, shape, strides]``."""
    if len(shape) != len(strides):
        raise ValueError(f"shape {tuple(shape)} and strides {tuple(strides)} differ in length")
    return to_meta([len(shape), base, *shape, *strides])


def check_size(name, a, n):
    if a.size != n:
        raise ValueError(f"{name} has {a.size} elements, expected {n}")
