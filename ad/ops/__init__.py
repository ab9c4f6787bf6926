"""The op table: every differentiable primitive, declared once.

An entry (``Op``) names the op, its opcode in ``kernels/opcodes.py`` (the compiled sweep's branch), torch's
``grad_fn`` name, and its reverse rule written with ``ad`` ops (``vjp``), which is what ``create_graph=True``
runs, so second and higher derivatives come for free. Elementwise ops declare only their local partial
(``elementwise(...)``): the VJP is ``g * d``; ``kernels/pointwise.py`` holds the same partial in scalar form
for the kernels. The generic tests in ``tests/test_op_table.py`` walk ``OPS`` and check every entry against
finite differences, in both sweeps, to second order.

Forward functions compute straight into the tape's value arena (``ad/tape.py``) when the result requires
grad, and record one row. Broadcasting is undone once, by an explicit ``expand`` row whose adjoint is a sum,
not in each rule. Composites (softmax, var, logsumexp, ...) live in ``composites.py`` and need no rules.

Start reading at ``_unary`` and ``_binary``: the fast paths every elementwise op goes through.
"""

import builtins
import functools
import math
import numbers

import numpy as np
import scipy.special

from kernels import cpu as _cpu
from kernels import opcodes as K

from .. import forward as _forward
from .. import parallel
from ..forward import _fw
from ..grad_mode import _grad_state
from ..parallel import PARALLEL_MIN
from ..tape import BIG_ROW, current_tape
from ..tape import _state as _tape_state
from ..tensor import Tensor, _new, _wrap_dim, wrap_array

OPS = {}  # name -> Op; what the generic tests walk
VECTOR_MIN = 64  # an op's vector_fn beats its numpy ufunc from about this many elements (below: call overhead)
_F64 = np.dtype(np.float64)


class Op:
    """One primitive: ``vjp(g, out, inputs, ctx) -> tuple of input cotangents`` (``None`` for no gradient)."""

    __slots__ = ("name", "code", "grad_fn_name", "vjp", "jvp", "partial", "np_fn", "sample", "plain", "vector_fn")

    def __init__(
        self,
        name,
        code,
        grad_fn_name,
        vjp=None,
        partial=None,
        np_fn=None,
        sample=None,
        jvp=None,
        register=True,
        vector_fn=None,
    ):
        self.jvp = jvp
        # plain: a numpy ufunc taking (x, out) positionally, the fastest call numpy has
        self.plain = isinstance(np_fn, np.ufunc) and np_fn.nin == 1
        # vector_fn(x, out): replaces np_fn where numpy's loop is slow (see _trig_forward)
        self.vector_fn = vector_fn
        self.name = name
        self.code = code
        self.grad_fn_name = grad_fn_name
        self.vjp = vjp
        self.partial = partial
        self.np_fn = np_fn
        self.sample = sample
        if register:  # custom Functions' ops are not part of the table the generic tests walk
            OPS[name] = self

    def __repr__(self):
        return f"Op({self.name})"


# ---------------------------------------------------------------------------------------------------------
# recording helpers


def _tape_for(dt, n, a, b=None):
    """The current tape for dtype ``dt`` with room for ``n`` more elements, newer than the operands' tapes."""
    tape = _tape_state.current.get(dt)
    min_id = 0
    if a is not None and a._tape is not None:
        min_id = a._tape.id
    if b is not None and b._tape is not None and b._tape.id > min_id:
        min_id = b._tape.id
    if tape is None or tape.used + n + 1 > tape.capacity or tape.id < min_id:
        tape = current_tape(dt, n, min_id)
    return tape


def _operand(tape, t):
    """Arena offset and producing row of operand ``t`` on ``tape`` (imported if it lives elsewhere)."""
    if t._tape is tape:
        return t._off, t._row
    return tape.import_tensor(t, t._rg)


def _result(data, tape, off, row, op, inputs, ctx=None, nrows=1):
    t = _new(Tensor)
    t._data = data
    t._rg = True
    t._op = op
    t._inputs = inputs
    t._ctx = ctx
    t._tape = tape
    t._off = off
    t._row = row
    if nrows != 1:
        t._nrows = nrows
    return t


def _recording(*tensors):
    if not _grad_state.enabled:
        return False
    for t in tensors:
        if t is not None and t._rg:
            return True
    return False


def as_tensor_operand(value, like=None, what="other", fn="op"):
    """Wrap a non-Tensor operand (array, list, numpy scalar) as a constant tensor."""
    if isinstance(value, Tensor):
        return value
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{fn}(): argument '{what}' must be Tensor, not {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}(): argument '{what}' must be Tensor or a number, not {type(value).__name__}")
    if like is not None and arr.dtype.kind in "iub" and like._data.dtype.kind == "f" and arr.ndim == 0:
        arr = arr.astype(like._data.dtype)
    return wrap_array(arr)


def _c_strides(shape):
    strides = [1] * len(shape)
    acc = 1
    for k in range(len(shape) - 1, -1, -1):
        strides[k] = acc
        acc *= shape[k]
    return strides


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _broadcast_shape(a, b):
    if a == b:
        return a
    nd = builtins.max(len(a), len(b))
    pa = (1,) * (nd - len(a)) + tuple(a)
    pb = (1,) * (nd - len(b)) + tuple(b)
    out = []
    for k in range(nd):
        if pa[k] == pb[k] or pb[k] == 1:
            out.append(pa[k])
        elif pa[k] == 1:
            out.append(pb[k])
        else:
            raise RuntimeError(
                f"The size of tensor a ({pa[k]}) must match the size of tensor b ({pb[k]}) at non-singleton "
                f"dimension {k}"
            )
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------
# forward-mode rules of the structural ops (elementwise ops carry theirs in the Op entries above)


def _tensors_in(args, kwargs):
    found = []
    for a in (*args, *kwargs.values()):
        if isinstance(a, Tensor):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found.extend(t_ for t_ in a if isinstance(t_, Tensor))
    return found


def forward_rule(jvp, fused=None):
    """Give a public op its forward-mode rule ``jvp(tan, out, *args, **kwargs)`` (``tan(t)``: the tangent of
    operand ``t`` at the level being computed, or None). Costs one check when no dual level is active.
    ``fused(*args, **kwargs)``, if given, is tried first: it returns the dual result computed in one go, or
    None where it does not apply."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _fw.levels:
                if fused is not None:
                    out = fused(*args, **kwargs)
                    if out is not None:
                        return out
                tensors = _tensors_in(args, kwargs)
                levels = _forward.visible_levels_of(*tensors)
                if levels:
                    return _forward.apply_dual(
                        lambda: fn(*args, **kwargs),
                        lambda tan, base: jvp(tan, base, *args, **kwargs),
                        tensors,
                        levels,
                    )
            return fn(*args, **kwargs)

        return wrapper

    return deco


def linear_op(fn):
    """Forward rule of an op that is linear in its first argument: apply the op to the tangent."""

    def jvp(tan, out, x, *args, **kwargs):
        t_ = tan(x)
        return None if t_ is None else wrapper(t_, *args, **kwargs)

    wrapper = forward_rule(jvp)(fn)
    return wrapper


def _tangent_or_zeros(tan, t_):
    t2 = tan(t_)
    return t2 if t2 is not None else zeros_like(t_)


def _list_jvp(name):
    """Forward rule of ``cat`` / ``stack``: the same op over the operands' tangents (zeros where none)."""

    def jvp(tan, out, tensors, *args, **kwargs):
        return _LIST_OPS[name]([_tangent_or_zeros(tan, t_) for t_ in tensors], *args, **kwargs)

    return jvp


def _group_jvp(code):
    def jvp(tan, out, x, dim=None, keepdim=False, **kwargs):
        t_ = tan(x)
        if t_ is None:
            return None
        dims = _reduce_dims(x, dim)
        ok = out if keepdim else _unsqueeze_dims(out, dims, x.ndim)
        if code == K.PROD:
            return sum(expand(ok, x.shape) * t_ / x, dims, keepdim=keepdim)
        mask = _const(x._data == ok._data, x._data.dtype)
        count = sum(mask, dims, keepdim=True)
        return sum(t_ * mask / count, dims, keepdim=keepdim)

    return jvp


def _matmul_jvp(tan, out, x, y):
    tx = tan(x) if isinstance(x, Tensor) else None
    ty = tan(y) if isinstance(y, Tensor) else None
    return _terms(matmul(tx, y) if tx is not None else None, matmul(x, ty) if ty is not None else None)


def _where_jvp(tan, out, condition, x=None, y=None):
    if x is None:
        return None
    tx = tan(x) if isinstance(x, Tensor) else None
    ty = tan(y) if isinstance(y, Tensor) else None
    zero = zeros_like(out)
    return where(condition, tx if tx is not None else zero, ty if ty is not None else zero)


# ---------------------------------------------------------------------------------------------------------
# elementwise unary ops: forward ufunc + local partial (in ad ops) + opcode


def _unary(op, x, a0=0.0, a1=0.0, ctx=None, dual=True):
    if dual and x._tangents is not None and _fw.levels:
        out = _dual_unary(op, x, a0, a1, ctx)
        if out is not None:
            return out
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
    t._inputs = (x,)
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
    level = _forward.compiled_level(x)
    if level is not None:
        return _compiled_jvp_unary(op, x, a0, a1, level)
    levels = _forward.visible_levels_of(x)
    if not levels:
        return None
    if len(levels) == 1:
        # (apply_dual's one-level case, inlined: a recorded graph through a dual level, as in forward over
        # reverse, takes this path for every elementwise op)
        level = levels[0]
        out = _unary(op, x, a0, a1, ctx, False)
        with _forward.hide(levels):
            tangent = op.partial(x._tangents[level], x, out, a0, a1)
        _forward.set_tangent(out, level, tangent)
        return out
    return _forward.apply_dual(
        lambda: _unary(op, x, a0, a1, ctx, False),
        lambda tan, base: op.partial(tan(x), x, base, a0, a1),
        (x,),
        levels,
    )


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


_ATTR_CODES = (K.AFFINE, K.POW_SCALAR, K.RPOW_SCALAR, K.RDIV_SCALAR, K.CLAMP)  # forward fn(x, a0, a1, out)


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


def elementwise(
    name, code, np_fn, partial, grad_fn_name=None, sample=(-2.0, 2.0), vector_fn=None, times_partial=None
):
    """Declare an elementwise unary op from its forward ufunc and its local partial ``d(x, out, a0, a1)``.

    The op's rule (``Op.partial``) is ``times_partial(g, x, out, a0, a1) = g * d(x, out, a0, a1)``, shared by
    the reverse rule (``g`` a cotangent) and the forward rule (``g`` a tangent); by default it multiplies by
    ``partial``, and an op whose product has a fused form (tanh) passes that instead: one op fewer to record
    in double backward and in forward-mode through a recorded graph."""
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
    return _const(np.sign(x._data), x._data.dtype)


_AFFINE_NAMES = {
    "add": "AddBackward0",
    "sub": "SubBackward0",
    "mul": "MulBackward0",
    "div": "DivBackward0",
    "rsub": "RsubBackward1",
    "neg": "NegBackward0",
}

COPY = elementwise(
    "copy", K.COPY, _copy_np, lambda x, out, a0, a1: 1.0, "CloneBackward0", times_partial=lambda g, x, out, a0, a1: g
)
NEG = elementwise("neg", K.NEG, np.negative, lambda x, out, a0, a1: -1.0)
ABS = elementwise("abs", K.ABS, np.abs, lambda x, out, a0, a1: _sign_const(x), sample=(0.1, 2.0))
EXP = elementwise("exp", K.EXP, np.exp, lambda x, out, a0, a1: out)
LOG = elementwise("log", K.LOG, np.log, lambda x, out, a0, a1: 1.0 / x, sample=(0.2, 3.0))
LOG1P = elementwise("log1p", K.LOG1P, np.log1p, lambda x, out, a0, a1: 1.0 / (x + 1.0), sample=(-0.5, 2.0))
EXPM1 = elementwise("expm1", K.EXPM1, np.expm1, lambda x, out, a0, a1: out + 1.0)
SQRT = elementwise("sqrt", K.SQRT, np.sqrt, lambda x, out, a0, a1: 0.5 / out, sample=(0.2, 3.0))
RSQRT = elementwise("rsqrt", K.RSQRT, _rsqrt_np, lambda x, out, a0, a1: -0.5 * out * out * out, sample=(0.2, 3.0))
SIN = elementwise("sin", K.SIN, np.sin, lambda x, out, a0, a1: cos(x), vector_fn=_trig_forward(K.SIN, np.sin))
COS = elementwise("cos", K.COS, np.cos, lambda x, out, a0, a1: -sin(x), vector_fn=_trig_forward(K.COS, np.cos))
TAN = elementwise("tan", K.TAN, np.tan, lambda x, out, a0, a1: 1.0 + out * out, sample=(-1.2, 1.2))
TANH = elementwise(
    "tanh",
    K.TANH,
    np.tanh,
    lambda x, out, a0, a1: 1.0 - out * out,
    times_partial=lambda g, x, out, a0, a1: tanh_backward(g, out),
)
SIGMOID = elementwise("sigmoid", K.SIGMOID, scipy.special.expit, lambda x, out, a0, a1: out * (1.0 - out))
RELU = elementwise(
    "relu", K.RELU, _relu_np, lambda x, out, a0, a1: _const(out._data > 0, out._data.dtype), sample=(0.1, 2.0)
)
ERF = elementwise("erf", K.ERF, scipy.special.erf, lambda x, out, a0, a1: (2.0 / math.sqrt(math.pi)) * exp(-(x * x)))
SQUARE = elementwise("square", K.SQUARE, _square_np, lambda x, out, a0, a1: 2.0 * x, "PowBackward0")
CLAMP = elementwise(
    "clamp",
    K.CLAMP,
    _clamp_np,
    lambda x, out, a0, a1: _const((np.isnan(a0) | (x._data >= a0)) & (np.isnan(a1) | (x._data <= a1)), x._data.dtype),
    "ClampBackward1",
)
AFFINE = elementwise(
    "affine",
    K.AFFINE,
    _affine_np,
    lambda x, out, a0, a1: a0,
    lambda ctx: _AFFINE_NAMES.get(ctx[2] if ctx is not None and len(ctx) > 2 else "mul", "MulBackward0"),
)
POW_SCALAR = elementwise(
    "pow_scalar",
    K.POW_SCALAR,
    _pow_scalar_np,
    lambda x, out, a0, a1: 0.0 if a0 == 0.0 else a0 * x ** (a0 - 1.0),
    "PowBackward0",
    sample=(0.2, 2.0),
)
RPOW_SCALAR = elementwise(
    "rpow_scalar", K.RPOW_SCALAR, _rpow_scalar_np, lambda x, out, a0, a1: out * math.log(a0), "PowBackward1"
)
RDIV_SCALAR = elementwise(
    "rdiv_scalar",
    K.RDIV_SCALAR,
    _rdiv_scalar_np,
    lambda x, out, a0, a1: -a0 / (x * x),
    "DivBackward0",
    sample=(0.3, 2.0),
)


def affine(x, a, b, kind="mul"):
    """``a * x + b`` for Python scalars ``a``, ``b`` (the scalar forms of + - * /)."""
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


def _pow_vjp(g, x, y, out):
    dx, dy = _pow_partials(x, y, out, x._rg, y._rg)
    return (g * dx if dx is not None else None, g * dy if dy is not None else None)


def _max_min_partials(sign, x, y, dtype):
    xd, yd = x._data, y._data
    wins = (xd > yd) if sign > 0 else (xd < yd)
    loses = (xd < yd) if sign > 0 else (xd > yd)
    tie = xd == yd
    dx = np.where(wins, 1.0, np.where(tie, 0.5, np.where(loses, 0.0, 1.0)))
    dy = np.where(loses, 1.0, np.where(tie, 0.5, np.where(wins, 0.0, 1.0)))
    return _const(dx, dtype), _const(dy, dtype)


def _max_min_vjp(sign):
    def vjp(g, x, y, out):
        dx, dy = _max_min_partials(sign, x, y, g.dtype)
        return (g * dx if x._rg else None, g * dy if y._rg else None)

    return vjp


def _max_min_jvp(sign):
    def jvp(tx, ty, x, y, out):
        dx, dy = _max_min_partials(sign, x, y, out.dtype)
        return _terms(tx * dx if tx is not None else None, ty * dy if ty is not None else None)

    return jvp


def _pow_jvp(tx, ty, x, y, out):
    gx, gy = _pow_partials(x, y, out, tx is not None, ty is not None)
    return _terms(tx * gx if tx is not None else None, ty * gy if ty is not None else None)


def _pow_partials(x, y, out, want_x, want_y):
    dx = dy = None
    if want_x:
        ymask = _const(y._data == 0, y._data.dtype)
        dx = y * (x ** (y - 1.0)) * (1.0 - ymask)
    if want_y:
        zero_ok = _const((x._data == 0) & (y._data >= 0), x._data.dtype)
        safe_log = log(where(zero_ok._data.astype(bool), ones_like(x), x))
        dy = out * safe_log * (1.0 - zero_ok)
    return dx, dy


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
MUL = _binary_op(
    "mul",
    K.MUL,
    np.multiply,
    lambda g, x, y, out: (g * y if x._rg else None, g * x if y._rg else None),
    "MulBackward0",
    lambda tx, ty, x, y, out: _terms(tx * y if tx is not None else None, x * ty if ty is not None else None),
)
DIV = _binary_op(
    "div",
    K.DIV,
    np.divide,
    lambda g, x, y, out: (g / y if x._rg else None, -g * x / (y * y) if y._rg else None),
    "DivBackward0",
    lambda tx, ty, x, y, out: _terms(tx / y if tx is not None else None, -ty * out / y if ty is not None else None),
    sample=(0.5, 2.0),
)
POW = _binary_op("pow", K.POW, np.power, _pow_vjp, "PowBackward1", _pow_jvp, sample=(0.3, 2.0))
MAXIMUM = _binary_op("maximum", K.MAXIMUM, np.maximum, _max_min_vjp(+1), "MaximumBackward0", _max_min_jvp(+1))
MINIMUM = _binary_op("minimum", K.MINIMUM, np.minimum, _max_min_vjp(-1), "MinimumBackward0", _max_min_jvp(-1))


def _tanh_backward_np(g, y, out=None):
    """``g * (1 - y * y)``: tanh's local partial (``y = tanh(x)``) applied to a cotangent or tangent."""
    if out is None:
        shape = g.shape if g.shape == y.shape else np.broadcast_shapes(g.shape, y.shape)
        out = np.empty(shape, g.dtype if g.dtype == y.dtype else np.result_type(g, y))
    np.multiply(y, y, out=out)
    np.subtract(1.0, out, out=out)
    return np.multiply(g, out, out=out)


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


def _binary(op, x, y, dual=True):
    """Elementwise ``op(x, y)`` for tensors (scalars are turned into ``affine`` rows by the callers)."""
    if dual and (x._tangents is not None or y._tangents is not None) and _fw.levels:
        out = _dual_binary(op, x, y)
        if out is not None:
            return out
    xd = x._data
    yd = y._data
    if not (_grad_state.enabled and (x._rg or y._rg)):
        if xd.shape != yd.shape:
            _broadcast_shape(xd.shape, yd.shape)  # torch's error message for incompatible shapes
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
            x = expand(x, shape) if x._rg else wrap_array(np.broadcast_to(xd, shape))
        if yd.shape != shape:
            y = expand(y, shape) if y._rg else wrap_array(np.broadcast_to(yd, shape))
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
        hit = tape.imports.get(id(y))  # a constant or leaf used again: its arena copy (Tape.import_tensor)
        if hit is not None and hit[2] is y and hit[3] == y._version:
            yoff = hit[0]
            yrow = hit[1]
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
    t._inputs = (x, y)
    t._tape = tape
    t._off = off
    t._row = row
    if n >= BIG_ROW:
        tape.mark_vectorized(row, t)
    return t


def _fast_binary(op):
    """(Repeats the recording tail of ``_binary`` on purpose, as ``_fast_unary`` does for ``_unary``: one call
    frame and the generic checks are ~15% of a small op's forward cost, which is the W1 bar.)

    The hot path of a same-shape binary op whose first operand is on this thread's current tape (the
    second on it too, or imported there already), nothing dual, small; else the generic ``_binary``."""
    np_fn = op.np_fn
    base_code = op.code

    def fast(x, y):
        tape = x._tape
        if (
            tape is not None
            and x._tangents is None
            and y._tangents is None
            and tape.is_current == _grad_state.recorder  # grad mode on, and this thread's current tape
        ):
            xd = x._data
            yd = y._data
            n = xd.size
            if xd.shape == yd.shape and xd.dtype is yd.dtype and n < PARALLEL_MIN and tape.used + n < tape.capacity:
                if y._tape is tape:
                    yoff = y._off
                    yrow = y._row
                else:
                    hit = tape.imports.get(id(y))
                    if hit is None or hit[2] is not y or hit[3] != y._version:
                        return _binary(op, x, y)
                    yoff = hit[0]
                    yrow = hit[1]
                off = tape.used
                tape.used = off + (n or 1)
                view = tape.values[off : off + n]
                if xd.ndim != 1:
                    view = view.reshape(xd.shape)
                np_fn(xd, yd, view)
                row = tape.nrows
                if row >= tape.row_cap:
                    tape.grow()
                code = base_code | K.XRG | K.YRG if y._rg else base_code | K.XRG
                tape.pack(tape.rows, row * 80, code, off, x._off, yoff, n, 0, x._row, yrow, 0.0, 0.0)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = op
                t._inputs = (x, y)
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _binary(op, x, y)

    return fast


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
    if xd.shape == yd.shape and xd.dtype is yd.dtype:
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
            x = expand(x, shape)
        if yd.shape != shape:
            y = expand(y, shape)
    return _forward.apply_dual(
        lambda: _binary(op, x, y, False),
        lambda tan, base: op.jvp(tan(x), tan(y), x, y, base),
        (x, y),
        levels,
    )


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
_mul_fast = _fast_binary(MUL)


def _is_scalar(v):
    """A Python number (numpy scalars are arrays here, as numpy's own promotion treats them)."""
    tv = type(v)
    if tv is float or tv is int:
        return True
    if tv is Tensor or isinstance(v, (Tensor, np.generic, np.ndarray)):
        return False
    return isinstance(v, numbers.Real)


def add(x, y, *, alpha=1):
    if type(y) is float and type(x) is Tensor and alpha == 1:
        return _affine_fast(x, a0=1.0, a1=y, ctx=(1.0, y, "add"))
    if type(y) is Tensor and type(x) is Tensor and alpha == 1:
        return _add_fast(x, y)
    if alpha != 1:
        y = mul(y, alpha)
    if not isinstance(x, Tensor):
        x, y = y, x
    if _is_scalar(y):
        return affine(x, 1.0, y, "add")
    return _binary(ADD, x, as_tensor_operand(y, x, fn="add"))


def sub(x, y, *, alpha=1):
    if type(y) is Tensor and type(x) is Tensor and alpha == 1:
        return _sub_fast(x, y)
    if alpha != 1:
        y = mul(y, alpha)
    if _is_scalar(y):
        return affine(x, 1.0, -y, "sub")
    return _binary(SUB, x, as_tensor_operand(y, x, fn="sub"))


def rsub(x, y):
    """``y - x``."""
    if _is_scalar(y):
        return affine(x, -1.0, y, "rsub")
    return _binary(SUB, as_tensor_operand(y, x), x)


def mul(x, y):
    ty = type(y)
    if ty is Tensor and type(x) is Tensor:
        return _mul_fast(x, y)
    if ty is float and type(x) is Tensor:
        return _affine_fast(x, a0=y, a1=0.0, ctx=(y, 0.0, "mul"))
    if not isinstance(x, Tensor):
        x, y = y, x
    if _is_scalar(y):
        return affine(x, y, 0.0, "mul")
    return _binary(MUL, x, as_tensor_operand(y, x, fn="mul"))


def div(x, y, *, rounding_mode=None):
    if rounding_mode is not None:
        raise NotImplementedError("div with rounding_mode is not differentiable; use ad.floor_divide on data")
    if _is_scalar(y) and y != 0:
        return _unary(AFFINE, x, 1.0 / y, 0.0, (1.0 / y, 0.0, "div"))
    return _binary(DIV, x, as_tensor_operand(float(y) if _is_scalar(y) else y, x, fn="div"))


def rdiv(x, y):
    """``y / x``."""
    if _is_scalar(y):
        return _unary(RDIV_SCALAR, x, float(y), 0.0)
    return _binary(DIV, as_tensor_operand(y, x), x)


def pow(x, y):
    if isinstance(x, Tensor) and _is_scalar(y):
        if y == 2:
            return _unary(SQUARE, x)
        return _unary(POW_SCALAR, x, float(y), 0.0)
    if not isinstance(x, Tensor) and _is_scalar(x):
        if x <= 0:
            return _binary(POW, as_tensor_operand(float(x), y), y)
        return _unary(RPOW_SCALAR, y, float(x), 0.0)
    x = as_tensor_operand(x, y if isinstance(y, Tensor) else None, "input", "pow")
    return _binary(POW, x, as_tensor_operand(y, x, fn="pow"))


def _tensor_arg(value, fn, what):
    if not isinstance(value, Tensor):
        raise TypeError(f"{fn}(): argument '{what}' must be Tensor, not {type(value).__name__}")
    return value


def tanh_backward(g, y):
    """``g * (1 - y**2)`` for tensors ``g`` and ``y`` (``y`` the output of tanh), as torch's tanh_backward."""
    return _binary(TANH_BACKWARD, g, y)


def maximum(x, y):
    return _binary(MAXIMUM, _tensor_arg(x, "maximum", "input"), _tensor_arg(y, "maximum", "other"))


def minimum(x, y):
    return _binary(MINIMUM, _tensor_arg(x, "minimum", "input"), _tensor_arg(y, "minimum", "other"))


def _fast_unary(op):
    """The forward pass's hottest path, specialised per op: an elementwise op on a tensor recorded on this
    thread's current tape, nothing dual, small. Anything else goes through the generic ``_unary``, which
    records exactly the same row; this only skips its checks and a call frame."""
    code = op.code | K.XRG
    np_fn = op.np_fn
    plain = op.plain
    vector_fn = op.vector_fn
    with_attrs = op.code in _ATTR_CODES

    def fast(x, *, a0=0.0, a1=0.0, ctx=None):
        tape = x._tape  # not None: a recorded result (so it requires grad)
        if x._tangents is not None:
            if _fw.levels:
                out = _dual_unary(op, x, a0, a1, ctx)
                if out is not None:
                    return out
        elif tape is not None and tape.is_current == _grad_state.recorder:  # grad mode on, this thread's tape
            xd = x._data
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
                tape.pack(tape.rows, row * 80, code, off, x._off, -1, n, 0, x._row, -1, a0, a1)
                tape.nrows = row + 1
                t = _new(Tensor)
                t._data = view
                t._rg = True
                t._op = op
                t._inputs = (x,)
                if ctx is not None:
                    t._ctx = ctx
                t._tape = tape
                t._off = off
                t._row = row
                if n >= BIG_ROW:
                    tape.mark_vectorized(row, t)
                return t
        return _unary(op, x, a0, a1, ctx)

    return fast


_affine_fast = _fast_unary(AFFINE)  # the scalar forms of + - * / (see ``affine``)


def _unary_fn(op):
    fast = _fast_unary(op)

    def fn(x):
        try:
            return fast(x)
        except AttributeError:
            _as_float_operand(x, op.name)  # a non-tensor argument: torch's TypeError
            raise

    fn.__name__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``, differentiable in reverse and forward mode."
    fn.method = fast  # Tensor methods skip the argument check: ``self`` is a Tensor
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


def clamp(x, min=None, max=None):  # noqa: A002 - torch's names
    _tensor_arg(x, "clamp", "input")
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    lo = math.nan if min is None else float(min)
    hi = math.nan if max is None else float(max)
    return _unary(CLAMP, x, lo, hi)


clip = clamp


def clone(x):
    return _unary(COPY, x, 0.0, 0.0, (0.0, 0.0, None))


@linear_op
def cast(x, dtype):
    """Differentiable dtype conversion (the cotangent is cast back)."""
    dtype = np.dtype(dtype)
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


# ---------------------------------------------------------------------------------------------------------
# where


def _where_vjp(g, out, inputs, ctx):
    x, y = inputs
    mask = ctx
    zero = zeros_like(g)
    return (
        where(mask, g, zero) if x._rg else None,
        where(mask, zero, g) if y._rg else None,
    )


WHERE = Op("where", K.WHERE, "WhereBackward0", _where_vjp)


@forward_rule(_where_jvp)
def where(condition, x=None, y=None):
    """``where(condition, x, y)``: elements of ``x`` where ``condition`` holds, else of ``y``."""
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if x is None and y is None:
        return tuple(wrap_array(i) for i in np.nonzero(cond))
    if x is None or y is None:
        raise TypeError("where() received an invalid combination of arguments: give both input and other")
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {cond.dtype}")
    if not isinstance(x, Tensor):
        x = as_tensor_operand(float(x) if _is_scalar(x) else x, y if isinstance(y, Tensor) else None)
    if not isinstance(y, Tensor):
        y = as_tensor_operand(float(y) if _is_scalar(y) else y, x)
    if x._data.ndim == 0 and x._data.dtype != y._data.dtype and y._data.dtype.kind == "f":
        x = wrap_array(x._data.astype(y._data.dtype)) if not x._rg else x
    if y._data.ndim == 0 and y._data.dtype != x._data.dtype and x._data.dtype.kind == "f":
        y = wrap_array(y._data.astype(x._data.dtype)) if not y._rg else y
    shape = _broadcast_shape(_broadcast_shape(cond.shape, x.shape), y.shape)
    if not _recording(x, y):
        return wrap_array(np.where(cond, x._data, y._data))
    if x.shape != shape:
        x = expand(x, shape) if x._rg else wrap_array(np.broadcast_to(x._data, shape))
    if y.shape != shape:
        y = expand(y, shape) if y._rg else wrap_array(np.broadcast_to(y._data, shape))
    cond = np.broadcast_to(cond, shape)
    dt = np.result_type(x._data, y._data)
    n = _size(shape)
    tape = _tape_for(dt, 4 * n + 4, x, y)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, np.where(cond, x._data, y._data))
    moff = tape.alloc(n)
    tape.values[moff : moff + n] = cond.reshape(-1)
    xoff, xrow = _operand(tape, x)
    yoff, yrow = _operand(tape, y)
    code = K.WHERE | (K.XRG if x._rg else 0) | (K.YRG if y._rg else 0)
    row = tape.record(code, off, xoff, yoff, n, moff, xrow, yrow)
    return _result(view, tape, off, row, WHERE, (x, y), wrap_array(np.array(cond, copy=True)))


# ---------------------------------------------------------------------------------------------------------
# structural ops: strided gather / scatter (views, broadcasting, reductions, cat) and index maps

_PROBE_BASE = np.zeros(1, np.int8)
_PROBE_ADDR = _PROBE_BASE.__array_interface__["data"][0]


def _probe(shape):
    """A fake int8 array whose byte strides are the element strides of a C-contiguous ``shape``.

    Applying numpy view operations (indexing, transpose, broadcast_to) to it yields the element strides and
    base offset of the same view of a real array, without touching memory.
    """
    return np.lib.stride_tricks.as_strided(_PROBE_BASE, shape=shape, strides=_c_strides(shape))


def _probe_layout(view):
    base = view.__array_interface__["data"][0] - _PROBE_ADDR
    return base, list(view.strides)


def _strided_index(shape, strides, base):
    """Flat offsets ``base + sum_k i_k * stride_k`` for every index of ``shape`` (C order)."""
    idx = np.full(shape, base, dtype=np.int64)
    for k, (extent, stride) in enumerate(zip(shape, strides)):
        if stride and extent > 1:
            sh = [1] * len(shape)
            sh[k] = extent
            idx = idx + (np.arange(extent, dtype=np.int64) * stride).reshape(sh)
    return idx.reshape(-1)


def _gather_strided_vjp(g, out, inputs, ctx):
    x_shape, strides, base = ctx
    return (scatter_strided(g, x_shape, strides, base, 1.0),)


def _scatter_strided_vjp(g, out, inputs, ctx):
    out_shape, strides, base, scale = ctx
    r = gather_strided(g, inputs[0].shape, strides, base)
    return (r * scale if scale != 1.0 else r,)


GATHER_STRIDED = Op("gather_strided", K.GATHER_STRIDED, "AsStridedBackward0", _gather_strided_vjp)
SCATTER_STRIDED = Op("scatter_strided", K.SCATTER_STRIDED, "AsStridedScatterBackward0", _scatter_strided_vjp)
EXPAND = Op("expand", K.GATHER_STRIDED, "ExpandBackward0", _gather_strided_vjp)
PERMUTE = Op("permute", K.GATHER_STRIDED, "PermuteBackward0", _gather_strided_vjp)
TRANSPOSE = Op("transpose", K.GATHER_STRIDED, "TransposeBackward0", _gather_strided_vjp)
SELECT = Op("getitem", K.GATHER_STRIDED, "SliceBackward0", _gather_strided_vjp)
SUM = Op("sum", K.SCATTER_STRIDED, "SumBackward1", _scatter_strided_vjp)
SUM_ALL = Op("sum_all", K.SUM_ALL, "SumBackward0", _scatter_strided_vjp)
MEAN = Op("mean", K.SCATTER_STRIDED, "MeanBackward1", _scatter_strided_vjp)
MEAN_ALL = Op("mean_all", K.SUM_ALL, "MeanBackward0", _scatter_strided_vjp)


def _record_gather_strided(op, x, out_data, strides, base):
    """Record ``out = x viewed with (out shape, strides, base)``; ``out_data`` is that view's values."""
    shape = out_data.shape
    n = out_data.size
    tape = _tape_for(x._data.dtype, n + x._data.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    aux = tape.add_aux([len(shape), base, *shape, *strides])
    row = tape.record(op.code | K.XRG, off, xoff, -1, n, aux, xrow)
    return _result(view, tape, off, row, op, (x,), (x.shape, tuple(strides), base))


@linear_op
def gather_strided(x, shape, strides, base):
    """``out[i] = x.flat[base + sum_k i_k * stride_k]`` for ``i`` over ``shape``."""
    shape = tuple(shape)
    flat = np.ascontiguousarray(x._data).reshape(-1)
    if not any(strides):  # one element everywhere (a scalar's cotangent spread by sum's rule): no index array
        out_data = np.full(shape, flat[base], flat.dtype)
    else:
        out_data = flat[_strided_index(shape, strides, base)].reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    return _record_gather_strided(GATHER_STRIDED, x, out_data, list(strides), base)


def _record_scatter_strided(op, x, out_data, strides, base, scale, ctx=None):
    shape = out_data.shape
    n = out_data.size
    tape = _tape_for(out_data.dtype, n + x._data.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    xs = x._data.shape
    aux = tape.add_aux([len(xs), base, *xs, *strides])
    row = tape.record(op.code | K.XRG, off, xoff, -1, n, aux, xrow, -1, scale)
    return _result(view, tape, off, row, op, (x,), ctx if ctx is not None else (shape, tuple(strides), base, scale))


@linear_op
def scatter_strided(x, shape, strides, base, scale=1.0):
    """``out = zeros(shape); out.flat[base + sum_k i_k * stride_k] += scale * x[i]`` for ``i`` over x."""
    shape = tuple(shape)
    xd = x._data
    out_flat = np.zeros(_size(shape), dtype=xd.dtype if xd.dtype.kind == "f" else np.float64)
    idx = _strided_index(xd.shape, strides, base)
    np.add.at(out_flat, idx, xd.reshape(-1) * scale if scale != 1.0 else xd.reshape(-1))
    out_data = out_flat.reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    return _record_scatter_strided(SCATTER_STRIDED, x, out_data, list(strides), base, scale)


@linear_op
def expand(x, *sizes):
    """Broadcast ``x`` to ``sizes`` (``-1`` keeps a dimension); differentiable (the adjoint sums)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    xs = x._data.shape
    if len(sizes) < len(xs):
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
            f"dimensions in the tensor ({len(xs)})"
        )
    lead = len(sizes) - len(xs)
    for k in range(lead):
        if sizes[k] == -1:
            raise RuntimeError(
                f"expand({list(sizes)}): the expanded size -1 isn't allowed in a leading, non-existing dimension {k}"
            )
    shape = tuple((xs[k - lead] if (s == -1 and k >= lead) else s) for k, s in enumerate(sizes))
    for k in range(len(xs)):
        if xs[k] != 1 and xs[k] != shape[k + lead]:
            raise RuntimeError(
                f"The expanded size of the tensor ({shape[k + lead]}) must match the existing size ({xs[k]}) at "
                f"non-singleton dimension {k + lead}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(xs)}"
            )
    if shape == xs:
        return x
    out_data = np.broadcast_to(x._data, shape)
    if not _recording(x):
        return wrap_array(out_data)
    base, strides = _probe_layout(np.broadcast_to(_probe(xs), shape))
    return _record_gather_strided(EXPAND, x, out_data, strides, base)


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


@linear_op
def permute(x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    nd = x._data.ndim
    if len(dims) != nd:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the "
            f"desired ordering of dimensions i.e. input.dim() = {nd} is not equal to len(dims) = {len(dims)}"
        )
    dims = tuple(_wrap_dim(d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    out_data = x._data.transpose(dims)
    if not _recording(x):
        return wrap_array(out_data)
    base, strides = _probe_layout(_probe(x._data.shape).transpose(dims))
    return _record_gather_strided(PERMUTE, x, out_data, strides, base)


@linear_op
def transpose(x, dim0, dim1):
    nd = x._data.ndim
    d0 = _wrap_dim(dim0, nd)
    d1 = _wrap_dim(dim1, nd)
    if nd == 0:
        return x
    if d0 == d1:
        return x
    perm = list(range(nd))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    out_data = x._data.transpose(perm)
    if not _recording(x):
        return wrap_array(out_data)
    base, strides = _probe_layout(_probe(x._data.shape).transpose(perm))
    return _record_gather_strided(TRANSPOSE, x, out_data, strides, base)


def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return transpose(x, 0, 1) if x.ndim == 2 else x


# --- reshapes: a copy row (the data is contiguous, only the shape changes)


def _reshape_vjp(g, out, inputs, ctx):
    return (reshape(g, inputs[0].shape),)


RESHAPE = Op("reshape", K.COPY, "ViewBackward0", _reshape_vjp)


@linear_op
def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s_ in shape:
        if s_ < -1:
            raise RuntimeError(f"invalid shape dimension {s_}")
    if builtins.sum(1 for s_ in shape if s_ == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    try:
        out_data = x._data.reshape(shape)
    except ValueError:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {x._data.size}") from None
    if out_data.shape == x._data.shape:
        return x if not _recording(x) else _record_copy(RESHAPE, x, out_data)
    if not _recording(x):
        return wrap_array(out_data)
    return _record_copy(RESHAPE, x, out_data)


def _record_copy(op, x, out_data):
    n = out_data.size
    tape = _tape_for(x._data.dtype, 2 * n + 2, x)
    off = tape.alloc(n)
    view = tape.view(off, out_data.shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    row = tape.record(K.COPY | K.XRG, off, xoff, -1, n, 0, xrow)
    return _result(view, tape, off, row, op, (x,), (0.0, 0.0))


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    nd = x._data.ndim
    if nd == 0:
        return reshape(x, (1,))
    s = _wrap_dim(start_dim, nd)
    e = _wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = x.shape[:s] + (_size(x.shape[s : e + 1]),) + x.shape[e + 1 :]
    return reshape(x, shape)


def squeeze(x, dim=None):
    shape = x.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {_wrap_dim(d, x.ndim) for d in dims}
        new = tuple(s for k, s in enumerate(shape) if not (k in dims and s == 1))
    return reshape(x, new) if new != shape else x


def unsqueeze(x, dim):
    nd = x._data.ndim + 1
    d = _wrap_dim(dim, nd)
    shape = x.shape[:d] + (1,) + x.shape[d:]
    return reshape(x, shape)


# --- reductions: a scatter into the reduced shape (strides 0 on reduced dims)


def _reduce_dims(x, dim):
    nd = x._data.ndim
    if dim is None:
        return tuple(range(nd))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    wrapped = [_wrap_dim(d, nd) for d in dims]
    if len(set(wrapped)) != len(wrapped):
        repeated = next(d for d in wrapped if wrapped.count(d) > 1)
        raise RuntimeError(f"dim {repeated} appears multiple times in the list of dims")
    out = tuple(sorted(wrapped))
    return out if out else tuple(range(nd))


def _reduce_layout(xs, dims):
    """Out strides of each x dim (0 on reduced dims) in the keepdim-shaped output."""
    kept_shape = [1 if k in dims else s for k, s in enumerate(xs)]
    cs = _c_strides(kept_shape)
    return [0 if k in dims else cs[k] for k in range(len(xs))]


_add_reduce = np.add.reduce


def _record_sum_all(op, x, total, scale):
    """Whole-tensor sum or mean: one SUM_ALL row, no aux (the common loss reduction)."""
    xd = x._data
    dt = xd.dtype
    tape = _tape_state.current.get(dt)
    if tape is None or tape.used + xd.size + 3 > tape.capacity or (x._tape is not None and x._tape.id > tape.id):
        tape = _tape_for(dt, xd.size + 3, x)
    off = tape.alloc(1)
    view = tape.values[off : off + 1].reshape(())
    view[()] = total
    if x._tape is tape:
        xoff = x._off
        xrow = x._row
    else:
        xoff, xrow = tape.import_tensor(x, True)
    n = xd.size
    row = tape.nrows
    if row >= tape.row_cap:
        tape.grow()
    tape.pack(tape.rows, row * 80, K.SUM_ALL | K.XRG, off, xoff, -1, 1, n, xrow, -1, scale, 0.0)
    tape.nrows = row + 1
    ndim = xd.ndim
    out = _result(view, tape, off, row, op, (x,), ((), (0,) * ndim, 0, scale))
    if n >= PARALLEL_MIN:
        tape.mark_vectorized(row, out)  # its backward fills x's cotangent: in one pass, across threads
    return out


@linear_op
def sum(x, dim=None, keepdim=False, *, dtype=None):  # noqa: A001 - torch's name
    xd = x._data
    if dim is None and not keepdim and dtype is None and x._rg and _grad_state.enabled:
        return _record_sum_all(SUM_ALL, x, _add_reduce(xd.reshape(-1)), 1.0)
    if dtype is not None:
        x = x.to(dtype)
        xd = x._data
    dims = _reduce_dims(x, dim)
    out_data = np.asarray(np.sum(xd, axis=dims, keepdims=keepdim))
    if xd.dtype.kind == "b":
        out_data = out_data.astype(np.int64)
    if not _recording(x):
        return wrap_array(out_data)
    return _record_scatter_strided(SUM, x, out_data, _reduce_layout(xd.shape, dims), 0, 1.0)


@linear_op
def mean(x, dim=None, keepdim=False, *, dtype=None):
    xd = x._data
    if dtype is not None:
        x = x.to(dtype)
        xd = x._data
    if xd.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
            f"dtype. Got: {xd.dtype}"
        )
    dims = _reduce_dims(x, dim)
    count = _size([xd.shape[d] for d in dims])
    out_data = np.asarray(np.mean(xd, axis=dims, keepdims=keepdim))
    if not _recording(x):
        return wrap_array(out_data)
    scale = 1.0 / count if count else math.nan
    if dim is None and not keepdim:
        return _record_sum_all(MEAN_ALL, x, out_data, scale)
    return _record_scatter_strided(MEAN, x, out_data, _reduce_layout(xd.shape, dims), 0, scale)


def _group_vjp(g, out, inputs, ctx):
    x = inputs[0]
    dims, keepdim, code = ctx
    gk = g if keepdim else _unsqueeze_dims(g, dims, x.ndim)
    ok = out if keepdim else _unsqueeze_dims(out, dims, x.ndim)
    if code == K.PROD:
        # gradient of a product: the product of the others (out / x where x has no zeros)
        return (expand(gk * ok, x.shape) / x,)
    mask = _const(x._data == ok._data, x._data.dtype)
    count = mask.sum(dims, keepdim=True)
    return (expand(gk, x.shape) * mask / count,)


def _unsqueeze_dims(t_, dims, nd):
    shape = list(t_.shape)
    for d in sorted(dims):
        shape.insert(d, 1)
    return reshape(t_, tuple(shape))


PROD = Op("prod", K.PROD, "ProdBackward1", _group_vjp, sample=(0.5, 1.5))
AMAX = Op("amax", K.AMAX, "AmaxBackward0", _group_vjp)
AMIN = Op("amin", K.AMIN, "AminBackward0", _group_vjp)


def _group_reduce(op, np_fn, x, dim, keepdim):
    xd = x._data
    dims = _reduce_dims(x, dim)
    if xd.size == 0 and op is not PROD:
        empty = [d for d in dims if xd.shape[d] == 0]
        if empty and dim not in (None, ()):
            raise IndexError(f"{op.name}(): Expected reduction dim {empty[0]} to have non-zero size.")
        raise RuntimeError(f"{op.name}(): Expected reduction dim to be specified for input.numel() == 0.")
    out_data = np.asarray(np_fn(xd, axis=dims, keepdims=keepdim))
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(xd.dtype, n + xd.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, out_data.shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    aux = tape.add_aux([xd.ndim, 0, *xd.shape, *_reduce_layout(xd.shape, dims)])
    row = tape.record(op.code | K.XRG, off, xoff, -1, n, aux, xrow)
    out = _result(view, tape, off, row, op, (x,), (dims, keepdim, op.code))
    if xd.size >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


@forward_rule(_group_jvp(K.PROD))
def prod(x, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    return _group_reduce(PROD, np.prod, x, dim, keepdim)


@forward_rule(_group_jvp(K.AMAX))
def amax(x, dim=None, keepdim=False):
    return _group_reduce(AMAX, np.max, x, () if dim is None else dim, keepdim)


@forward_rule(_group_jvp(K.AMIN))
def amin(x, dim=None, keepdim=False):
    return _group_reduce(AMIN, np.min, x, () if dim is None else dim, keepdim)


# --- index maps: integer-array indexing, gather, index_select, max(dim) values


def _gather_map_vjp(g, out, inputs, ctx):
    x_shape, index_map = ctx
    return (scatter_map(g, x_shape, index_map),)


def _scatter_map_vjp(g, out, inputs, ctx):
    out_shape, index_map = ctx
    return (gather_map(g, inputs[0].shape, index_map),)


GATHER_MAP = Op("gather_map", K.GATHER_MAP, "IndexBackward0", _gather_map_vjp)
SCATTER_MAP = Op("scatter_map", K.SCATTER_MAP, "IndexPutBackward0", _scatter_map_vjp)
GATHER = Op("gather", K.GATHER_MAP, "GatherBackward0", _gather_map_vjp)
INDEX_SELECT = Op("index_select", K.GATHER_MAP, "IndexSelectBackward0", _gather_map_vjp)
MAX_DIM = Op("max_dim", K.GATHER_MAP, "MaxBackward0", _gather_map_vjp)
MIN_DIM = Op("min_dim", K.GATHER_MAP, "MinBackward0", _gather_map_vjp)


@linear_op
def gather_map(x, shape, index_map, op=GATHER_MAP):
    """``out[i] = x.flat[index_map[i]]`` with ``out`` of ``shape``."""
    shape = tuple(shape)
    flat = np.ascontiguousarray(x._data).reshape(-1)
    index_map = np.ascontiguousarray(index_map, dtype=np.int64).reshape(-1)
    out_data = flat[index_map].reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(x._data.dtype, n + x._data.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    aux = len(tape.aux)
    tape.aux.append(n)
    tape.aux.frombytes(index_map.tobytes())
    row = tape.record(op.code | K.XRG, off, xoff, -1, n, aux, xrow)
    return _result(view, tape, off, row, op, (x,), (x.shape, index_map))


@linear_op
def scatter_map(x, shape, index_map):
    """``out = zeros(shape); out.flat[index_map[i]] += x.flat[i]`` (repeated indices accumulate)."""
    shape = tuple(shape)
    xd = x._data
    index_map = np.ascontiguousarray(index_map, dtype=np.int64).reshape(-1)
    out_flat = np.zeros(_size(shape), dtype=xd.dtype)
    np.add.at(out_flat, index_map, xd.reshape(-1))
    out_data = out_flat.reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(xd.dtype, n + xd.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    aux = len(tape.aux)
    tape.aux.append(xd.size)
    tape.aux.frombytes(index_map.tobytes())
    row = tape.record(K.SCATTER_MAP | K.XRG, off, xoff, -1, n, aux, xrow)
    return _result(view, tape, off, row, SCATTER_MAP, (x,), (shape, index_map))


def _index_key(key):
    """Split an indexing key into numpy form; report whether it needs an index map (advanced indexing)."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    advanced = False
    for k in key:
        if isinstance(k, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(k).__name__}'")
        if isinstance(k, Tensor):
            k = k._data
            advanced = True
        elif isinstance(k, (list, np.ndarray)):
            k = np.asarray(k)
            advanced = True
        elif isinstance(k, (bool, np.bool_)):
            advanced = True
        if isinstance(k, np.ndarray) and k.dtype.kind not in "iub":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        out.append(k)
    return tuple(out), advanced


@linear_op
def getitem(x, key):
    nkey, advanced = _index_key(key)
    xd = x._data
    try:
        out_data = xd[nkey]
    except IndexError as e:
        raise IndexError(str(e).replace("axis", "dimension")) from None
    out_data = np.asarray(out_data)
    if not _recording(x):
        return wrap_array(out_data.copy() if out_data.base is not None and advanced else out_data)
    if advanced:
        index_map = np.arange(xd.size, dtype=np.int64).reshape(xd.shape)[nkey]
        return gather_map(x, out_data.shape, index_map, GATHER_MAP)
    if not builtins.any(k is Ellipsis for k in nkey):
        nkey = nkey + (Ellipsis,)  # so that the probe stays an array (a view) when every dim is indexed
    base, strides = _probe_layout(_probe(xd.shape)[nkey])
    return _record_gather_strided(SELECT, x, out_data, strides, base)


def gather(x, dim, index):
    d = _wrap_dim(dim, x.ndim)
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    size = x.shape[d] if x.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise RuntimeError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {d} with size {size}")
    flat_index = np.arange(x._data.size, dtype=np.int64).reshape(x.shape)
    try:
        index_map = np.take_along_axis(flat_index, idx.astype(np.int64), axis=d)
    except (IndexError, ValueError) as e:
        raise RuntimeError(f"gather(): index out of bounds or shape mismatch: {e}") from None
    return gather_map(x, index_map.shape, index_map, GATHER)


def index_select(x, dim, index):
    d = _wrap_dim(dim, x.ndim)
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"index_select(): Expected dtype int32 or int64 for index, got {idx.dtype}")
    size = x.shape[d] if x.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise RuntimeError(
            f"INDICES element is out of DATA bounds, id={int(bad.reshape(-1)[0])} axis_dim={size} "
            f"(index_select on dimension {d} of size {size})"
        )
    flat_index = np.arange(x._data.size, dtype=np.int64).reshape(x.shape)
    index_map = np.take(flat_index, idx.reshape(-1).astype(np.int64), axis=d)
    return gather_map(x, index_map.shape, index_map, INDEX_SELECT)


class _MaxMin(tuple):
    """``(values, indices)``, as torch's ``torch.return_types.max``."""

    __slots__ = ()

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _max_min(x, dim, keepdim, is_max):
    if dim is None:
        return amax(x) if is_max else amin(x)
    d = _wrap_dim(dim, x.ndim)
    xd = x._data
    if xd.ndim == 0:
        return _MaxMin((x, wrap_array(np.array(0, np.int64))))
    if xd.shape[d] == 0:
        raise IndexError(f"{'max' if is_max else 'min'}(): Expected reduction dim {d} to have non-zero size.")
    arg = np.argmax(xd, axis=d) if is_max else np.argmin(xd, axis=d)
    arg_k = np.expand_dims(arg, d)
    flat_index = np.arange(xd.size, dtype=np.int64).reshape(xd.shape)
    index_map = np.take_along_axis(flat_index, arg_k, axis=d)
    out_shape = arg_k.shape if keepdim else arg.shape
    values = gather_map(x, out_shape, index_map, MAX_DIM if is_max else MIN_DIM)
    return _MaxMin((values, wrap_array(arg_k if keepdim else arg)))


def max(x, dim=None, keepdim=False):  # noqa: A001 - torch's name
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    return _max_min(x, dim, keepdim, True)


def min(x, dim=None, keepdim=False):  # noqa: A001 - torch's name
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    return _max_min(x, dim, keepdim, False)


# --- cat / stack: each input is a strided scatter into the output (one row per input)


def _cat_vjp(g, out, inputs, ctx):
    return tuple(
        gather_strided(g, t_.shape, strides, base) if t_._rg else None for t_, (strides, base) in zip(inputs, ctx)
    )


CAT = Op("cat", K.SCATTER_STRIDED, "CatBackward0", _cat_vjp)
STACK = Op("stack", K.SCATTER_STRIDED, "StackBackward0", _cat_vjp)


def _record_pieces(op, tensors, out_data, layouts):
    """Record ``out`` as the sum of strided scatters of ``tensors`` (layouts: ``(strides, base)`` each)."""
    shape = out_data.shape
    n = out_data.size
    dt = out_data.dtype
    total = n + 1 + np.sum([t_._data.size + 1 for t_ in tensors])
    newest = None
    for t_ in tensors:
        if t_._tape is not None and (newest is None or t_._tape.id > newest._tape.id):
            newest = t_
    tape = _tape_for(dt, int(total), newest)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    first = -1
    count = 0
    for t_, (strides, base) in zip(tensors, layouts):
        if not t_._rg:
            continue
        xoff, xrow = _operand(tape, t_)
        xs = t_._data.shape
        aux = tape.add_aux([len(xs), base, *xs, *strides])
        row = tape.record(K.SCATTER_STRIDED | K.XRG, off, xoff, -1, n, aux, xrow, -1, 1.0)
        if first < 0:
            first = row
        count += 1
    return _result(view, tape, off, first, op, tuple(tensors), layouts, nrows=count)


def _check_tensor_list(tensors, what):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{what}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        if what == "stack":
            raise RuntimeError("stack expects a non-empty TensorList")
        raise ValueError(f"{what}(): expected a non-empty list of Tensors")
    for t_ in tensors:
        if not isinstance(t_, Tensor):
            raise TypeError(f"{what}(): expected Tensor as element in argument 0, but got {type(t_).__name__}")


@forward_rule(_list_jvp("cat"))
def cat(tensors, dim=0):
    _check_tensor_list(tensors, "cat")
    tensors = list(tensors)
    for k, t_ in enumerate(tensors):
        if t_.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {k}) cannot be concatenated")
    nd = tensors[0].ndim
    d = _wrap_dim(dim, nd)
    arrays = [t_._data for t_ in tensors]
    for k, a in enumerate(arrays):
        if a.ndim != nd or a.shape[:d] + a.shape[d + 1 :] != arrays[0].shape[:d] + arrays[0].shape[d + 1 :]:
            raise RuntimeError(
                f"Sizes of tensors must match except in dimension {d}. Expected size "
                f"{list(arrays[0].shape)} but got size {list(a.shape)} for tensor number {k} in the list."
            )
    out_data = np.concatenate(arrays, axis=d)
    if not _recording(*tensors):
        return wrap_array(out_data)
    ostrides = _c_strides(out_data.shape)
    layouts = []
    offset = 0
    for a in arrays:
        layouts.append((list(ostrides), offset * ostrides[d]))
        offset += a.shape[d]
    return _record_pieces(CAT, tensors, out_data, layouts)


@forward_rule(_list_jvp("stack"))
def stack(tensors, dim=0):
    _check_tensor_list(tensors, "stack")
    tensors = list(tensors)
    shape0 = tensors[0].shape
    for k, t_ in enumerate(tensors):
        if t_.shape != shape0:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape0)} at entry 0 and "
                f"{list(t_.shape)} at entry {k}"
            )
    d = _wrap_dim(dim, len(shape0) + 1)
    out_data = np.stack([t_._data for t_ in tensors], axis=d)
    if not _recording(*tensors):
        return wrap_array(out_data)
    ostrides = _c_strides(out_data.shape)
    inner = ostrides[:d] + ostrides[d + 1 :]
    layouts = [(list(inner), k * ostrides[d]) for k in range(len(tensors))]
    return _record_pieces(STACK, tensors, out_data, layouts)


def split(x, split_size_or_sections, dim=0):
    d = _wrap_dim(dim, x.ndim)
    size = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        bounds = list(range(0, size, step)) + [size]
    else:
        sections = list(split_size_or_sections)
        if builtins.sum(sections) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at dimension "
                f"{d}), but got split_sizes={sections}"
            )
        bounds = [0]
        for s in sections:
            bounds.append(bounds[-1] + s)
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        key = (slice(None),) * d + (slice(lo, hi),)
        pieces.append(getitem(x, key))
    return tuple(pieces)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    d = _wrap_dim(dim, x.ndim)
    size = x.shape[d]
    step = -(-size // chunks) if size else 1
    return split(x, step, d)


# --- matmul


def _sum_to_shape(g, shape):
    """Sum ``g`` over broadcast dimensions so that it has ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    dims = list(range(lead)) + [lead + k for k, s in enumerate(shape) if s == 1 and g.shape[lead + k] != 1]
    out = sum(g, dims, keepdim=True) if dims else g
    return reshape(out, tuple(shape))


def _matmul_vjp(g, out, inputs, ctx):
    x, y = inputs
    if x.ndim == 1 and y.ndim == 1:  # dot product: g is a scalar
        return (g * y if x._rg else None, g * x if y._rg else None)
    if x.ndim == 2 and y.ndim == 1:  # matrix-vector: no transposed copies
        return (outer(g, y) if x._rg else None, matmul(g, x) if y._rg else None)
    if x.ndim == 1 and y.ndim == 2:
        return (matmul(y, g) if x._rg else None, outer(x, g) if y._rg else None)
    if x.ndim == 2 and y.ndim == 2:
        return (linear(g, y) if x._rg else None, matmul(transpose(x, 0, 1), g) if y._rg else None)
    xs = x if x.ndim > 1 else unsqueeze(x, 0)
    ys = y if y.ndim > 1 else unsqueeze(y, -1)
    gg = g
    if x.ndim == 1:
        gg = unsqueeze(gg, -2)
    if y.ndim == 1:
        gg = unsqueeze(gg, -1)
    gx = gy = None
    if x._rg:
        gx = matmul(gg, transpose(ys, -1, -2))
        if x.ndim == 1:
            gx = squeeze(gx, -2)
        gx = _sum_to_shape(gx, x.shape)
    if y._rg:
        gy = matmul(transpose(xs, -1, -2), gg)
        if y.ndim == 1:
            gy = squeeze(gy, -1)
        gy = _sum_to_shape(gy, y.shape)
    return gx, gy


MATMUL = Op("matmul", K.MATMUL, "MmBackward0", _matmul_vjp)


def _fused_matmul_jvp(x, y):
    """``x @ y`` at one dual level where exactly one operand has a tangent, a plain one, and the other none:
    one BLAS call computes the primal and the tangent together (``[x; tx] @ y`` or ``x @ [y, ty]``), reading
    the other operand (a weight matrix, say) once instead of twice. None where it does not apply (then the
    general rule runs)."""
    if type(x) is not Tensor or type(y) is not Tensor or (x._tangents is None) == (y._tangents is None):
        return None
    levels = _fw.levels
    if len(levels) != 1 or _fw.hidden:
        return None
    level = levels[0]
    dual, other = (x, y) if x._tangents is not None else (y, x)
    tan_t = dual._tangents.get(level)
    if tan_t is None or tan_t._tangents is not None:
        return None
    if _grad_state.enabled and (tan_t._rg or other._rg):
        return None  # the tangent's product would have to be recorded for reverse mode
    xd = x._data
    yd = y._data
    if not (1 <= xd.ndim <= 2 and 1 <= yd.ndim <= 2) or xd.shape[-1] != yd.shape[0] or xd.dtype != yd.dtype:
        return None  # (batched or mismatched operands: the general path, and its errors)
    if xd.dtype.kind != "f":
        return None
    tan = tan_t._data
    if tan.shape != dual._data.shape or tan.dtype != xd.dtype:
        return None
    # operand and tangent side by side in one buffer (cheaper than np.stack), then one product
    # (np.dot: for these 1-D and 2-D operands it means matmul, with less overhead than np.matmul)
    if dual is x:
        m = xd.shape[0] if xd.ndim == 2 else 1
        both_in = np.empty((2 * m, xd.shape[-1]), xd.dtype)
        both_in[:m] = xd
        both_in[m:] = tan
        both = np.dot(both_in, yd)
        primal, tangent = (both[:m], both[m:]) if xd.ndim == 2 else (both[0], both[1])
    else:
        n = yd.shape[1] if yd.ndim == 2 else 1
        both_in = np.empty((yd.shape[0], 2 * n), yd.dtype)
        both_in[:, :n] = yd.reshape(yd.shape[0], n)
        both_in[:, n:] = tan.reshape(yd.shape[0], n)
        both = np.dot(xd, both_in)
        primal, tangent = both[..., :n], both[..., n:]
        if yd.ndim == 1:
            primal, tangent = primal[..., 0], tangent[..., 0]
    if _grad_state.enabled and (x._rg or y._rg):
        out = _matmul(x, y, primal)  # records the primal's row
    else:
        out = _new(Tensor)
        out._data = np.array(primal, order="C")  # (np.array keeps a 0-d result 0-d)
    _forward.set_tangent(out, level, wrap_array(np.array(tangent, order="C")))
    return out


@forward_rule(_matmul_jvp, fused=_fused_matmul_jvp)
def matmul(x, y):
    return _matmul(x, y)


def _matmul(x, y, product=None):
    """``x @ y``; ``product``: its value, when the caller computed it already (``_fused_matmul_jvp``)."""
    _tensor_arg(x, "matmul", "input")
    _tensor_arg(y, "matmul", "other")
    xd = x._data
    yd = y._data
    xn = xd.ndim
    yn = yd.ndim
    if (
        0 < xn <= 2
        and 0 < yn <= 2
        and xd.shape[-1] == yd.shape[0]
        and xd.dtype is yd.dtype
        and xd.dtype.kind == "f"
        and _recording(x, y)
    ):
        # vectors and matrices, the common case: no batch to broadcast, the row's layout directly
        m = xd.shape[0] if xn == 2 else 1
        k = yd.shape[0]
        n = yd.shape[1] if yn == 2 else 1
        out_shape = ((m,) if xn == 2 else ()) + ((n,) if yn == 2 else ())
        return _record_matmul(x, y, out_shape, [1, m, k, n, m * k, k * n], product)
    if xd.ndim == 0 or yd.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {xd.ndim}D and {yd.ndim}D")
    xs2 = xd.shape if xd.ndim > 1 else (1,) + xd.shape
    ys2 = yd.shape if yd.ndim > 1 else yd.shape + (1,)
    if xs2[-1] != ys2[-2]:
        if xd.ndim <= 2 and yd.ndim <= 2:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({xs2[-2]}x{xs2[-1]} and {ys2[-2]}x{ys2[-1]})"
            )
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{xs2[-1]}] but got: [{ys2[-2]}]."
        )
    if xd.dtype != yd.dtype and xd.dtype.kind == "f" and yd.dtype.kind == "f":
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_torch_dtype(xd.dtype)} != {_torch_dtype(yd.dtype)}"
        )
    out_shape = _matmul_shape(xd.shape, yd.shape)  # also raises torch's error for unbroadcastable batches
    if not _recording(x, y):
        # (before any batch expansion below)
        return wrap_array(np.asarray(np.matmul(xd, yd)) if product is None else np.array(product, order="C"))
    bx = xs2[:-2]
    by = ys2[:-2]
    batch = _broadcast_shape(bx, by) if bx != by else bx
    B = _size(batch)
    M, K_ = xs2[-2], xs2[-1]
    N = ys2[-1]
    if _size(bx) not in (1, B) or (_size(bx) == B and bx != batch):
        x = expand(x if xd.ndim > 1 else unsqueeze(x, 0), batch + (M, K_))
    if _size(by) not in (1, B) or (_size(by) == B and by != batch):
        y = expand(y if yd.ndim > 1 else unsqueeze(y, -1), batch + (K_, N))
    xbatch = _size(x._data.shape[:-2]) if x.ndim > 1 else 1
    ybatch = _size(y._data.shape[:-2]) if y.ndim > 1 else 1
    xbs = M * K_ if xbatch == B else 0  # stride 0: one matrix broadcast over the batch
    ybs = K_ * N if ybatch == B else 0
    # the operands may have been expanded to a common batch (one more leading 1): the row's output has the
    # expanded shape, so that its rule sees consistent shapes; a reshape row gives the caller's shape
    node_shape = _matmul_shape(x.shape, y.shape)
    out = _record_matmul(x, y, node_shape, (B, M, K_, N, xbs, ybs), product)
    return out if node_shape == out_shape else reshape(out, out_shape)


def _record_matmul(x, y, node_shape, layout, product=None):
    """Record the MATMUL row of ``x @ y`` (operands of a common batch; ``layout``: the row's aux, (B, M, K,
    N, x batch stride, y batch stride)) and return its output of ``node_shape``, computed here or given."""
    dt = x._data.dtype if x._data.dtype is y._data.dtype else np.result_type(x._data, y._data)
    n = _size(node_shape)
    tape = _tape_for(dt, n + x._data.size + y._data.size + 2, x, y)
    off = tape.alloc(n)
    view = tape.view(off, node_shape, n)
    if product is None:
        np.matmul(x._data, y._data, out=view)
    else:
        view[...] = product
    xoff, xrow = _operand(tape, x)
    yoff, yrow = _operand(tape, y)
    aux = tape.add_aux(layout)
    code = K.MATMUL | (K.XRG if x._rg else 0) | (K.YRG if y._rg else 0)
    row = tape.record(code, off, xoff, yoff, n, aux, xrow, yrow)
    out = _result(view, tape, off, row, MATMUL, (x, y))
    if x._data.size >= BIG_ROW or y._data.size >= BIG_ROW or n >= BIG_ROW:
        tape.mark_vectorized(row, out)  # BLAS through numpy, on the operands' own arrays
    return out


def _matmul_shape(xs, ys):
    xs2 = xs if len(xs) > 1 else (1,) + tuple(xs)
    ys2 = ys if len(ys) > 1 else tuple(ys) + (1,)
    batch = _broadcast_shape(tuple(xs2[:-2]), tuple(ys2[:-2]))
    shape = batch + (xs2[-2], ys2[-1])
    if len(xs) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(ys) == 1:
        shape = shape[:-1]
    return tuple(shape)


def outer(x, y):
    """Outer product of two vectors (``x[:, None] * y[None, :]``)."""
    for name, t_ in (("self", x), ("vec2", y)):
        if _tensor_arg(t_, "outer", name).ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t_.ndim}-D")
    return mul(unsqueeze(x, 1), unsqueeze(y, 0))


def _torch_dtype(dt):
    return {"float64": "double", "float32": "float", "int64": "long", "int32": "int"}.get(str(dt), str(dt))


def mm(x, y):
    if x.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if y.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return matmul(x, y)


def dot(x, y):
    if x.ndim != 1 or y.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {x.ndim}D and {y.ndim}D tensors")
    if x.shape[0] != y.shape[0]:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{x.shape[0]}] and src [{y.shape[0]}] to have the same "
            f"number of elements, but got {x.shape[0]} and {y.shape[0]} elements respectively"
        )
    return matmul(x, y)


# --- creation helpers used by rules


def zeros_like(x, *, dtype=None, requires_grad=False):
    return wrap_array(np.zeros(x.shape, dtype=dtype or x.dtype), requires_grad)


def ones_like(x, *, dtype=None, requires_grad=False):
    return wrap_array(np.ones(x.shape, dtype=dtype or x.dtype), requires_grad)


_LIST_OPS = {"cat": cat, "stack": stack}


# --- log_softmax: one row (the loss layer of every classifier; as a composite it costs five)


def _log_softmax_vjp(g, out, inputs, ctx):
    dim = ctx
    return (g - exp(out) * sum(g, dim, keepdim=True),)


def _log_softmax_jvp(tan, out, x, dim):
    t_ = tan(x)
    if t_ is None:
        return None
    d = _wrap_dim(dim, x.ndim)
    return t_ - sum(exp(out) * t_, d, keepdim=True)


LOG_SOFTMAX = Op("log_softmax", K.LOG_SOFTMAX, "LogSoftmaxBackward0", _log_softmax_vjp)


@forward_rule(_log_softmax_jvp)
def log_softmax_dim(x, dim):
    """``x - logsumexp(x, dim)``, computed stably; its reverse rule is ``g - softmax(x) * sum(g)``."""
    xd = x._data
    if xd.dtype.kind != "f":
        raise NotImplementedError(
            f"log_softmax_lastdim_kernel_impl not implemented for '{_torch_dtype(xd.dtype).capitalize()}'"
        )
    d = _wrap_dim(dim, xd.ndim)
    if xd.ndim == 0:
        out_data = np.zeros((), xd.dtype)
    else:
        m = np.max(xd, axis=d, keepdims=True) if xd.size else np.zeros(1, xd.dtype)
        m = np.where(np.isfinite(m), m, 0.0).astype(xd.dtype, copy=False)
        shifted = xd - m
        out_data = shifted - np.log(np.sum(np.exp(shifted), axis=d, keepdims=True))
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(out_data.dtype, 2 * n + 2, x)
    off = tape.alloc(n)
    view = tape.view(off, out_data.shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    shape = xd.shape if xd.ndim else (1,)
    dd = d if xd.ndim else 0
    aux = tape.add_aux([_size(shape[:dd]), shape[dd], _size(shape[dd + 1 :])])
    row = tape.record(K.LOG_SOFTMAX | K.XRG, off, xoff, -1, n, aux, xrow)
    out = _result(view, tape, off, row, LOG_SOFTMAX, (x,), dd)
    if n >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


# --- linear: x @ w.T without materializing w.T (torch stores weights as (out, in))


def _linear_vjp(g, out, inputs, ctx):
    x, w = inputs
    gx = linear(g, transpose(w, 0, 1)) if x._rg else None
    gw = None
    if w._rg:
        g2 = reshape(g, (-1, w.shape[0]))
        x2 = reshape(x, (-1, w.shape[1]))
        gw = matmul(transpose(g2, 0, 1), x2)
    return gx, gw


def _linear_jvp(tan, out, x, w):
    tx = tan(x)
    tw = tan(w)
    return _terms(linear(tx, w) if tx is not None else None, linear(x, tw) if tw is not None else None)


LINEAR = Op("linear", K.LINEAR, "MmBackward0", _linear_vjp)


@forward_rule(_linear_jvp)
def linear(x, w):
    """``x @ w.T`` for ``w`` of shape (out, in), without copying the transpose."""
    xd = x._data
    wd = w._data
    if wd.ndim != 2:
        return matmul(x, transpose(w, 0, 1) if wd.ndim == 2 else w)
    if xd.shape[-1] != wd.shape[1]:
        m = _size(xd.shape[:-1])
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({m}x{xd.shape[-1]} and {wd.shape[1]}x{wd.shape[0]})"
        )
    if xd.dtype != wd.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_torch_dtype(xd.dtype)} != {_torch_dtype(wd.dtype)}"
        )
    if not _recording(x, w):
        return wrap_array(np.matmul(xd, wd.T))
    N, K_ = wd.shape
    out_shape = xd.shape[:-1] + (N,)
    M = _size(xd.shape[:-1])
    n = M * N
    tape = _tape_for(xd.dtype, n + xd.size + wd.size + 2, x, w)
    off = tape.alloc(n)
    view = tape.view(off, out_shape, n)
    np.matmul(xd, wd.T, out=view)
    xoff, xrow = _operand(tape, x)
    woff, wrow = _operand(tape, w)
    aux = tape.add_aux([M, K_, N])
    code = K.LINEAR | (K.XRG if x._rg else 0) | (K.YRG if w._rg else 0)
    row = tape.record(code, off, xoff, woff, n, aux, xrow, wrow)
    out = _result(view, tape, off, row, LINEAR, (x, w))
    if xd.size >= BIG_ROW or wd.size >= BIG_ROW or n >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


# --- linear with a bias: one row for x @ w.T + b (every dense layer). As linear then ``+ b`` it costs two more
# rows, a broadcast copy of b the size of the output in the forward pass, and in the backward a strided walk
# to sum that copy back down; here the bias cotangent is a column sum of g, taken where g is read anyway.


def _linear_bias_vjp(g, out, inputs, ctx):
    x, w, b = inputs
    gx, gw = _linear_vjp(g, out, (x, w), ctx)
    gb = sum(reshape(g, (-1, w.shape[0])), 0) if b._rg else None
    return gx, gw, gb


def _linear_bias_jvp(tan, out, x, w, b):
    tb = tan(b)
    return _terms(_linear_jvp(tan, out, x, w), expand(tb, out.shape) if tb is not None else None)


LINEAR_BIAS = Op("linear_bias", K.LINEAR_BIAS, "AddmmBackward0", _linear_bias_vjp)


@forward_rule(_linear_bias_jvp)
def linear_bias(x, w, b):
    """``x @ w.T + b`` for ``w`` of shape (out, in) and ``b`` of shape (out,), recorded as one row.

    The caller (``nn.functional.linear``) checks shapes and dtypes: anything else goes through ``linear`` and
    ``+``, which raise torch's errors."""
    xd = x._data
    wd = w._data
    bd = b._data
    if not _recording(x, w, b):
        res = np.matmul(xd, wd.T)
        res += bd
        return wrap_array(res)
    N, K_ = wd.shape
    out_shape = xd.shape[:-1] + (N,)
    M = _size(xd.shape[:-1])
    n = M * N
    need = n + xd.size + wd.size + N + 3
    tape = _tape_for(xd.dtype, need, x, w)
    if b._tape is not None and b._tape.id > tape.id:
        tape = current_tape(xd.dtype, need, b._tape.id)
    off = tape.alloc(n)
    view = tape.view(off, out_shape, n)
    np.matmul(xd, wd.T, out=view)
    view += bd  # in place, while the rows of the product are still in cache
    xoff, xrow = _operand(tape, x)
    woff, wrow = _operand(tape, w)
    boff, brow = _operand(tape, b)
    aux = tape.add_aux([M, K_, N, boff, brow, 1 if b._rg else 0])
    code = K.LINEAR_BIAS | (K.XRG if x._rg else 0) | (K.YRG if w._rg else 0)
    row = tape.record(code, off, xoff, woff, n, aux, xrow, wrow)
    out = _result(view, tape, off, row, LINEAR_BIAS, (x, w, b))
    if xd.size >= BIG_ROW or wd.size >= BIG_ROW or n >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


# --- cross entropy of logits against class indices, mean over the batch: one row (every classifier's loss).
# As log_softmax, a gather, a sum and a negation it is four rows and a dozen small numpy calls in the forward
# pass; the fused row computes the loss from the row maxima and log-sum-exps and its backward recomputes the
# softmax from the saved logits. ``nn.functional.cross_entropy`` sends only the plain case here.


def _cross_entropy_vjp(g, out, inputs, ctx):
    (x,) = inputs
    onehot = _onehot(ctx, x)
    return ((exp(log_softmax_dim(x, 1)) - onehot) * (g * (1.0 / x.shape[0])),)


def _cross_entropy_jvp(tan, out, x, target):
    tx = tan(x)
    if tx is None:
        return None
    return sum((exp(log_softmax_dim(x, 1)) - _onehot(target, x)) * tx) * (1.0 / x.shape[0])


def _onehot(target, x):
    m, c = x.shape
    onehot = np.zeros((m, c), x._data.dtype)
    onehot[np.arange(m), target] = 1.0
    return wrap_array(onehot)


CROSS_ENTROPY = Op("cross_entropy", K.CROSS_ENTROPY, "NllLossBackward0", _cross_entropy_vjp)


@forward_rule(_cross_entropy_jvp)
def cross_entropy_mean(x, target):
    """``mean_i(logsumexp(x[i]) - x[i, target[i]])`` for float logits ``x`` (M, C), M > 0, and int64 class
    indices ``target`` (M,), each in ``[0, C)`` (the caller checks): ``F.cross_entropy(x, target)``."""
    xd = np.ascontiguousarray(x._data)
    target = np.ascontiguousarray(target, dtype=np.int64)
    loss = _cpu.cross_entropy_forward(xd, target)
    M, C = xd.shape
    out_data = np.asarray(loss, dtype=xd.dtype)  # (accumulated in float64 by the kernel)
    if not _recording(x):
        return wrap_array(out_data)
    tape = _tape_for(xd.dtype, xd.size + 2, x)
    off = tape.alloc(1)
    view = tape.view(off, (), 1)
    view[...] = out_data
    xoff, xrow = _operand(tape, x)
    aux = len(tape.aux)
    tape.aux.append(M)
    tape.aux.append(C)
    tape.aux.frombytes(target.tobytes())
    row = tape.record(K.CROSS_ENTROPY | K.XRG, off, xoff, -1, 1, aux, xrow)
    out = _result(view, tape, off, row, CROSS_ENTROPY, (x,), target)
    if xd.size >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out
