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
import inspect

import numpy as np

from kernels import opcodes as K

from .. import forward as _forward
from ..forward import _fw
from ..grad_mode import _grad_state
from ..tape import _state as _tape_state
from ..tape import current_tape
from ..tensor import Tensor, _new, wrap_array

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


def _by_position(fn, args, kwargs):
    """``fn``'s arguments with those given by keyword that could go by position moved there (torch's keyword
    names, ``input=`` ...), so a forward rule written as ``jvp(tan, out, x, dim0, dim1)`` sees them."""
    sig = fn.__dict__.get("_ad_signature")
    if sig is None:
        sig = inspect.signature(fn)
        fn._ad_keyword_only = frozenset(
            name for name, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
        )
        fn._ad_signature = sig  # (last: another thread reads both once it sees this)
    if kwargs.keys() <= fn._ad_keyword_only:
        return args, kwargs  # (``sum(x, dim, keepdim, dtype=None)``: nothing to move, and binding costs ~10 us)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return args, kwargs  # the call itself raises its TypeError
    return bound.args, bound.kwargs


def forward_rule(jvp, fused=None):
    """Give a public op its forward-mode rule ``jvp(tan, out, *args, **kwargs)`` (``tan(t)``: the tangent of
    operand ``t`` at the level being computed, or None). Costs one check when no dual level is active.
    ``fused(*args, **kwargs)``, if given, is tried first: it returns the dual result computed in one go, or
    None where it does not apply."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _fw.levels:
                if kwargs:  # ``transpose(input=t, dim0=0, dim1=1)``: the rules take the operands by position
                    if kwargs.get("out") is not None:  # torch's out= has no forward rule: ``fn`` raises for a dual
                        return fn(*args, **kwargs)
                    args, kwargs = _by_position(fn, args, kwargs)
                if fused is not None:
                    out = fused(*args, **kwargs)
                    if out is not None:
                        return out
                tensors = _tensors_in(args, kwargs)
                levels = _forward.visible_levels_of(*tensors)
                if levels:
                    batched = wrapper.batched_jvp
                    return _forward.apply_dual(
                        lambda: fn(*args, **kwargs),
                        lambda tan, base: jvp(tan, base, *args, **kwargs),
                        tensors,
                        levels,
                        None if batched is None else lambda tan, base: batched(tan, base, *args, **kwargs),
                    )
            return fn(*args, **kwargs)

        # the rule for tangents with a leading batch axis, same signature (set by ad/ops/batch_rules.py; None:
        # ``jvp`` runs once per batch entry)
        wrapper.batched_jvp = None
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


def _group_jvp(code, evenly=False):
    """The tangent of prod / amax / amin over groups (``evenly``: of max() / min() over all elements)."""

    def jvp(tan, out, x, dim=None, keepdim=False, **kwargs):
        t_ = tan(x)
        if t_ is None:
            return None
        dims = _reduce_dims(x, dim)
        ok = out if keepdim else _unsqueeze_dims(out, dims, x.ndim)
        if code == K.PROD:
            return sum(_prod_partial(x, dims, ok) * t_, dims, keepdim=keepdim)
        return sum(_extreme_tangent_shares(t_, x, ok, dims, evenly), dims, keepdim=keepdim)

    return jvp


def _extreme_tangent_shares(t_, x, ok, dims, evenly):
    """Each member's share of the tangent of an amax / amin (``ok``: its result with the reduced ``dims`` kept), to
    be summed over ``dims``: the mean tangent of the members equal to the result, as torch. A NaN result has no such
    member: 0 / 0, NaN (torch's; the reverse rule gives that group NaN too). amax / amin select (an inf or NaN
    tangent of a member that is not the extreme adds nothing); torch's max() / min() over all elements
    (``evenly``) multiply by the 0/1 mask instead (there it adds NaN)."""
    mask = _equal_mask(x, ok, with_nans=False)
    count = sum(mask, dims, keepdim=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # (a NaN result's 0 / 0 is the answer: no warning)
        return (t_ * mask if evenly else select_times(t_, mask)) / count


def _equal_mask(x, ok, with_nans=True):
    """1.0 where ``x`` is ``ok`` (the reduced output of amax / amin, dims kept, broadcast), else 0.0: a constant of
    x's dtype. Equal to it, or (``with_nans``) NaN where it is NaN (kernels' ``pointwise.selects``: the members
    torch's max() / min() over all elements give the gradient to)."""
    if x._dev is not None:
        from ..cuda import ops as cuda_ops

        return cuda_ops.const(cuda_ops.compare("selects" if with_nans else "eq", x, ok), x._data.dtype)
    xd, od = x._data, ok._data
    equal = xd == od
    return _const(equal | (np.isnan(xd) & np.isnan(od)) if with_nans else equal, xd.dtype)


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
# elementwise unary and binary ops: ad/ops/elementwise_table.py, elementwise_recording.py, elementwise.py (re-exported
# here, so ``ops.X`` keeps working)

from .activation_ops import CELU, ELU, GELU, MISH, SILU  # noqa: E402, F401 - one row per activation (issue 19)
from .elementwise import (  # noqa: E402, F401 - the public functions
    CAST,
    _add_fast,
    _affine_fast,
    _is_scalar,
    _mul_fast,
    _sub_fast,
    _tensor_arg,
    abs,
    add,
    affine,
    cast,
    clamp,
    clip,
    clone,
    cos,
    div,
    erf,
    exp,
    expm1,
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
from .elementwise_recording import (  # noqa: E402, F401 - the recording paths
    _ATTR_CODES,
    _as_float_operand,
    _binary,
    _binary_np,
    _compiled_jvp_binary,
    _compiled_jvp_unary,
    _dual_binary,
    _dual_result,
    _dual_unary,
    _fast_binary,
    _fast_unary,
    _flat,
    _unary,
    _unary_fn,
    _unary_np,
    _unary_np_serial,
)
from .elementwise_table import (  # noqa: E402, F401 - the declaration helpers and the primitives' entries
    _AFFINE_NAMES,
    ABS,
    ADD,
    AFFINE,
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
    _affine_np,
    _binary_op,
    _binary_vjp,
    _clamp_np,
    _const,
    _copy_np,
    _elementwise_vjp,
    _pow_scalar_np,
    _rdiv_scalar_np,
    _relu_np,
    _rpow_scalar_np,
    _rsqrt_np,
    _square_np,
    _tanh_backward_np,
    _terms,
    _trig_forward,
    elementwise,
    formula_binary,
    select_times,
)
from .pointwise_ops import *  # noqa: E402, F403 - issue 13's elementwise ops (their __all__)
from .pointwise_ops import (  # noqa: E402, F401 - their opcodes and the helpers other modules reach through ops
    ACOS,
    ACOSH,
    ASIN,
    ASINH,
    ATAN,
    ATAN2,
    ATANH,
    BCE_LOGITS,
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
    bce_logits,
    rfloordiv,
    rremainder,
    sign,
)

# --- creation helpers used by rules


def zeros_like(x, *, dtype=None, requires_grad=False):
    if x._dev is not None:
        return _cuda_full(x, 0.0, dtype, requires_grad)
    return wrap_array(np.zeros(x.shape, dtype=dtype or x.dtype), requires_grad)


def ones_like(x, *, dtype=None, requires_grad=False):
    if x._dev is not None:
        return _cuda_full(x, 1.0, dtype, requires_grad)
    return wrap_array(np.ones(x.shape, dtype=dtype or x.dtype), requires_grad)


def _cuda_full(x, value, dtype, requires_grad):
    from ..cuda import ops as cuda_ops

    t = cuda_ops.full(x.shape, value, np.dtype(dtype or x.dtype), x._dev)
    return t.requires_grad_(True) if requires_grad else t


# ---------------------------------------------------------------------------------------------------------
# structural ops, index maps and joins, dense-layer rows: one module each (re-exported: ``ops.X`` keeps working)

from .dense import (  # noqa: E402, F401 - the package's names
    CROSS_ENTROPY,
    LINEAR,
    LINEAR_BIAS,
    LOG_SOFTMAX,
    MATMUL,
    _cross_entropy_jvp,
    _cross_entropy_vjp,
    _fused_matmul_jvp,
    _linear_bias_jvp,
    _linear_bias_vjp,
    _linear_jvp,
    _linear_vjp,
    _log_softmax_jvp,
    _log_softmax_vjp,
    _matmul,
    _matmul_shape,
    _matmul_vjp,
    _onehot,
    _record_matmul,
    _sum_to_shape,
    _torch_dtype,
    cross_entropy_mean,
    dot,
    linear,
    linear_bias,
    log_softmax_dim,
    matmul,
    mm,
    outer,
)
from .indexing import (  # noqa: E402, F401 - the package's names
    _LIST_OPS,
    AS_STRIDED_VIEW,
    CAT,
    COPY_SLICES,
    GATHER,
    GATHER_INDEXED,
    GATHER_MAP,
    INDEX_SELECT,
    MAX_DIM,
    MIN_DIM,
    SCATTER_MAP,
    STACK,
    _cat_vjp,
    _check_tensor_list,
    _gather_map_vjp,
    _index_key,
    _max_min,
    _MaxMin,
    _record_pieces,
    _scatter_map_vjp,
    _split_piece,
    cat,
    chunk,
    gather,
    gather_indexed,
    gather_map,
    getitem,
    index_select,
    max,
    min,
    scatter_map,
    split,
    stack,
    torch_index_error,
)
from .structural import (  # noqa: E402, F401 - the package's names
    _PROBE_ADDR,
    _PROBE_BASE,
    AMAX,
    AMIN,
    EXPAND,
    GATHER_STRIDED,
    MAX_ALL,
    MEAN,
    MEAN_ALL,
    MIN_ALL,
    PERMUTE,
    PROD,
    REHOME,
    RESHAPE,
    RESHAPE_COPY,
    SCATTER_STRIDED,
    SELECT,
    SQUEEZE,
    SQUEEZE_DIM,
    SQUEEZE_DIMS,
    SUM,
    SUM_ALL,
    T_OP,
    TRANSPOSE,
    UNSQUEEZE,
    WHERE,
    _add_reduce,
    _gather_strided_vjp,
    _group_reduce,
    _group_vjp,
    _probe,
    _probe_layout,
    _prod_partial,
    _record_copy,
    _record_gather_strided,
    _record_scatter_strided,
    _record_sum_all,
    _reduce_dims,
    _reduce_layout,
    _reshape,
    _reshape_vjp,
    _scatter_strided_vjp,
    _strided_index,
    _unsqueeze_dims,
    _view,
    _where_vjp,
    _writable_broadcast,
    amax,
    amin,
    broadcast_to,
    expand,
    flatten,
    gather_strided,
    max_all,
    mean,
    min_all,
    overwritten,
    permute,
    prod,
    reshape,
    scatter_strided,
    squeeze,
    sum,
    t,
    transpose,
    unsqueeze,
    view,
    where,
)

# isort: split
from . import batch_rules  # noqa: E402, F401 - last: gives the ops above their rules for batched tangents
