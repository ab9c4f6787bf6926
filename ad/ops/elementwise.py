"""Elementwise ops of the op table: unary ops (a forward ufunc and a local partial) and binary ops (same shape
after broadcasting by recorded ``expand`` rows), with the fast recording paths every elementwise op takes.

An elementwise unary op is declared with ``elementwise(name, code, np_fn, partial, ...)``: the ``Op`` entry
(see ``ad/ops/__init__.py``) whose rule is ``g * partial(x, out, a0, a1)``, shared by the reverse rule (``g`` a
cotangent) and the forward rule (``g`` a tangent). ``a0``, ``a1`` are the two float attributes a tape row
carries (bounds of clamp, the exponent of ``x ** c``, ...). ``kernels/pointwise.py`` holds the same partials
in scalar form for the compiled sweeps. Binary ops give ``vjp(g, x, y, out)`` and ``jvp(tx, ty, x, y, out)``.

Start reading at ``_unary`` and ``_binary``. Names of the structural ops (``expand``, ``where``, ...) are
reached through the package module ``_ops`` at call time: the package imports this module while it is
being initialized, before those are defined.
"""

import math
import numbers
import types

import numpy as np
import scipy.special

from kernels import cpu as _cpu
from kernels import opcodes as K
from kernels import pointwise as _pw

from .. import forward as _forward
from .. import ops as _ops
from .. import parallel
from .. import views as _views
from ..forward import _fw
from ..grad_mode import _grad_state
from ..parallel import PARALLEL_MIN
from ..tape import _FIELD, _ROW_SHIFT, _VERSION_SHIFT, BIG_ROW
from ..tape import _state as _tape_state
from ..tensor import Tensor, _new, wrap_array
from . import (
    _F64,
    VECTOR_MIN,
    Op,
    _broadcast_shape,
    _result,
    _tape_for,
    as_tensor_operand,
    linear_op,
)
from .out import write_result

# ---------------------------------------------------------------------------------------------------------
# elementwise unary ops: forward ufunc + local partial (in ad ops) + opcode


def _unary(op, x, a0=0.0, a1=0.0, ctx=None, dual=True):
    if dual and x._tangents is not None and _fw.levels:
        out = _dual_unary(op, x, a0, a1, ctx)
        if out is not None:
            return out
    if x._dev is not None:
        return _cuda_ops().unary(op, x, a0, a1, ctx)
    xd = x._data
    if not (x._rg and _grad_state.enabled):
        return wrap_array(_unary_np(op, xd, a0, a1))
    n = xd.size
    xtape = x._tape
    tape = _tape_state.current.get(xd.dtype)
    if tape is None or tape.used + 2 * n + 2 > tape.capacity or (xtape is not None and xtape.id > tape.id):
        tape = _tape_for(xd.dtype, 2 * n + 2, x)  # room for the result and, if imported, the operand
    off = tape.used  # tape.alloc(n), inlined: this is the forward pass's hottest path
    tape.used = off + (n or 1)
    view = tape.values[off : off + n]
    if xd.ndim != 1:
        view = view.reshape(xd.shape)
    if op.plain and n < PARALLEL_MIN and (op.vector_fn is None or n < VECTOR_MIN):
        op.np_fn(xd, view)
    elif op is COPY and n < PARALLEL_MIN:
        np.copyto(view, xd)  # (clone, and make_dual's row: _copy_np without the two calls that lead to it)
    else:
        _unary_np(op, xd, a0, a1, view)
    if xtape is tape:
        xoff = x._off
        xrow = x._row
    else:
        xoff, xrow = tape.import_tensor(x, True)
    row = tape.nrows
    if row >= tape.row_cap:
        tape.grow()
    tape.pack(tape.rows, row * 80, op.code | K.XRG, off, xoff, -1, n, 0, xrow, -1, a0, a1)
    tape.nrows = row + 1
    t = _new(Tensor)
    t._data = view
    t._rg = True
    t._op = op
    t._in0 = x
    if ctx is not None:
        t._ctx = ctx
    elif a0 != 0.0 or a1 != 0.0:
        t._ctx = (a0, a1)
    t._tape = tape
    t._off = off
    t._row = row
    if n >= BIG_ROW:
        tape.mark_vectorized(row, t)  # swept with numpy's vectorized ufuncs (see tape.BIG_ROW)
    return t


def _dual_unary(op, x, a0, a1, ctx):
    """Forward mode through an elementwise unary op: ``t * d(x, out)``; None if ``x`` has no visible tangent."""
    # (CUDA: the rule's ad ops, on the device; an operand being recorded: compiled_level says None, uncalled)
    level = _forward.compiled_level(x) if x._dev is None and not (x._rg and _grad_state.enabled) else None
    if level is not None:
        return _compiled_jvp_unary(op, x, a0, a1, level)
    active = _fw.levels
    if len(active) == 1 and not _fw.hidden:  # (visible_levels_of for one active level: the usual case)
        levels = active if active[0] in x._tangents else ()
    else:
        levels = _forward.visible_levels_of(x)
    if not levels:
        return None
    if len(levels) == 1:
        # (apply_dual's one-level case, inlined: a recorded graph through a dual level, as in forward over
        # reverse, takes this path for every elementwise op)
        level = levels[0]
        out = _unary(op, x, a0, a1, ctx, False)
        prev = _fw.hidden  # (``with _forward.hide(levels)``, inlined: three Python calls per op)
        _fw.hidden = prev | frozenset(levels)
        try:
            tangent = op.partial(x._tangents[level], x, out, a0, a1)
        finally:
            _fw.hidden = prev
        _forward.set_tangent(out, level, tangent)
        return out
    rule = lambda tan, base: op.partial(tan(x), x, base, a0, a1)  # noqa: E731
    # (the partial broadcasts against a batched tangent: the same rule serves a batch)
    return _forward.apply_dual(lambda: _unary(op, x, a0, a1, ctx, False), rule, (x,), levels, rule)


def _compiled_jvp_unary(op, x, a0, a1, level):
    """The hot path of a JVP (see forward.compiled_level): the primal as without forward mode, the tangent
    by the compiled partial (the reverse sweep's formula), no tape and no Python rule."""
    xd = x._data
    if xd.dtype.kind != "f":
        xd = xd.astype(np.float64)
    n = xd.size
    if n >= PARALLEL_MIN:
        out_data = _unary_np(op, xd, a0, a1)
    elif op.plain and (op.vector_fn is None or n < VECTOR_MIN):
        out_data = op.np_fn(xd)
    else:
        out_data = _unary_np_serial(op, xd, a0, a1)
    if type(out_data) is not np.ndarray:
        out_data = np.asarray(out_data)  # a numpy scalar for 0-d input
    dt = out_data.dtype
    res = np.empty(out_data.shape, dt)
    t = x._tangents[level]._data
    if out_data.ndim == 1 and t.ndim == 1 and (t.dtype is dt or t.dtype == dt):
        xf, of, rf = xd, out_data, res  # (1-D views need not be contiguous: numba takes strided arrays)
    else:
        t = _flat(t, dt)
        xf = _flat(xd, dt)
        of = out_data.reshape(-1)
        rf = res.reshape(-1)
    code = op.code
    if n >= PARALLEL_MIN:
        parallel.run(n, lambda lo, hi: _cpu.jvp_unary(code, xf[lo:hi], of[lo:hi], t[lo:hi], rf[lo:hi], a0, a1))
    else:
        _cpu.jvp_unary(code, xf, of, t, rf, a0, a1)
    return _dual_result(out_data, level, res)


def _dual_result(data, level, tangent_data):
    """A new tensor holding ``data``, with tangent ``tangent_data`` at ``level`` (the compiled JVPs' result)."""
    out = _new(Tensor)
    out._data = data
    tangent = _new(Tensor)
    tangent._data = tangent_data
    _forward.set_tangent(out, level, tangent)
    return out


def _flat(a, dtype):
    """``a`` as a flat contiguous array of ``dtype`` (itself when it is one already)."""
    if a.ndim == 1 and (a.dtype is dtype or a.dtype == dtype) and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _unary_np(op, xd, a0, a1, out=None):
    if xd.dtype.kind != "f":
        integral = _INTEGRAL.get(op.code)
        if integral is not None:  # neg, abs, relu, square keep an integer dtype (and refuse bool) as torch's
            return integral(xd)
        xd = xd.astype(np.float64)
    if xd.size >= PARALLEL_MIN:
        # one chunk per core: numpy releases the GIL in its loops
        if out is None:
            out = np.empty(xd.shape, xd.dtype)
        xf = xd.reshape(-1)
        of = out.reshape(-1)
        parallel.run(xf.size, lambda lo, hi: _unary_np_serial(op, xf[lo:hi], a0, a1, of[lo:hi]))
        return out
    return _unary_np_serial(op, xd, a0, a1, out)


# forward fn(x, a0, a1, out)
_ATTR_CODES = (
    K.AFFINE,
    K.POW_SCALAR,
    K.RPOW_SCALAR,
    K.RDIV_SCALAR,
    K.CLAMP,
    K.LOGIT,
    K.STEP_FN,
)  # forward fn(x, a0, a1, out)


def _unary_np_serial(op, xd, a0, a1, out=None):
    if op.vector_fn is not None and xd.size >= VECTOR_MIN:
        return op.vector_fn(xd, out)
    fn = op.np_fn
    if op.code in _ATTR_CODES:
        return fn(xd, a0, a1, out)
    return fn(xd, out=out) if out is not None else fn(xd)


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
    if times_partial is None:

        def times_partial(g, x, out, a0, a1):
            return g * partial(x, out, a0, a1)

    grad_fn_name = grad_fn_name or (name.capitalize() + "Backward0")
    return Op(name, code, grad_fn_name, _elementwise_vjp, times_partial, np_fn, sample, vector_fn=vector_fn)


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
    if b == 0.0:
        r = np.multiply(x, a, out=out) if out is not None else np.multiply(x, a)
    elif a == 1.0:
        r = np.add(x, b, out=out) if out is not None else np.add(x, b)
    elif a == -1.0:
        r = np.subtract(b, x, out=out) if out is not None else np.subtract(b, x)
    else:
        r = np.multiply(x, a, out=out) if out is not None else np.multiply(x, a)
        r += b
    return r


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


def _sign_const(x):
    if x._dev is not None:
        return _cuda_ops().sign_const(x)
    return _const(np.nan_to_num(np.sign(x._data), nan=0.0), x._data.dtype)  # torch: sign(NaN) = 0


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
TANH = elementwise("tanh", K.TANH, np.tanh, times_partial=lambda g, x, out, a0, a1: tanh_backward(g, out))
SIGMOID = elementwise("sigmoid", K.SIGMOID, scipy.special.expit)
RELU = elementwise("relu", K.RELU, _relu_np, sample=(0.1, 2.0))
ERF = elementwise("erf", K.ERF, scipy.special.erf)
SQUARE = elementwise("square", K.SQUARE, _square_np, None, "PowBackward0")
CLAMP = elementwise("clamp", K.CLAMP, _clamp_np, None, "ClampBackward1")


def _no_bool(fn, error):
    def integral(xd):
        if xd.dtype.kind == "b":
            raise error
        return fn(xd)

    return integral


_NEG_BOOL = (
    "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the "
    "`~` or `logical_not()` operator instead."
)
# integer and bool inputs of the ops whose torch result keeps the input's integer or bool dtype (the others compute in
# float64, numpy's promotion)
_INTEGRAL = {
    K.COPY: np.copy,  # (``Tensor.clone()``, ``.contiguous()``)
    K.NEG: _no_bool(np.negative, RuntimeError(_NEG_BOOL)),
    K.ABS: _no_bool(np.abs, NotImplementedError('"abs_cpu" not implemented for \'Bool\'')),
    K.RELU: _no_bool(lambda xd: np.maximum(xd, 0), RuntimeError("Boolean inputs not supported for relu")),
    K.SQUARE: lambda xd: np.square(xd.astype(np.int64) if xd.dtype.kind == "b" else xd),
}
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


def affine(x, a, b, kind="mul"):
    """``a * x + b`` for Python scalars ``a``, ``b`` (the scalar forms of + - * /)."""
    if x._dev is None and x._data.dtype.kind in "biu" and isinstance(a if kind == "mul" else b, numbers.Integral):
        # an integer tensor with an integer: integer arithmetic in the tensor's dtype (torch's and numpy's rule),
        # not a float result
        d = x._data
        return wrap_array(np.asarray(d * a if kind == "mul" else b - d if kind == "rsub" else d + b))
    a = float(a)
    b = float(b)
    return _affine_fast(x, a0=a, a1=b, ctx=(a, b, kind))


# ---------------------------------------------------------------------------------------------------------
# elementwise binary ops (same shape after broadcasting by recorded expands)


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

    def vjp(g, x, y, out):
        return (g * dx(x, y, out) if x._rg else None, g * dy(x, y, out) if y._rg else None)

    def jvp(tx, ty, x, y, out):
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
        tanh_backward(g2, y) if g._rg else None,
        g2 * (g * y) * -2.0 if y._rg else None,
    ),
    "TanhBackwardBackward0",
    lambda tg, ty, g, y, out: _terms(
        tanh_backward(tg, y) if tg is not None else None,
        ty * (g * y) * -2.0 if ty is not None else None,
    ),
)


def _integer_operands(op, xd, yd):
    """``op`` of two integer or bool arrays: integer ops stay integer; float-valued ones (atan2, hypot, ...)
    give float64, ad's rule for integer inputs, where numpy would pick float16 or float32 for small integer
    types."""
    out = np.asarray(op.np_fn(xd, yd))
    if out.dtype.kind == "f" and out.dtype != np.float64:
        out = np.asarray(op.np_fn(xd.astype(np.float64), yd.astype(np.float64)))
    return out


def _binary(op, x, y, dual=True):
    """Elementwise ``op(x, y)`` for tensors (scalars are turned into ``affine`` rows by the callers)."""
    if dual and (x._tangents is not None or y._tangents is not None) and _fw.levels:
        out = _dual_binary(op, x, y)
        if out is not None:
            return out
    if x._dev is not None or y._dev is not None:
        return _cuda_ops().binary(op, x, y)
    xd = x._data
    yd = y._data
    if not (_grad_state.enabled and (x._rg or y._rg)):
        if op is SUB and (xd.dtype.kind == "b" or yd.dtype.kind == "b"):
            raise RuntimeError(_SUB_BOOL)
        if xd.shape != yd.shape:
            _broadcast_shape(xd.shape, yd.shape)  # torch's error message for incompatible shapes
        if xd.dtype.kind not in "fc" and yd.dtype.kind not in "fc":
            return wrap_array(_integer_operands(op, xd, yd))
        if xd.shape == yd.shape and xd.size >= PARALLEL_MIN:
            return wrap_array(_binary_np(op, xd, yd, np.empty(xd.shape, np.result_type(xd, yd))))
        return wrap_array(np.asarray(op.np_fn(xd, yd)))
    shape = xd.shape
    dt = xd.dtype
    if shape != yd.shape or dt is not yd.dtype:
        shape = _broadcast_shape(xd.shape, yd.shape)
        dt = np.result_type(xd, yd)
        if dt.kind != "f":
            dt = np.dtype(np.float64)
        if xd.shape != shape:
            x = _ops.expand(x, shape) if x._rg else _views.broadcast_constant(x, shape)
        if yd.shape != shape:
            y = _ops.expand(y, shape) if y._rg else _views.broadcast_constant(y, shape)
        xd = x._data
        yd = y._data
    n = xd.size
    xtape = x._tape
    ytape = y._tape
    tape = _tape_state.current.get(dt)
    if (
        tape is None
        or tape.used + 3 * n + 3 > tape.capacity
        or (xtape is not None and xtape.id > tape.id)
        or (ytape is not None and ytape.id > tape.id)
    ):
        tape = _tape_for(dt, 3 * n + 2, x, y)
    off = tape.used  # tape.alloc(n), inlined
    tape.used = off + (n or 1)
    view = tape.values[off : off + n]
    if len(shape) != 1:
        view = view.reshape(shape)
    if n >= PARALLEL_MIN:
        _binary_np(op, xd, yd, view)
    elif op.code < K.MAXIMUM:
        op.np_fn(xd, yd, view)  # positional out: numpy's fastest call
    else:
        op.np_fn(xd, yd, out=view)  # np.maximum / np.minimum deprecate a positional out
    if xtape is tape:
        xoff = x._off
        xrow = x._row
    else:
        xoff, xrow = tape.import_tensor(x, x._rg)
    if ytape is tape:
        yoff = y._off
        yrow = y._row
    else:
        yoff, yrow = tape.import_tensor(y, y._rg)
    code = op.code | (K.XRG if x._rg else 0) | (K.YRG if y._rg else 0)
    row = tape.nrows
    if row >= tape.row_cap:
        tape.grow()
    tape.pack(tape.rows, row * 80, code, off, xoff, yoff, n, 0, xrow, yrow, 0.0, 0.0)
    tape.nrows = row + 1
    t = _new(Tensor)
    t._data = view
    t._rg = True
    t._op = op
    t._in0 = x
    t._in1 = y
    t._tape = tape
    t._off = off
    t._row = row
    if n >= BIG_ROW:
        tape.mark_vectorized(row, t)
    return t


def _fast_binary(op):
    """(Repeats the recording tail of ``_binary`` on purpose, as ``_fast_unary`` does for ``_unary``: one call
    frame and the generic checks are ~15% of a small op's forward cost, which is the W1 bar.)

    The hot path of a same-shape binary op on this thread's current tape, nothing dual, small: each operand
    recorded there, or a leaf or constant (imported there now, or already: ``_import_slot``); else the
    generic ``_binary``, which records the same row. Leaves times constants are the many-leaf graph's op
    (W6), results times constants the chain's (W1)."""
    np_fn = op.np_fn
    base_code = op.code

    def fast(x, y):
        if x._tangents is None and y._tangents is None:
            xd = x._data
            yd = y._data
            tape = x._tape
            if tape is None:  # a leaf or constant: the current tape of its dtype, if either requires grad
                tape = _tape_state.current.get(xd.dtype) if x._rg or y._rg else None
            n = xd.size
            if (
                tape is not None
                and tape.is_current == _grad_state.recorder  # grad mode on, and this thread's current tape
                and xd.shape == yd.shape
                and xd.dtype is yd.dtype
                and n < PARALLEL_MIN
                and tape.used + 3 * n + 3 <= tape.capacity  # (room for the result and two imports)
            ):
                off = tape.used
                tape.used = off + (n or 1)
                values = tape.values
                row = tape.nrows
                if x._tape is tape:
                    xoff = x._off
                    xrow = x._row
                elif (
                    x._tape is None
                    and x._vc is None
                    and xd.ndim == 1
                    and id(x) not in tape.import_at
                    and x._dev is None
                    and x._grad_ready_hooks is None
                    and not x._stale_view
                ):
                    # the first import of a plain leaf or constant on this tape (Tape.import_new's common case,
                    # inlined: a many-leaf graph imports a leaf and a constant per op, W6)
                    xoff = tape.used
                    tape.used = xoff + (n or 1)
                    values[xoff : xoff + n] = xd
                    xrow = row
                    if x._rg and not (x._vflags & 2 and x._op is None):  # (not a no_grad view)
                        tape.ext_rows.append(row)  # (tape.externs.append((row, xoff, x)))
                        tape.ext_offs.append(xoff)
                        tape.ext_refs.append(x)
                    key = id(x)
                    tape.import_at[key] = xoff | row << _ROW_SHIFT
                    tape.import_refs[key] = x
                    copies = x._imports
                    if copies is None:
                        x._imports = [(tape.ref, xoff)]
                    elif len(copies) == 1 and copies[0][0]() is None:
                        copies[0] = (tape.ref, xoff)
                    else:
                        tape.add_copy(copies, xoff)
                else:
                    slot = _import_slot(tape, x)
                    if slot is None:
                        tape.used = off  # (nothing allocated since)
                        return _binary(op, x, y)
                    xoff, xrow = slot
                if y._tape is tape:
                    yoff = y._off
                    yrow = y._row
                elif (
                    y._tape is None
                    and y._vc is None
                    and yd.ndim == 1
                    and id(y) not in tape.import_at
                    and y._dev is None
                    and y._grad_ready_hooks is None
                    and not y._stale_view
                ):
                    yoff = tape.used  # (as x's above)
                    tape.used = yoff + (n or 1)
                    values[yoff : yoff + n] = yd
                    yrow = row
                    if y._rg and not (y._vflags & 2 and y._op is None):
                        tape.ext_rows.append(row)  # (tape.externs.append((row, yoff, y)))
                        tape.ext_offs.append(yoff)
                        tape.ext_refs.append(y)
                    key = id(y)
                    tape.import_at[key] = yoff | row << _ROW_SHIFT
                    tape.import_refs[key] = y
                    copies = y._imports
                    if copies is None:
                        y._imports = [(tape.ref, yoff)]
                    elif len(copies) == 1 and copies[0][0]() is None:
                        copies[0] = (tape.ref, yoff)
                    else:
                        tape.add_copy(copies, yoff)
                else:
                    slot = _import_slot(tape, y)
                    if slot is None:  # (the result's slot stays unused: a new copy of x may follow it)
                        return _binary(op, x, y)
                    yoff, yrow = slot
                view = values[off : off + n]
                if xd.ndim != 1:
                    view = view.reshape(xd.shape)
                np_fn(xd, yd, view)
                if row >= tape.row_cap:
                    tape.grow()
                code = base_code | (K.XRG if x._rg else 0) | (K.YRG if y._rg else 0)
                tape.pack(tape.rows, row * 80, code, off, xoff, yoff, n, 0, xrow, yrow, 0.0, 0.0)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = op
                t._in0 = x
                t._in1 = y
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _binary(op, x, y)

    return fast


def _import_slot(tape, t):
    """``(offset, row)`` of ``t`` (not recorded on ``tape``) on ``tape``: its arena copy, made now for a CPU leaf
    or constant (``Tape.import_tensor``, inlined); None where the generic path must decide (a tensor of
    another tape or device, a changed or stale copy)."""
    key = id(t)
    vc = t._vc
    version = 0 if vc is None else vc.version
    packed = tape.import_at.get(key)
    if packed is None:
        if t._tape is not None or t._dev is not None:
            return None
        return tape.import_new(t, t._rg, key, version)
    if packed >> _VERSION_SHIFT != version or tape.import_refs[key] is not t:
        return None
    return packed & _FIELD, (packed >> _ROW_SHIFT) & _FIELD


def _binary_np(op, xd, yd, out):
    """``op.np_fn(xd, yd, out=out)`` for same-shape operands, one chunk per core."""
    xf = xd.reshape(-1)
    yf = yd.reshape(-1)
    of = out.reshape(-1)
    parallel.run(of.size, lambda lo, hi: op.np_fn(xf[lo:hi], yf[lo:hi], out=of[lo:hi]))
    return out


def _dual_binary(op, x, y):
    """Forward mode through an elementwise binary op: ``tx * dx + ty * dy``; None if no operand has a visible
    tangent."""
    xd = x._data
    yd = y._data
    if xd.shape == yd.shape and xd.dtype is yd.dtype and x._dev is None and y._dev is None:
        level = _forward.compiled_level(x, y)
        if level is not None:
            return _compiled_jvp_binary(op, x, y, level)
    levels = _forward.visible_levels_of(x, y)
    if not levels:
        return None
    if xd.shape != yd.shape:
        # broadcast first, outside the rule: the expanded operands keep their tangents for the reverse rules
        shape = _broadcast_shape(xd.shape, yd.shape)
        if xd.shape != shape:
            x = _ops.expand(x, shape)
        if yd.shape != shape:
            y = _ops.expand(y, shape)
    rule = lambda tan, base: op.jvp(tan(x), tan(y), x, y, base)  # noqa: E731
    # (the operands have the result's shape here, so the rule's partials broadcast against batched tangents)
    return _forward.apply_dual(lambda: _binary(op, x, y, False), rule, (x, y), levels, rule)


def _compiled_jvp_binary(op, x, y, level):
    """Same-shape, same-dtype operands: the primal by numpy, the tangent by the compiled partials."""
    xd = x._data
    yd = y._data
    n = xd.size
    if n >= PARALLEL_MIN:
        od = _binary_np(op, xd, yd, np.empty(xd.shape, xd.dtype))
    else:
        od = np.asarray(op.np_fn(xd, yd))
    dt = od.dtype
    tx = _forward.tangent_of(x, level)
    ty = _forward.tangent_of(y, level)
    of = od if od.ndim == 1 else od.reshape(-1)
    xf = _flat(xd, dt)
    yf = _flat(yd, dt)
    txf = _flat(tx._data, dt) if tx is not None else of
    tyf = _flat(ty._data, dt) if ty is not None else of
    res = np.empty(od.shape, dt)
    rf = res if res.ndim == 1 else res.reshape(-1)
    code, has_tx, has_ty = op.code, tx is not None, ty is not None
    if n >= PARALLEL_MIN:
        parallel.run(
            n,
            lambda lo, hi: _cpu.jvp_binary(
                code, xf[lo:hi], yf[lo:hi], of[lo:hi], txf[lo:hi], tyf[lo:hi], rf[lo:hi], has_tx, has_ty
            ),
        )
    else:
        _cpu.jvp_binary(code, xf, yf, of, txf, tyf, rf, has_tx, has_ty)
    return _dual_result(od, level, res)


def _terms(*terms):
    """Sum of the non-None terms (None if all are)."""
    total = None
    for t_ in terms:
        if t_ is not None:
            total = t_ if total is None else total + t_
    return total


_add_fast = _fast_binary(ADD)
_sub_fast = _fast_binary(SUB)
_SUB_BOOL = (
    "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use "
    "the `~` or `logical_not()` operator instead."
)
_mul_fast = _fast_binary(MUL)


def _is_scalar(v):
    """A Python number (numpy scalars are arrays here, as numpy's own promotion treats them)."""
    tv = type(v)
    if tv is float or tv is int:
        return True
    if tv is Tensor or isinstance(v, (Tensor, np.generic, np.ndarray)):
        return False
    return isinstance(v, numbers.Real)


def add(input, other, *, alpha=1, out=None):
    if out is not None:
        return write_result("add", add(input, other, alpha=alpha), out)
    if type(other) is float and type(input) is Tensor and alpha == 1:
        return _affine_fast(input, a0=1.0, a1=other, ctx=(1.0, other, "add"))
    if type(other) is Tensor and type(input) is Tensor and alpha == 1:
        return _add_fast(input, other)
    if alpha != 1:
        if isinstance(alpha, float) and all(isinstance(v, Tensor) and v.dtype.kind in "iub" for v in (input, other)):
            raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
        other = other * alpha if _is_scalar(other) else mul(other, alpha)
    if not isinstance(input, Tensor):
        input, other = other, input
    if _is_scalar(other):
        return affine(input, 1.0, other, "add")
    return _binary(ADD, input, as_tensor_operand(other, input, fn="add"))


def sub(input, other, *, alpha=1, out=None):
    if out is not None:
        return write_result("sub", sub(input, other, alpha=alpha), out)
    if type(other) is Tensor and type(input) is Tensor and alpha == 1:
        return _sub_fast(input, other)
    if alpha != 1:
        other = mul(other, alpha)
    if _is_scalar(other):
        _check_sub_bool(input, other)
        return affine(input, 1.0, -other, "sub")
    return _binary(SUB, input, as_tensor_operand(other, input, fn="sub"))


def _check_sub_bool(t, number):
    """torch refuses subtraction with a bool on either side, a Python bool included."""
    if isinstance(number, (bool, np.bool_)) or (isinstance(t, Tensor) and t._data.dtype.kind == "b"):
        raise RuntimeError(_SUB_BOOL)


def rsub(input, other, *, alpha=1):  # noqa: A002
    """``other - alpha * input`` (torch.rsub; ``Tensor.__rsub__``)."""
    x = input if alpha == 1 else mul(input, alpha)
    if _is_scalar(other):
        _check_sub_bool(x, other)
        return affine(x, -1.0, other, "rsub")
    return _binary(SUB, as_tensor_operand(other, x), x)


def mul(input, other, *, out=None):
    if out is not None:
        return write_result("mul", mul(input, other), out)
    ty = type(other)
    if ty is Tensor and type(input) is Tensor:
        return _mul_fast(input, other)
    if ty is float and type(input) is Tensor:
        return _affine_fast(input, a0=other, a1=0.0, ctx=(other, 0.0, "mul"))
    if not isinstance(input, Tensor):
        input, other = other, input
    if _is_scalar(other):
        return affine(input, other, 0.0, "mul")
    return _binary(MUL, input, as_tensor_operand(other, input, fn="mul"))


def div(input, other, *, rounding_mode=None, out=None):
    if out is not None:
        return write_result("div", div(input, other, rounding_mode=rounding_mode), out)
    if rounding_mode is not None:
        from .pointwise_ops import rounded_div

        return rounded_div(input, other, rounding_mode)
    if _is_scalar(other) and other != 0:
        return _unary(AFFINE, input, 1.0 / other, 0.0, (1.0 / other, 0.0, "div"))
    return _binary(DIV, input, as_tensor_operand(float(other) if _is_scalar(other) else other, input, fn="div"))


def rdiv(x, y):
    """``y / x``: for a number ``y``, ``reciprocal(x) * y`` as torch's ``__rtruediv__`` (same values; the
    reciprocal's saved result is internal, so writing into ``x`` or into the quotient afterwards is allowed)."""
    if _is_scalar(y):
        return mul(reciprocal(x), float(y))
    return _binary(DIV, as_tensor_operand(y, x), x)


def reciprocal(x):
    """``1 / x``, one node that saves its result (torch's ReciprocalBackward0)."""
    return _unary(RDIV_SCALAR, x, 1.0, 0.0)


def _integral_operand(v):
    if isinstance(v, Tensor):
        return v._data if v._dev is None and v._data.dtype.kind in "iub" else None
    return v if isinstance(v, numbers.Integral) else None


def _integer_pow(input, exponent):  # noqa: A002
    """torch's ``pow`` of integers (an integer result; None if an operand is not an integer): a negative Python
    exponent raises, a negative exponent element gives ``1 / base`` truncated (1, -1 or 0)."""
    b, e = _integral_operand(input), _integral_operand(exponent)
    if b is None or e is None:
        return None
    if not isinstance(exponent, Tensor):
        if e < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return wrap_array(np.asarray(np.power(b, e)))
    if np.ndim(b) and np.shape(b) != e.shape:
        _broadcast_shape(np.shape(b), e.shape)
    negative = e < 0
    result = np.power(b, np.where(negative, 0, e) if e.dtype.kind != "b" else e)
    if np.any(negative):
        odd = (np.abs(e) % 2) == 1
        result = np.where(negative, np.where(b == 1, 1, np.where(b == -1, np.where(odd, -1, 1), 0)), result)
    return wrap_array(np.asarray(result).astype(np.result_type(b, e)))


def pow(input, exponent, *, out=None):
    if out is not None:
        return write_result("pow", pow(input, exponent), out)
    if (type(input) is not Tensor or input._data.dtype.kind != "f") and (
        type(exponent) is not Tensor or exponent._data.dtype.kind != "f"
    ):
        result = _integer_pow(input, exponent)
        if result is not None:
            return result
    if isinstance(input, Tensor) and _is_scalar(exponent):
        if exponent == 2:
            return _unary(SQUARE, input)
        return _unary(POW_SCALAR, input, float(exponent), 0.0)
    if not isinstance(input, Tensor) and _is_scalar(input):
        if input <= 0:
            return _binary(POW, as_tensor_operand(float(input), exponent), exponent)
        return _unary(RPOW_SCALAR, exponent, float(input), 0.0)
    input = as_tensor_operand(input, exponent if isinstance(exponent, Tensor) else None, "input", "pow")
    return _binary(POW, input, as_tensor_operand(exponent, input, fn="pow"))


def _tensor_arg(value, fn, what):
    if not isinstance(value, Tensor):
        raise TypeError(f"{fn}(): argument '{what}' must be Tensor, not {type(value).__name__}")
    return value


def tanh_backward(g, y):
    """``g * (1 - y**2)`` for tensors ``g`` and ``y`` (``y`` the output of tanh), as torch's tanh_backward."""
    return _binary(TANH_BACKWARD, g, y)


def maximum(input, other, *, out=None):
    if out is not None:
        return write_result("maximum", maximum(input, other), out)
    return _binary(MAXIMUM, _tensor_arg(input, "maximum", "input"), _tensor_arg(other, "maximum", "other"))


def minimum(input, other, *, out=None):
    if out is not None:
        return write_result("minimum", minimum(input, other), out)
    return _binary(MINIMUM, _tensor_arg(input, "minimum", "input"), _tensor_arg(other, "minimum", "other"))


def _fast_unary(op):
    """The forward pass's hottest path, specialised per op: an elementwise op on a tensor recorded on this
    thread's current tape, nothing dual, small. Anything else goes through the generic ``_unary``, which
    records exactly the same row; this only skips its checks and a call frame."""
    code = op.code | K.XRG
    np_fn = op.np_fn
    plain = op.plain
    vector_fn = op.vector_fn
    with_attrs = op.code in _ATTR_CODES

    def fast(input, *, a0=0.0, a1=0.0, ctx=None, out=None):  # noqa: A002 - torch's name (``torch.sin(input=t)``)
        if out is not None:
            return write_result(op.name, fast(input, a0=a0, a1=a1, ctx=ctx), out)
        try:
            tape = input._tape  # not None: a recorded result (so it requires grad)
        except AttributeError:
            _as_float_operand(input, op.name)  # a non-tensor argument: torch's TypeError
            raise
        if input._tangents is not None:
            if _fw.levels:
                dual = _dual_unary(op, input, a0, a1, ctx)
                if dual is not None:
                    return dual
        elif tape is not None and tape.is_current == _grad_state.recorder:  # grad mode on, this thread's tape
            xd = input._data
            n = xd.size
            if n < PARALLEL_MIN and tape.used + n < tape.capacity:
                off = tape.used
                tape.used = off + (n or 1)
                view = tape.values[off : off + n]
                if xd.ndim != 1:
                    view = view.reshape(xd.shape)
                if plain:
                    if vector_fn is None or n < VECTOR_MIN:
                        np_fn(xd, view)
                    else:
                        vector_fn(xd, view)
                elif with_attrs:
                    np_fn(xd, a0, a1, view)
                else:
                    np_fn(xd, out=view)
                row = tape.nrows
                if row >= tape.row_cap:
                    tape.grow()
                tape.pack(tape.rows, row * 80, code, off, input._off, -1, n, 0, input._row, -1, a0, a1)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = op
                t._in0 = input
                if ctx is not None:
                    t._ctx = ctx
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _unary(op, input, a0, a1, ctx)

    return fast


_affine_fast = _fast_unary(AFFINE)  # the scalar forms of + - * / (see ``affine``)


def _unary_fn(op):
    """The public function of an elementwise unary op: its fast path itself (which turns a non-tensor argument
    into torch's TypeError), so that ``ad.sin(x)`` costs no call frame more than ``x.sin()``."""
    fn = _fast_unary(op)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``, differentiable in reverse and forward mode."
    fn.method = fn
    return fn


def _as_float_operand(x, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return x


neg = _unary_fn(NEG)
abs = _unary_fn(ABS)  # noqa: A001 - torch's name
exp = _unary_fn(EXP)
log = _unary_fn(LOG)
log1p = _unary_fn(LOG1P)
expm1 = _unary_fn(EXPM1)
sqrt = _unary_fn(SQRT)
rsqrt = _unary_fn(RSQRT)
sin = _unary_fn(SIN)
cos = _unary_fn(COS)
tan = _unary_fn(TAN)
tanh = _unary_fn(TANH)
sigmoid = _unary_fn(SIGMOID)
relu = _unary_fn(RELU)
erf = _unary_fn(ERF)
square = _unary_fn(SQUARE)


def clamp(input, min=None, max=None):  # noqa: A002 - torch's names
    _tensor_arg(input, "clamp", "input")
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor_bounds(input, min, max)
    if any(isinstance(b, float) and math.isnan(b) for b in (min, max)):
        return _clamp_tensor_bounds(input, min, max)  # a NaN bound gives NaN (the kernel reads NaN as "none")
    if input._data.dtype.kind != "f":  # an integer stays one with integer bounds (torch's promotion)
        bounds = [b for b in (min, max) if b is not None]
        data = input.detach().cpu()._data
        result = np.clip(data.astype(np.result_type(data, *bounds)), min, max)
        return wrap_array(result).to(input.device)
    lo = math.nan if min is None else float(min)
    hi = math.nan if max is None else float(max)
    return _unary(CLAMP, input, lo, hi)


clip = clamp


def _isnan(bound):
    return bound != bound if isinstance(bound, Tensor) else bool(math.isnan(bound))


def _clamp_tensor_bounds(input, min, max):  # noqa: A002 - torch's names
    """``clamp`` with a tensor (or NaN) bound, as torch's ``clamp_backward_min_max``: ``input`` gets the gradient
    where ``min <= input <= max``, ``min`` where ``input < min < max``, ``max`` where ``input > max`` or
    ``max < min``; nothing gets it where no branch holds (a NaN anywhere, ``input < min == max``): there the
    result is a constant."""
    from .structural import where

    lo = min.detach() if isinstance(min, Tensor) else min
    hi = max.detach() if isinstance(max, Tensor) else max
    value = input.detach()  # torch's forward value: NaN propagates from the input and from either bound
    if lo is not None:
        value = where((value < lo) | _isnan(lo), lo, value)
    if hi is not None:
        value = where((value > hi) | _isnan(hi), hi, value)
    if min is not None and max is not None:
        branches = [((input >= min) & (input <= max), input), ((input < min) & (min < max), min)]
        if isinstance(max, Tensor):  # the value is NaN where ``min`` is NaN: the gradient still goes to ``max``
            branches.append(((input > max) | (max < min), max + where(value != value, value, 0.0)))
    elif min is not None:
        branches = [(input >= min, input), (input < min, min)]
    else:
        branches = [(input <= max, input), (input > max, max)]
    out = value
    for taken, source in reversed(branches):  # exclusive branches; a number bound has no gradient to take
        if isinstance(source, Tensor):
            out = where(taken, source, out)
    return out


def clone(x):
    return _unary(COPY, x, 0.0, 0.0, (0.0, 0.0, None))


@linear_op
def cast(x, dtype):
    """Differentiable dtype conversion (the cotangent is cast back)."""
    dtype = np.dtype(dtype)
    if x._dev is not None:
        return _cuda_ops().cast(x, dtype)
    if not (_grad_state.enabled and x._rg):
        return wrap_array(x._data.astype(dtype))
    if dtype.kind != "f":
        return wrap_array(x._data.astype(dtype))
    n = x._data.size
    tape = _tape_for(dtype, 2 * n + 2, x)
    off = tape.alloc(n)
    view = tape.view(off, x.shape, n)
    view[...] = x._data
    xoff, xrow = tape.import_tensor(x, True)  # another dtype: always another tape
    row = tape.record(K.COPY | K.XRG, off, xoff, -1, n, 0, xrow)
    return _result(view, tape, off, row, CAST, (x,), (0.0, 0.0))


CAST = Op("cast", K.COPY, "ToCopyBackward0", lambda g, out, inputs, ctx: (cast(g, inputs[0].dtype),))
# a copy to another device (Tensor.to / .cuda / .cpu): the cotangent goes back to the operand's device
TO_COPY = Op(
    "to_copy", K.COPY, "ToCopyBackward0", lambda g, out, inputs, ctx: (g.to(inputs[0].device),), register=False
)


def _cuda_ops():
    """``ad.cuda.ops`` (imported on first use: it imports numba.cuda), where CUDA tensors' ops run."""
    from ..cuda import ops

    return ops


# the formulas' bare names that are ops of this module (the rest: ad/ops/pointwise_ops.py)
TENSOR_NAMES.update(cos=cos, sin=sin, exp=exp, sqrt=sqrt, log=log)
