"""The elementwise op table: how an elementwise op is declared, and the entries of the primitives.

An elementwise unary op is declared with ``elementwise(name, code, np_fn, partial, ...)``: the ``Op`` entry
(see ``ad/ops/__init__.py``) whose rule is ``g * partial(x, out, a0, a1)``, shared by the reverse rule (``g`` a
cotangent) and the forward rule (``g`` a tangent). ``a0``, ``a1`` are the two float attributes a tape row
carries (bounds of clamp, the exponent of ``x ** c``, ...). ``kernels/pointwise.py`` holds the same partials
in scalar form for the compiled sweeps, and ``on_tensors`` runs those very formulas on ``ad`` tensors, so each
derivative is written once. Binary ops give ``vjp(g, x, y, out)`` and ``jvp(tx, ty, x, y, out)``
(``formula_binary``: from the pair of formulas in ``kernels/pointwise.BINARY``).

The family is three modules, imported in this order:
- this one: the declaration helpers (``elementwise``, ``formula_binary``, ``on_tensors``) and the table entries
  COPY ... TANH_BACKWARD with their numpy forwards (``ad/ops/pointwise_ops.py`` declares the newer ones the same
  way);
- ``elementwise_recording.py``: how an elementwise row is recorded (``_unary``, ``_binary`` and their fast
  paths), forward mode through one, and the numpy evaluation of the forward;
- ``elementwise.py``: the public functions (add, mul, pow, clamp, exp, ...).

Start reading at ``elementwise`` and the entries below it. The rules run at call time, when every op exists: the
names they need from later modules (``tanh_backward``) are reached through the package module ``_ops``, which
re-exports them (this module is imported while the package is being initialized, before those are defined).
"""

import math
import types
from math import copysign as _copysign

import numpy as np
import scipy.special

from kernels import cpu as _cpu
from kernels import opcodes as K
from kernels import pointwise as _pw

from .. import ops as _ops
from ..tensor import Tensor, wrap_array
from . import _F64, Op

# ---------------------------------------------------------------------------------------------------------
# declaring an op: the rule from a local partial, the partial from the kernels' formula


def _elementwise_vjp(g, out, inputs, ctx):
    a0, a1 = ctx[:2] if ctx is not None else (0.0, 0.0)
    return (out._op.partial(g, inputs[0], out, a0, a1),)


# --- one source per derivative: the kernels' formulas (kernels/pointwise.py) run on ad tensors --------------
# A formula's code runs with its bare names (cos, exp, step, ...) bound to ad ops instead of scalar math: the
# namespace below, filled at the end of ``ad/ops/pointwise_ops.py`` once every op it names exists.
TENSOR_NAMES = dict(vars(_pw))


def on_tensors(formula):
    """``formula`` of ``kernels/pointwise.py`` as a function of ``ad`` tensors (same code, ad ops for names)."""
    return types.FunctionType(formula.__code__, TENSOR_NAMES, formula.__name__, formula.__defaults__)


def _tensor_step(cond, like):
    if like._dev is not None:
        if not isinstance(cond, Tensor):  # a condition on the attributes alone (a Python bool)
            return _cuda_ops().full(like.shape, 1.0 if cond else 0.0, like._data.dtype, like._dev)
        return _cuda_ops().const(cond, like._data.dtype)
    return _const(cond._data if isinstance(cond, Tensor) else cond, like._data.dtype)


def _tensor_sign(x):
    if x._dev is not None:
        return _cuda_ops().sign_const(x)
    return _const(np.nan_to_num(np.sign(x._data), nan=0.0), x._data.dtype)  # torch: sign(NaN) = 0


TENSOR_NAMES.update(step=_tensor_step, sign=_tensor_sign)

# --- the same formulas on numpy arrays: the big-row sweep of ops whose partial calls libm several times ------
# (the compiled loops call exp, tanh, erf per element, where numpy's loops are vectorized: silu's partial on 1e5
# elements took 1.3 ms in the compiled loop; through its differentiable rule (ad ops, scipy's expit) 0.7 ms)
ARRAY_NAMES = dict(vars(_pw))
ARRAY_PARTIALS = {}  # opcode -> its formula on numpy arrays (``big_rows`` sweeps such rows with it)


def on_arrays(formula):
    """``formula`` of ``kernels/pointwise.py`` as a function of numpy arrays (``ARRAY_NAMES`` for its names)."""
    return types.FunctionType(formula.__code__, ARRAY_NAMES, formula.__name__, formula.__defaults__)



def elementwise(
    name, code, np_fn, partial=None, grad_fn_name=None, sample=(-2.0, 2.0), vector_fn=None, times_partial=None
):
    """Declare an elementwise unary op from its forward ufunc and its local partial ``d(x, out, a0, a1)``
    (by default the op's formula in ``kernels/pointwise.py``, run on tensors: the kernels' own formula).

    The op's rule (``Op.partial``) is ``times_partial(g, x, out, a0, a1) = g * d(x, out, a0, a1)``, shared by
    the reverse rule (``g`` a cotangent) and the forward rule (``g`` a tangent); by default it multiplies by
    ``partial``, and an op whose product has a fused form (tanh) passes that instead: one op fewer to record
    in double backward and in forward-mode through a recorded graph."""
    if partial is None:
        partial = on_tensors(_pw.UNARY[code])
    if times_partial is None and code in _pw.SELECTING_CODES:

        def times_partial(g, x, out, a0, a1):
            return select_times(g, partial(x, out, a0, a1))

    elif times_partial is None:

        def times_partial(g, x, out, a0, a1):
            return g * partial(x, out, a0, a1)

    grad_fn_name = grad_fn_name or (name.capitalize() + "Backward0")
    return Op(name, code, grad_fn_name, _elementwise_vjp, times_partial, np_fn, sample, vector_fn=vector_fn)


def select_times(g, d):
    """``g * d`` for a selecting op (``kernels/pointwise.SELECTING_CODES``): 0 where the partial ``d`` is 0,
    whatever ``g`` is (an inf or NaN cotangent or tangent at a blocked input), as torch's ``cond ? g : 0`` and
    the kernels' ``pointwise.times``; differentiable in ``g``."""
    if not isinstance(d, Tensor):  # a partial that is a number (the piecewise-constant ops: 0)
        if d != 0.0:
            return g * d
        return _ops.where(_ops.zeros_like(g, dtype=np.bool_), g, 0.0)  # (zeros still connected to g: a batch)
    return _ops.where(d != 0.0, g * d, 0.0)


def _terms(*terms):
    """Sum of the non-None terms (None if all are)."""
    total = None
    for t_ in terms:
        if t_ is not None:
            total = t_ if total is None else total + t_
    return total


# ---------------------------------------------------------------------------------------------------------
# unary primitives: forward ufunc + local partial (in ad ops) + opcode


def _trig_forward(code, ufunc):
    """``fn(x, out=None)`` for sin or cos: float64 through the compiled loop of ``kernels/vmath.py`` (numpy's
    float64 sin and cos call scalar libm per element, ~10x slower at every size), other dtypes through numpy
    (its float32 loops are vectorized)."""

    def fn(x, out=None):
        if x.dtype is not _F64:
            return ufunc(x, out=out) if out is not None else ufunc(x)
        if out is None:
            out = np.empty(x.shape, _F64)
        _cpu.trig_forward(code, x if x.ndim == 1 else x.reshape(-1), out if out.ndim == 1 else out.reshape(-1))
        return out

    return fn


def _const(mask_array, dtype):
    return wrap_array(np.asarray(mask_array, dtype=dtype))


def _rsqrt_np(x, out=None):
    r = np.sqrt(x, out=out)
    if out is None:
        r = np.array(r, copy=True)  # a writable array even for 0-d input (numpy returns a scalar then)
    return np.divide(1.0, r, out=r)


def _relu_np(x, out=None):
    return np.maximum(x, 0, out=out) if out is not None else np.maximum(x, 0)


def _square_np(x, out=None):
    return np.multiply(x, x, out=out) if out is not None else np.multiply(x, x)


def _copy_np(x, out=None):
    if out is None:
        return x.copy()
    np.copyto(out, x)
    return out


def _affine_np(x, a, b, out):
    # a*x + b with numpy's rounding of the op it stands for: keep the exact op for the common cases
    # (a small float64 tensor's numbers go in as float64 arrays, the same values: see _as_f64_array).
    # A multiplication has b = -0.0 (pointwise.scale_only: exact), a +0.0 shift is added (x + 0.0 at -0.0 is +0.0)
    f64 = x.dtype is _F64 and x.size <= SCALAR_ARRAY_MAX
    if b == 0.0 and _copysign(1.0, b) < 0.0:
        a = _as_f64_array(a) if f64 else a
        r = np.multiply(x, a, out) if out is not None else np.multiply(x, a)
    elif a == 1.0:
        b = _as_f64_array(b) if f64 else b
        r = np.add(x, b, out) if out is not None else np.add(x, b)
    elif a == -1.0:
        b = _as_f64_array(b) if f64 else b
        r = np.subtract(b, x, out) if out is not None else np.subtract(b, x)
    else:
        r = np.multiply(x, a, out) if out is not None else np.multiply(x, a)
        r += b
    return r


# Python floats of affine rows as 0-d float64 arrays, kept: numpy converts a Python number operand into an array
# at every call, which is half of a small ``x + 1.0``'s ufunc call (a float64 operand beside a float64 tensor
# computes the same as the number does; other dtypes keep the number, whose weak type numpy casts to theirs).
# Only for tensors of up to SCALAR_ARRAY_MAX elements: beyond, the call's fixed cost is noise, and numpy's loops
# for a number operand may beat those for a 0-d array's.
_F64_ARRAYS = {}
SCALAR_ARRAY_MAX = 1024


def _as_f64_array(v):
    """``v`` (a Python float) as a read-only 0-d float64 array, cached; zeros and NaN stay numbers (a cache keyed
    by value would give -0.0 the array of 0.0, and NaN never finds its entry)."""
    if type(v) is not float:
        return v
    arr = _F64_ARRAYS.get(v)
    if arr is None:
        if v == 0.0 or v != v:
            return v
        if len(_F64_ARRAYS) >= 1024:  # (a loop over many distinct numbers: keep the cache small)
            _F64_ARRAYS.clear()
        arr = np.array(v, _F64)
        arr.flags.writeable = False
        _F64_ARRAYS[v] = arr
    return arr


def _pow_scalar_np(x, a, b, out):
    return np.power(x, a, out=out) if out is not None else np.power(x, a)


def _rpow_scalar_np(x, a, b, out):
    return np.power(a, x, out=out) if out is not None else np.power(a, x)


def _rdiv_scalar_np(x, a, b, out):
    return np.divide(a, x, out=out) if out is not None else np.divide(a, x)


def _clamp_np(x, lo, hi, out):
    r = np.array(x, copy=True) if out is None else out
    if out is not None:
        np.copyto(r, x)
    if not math.isnan(lo):
        np.maximum(r, lo, out=r)
    if not math.isnan(hi):
        np.minimum(r, hi, out=r)
    return r


_AFFINE_NAMES = {
    "add": "AddBackward0",
    "sub": "SubBackward0",
    "mul": "MulBackward0",
    "div": "DivBackward0",
    "rsub": "RsubBackward1",
    "neg": "NegBackward0",
}

COPY = elementwise("copy", K.COPY, _copy_np, None, "CloneBackward0", times_partial=lambda g, x, out, a0, a1: g)
NEG = elementwise("neg", K.NEG, np.negative)
ABS = elementwise("abs", K.ABS, np.abs, sample=(0.1, 2.0))
EXP = elementwise("exp", K.EXP, np.exp)
LOG = elementwise("log", K.LOG, np.log, sample=(0.2, 3.0))
LOG1P = elementwise("log1p", K.LOG1P, np.log1p, sample=(-0.5, 2.0))
EXPM1 = elementwise("expm1", K.EXPM1, np.expm1)
SQRT = elementwise("sqrt", K.SQRT, np.sqrt, sample=(0.2, 3.0))
RSQRT = elementwise("rsqrt", K.RSQRT, _rsqrt_np, sample=(0.2, 3.0))
SIN = elementwise("sin", K.SIN, np.sin, vector_fn=_trig_forward(K.SIN, np.sin))
COS = elementwise("cos", K.COS, np.cos, vector_fn=_trig_forward(K.COS, np.cos))
TAN = elementwise("tan", K.TAN, np.tan, sample=(-1.2, 1.2))
# tanh's product g * (1 - out**2) is one fused op (tanh_backward), whose partials are pointwise's too
TANH = elementwise("tanh", K.TANH, np.tanh, times_partial=lambda g, x, out, a0, a1: _ops.tanh_backward(g, out))
SIGMOID = elementwise("sigmoid", K.SIGMOID, scipy.special.expit)
RELU = elementwise("relu", K.RELU, _relu_np, sample=(0.1, 2.0))
ERF = elementwise("erf", K.ERF, scipy.special.erf)
SQUARE = elementwise("square", K.SQUARE, _square_np, None, "PowBackward0")
CLAMP = elementwise("clamp", K.CLAMP, _clamp_np, None, "ClampBackward1")


AFFINE = elementwise(
    "affine",
    K.AFFINE,
    _affine_np,
    None,
    lambda ctx: _AFFINE_NAMES.get(ctx[2] if ctx is not None and len(ctx) > 2 else "mul", "MulBackward0"),
)
POW_SCALAR = elementwise("pow_scalar", K.POW_SCALAR, _pow_scalar_np, None, "PowBackward0", sample=(0.2, 2.0))
RPOW_SCALAR = elementwise("rpow_scalar", K.RPOW_SCALAR, _rpow_scalar_np, None, "PowBackward1")
RDIV_SCALAR = elementwise("rdiv_scalar", K.RDIV_SCALAR, _rdiv_scalar_np, None, "ReciprocalBackward0", sample=(0.3, 2.0))


# ---------------------------------------------------------------------------------------------------------
# binary primitives (same shape after broadcasting by recorded expands)


_extreme_tangent_formula = on_tensors(_pw.extreme_tangent)


def _extreme_tangent(code, tx, ty, x, y):
    """``pointwise.extreme_tangent`` on tensors, a missing tangent as the number 0 (as the kernels: the same
    sums, signed zeros included)."""
    return _extreme_tangent_formula(code, 0.0 if tx is None else tx, 0.0 if ty is None else ty, x, y)


def _times(g, d):
    return g * d


def _binary_vjp(g, out, inputs, ctx):
    x, y = inputs
    return out._op.partial(g, x, y, out)


def _binary_op(name, code, np_fn, vjp_fn, grad_fn_name, jvp, sample=(-2.0, 2.0)):
    """Declare a binary elementwise op: forward ufunc, ``vjp_fn(g, x, y, out)``, ``jvp(tx, ty, x, y, out)``."""
    return Op(name, code, grad_fn_name, _binary_vjp, vjp_fn, np_fn, sample, jvp)


def formula_binary(name, code, np_fn, grad_fn_name, sample=(-2.0, 2.0)):
    """A binary op whose partials are the pair ``kernels/pointwise.BINARY[code]`` (the kernels' formulas),
    run on tensors: the reverse rule ``(g * dx, g * dy)``, the forward rule ``tx * dx + ty * dy``."""
    dx, dy = (on_tensors(f) for f in _pw.BINARY[code])
    times = select_times if code in _pw.SELECTING_CODES else _times  # (the forward rule multiplies: torch's)

    def vjp(g, x, y, out):
        return (times(g, dx(x, y, out)) if x._rg else None, times(g, dy(x, y, out)) if y._rg else None)

    def jvp(tx, ty, x, y, out):
        if code == K.MAXIMUM or code == K.MINIMUM:  # torch's forward rule (differs from the reverse at NaN)
            return _extreme_tangent(code, tx, ty, x, y)
        return _terms(tx * dx(x, y, out) if tx is not None else None, ty * dy(x, y, out) if ty is not None else None)

    return Op(name, code, grad_fn_name, _binary_vjp, vjp, np_fn, sample, jvp)


ADD = _binary_op(
    "add",
    K.ADD,
    np.add,
    lambda g, x, y, out: (g, g),
    "AddBackward0",
    lambda tx, ty, x, y, out: _terms(tx, ty),
)
SUB = _binary_op(
    "sub",
    K.SUB,
    np.subtract,
    lambda g, x, y, out: (g, -g),
    "SubBackward0",
    lambda tx, ty, x, y, out: _terms(tx, -ty if ty is not None else None),
)
MUL = formula_binary("mul", K.MUL, np.multiply, "MulBackward0")
DIV = formula_binary("div", K.DIV, np.divide, "DivBackward0", sample=(0.5, 2.0))
POW = formula_binary("pow", K.POW, np.power, "PowBackward1", sample=(0.3, 2.0))
MAXIMUM = formula_binary("maximum", K.MAXIMUM, np.maximum, "MaximumBackward0")
MINIMUM = formula_binary("minimum", K.MINIMUM, np.minimum, "MinimumBackward0")


def _tanh_backward_np(g, y, out=None):
    """``g * (1 - y * y)``: tanh's local partial (``y = tanh(x)``) applied to a cotangent or tangent."""
    if out is None:
        shape = g.shape if g.shape == y.shape else np.broadcast_shapes(g.shape, y.shape)
        out = np.empty(shape, g.dtype if g.dtype == y.dtype else np.result_type(g, y))
    if y.shape != out.shape:  # (a batch of tangents against one y: the partial once, then broadcast)
        d = np.multiply(y, y)
        np.subtract(1.0, d, out=d)
        return np.multiply(g, d, out=out)
    np.multiply(y, y, out)  # (positional out: numpy's fastest call)
    np.subtract(1.0, out, out)
    return np.multiply(g, out, out)


# torch's tanh_backward: tanh's reverse and forward rules as one op (the same-shape binary kernel partials
# are 1 - y*y and -2*g*y), so that second-order graphs through tanh have one node per tanh instead of three
TANH_BACKWARD = _binary_op(
    "tanh_backward",
    K.TANH_BACKWARD,
    _tanh_backward_np,
    lambda g2, g, y, out: (
        _ops.tanh_backward(g2, y) if g._rg else None,
        g2 * (g * y) * -2.0 if y._rg else None,
    ),
    "TanhBackwardBackward0",
    lambda tg, ty, g, y, out: _terms(
        _ops.tanh_backward(tg, y) if tg is not None else None,
        ty * (g * y) * -2.0 if ty is not None else None,
    ),
)


def _cuda_ops():
    """``ad.cuda.ops`` (imported on first use: it imports numba.cuda), where CUDA tensors' ops run."""
    from ..cuda import ops

    return ops
