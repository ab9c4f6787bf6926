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

import numpy as np

from kernels import cpu as _cpu
from kernels import opcodes as K

from .. import forward as _forward
from .. import views as _views
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
            return sum(_prod_partial(x, dims, ok) * t_, dims, keepdim=keepdim)
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
# elementwise unary and binary ops: ad/ops/elementwise.py (re-exported here, so ``ops.X`` keeps working)

from .elementwise import (  # noqa: E402, F401 - the package's names
    _AFFINE_NAMES,
    _ATTR_CODES,
    ABS,
    ADD,
    AFFINE,
    CAST,
    CLAMP,
    COPY,
    COS,
    DIV,
    ERF,
    EXP,
    EXPM1,
    LOG,
    LOG1P,
    MAXIMUM,
    MINIMUM,
    MUL,
    NEG,
    POW,
    POW_SCALAR,
    RDIV_SCALAR,
    RELU,
    RPOW_SCALAR,
    RSQRT,
    SIGMOID,
    SIN,
    SQRT,
    SQUARE,
    SUB,
    TAN,
    TANH,
    TANH_BACKWARD,
    _add_fast,
    _affine_fast,
    _affine_np,
    _as_float_operand,
    _binary,
    _binary_np,
    _binary_op,
    _binary_vjp,
    _clamp_np,
    _compiled_jvp_binary,
    _compiled_jvp_unary,
    _const,
    _copy_np,
    _dual_binary,
    _dual_result,
    _dual_unary,
    _elementwise_vjp,
    _fast_binary,
    _fast_unary,
    _flat,
    _is_scalar,
    _mul_fast,
    _pow_scalar_np,
    _rdiv_scalar_np,
    _relu_np,
    _rpow_scalar_np,
    _rsqrt_np,
    _sign_const,
    _square_np,
    _sub_fast,
    _tanh_backward_np,
    _tensor_arg,
    _terms,
    _trig_forward,
    _unary,
    _unary_fn,
    _unary_np,
    _unary_np_serial,
    abs,
    add,
    affine,
    cast,
    clamp,
    clip,
    clone,
    cos,
    div,
    elementwise,
    erf,
    exp,
    expm1,
    formula_binary,
    log,
    log1p,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    rdiv,
    relu,
    rsqrt,
    rsub,
    sigmoid,
    sin,
    sqrt,
    square,
    sub,
    tanh,
    tanh_backward,
)
from .elementwise import tan as tan  # noqa: E402 - re-exported (rules name their tangent getter `tan`)
from .pointwise_ops import (  # noqa: E402, F401 - issue 13's elementwise ops
    ACOS,
    ACOSH,
    ASIN,
    ASINH,
    ATAN,
    ATAN2,
    ATANH,
    CEIL,
    COPYSIGN,
    COSH,
    ERFC,
    ERFINV,
    EXP2,
    FLOOR,
    FMOD,
    HYPOT,
    LOG2,
    LOG10,
    LOGADDEXP,
    LOGIT,
    REMAINDER,
    ROUND,
    SIGN,
    SINC,
    SINH,
    TRUNC,
    XLOGY,
    _binary_fn,
    _comparison,
    _float_input,
    _logit_np,
    _operands,
    _predicate,
    _round_np,
    _scalar_operand,
    _sign_int,
    _sinc_np,
    _step_fn,
    _step_np,
    acos,
    acosh,
    addcdiv,
    addcmul,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    ceil,
    copysign,
    cosh,
    deg2rad,
    eq,
    erfc,
    erfinv,
    exp2,
    fix,
    floor,
    floor_divide,
    fmax,
    fmin,
    fmod,
    frac,
    ge,
    greater,
    greater_equal,
    gt,
    hypot,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    le,
    lerp,
    less,
    less_equal,
    log2,
    log10,
    logaddexp,
    logit,
    lt,
    nan_to_num,
    ne,
    not_equal,
    rad2deg,
    remainder,
    rfloordiv,
    round,
    rremainder,
    sign,
    signbit,
    sinc,
    sinh,
    trunc,
    xlogy,
)

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
    return _view(EXPAND, x, lambda a: _writable_broadcast(a, shape))


def _writable_broadcast(a, shape):
    """``np.broadcast_to`` that stays writable (torch lets views of an expanded tensor be written)."""
    b = np.broadcast_to(a, shape)
    return np.lib.stride_tricks.as_strided(a, shape=shape, strides=b.strides) if a.flags.writeable else b


def _view(op, x, fn, multi=False, name=None):
    """``fn(x)`` as a view of ``x`` (``fn`` maps an array to a numpy view of it): a recorded strided gather
    when recording (its arena copy is the kernel's snapshot), sharing ``x``'s storage (ad/views.py)."""
    out_data = fn(x._data)
    if not _recording(x):
        out = wrap_array(out_data)
    else:
        base, strides = _probe_layout(fn(_probe(x._data.shape)))
        out = _record_gather_strided(op, x, out_data, strides, base)
    return _views.alias(x, out, out_data, multi, name)


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
    return _view(PERMUTE, x, lambda a: a.transpose(dims))


@linear_op
def transpose(x, dim0, dim1):
    nd = x._data.ndim
    d0 = _wrap_dim(dim0, nd)
    d1 = _wrap_dim(dim1, nd)
    perm = list(range(nd))
    if nd:
        perm[d0], perm[d1] = perm[d1], perm[d0]
    return _view(TRANSPOSE, x, lambda a: a.transpose(perm))


T_OP = Op("t", K.GATHER_STRIDED, "TBackward0", _gather_strided_vjp, register=False)  # transpose(0, 1) as t()


@linear_op
def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return _view(T_OP, x, lambda a: a.T)


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
    return _reshape(x, shape, False)


def _reshape(x, shape, strict, op=None):
    """``reshape`` (``strict=False``: a view when the layout allows, else a copy) or ``view`` (``strict``: a
    layout that needs a copy is torch's error)."""
    xd = x._data
    try:
        out_data = xd.reshape(shape, copy=False)
        is_view = True
    except ValueError:
        try:
            out_data = xd.reshape(shape)
        except ValueError:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {xd.size}") from None
        if strict:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one dimension spans "
                "across two contiguous subspaces). Use .reshape(...) instead."
            ) from None
        is_view = False
    if op is None:
        op = RESHAPE if is_view else RESHAPE_COPY
    out = _record_copy(op, x, out_data) if _recording(x) else wrap_array(out_data)
    return _views.alias(x, out, out_data) if is_view else out


RESHAPE_COPY = Op("reshape_copy", K.COPY, "UnsafeViewBackward0", _reshape_vjp, register=False)  # copies
SQUEEZE = Op("squeeze", K.COPY, "SqueezeBackward0", _reshape_vjp, register=False)
SQUEEZE_DIM = Op("squeeze_dim", K.COPY, "SqueezeBackward1", _reshape_vjp, register=False)
SQUEEZE_DIMS = Op("squeeze_dims", K.COPY, "SqueezeBackward2", _reshape_vjp, register=False)
# a graph node written under no_grad gets a fresh arena copy joined by this row (ad/views.py, rehome_after_write)
REHOME = Op("rehome", K.COPY, lambda ctx: ctx, _reshape_vjp, register=False)
UNSQUEEZE = Op("unsqueeze", K.COPY, "UnsqueezeBackward0", _reshape_vjp, register=False)


def _record_copy(op, x, out_data):
    n = out_data.size
    tape = _tape_for(x._data.dtype, 2 * n + 2, x)
    off = tape.alloc(n)
    view = tape.view(off, out_data.shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    row = tape.record(K.COPY | K.XRG, off, xoff, -1, n, 0, xrow)
    return _result(view, tape, off, row, op, (x,), (0.0, 0.0))


@linear_op
def view(x, *shape):
    """``reshape`` that never copies: a shape the layout cannot give without a copy raises torch's error."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if builtins.sum(1 for s_ in shape if s_ == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    return _reshape(x, shape, True)


def flatten(x, start_dim=0, end_dim=-1):
    nd = x._data.ndim
    if nd == 0:
        return reshape(x, (1,))
    s = _wrap_dim(start_dim, nd)
    e = _wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return x  # torch returns the input itself (not a view): hooks, retain_grad and .grad land on it
    shape = x.shape[:s] + (_size(x.shape[s : e + 1]),) + x.shape[e + 1 :]
    return reshape(x, shape)


@linear_op
def squeeze(x, dim=None):
    shape = x.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {_wrap_dim(d, x.ndim) for d in dims}
        new = tuple(s for k, s in enumerate(shape) if not (k in dims and s == 1))
    op = SQUEEZE if dim is None else SQUEEZE_DIMS if isinstance(dim, (tuple, list)) else SQUEEZE_DIM
    return _reshape(x, new, True, op)


@linear_op
def unsqueeze(x, dim):
    nd = x._data.ndim + 1
    d = _wrap_dim(dim, nd)
    shape = x.shape[:d] + (1,) + x.shape[d:]
    return _reshape(x, shape, True, UNSQUEEZE)


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
    if nd == 0:
        return ()  # a 0-d tensor accepts dim 0 and -1 (checked above) and reduces over nothing, as torch's
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
        return (expand(gk, x.shape) * _prod_partial(x, dims, ok),)
    mask = _const(x._data == ok._data, x._data.dtype)
    count = mask.sum(dims, keepdim=True)
    return (expand(gk, x.shape) * mask / count,)


def _prod_partial(x, dims, ok):
    """d prod(x, dims) / d x, written with ``ad`` ops: the product of the other elements of each group.

    Without zeros that is ``out / x``. With an exact zero, ``out / x`` is ``0 / 0``: each group of ``n`` elements
    is spread into an ``n x n`` matrix whose diagonal is replaced by ones, and its rows multiplied (as torch's
    ``prod_safe_zeros_backward``, which branches on the data in the same way). ``ok`` is the output with the
    reduced dims kept."""
    if not np.any(x._data == 0):
        return expand(ok, x.shape) / x
    kept = [d for d in range(x.ndim) if d not in dims]
    perm = kept + list(dims)
    lead = tuple(x.shape[d] for d in kept)
    n = 1
    for d in dims:
        n *= x.shape[d]
    grouped = reshape(permute(x, *perm), (*lead, 1, n)) if perm else reshape(x, (1, n))
    spread = expand(grouped, (*lead, n, n))
    others = prod(where(np.eye(n, dtype=bool), ones_like(spread), spread), -1)  # (*lead, n)
    back = reshape(others, tuple(x.shape[d] for d in perm))
    return permute(back, *np.argsort(perm).tolist()) if perm else back


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
        if dim in (None, ()):
            raise RuntimeError(
                f"{op.name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction "
                "dim with the 'dim' argument."
            )
        if empty:
            raise IndexError(f"{op.name}(): Expected reduction dim {empty[0]} to have non-zero size.")
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
# a view regenerated after an in-place write into its base (ad/views.py): a gather from the base's new node
AS_STRIDED_VIEW = Op("as_strided_view", K.GATHER_MAP, "AsStridedBackward0", _gather_map_vjp)
# the base's node after a write through one of its views: ``base * keep + scatter(value)`` (ad/views.py)
COPY_SLICES = Op(
    "copy_slices", K.ADD, "torch::autograd::CopySlices", ADD.vjp, ADD.partial, ADD.np_fn, jvp=ADD.jvp, register=False
)
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
    if advanced:
        if not _recording(x):
            return wrap_array(out_data.copy() if out_data.base is not None else out_data)
        index_map = np.arange(xd.size, dtype=np.int64).reshape(xd.shape)[nkey]
        return gather_map(x, out_data.shape, index_map, GATHER_MAP)
    if not builtins.any(k is Ellipsis for k in nkey):
        nkey = nkey + (Ellipsis,)  # so that the result stays an array (a view) when every dim is indexed
    return _view(SELECT, x, lambda a: a[nkey])


def gather(x, dim, index):
    d = _wrap_dim(dim, x.ndim)
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {idx.dtype}")
    if idx.ndim != x.ndim and not (x.ndim == 0 and idx.ndim == 1):  # torch: a 0-d input takes a 1-d index too
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    size = x.shape[d] if x.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise RuntimeError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {d} with size {size}")
    if x.ndim == 0:  # torch treats a 0-d input as one element along dim 0
        return gather_map(x, idx.shape, np.zeros(idx.shape, np.int64), GATHER)
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
    if x.ndim == 0:  # torch: a 0-d input gives a 0-d result
        if idx.size != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {idx.size} value(s)")
        return gather_map(x, (), np.zeros(1, np.int64), INDEX_SELECT)
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
    if xd.ndim == 0:  # a new tensor (torch's values are not the input, nor a view of it)
        values = gather_map(x, (), np.zeros(1, np.int64), MAX_DIM if is_max else MIN_DIM)
        return _MaxMin((values, wrap_array(np.array(0, np.int64))))
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
    if x.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, x.ndim)
    size = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        bounds = list(range(0, size, step)) + [size] if size else [0, 0]  # an empty dim: one empty piece
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
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        key = (slice(None),) * d + (slice(lo, hi), Ellipsis)
        pieces.append(_split_piece(x, key, ("Split", k)))
    return tuple(pieces)


@linear_op
def _split_piece(x, key, name):
    """``x[key]`` as output ``name[1]`` of several views returned together by op ``name[0]`` (torch refuses
    in-place writes into those)."""
    return _view(SELECT, x, lambda a: a[key], multi=True, name=name)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    if x.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, x.ndim)
    size = x.shape[d]
    if size == 0:  # torch: ``chunks`` empty pieces
        key = (slice(None),) * d + (slice(0, 0), Ellipsis)
        return tuple(_split_piece(x, key, ("Split", k)) for k in range(chunks))
    step = -(-size // chunks)
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
    """``gx = g @ y^T``, ``gy = x^T @ g`` (summed over broadcast batches), as ad ops: the differentiable rule.

    The same formula is stated twice more, on purpose (issue 16 asks for one source or the reason why not):
    the kernel sweep (``kernels/cpu._matmul_backward``) runs it inside the compiled loop on arena slices,
    where no Python, and so no ad op, can run; the big-row path (``engine._matmul_row``) has BLAS write into
    the cotangent regions themselves (``out=``, no temporaries, no zero fill), which an op returning a new
    tensor cannot do. The op-table tests check the kernel sweep against this rule, and the property tests
    with lowered big-row thresholds check the big-row path against finite differences."""
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
