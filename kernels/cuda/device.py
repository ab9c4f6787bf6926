"""Device functions of the CUDA kernels: the per-element formulas of ``kernels/pointwise.py`` and
``pointwise_values.py`` (the one source of each value and derivative, shared with the CPU sweep and ``ad``'s
differentiable rules) and the offsets of the ``meta`` layouts of ``launch.py``."""

import math
import types

import numpy as np
from numba import config, cuda

from .. import pointwise, pointwise_values


def _ieee(fn):
    """``fn`` (a numpy ufunc) as the GPU's libm behaves: inf on overflow, NaN off the domain, no exception."""

    def scalar(v):
        with np.errstate(all="ignore"):
            return fn(v)

    return scalar


_MODULES = (pointwise, pointwise_values)  # the partials and the forward values (the latter import the former's helpers)


def simulator_formulas():
    """The namespace of ``pointwise.py`` and ``pointwise_values.py`` with every formula re-made over IEEE
    ``math`` functions, for the simulator: it runs the formulas as Python, where ``math.exp(800.0)`` raises
    OverflowError and ``math.sin(inf)`` ValueError, while the GPU returns inf and NaN, as numpy and the CPU
    kernels do. The same code objects are reused: only the names they call change (one namespace for both
    modules, so a value calling a helper of ``pointwise.py`` gets the re-made helper)."""
    ieee = {name: _ieee(getattr(np, name)) for name in ("exp", "expm1", "sin", "cos", "tan", "sinh", "cosh")}
    ns = {}
    for module in _MODULES:
        ns.update(vars(module))
    ns.update(ieee, math=types.SimpleNamespace(**{**vars(math), **ieee}))
    for module in _MODULES:
        for name, obj in vars(module).items():
            fn = getattr(obj, "py_func", obj)  # register_jitable keeps the Python function as py_func
            if isinstance(fn, types.FunctionType) and fn.__module__ == module.__name__:
                ns[name] = types.FunctionType(fn.__code__, ns, fn.__name__, fn.__defaults__)
    return ns


_formulas = simulator_formulas() if config.ENABLE_CUDASIM else {**vars(pointwise), **vars(pointwise_values)}
unary_value = cuda.jit(device=True)(_formulas["unary_value"])
binary_value = cuda.jit(device=True)(_formulas["binary_value"])
unary_partial = cuda.jit(device=True)(_formulas["unary_partial"])
binary_partial_x = cuda.jit(device=True)(_formulas["binary_partial_x"])
binary_partial_y = cuda.jit(device=True)(_formulas["binary_partial_y"])
maximum_value = _formulas["maximum_value"]  # register_jitable: callable from device code as they are
minimum_value = _formulas["minimum_value"]
selects = _formulas["selects"]
counts_as_extreme = _formulas["counts_as_extreme"]  # amax / amin rows' members (kernels/cpu.group_backward)
extreme_share = _formulas["extreme_share"]
times = _formulas["times"]  # g * d, selecting where torch selects (pointwise.SELECTING_CODES)
extreme_tangent = _formulas["extreme_tangent"]  # maximum / minimum: torch's forward rule


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
def aux_view_offset(i, aux, a):
    """``base + sum_d i_d * stride_d`` of flat index ``i`` for the view ``aux[a:] = [ndim, base, shape, strides]``
    (a GATHER_STRIDED / SCATTER_STRIDED row's aux entries, as ``kernels/cpu.py``'s ``strided_offset``)."""
    ndim = aux[a]
    off = aux[a + 1]
    rem = i
    for d in range(ndim - 1, -1, -1):
        extent = aux[a + 2 + d]
        off += (rem % extent) * aux[a + 2 + ndim + d]
        rem //= extent
    return off


@cuda.jit(device=True)
def broadcast_offsets2(i, meta):
    """``(broadcast_offset(i, meta, 0), broadcast_offset(i, meta, 1))`` from one decomposition of ``i``."""
    ndim = meta[0]
    s0 = 2 + ndim
    s1 = 2 + 2 * ndim
    off0 = 0
    off1 = 0
    rem = i
    for d in range(ndim - 1, -1, -1):
        extent = meta[2 + d]
        q = rem // extent
        r = rem - q * extent
        off0 += r * meta[s0 + d]
        off1 += r * meta[s1 + d]
        rem = q
    return off0, off1


@cuda.jit(device=True)
def view_offset(i, meta):
    """``aux_view_offset`` of a meta array holding one view (the strided-view meta of launch.py)."""
    return aux_view_offset(i, meta, 0)
