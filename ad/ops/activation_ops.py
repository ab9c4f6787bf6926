"""The activations recorded as one elementwise row each (issue 19): silu, gelu, mish, elu (selu), celu.

Declared as the other unary primitives (``elementwise_table.elementwise``): an opcode of
``kernels/opcodes.py``'s third unary range, a numpy forward, and the partial ``d(x, out, a0, a1)`` of
``kernels/pointwise.py`` (``d_silu`` ...), which the kernels compile and ``on_tensors`` runs on ``ad`` tensors
for the differentiable rules (create_graph, forward mode). As composites these cost several rows each way, and
an infinite cotangent met ``0 * inf`` inside their chains (NaN where torch's fused rule gives +-inf); the
partials read ``x`` only, as torch's nodes save ``self``.

Attributes: gelu's ``a0`` is 0 for ``approximate='none'`` and 1 for ``'tanh'``; elu's ``a0``, ``a1`` are alpha
and scale (selu is elu with its constants); celu's ``a0`` is alpha. The public functions are
``ad.nn.functional``'s (``ad/nn/functional/activation.py``).
"""

import numpy as np
import scipy.special

from kernels import opcodes as K
from kernels import pointwise as _pw
from kernels.cpu import gelu_partial_from_output

from .. import ops as _ops
from .elementwise_table import ARRAY_NAMES, ARRAY_PARTIALS, TENSOR_NAMES, elementwise, on_arrays


def _result(x, out):
    return np.empty(x.shape, x.dtype) if out is None else out


def _silu_np(x, a0, a1, out=None):
    """``x / (1 + exp(-x))``, torch's form: where ``exp(-x)`` overflows (below -709, or -88 in float32) the
    result is a signed zero, and NaN at -inf."""
    r = np.negative(x, out=_result(x, out))
    with np.errstate(over="ignore", invalid="ignore"):
        np.exp(r, out=r)
        r += 1.0
        return np.divide(x, r, out=r)


def _gelu_np(x, approximate, a1, out=None):
    r = _result(x, out)
    if approximate == 0.0:  # x * 0.5 * (1 + erf(x / sqrt(2)))
        np.multiply(x, _pw.SQRT1_2, out=r)
        scipy.special.erf(r, out=r)
    else:  # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
        np.multiply(x, x, out=r)
        r *= x
        r *= _pw.GELU_CUBIC
        r += x
        r *= _pw.SQRT_2_OVER_PI
        np.tanh(r, out=r)
    r += 1.0
    r *= x
    r *= 0.5
    return r


def _mish_np(x, a0, a1, out=None):
    r = np.tanh(_array_softplus(x), out=_result(x, out))
    return np.multiply(r, x, out=r)


def _elu_np(x, alpha, scale, input_scale, out):
    """``scale * x`` where ``x > 0``, else ``scale * alpha * expm1(input_scale * x)`` (NaN takes the second)."""
    r = np.minimum(x, 0.0, out=_result(x, out))  # (exp's argument stops at 0: no overflow on the side not taken)
    if input_scale != 1.0:
        r *= input_scale
    np.expm1(r, out=r)
    r *= scale * alpha
    positive = x > 0.0
    np.copyto(r, x * scale if scale != 1.0 else x, where=positive)
    return r


def _elu_forward(x, alpha, scale, out=None):
    return _elu_np(x, alpha, scale, 1.0, out)


def _celu_forward(x, alpha, a1, out=None):
    return _elu_np(x, alpha, 1.0, 1.0 / alpha, out)


SILU = elementwise("silu", K.SILU, _silu_np)
GELU = elementwise("gelu", K.GELU, _gelu_np)
MISH = elementwise("mish", K.MISH, _mish_np)
ELU = elementwise("elu", K.ELU, _elu_forward)
CELU = elementwise("celu", K.CELU, _celu_forward, sample=(-2.0, 2.0))


def _tensor_select(cond, a, b):
    return _ops.where(cond, a, b)


def _tensor_softplus(x):
    linear = x > _pw.SOFTPLUS_LINEAR
    return _ops.where(linear, x, _ops.log1p(_ops.exp(_ops.where(linear, 0.0, x))))


# the bare names of kernels/pointwise.py's formulas used by these partials (see elementwise_table.on_tensors;
# looked up at call time: this module may be imported before the ops they name)
TENSOR_NAMES.update(
    select=_tensor_select,
    sigmoid=lambda v: _ops.sigmoid(v),
    tanh=lambda v: _ops.tanh(v),
    erf=lambda v: _ops.erf(v),
    softplus=_tensor_softplus,
)


def _array_sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))  # (inf below -709: 0, as the scalar form; the caller ignores the overflow)


def _array_softplus(v):
    return np.where(v > _pw.SOFTPLUS_LINEAR, v, np.log1p(np.exp(np.minimum(v, _pw.SOFTPLUS_LINEAR))))


# ... and on numpy arrays, for big rows (elementwise_table.ARRAY_PARTIALS): numpy's vectorized exp and tanh
ARRAY_NAMES.update(
    select=np.where, sigmoid=_array_sigmoid, softplus=_array_softplus, exp=np.exp, tanh=np.tanh, erf=scipy.special.erf
)
for _op in (SILU, GELU, MISH, ELU, CELU):
    ARRAY_PARTIALS[_op.code] = on_arrays(_pw.UNARY[_op.code])
_gelu_array = ARRAY_PARTIALS[K.GELU]


def _gelu_array_partial(x, out, approximate, a1):
    """gelu's partial on arrays, ``Phi(x)`` read from the output as ``out / x`` while the output is intact (the
    sweep passes ``out`` None once it was written in place: torch's node saves x only, so that is no error, and
    Phi is recomputed from x): scipy's erf, a second time in backward, cost as much as the rest of gelu's
    forward and backward. Equal to ``pointwise.d_gelu`` within rounding (tests/test_activation_rows.py)."""
    if out is None or approximate != 0.0:
        return _gelu_array(x, out, approximate, a1)
    if x.dtype == np.float64 and out.dtype == np.float64:  # (one compiled loop: kernels.cpu's docstring says why)
        d = np.empty_like(x)
        gelu_partial_from_output(x, out, d)
        return d
    d = np.multiply(x, x)  # (in place from here: each pass of a big row is memory traffic)
    d *= -0.5
    np.exp(d, out=d)
    d *= x
    d *= _pw.INV_SQRT_2PI  # x phi(x)
    cdf = np.divide(out, x)
    np.copyto(cdf, 0.5, where=np.abs(x) < 1e-290)  # (0, and where out would be subnormal: Phi is 0.5 there)
    d += cdf
    return d


ARRAY_PARTIALS[K.GELU] = _gelu_array_partial
