"""Structural ops: ``where``, strided gathers and scatters (views, ``expand``, ``permute``, ``transpose``,
slicing), reshapes (a copy row: the data is contiguous, only the shape changes) and the reductions ``sum``,
``mean``, ``prod``, ``amax``, ``amin`` (a scatter into the reduced shape). Each op records one row whose
opcode ``kernels/cpu.py`` sweeps; the rules are written with ``ad`` ops (see the package docstring).
"""

import builtins
import math
import numbers
from threading import get_ident as _get_ident

import numpy as np

from kernels import opcodes as K

from .. import observe as _observe
from .. import views as _views
from ..cuda import host_copy, index_tensor
from ..forward import _fw, set_tangent
from ..grad_mode import _grad_state
from ..parallel import PARALLEL_MIN
from ..tape import BIG_ROW
from ..tape import _state as _tape_state
from ..tensor import Tensor, _new, _wrap_dim, wrap_array
from . import (
    Op,
    _broadcast_shape,
    _c_strides,
    _equal_mask,
    _group_jvp,
    _is_scalar,
    _operand,
    _recording,
    _result,
    _size,
    _tape_for,
    _where_jvp,
    as_tensor_operand,
    forward_rule,
    linear_op,
    ones_like,
    select_times,
    zeros_like,
)
from .out import reduction_dtype, write_result

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


def _kind_rank(value):
    """bool 0, integer 1, float 2: the order of torch's scalar type categories."""
    if isinstance(value, Tensor):
        return {"b": 0, "i": 1, "u": 1}.get(value._data.dtype.kind, 2)
    return 0 if isinstance(value, (bool, np.bool_)) else 1 if isinstance(value, numbers.Integral) else 2


def _where_scalar(value, other):
    """A Python number as ``where``'s operand, typed as torch's weak scalars: the tensor operand's dtype when it
    is of the number's category or a higher one (bool < int < float), else bool / int64 / float64 (with another
    number: the higher category of the two: ``where(c, 1, 0)`` is int64, ``where(c, 1.0, 0)`` float64)."""
    rank = _kind_rank(value)
    if isinstance(other, Tensor):
        if _kind_rank(other) >= rank:
            try:
                return wrap_array(np.asarray(value, other._data.dtype))
            except OverflowError:  # (a number the tensor's dtype cannot hold: the default of its category)
                pass
    elif _is_scalar(other):
        rank = builtins.max(rank, _kind_rank(other))
    return wrap_array(np.asarray(value, (np.bool_, np.int64, np.float64)[rank]))


@forward_rule(_where_jvp)
def where(condition, input=None, other=None):
    """``where(condition, x, y)``: elements of ``x`` where ``condition`` holds, else of ``y``."""
    on_device = isinstance(condition, Tensor) and condition._dev is not None
    if input is None and other is None:
        if on_device:  # indices from a host copy, as torch's (nonzero's data-dependent size synchronizes)
            return tuple(index_tensor(i, condition) for i in np.nonzero(host_copy(condition._data)))
        cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
        return tuple(wrap_array(i) for i in np.nonzero(cond))
    if input is None or other is None:
        raise TypeError("where() received an invalid combination of arguments: give both input and other")
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        from .index_maps import _tname  # (index_maps imports where from here)

        raise RuntimeError(
            f"where expected condition to be a boolean tensor, but got a tensor with dtype {_tname(cond.dtype)}"
        )
    # Python numbers are typed as torch's weak scalars on every device (where(c, 1, 0) is int64, a float32
    # tensor with 0.0 stays float32)
    if not isinstance(input, Tensor):
        input = (
            _where_scalar(input, other)
            if _is_scalar(input)
            else as_tensor_operand(input, other if isinstance(other, Tensor) else None)
        )
    if not isinstance(other, Tensor):
        other = _where_scalar(other, input) if _is_scalar(other) else as_tensor_operand(other, input)
    # a 0-d tensor takes a dimensioned float tensor's dtype, as torch's (two 0-d tensors: ordinary promotion)
    xd, yd = input._data, other._data
    if xd.ndim == 0 and yd.ndim and xd.dtype != yd.dtype and yd.dtype.kind == "f" and not input._rg:
        input = wrap_array(xd.astype(yd.dtype)) if input._dev is None else input.to(other.dtype)
    if yd.ndim == 0 and xd.ndim and yd.dtype != xd.dtype and xd.dtype.kind == "f" and not other._rg:
        other = wrap_array(yd.astype(xd.dtype)) if other._dev is None else other.to(input.dtype)
    if on_device or input._dev is not None or other._dev is not None:
        return _cuda_ops().where(condition, input, other)
    shape = _broadcast_shape(_broadcast_shape(cond.shape, input.shape), other.shape)
    if not _recording(input, other):
        return wrap_array(np.where(cond, input._data, other._data))
    if input.shape != shape:
        input = expand(input, shape) if input._rg else wrap_array(np.broadcast_to(input._data, shape))
    if other.shape != shape:
        other = expand(other, shape) if other._rg else wrap_array(np.broadcast_to(other._data, shape))
    cond = np.broadcast_to(cond, shape)
    dt = np.result_type(input._data, other._data)
    n = _size(shape)
    tape = _tape_for(dt, 4 * n + 4, input, other)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, np.where(cond, input._data, other._data))
    moff = tape.alloc(n)
    tape.values[moff : moff + n] = cond.reshape(-1)
    xoff, xrow = _operand(tape, input)
    yoff, yrow = _operand(tape, other)
    code = K.WHERE | (K.XRG if input._rg else 0) | (K.YRG if other._rg else 0)
    row = tape.record(code, off, xoff, yoff, n, moff, xrow, yrow)
    return _result(view, tape, off, row, WHERE, (input, other), wrap_array(np.array(cond, copy=True)))



def overwritten(x, values):
    """``values`` broadcast to ``x``'s shape, recorded with ``x`` at a zero gradient: the new value of
    ``x.copy_(values)``, ``fill_`` and ``zero_`` (torch's CopyBackwards keeps the old value in the graph with a
    zero gradient), and of counts such as ``norm(x, 0)``. Not ``x * 0 + values``: that makes an inf or nan of
    ``x`` a nan of the result."""
    from ..creation import zeros_like

    return where(zeros_like(x, dtype=np.bool_), x, values)

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
    gd = g._data
    if (
        scale == 1.0
        and type(g) is Tensor
        and gd.ndim == 0
        and g._dev is None
        and g._tangents is None
        and not (g._rg and _grad_state.enabled)
        and not any(strides)
    ):
        # a whole-tensor sum's rule for a constant cotangent (every create_graph backward from a scalar loss):
        # gather_strided's case without an index array, without its wrappers (nothing to record, no tangent)
        r = np.empty(inputs[0]._data.shape, gd.dtype)
        r.fill(gd[()])
        return (_derived(wrap_array(r), g),)
    r = gather_strided(g, inputs[0].shape, strides, base)
    return (_derived(r * scale if scale != 1.0 else r, g),)


def _derived(r, g):
    """``r``, a function of the cotangent ``g``'s values and of the op's shapes; ``ad.compile`` re-creates it as a
    constant where ``g`` is one (the seed of a ``create_graph`` backward inside a compiled function)."""
    if _observe.observer is not None and not r._rg:
        _observe.observer.folded(r, (g,))
    return r


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
    if x._dev is not None:
        return _cuda_ops().gather_strided(x, shape, list(strides), base)
    flat = np.ascontiguousarray(x._data).reshape(-1)
    if not any(strides):  # one element everywhere (a scalar's cotangent spread by sum's rule): no index array
        out_data = np.empty(shape, flat.dtype)  # (empty + fill: np.full is a Python function around the same)
        out_data.fill(flat[base])
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
    if x._dev is not None:
        return _cuda_ops().scatter_strided(x, shape, list(strides), base, scale)
    xd = x._data
    out_flat = np.zeros(_size(shape), dtype=xd.dtype if xd.dtype.kind == "f" else np.float64)
    idx = _strided_index(xd.shape, strides, base)
    np.add.at(out_flat, idx, xd.reshape(-1) * scale if scale != 1.0 else xd.reshape(-1))
    out_data = out_flat.reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    return _record_scatter_strided(SCATTER_STRIDED, x, out_data, list(strides), base, scale)


@linear_op
def expand(input, *sizes):
    """Broadcast ``input`` to ``sizes`` (``-1`` keeps a dimension); differentiable (the adjoint sums)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    xs = input._data.shape
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
    return _view(EXPAND, input, lambda a: _writable_broadcast(a, shape))


def _writable_broadcast(a, shape):
    """``np.broadcast_to`` that stays writable (torch lets views of an expanded tensor be written)."""
    b = np.broadcast_to(a, shape)
    return np.lib.stride_tricks.as_strided(a, shape=shape, strides=b.strides) if a.flags.writeable else b


def _view(op, x, fn, multi=False, name=None):
    """``fn(x)`` as a view of ``x`` (``fn`` maps an array to a numpy view of it): a recorded strided gather
    when recording (its arena copy is the kernel's snapshot), sharing ``x``'s storage (ad/views.py)."""
    if x._dev is not None:
        out, is_view = _cuda_ops().view(op, x, fn)
        return _views.alias(x, out, out._data, multi, name) if is_view else out
    out_data = fn(x._data)
    if not _recording(x):
        out = wrap_array(out_data)
    else:
        base, strides = _probe_layout(fn(_probe(x._data.shape)))
        out = _record_gather_strided(op, x, out_data, strides, base)
    return _views.alias(x, out, out_data, multi, name)


def broadcast_to(input, size):
    return expand(input, tuple(size))


def _sizes(args, keyword, fn, name):
    """The sizes (or dims) of ``fn(input, *args)``, ``fn(input, (a, b))`` or torch's ``fn(input, name=(a, b))``."""
    if keyword is None:
        return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    if args:
        raise TypeError(f"{fn}() got multiple values for argument '{name}'")
    return tuple(keyword) if isinstance(keyword, (tuple, list)) else (keyword,)


@linear_op
def permute(input, *args, dims=None):
    dims = _sizes(args, dims, "permute", "dims")
    nd = input._data.ndim
    if len(dims) != nd:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the "
            f"desired ordering of dimensions i.e. input.dim() = {nd} is not equal to len(dims) = {len(dims)}"
        )
    dims = tuple(_wrap_dim(d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _view(PERMUTE, input, lambda a: a.transpose(dims))


@linear_op
def transpose(input, dim0, dim1):
    nd = input._data.ndim
    d0 = _wrap_dim(dim0, nd)
    d1 = _wrap_dim(dim1, nd)
    perm = list(range(nd))
    if nd:
        perm[d0], perm[d1] = perm[d1], perm[d0]
    return _view(TRANSPOSE, input, lambda a: a.transpose(perm))


T_OP = Op("t", K.GATHER_STRIDED, "TBackward0", _gather_strided_vjp, register=False)  # transpose(0, 1) as t()


@linear_op
def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return _view(T_OP, input, lambda a: a.T)


# --- reshapes: a copy row (the data is contiguous, only the shape changes)


def _reshape_vjp(g, out, inputs, ctx):
    return (reshape(g, inputs[0].shape),)


RESHAPE = Op("reshape", K.COPY, "ViewBackward0", _reshape_vjp)


@linear_op
def reshape(input, *args, shape=None):
    shape = _sizes(args, shape, "reshape", "shape")
    for s_ in shape:
        if s_ < -1:
            raise RuntimeError(f"invalid shape dimension {s_}")
    if builtins.sum(1 for s_ in shape if s_ == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    return _reshape(input, shape, False)


def _reshape(x, shape, strict, op=None):
    """``reshape`` (``strict=False``: a view when the layout allows, else a copy) or ``view`` (``strict``: a
    layout that needs a copy is torch's error)."""
    if x._dev is not None:
        out, is_view = _cuda_ops().reshape(op, x, shape, strict)
        return _views.alias(x, out, out._data) if is_view else out
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
def view(input, *shape, size=None, dtype=None):
    """``reshape`` that never copies: a shape the layout cannot give without a copy raises torch's error.
    ``view(dtype)`` (a reinterpretation of the bytes) is left out: same dtype only."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        if isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        elif not isinstance(shape[0], numbers.Integral):  # ``view(dtype)``
            return _view_dtype(input, shape[0])
    if size is not None or dtype is not None:  # torch's keywords
        if dtype is not None:
            return _view_dtype(input, dtype)
        shape = _sizes(shape, size, "view", "size")
    if builtins.sum(1 for s_ in shape if s_ == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    return _reshape(input, shape, True)


def _view_dtype(input, dtype):
    if np.dtype(dtype) != input.dtype:
        raise NotImplementedError(
            f"view(dtype): ad does not reinterpret a {input.dtype} tensor's bytes as {np.dtype(dtype)} (left out)"
        )
    return _reshape(input, input.shape, True)


def flatten(input, start_dim=0, end_dim=-1):
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, (1,))
    s = _wrap_dim(start_dim, nd)
    e = _wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input  # torch returns the input itself (not a view): hooks, retain_grad and .grad land on it
    shape = input.shape[:s] + (_size(input.shape[s : e + 1]),) + input.shape[e + 1 :]
    return reshape(input, shape)


@linear_op
def squeeze(input, dim=None):
    shape = input.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {_wrap_dim(d, input.ndim) for d in dims}
        new = tuple(s for k, s in enumerate(shape) if not (k in dims and s == 1))
    op = SQUEEZE if dim is None else SQUEEZE_DIMS if isinstance(dim, (tuple, list)) else SQUEEZE_DIM
    return _reshape(input, new, True, op)


@linear_op
def unsqueeze(input, dim):
    nd = input._data.ndim + 1
    d = _wrap_dim(dim, nd)
    shape = input.shape[:d] + (1,) + input.shape[d:]
    return _reshape(input, shape, True, UNSQUEEZE)


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
_F64 = np.dtype(np.float64)
SMALL_SUM = 16  # below this many float64 elements, ``_total`` adds in Python: 0.3 us against numpy's 1 us call


def _total(flat):
    """``np.add.reduce(flat)`` of a 1-d array, bit for bit: below ``SMALL_SUM`` float64 elements in Python floats,
    in numpy's order (``pairwise_sum``: from 0.0 one by one under 8 elements; else the first 8 in a fixed tree,
    then the rest one by one). A whole-tensor sum of a few elements is a common per-sample reduction, and the
    ufunc call dominates its cost."""
    n = flat.shape[0]
    if n >= SMALL_SUM or flat.dtype is not _F64:
        return _add_reduce(flat)
    v = flat.tolist()
    if n < 8:
        return builtins.sum(v, 0.0)
    res = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
    for k in range(8, n):
        res += v[k]
    return 0.0 + res


_SUM_ALL_CTX = {}  # (ndim, scale) -> the ctx of a whole-tensor sum (shared: one tuple fewer per loss reduction)


def _record_sum_all(op, x, total, scale):
    """Whole-tensor sum or mean: one SUM_ALL row, no aux (the common loss reduction)."""
    xd = x._data
    dt = xd.dtype
    n = xd.size
    xtape = x._tape
    tape = _tape_state.current.get(dt)
    if tape is None or tape.used + n + 3 > tape.capacity or (xtape is not None and xtape.id > tape.id):
        tape = _tape_for(dt, n + 3, x)
    off = tape.used  # tape.alloc(1), inlined
    tape.used = off + 1
    values = tape.values
    values[off] = total
    view = values[off, ...]  # a 0-d view (4x cheaper than slicing and reshaping)
    if xtape is tape:
        xoff = x._off
        xrow = x._row
    else:
        xoff, xrow = tape.import_tensor(x, True)
    row = tape.nrows
    if row >= tape.row_cap:
        tape.grow()
    tape.pack(tape.rows, row * 80, K.SUM_ALL | K.XRG, off, xoff, -1, 1, n, xrow, -1, scale, 0.0)
    tape.nrows = row + 1
    key = (xd.ndim, scale)
    ctx = _SUM_ALL_CTX.get(key)
    if ctx is None:
        ctx = _SUM_ALL_CTX[key] = ((), (0,) * xd.ndim, 0, scale)
    out = _new(Tensor)  # _result, inlined (one per-sample loss reduction each)
    out._data = view
    out._rg = True
    out._op = op
    out._in0 = x  # (_inputs: see tensor._Operands)
    out._ctx = ctx
    out._tape = tape
    out._off = off
    out._row = row
    if n >= PARALLEL_MIN:
        tape.mark_vectorized(row, out)  # its backward fills x's cotangent: in one pass, across threads
    return out


@linear_op
def sum(input, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A001 - torch's name
    if out is not None:
        return write_result("sum", sum(input, dim, keepdim, dtype=reduction_dtype(dtype, out, True)), out)
    xd = input._data
    if input._dev is not None:
        input = input.to(dtype) if dtype is not None else input
        op = SUM_ALL if dim is None and not keepdim else SUM
        return _cuda_ops().sum(op, input, _reduce_dims(input, dim), keepdim, 1.0)
    if dim is None and not keepdim and dtype is None and input._rg and _grad_state.enabled:
        return _record_sum_all(SUM_ALL, input, _total(xd.reshape(-1)), 1.0)
    if dtype is not None:
        input = input.to(dtype)
        xd = input._data
    dims = _reduce_dims(input, dim)
    out_data = np.asarray(np.sum(xd, axis=dims, keepdims=keepdim))
    if xd.dtype.kind == "b" or (xd.dtype.kind == "u" and xd.dtype.itemsize < 8):  # torch: int64 (numpy: uint64)
        out_data = out_data.astype(np.int64)
    if dtype is not None and out_data.dtype != dtype:  # numpy's integer sums widen to int64: torch keeps dtype
        out_data = out_data.astype(dtype)
    if not _recording(input):
        return wrap_array(out_data)
    return _record_scatter_strided(SUM, input, out_data, _reduce_layout(xd.shape, dims), 0, 1.0)


_SUM_ALL_CTX_1D = _SUM_ALL_CTX.setdefault((1, 1.0), ((), (0,), 0, 1.0))


def _sum_method(x, dim=None, keepdim=False, *, dtype=None):
    """``Tensor.sum``: a recorded whole-tensor sum (the loss reduction) straight to its row, skipping the
    wrappers; anything else through ``sum``. The sum of a small vector recorded on this thread's current tape
    (a per-sample or per-leaf loss: W6 records 2,000 per step) is ``_record_sum_all``'s row, written here."""
    if dim is None and not keepdim and dtype is None and x._dev is None:
        if not _fw.levels:
            if x._rg and _grad_state.enabled:
                xd = x._data
                tape = x._tape
                n = xd.size
                if (
                    tape is not None
                    and tape.is_current == _get_ident()  # (so the current tape of x's dtype)
                    and xd.ndim == 1
                    and n < PARALLEL_MIN
                    and tape.used + n + 3 <= tape.capacity
                ):
                    off = tape.used
                    tape.used = off + 1
                    values = tape.values
                    values[off] = _total(xd)
                    row = tape.nrows
                    if row >= tape.row_cap:
                        tape.grow()
                    tape.pack(tape.rows, row * 80, K.SUM_ALL | K.XRG, off, x._off, -1, 1, n, x._row, -1, 1.0, 0.0)
                    tape.nrows = row + 1
                    out = _new(Tensor)
                    out._data = values[off, ...]
                    out._rg = True
                    out._op = SUM_ALL
                    out._in0 = x
                    out._ctx = _SUM_ALL_CTX_1D
                    out._tape = tape
                    out._off = off
                    out._row = row
                    return out
                return _record_sum_all(SUM_ALL, x, _total(xd if xd.ndim == 1 else xd.reshape(-1)), 1.0)
        elif x._tangents is not None:
            out = _dual_sum_all(x)
            if out is not None:
                return out
    return sum(x, dim, keepdim, dtype=dtype)


def _dual_sum_all(x):
    """``x.sum()`` of a tensor with a tangent at the one active level (forward over reverse sums every loss):
    what ``sum``'s forward rule gives (the primal's sum; the tangent's sum, recorded if the tangent requires
    grad), without the generic dispatch of ``forward_rule`` and ``apply_dual``. None: the general path."""
    levels = _fw.levels
    if len(levels) != 1 or _fw.hidden or _fw.batch:
        return None
    level = levels[0]
    tan = x._tangents.get(level)
    if tan is None or tan._tangents is not None or tan._dev is not None:
        return None
    raw = sum.__wrapped__  # (the op without its forward rule: ``apply_dual``'s primal and, on the tangent, its rule)
    out = raw(x)
    set_tangent(out, level, raw(tan))
    return out


sum.method = _sum_method


@linear_op
def mean(input, dim=None, keepdim=False, *, dtype=None, out=None):
    if out is not None:
        return write_result("mean", mean(input, dim, keepdim, dtype=reduction_dtype(dtype, out, False)), out)
    xd = input._data
    if dtype is not None:
        input = input.to(dtype)
        xd = input._data
    if xd.dtype.kind != "f":
        from .index_maps import _tname

        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
            f"dtype. Got: {_tname(xd.dtype)}"
        )
    dims = _reduce_dims(input, dim)
    count = _size([xd.shape[d] for d in dims])
    if input._dev is not None:
        op = MEAN_ALL if dim is None and not keepdim else MEAN
        return _cuda_ops().sum(op, input, dims, keepdim, 1.0 / count if count else math.nan)
    out_data = np.asarray(np.mean(xd, axis=dims, keepdims=keepdim))
    if not _recording(input):
        return wrap_array(out_data)
    scale = 1.0 / count if count else math.nan
    if dim is None and not keepdim:
        return _record_sum_all(MEAN_ALL, input, out_data, scale)
    return _record_scatter_strided(MEAN, input, out_data, _reduce_layout(xd.shape, dims), 0, scale)


def _group_vjp(g, out, inputs, ctx):
    """prod / amax / amin over groups: ``ctx`` is ``(dims, keepdim, code)``, with a fourth item (True) for torch's
    max() / min() over all elements (``max_all``)."""
    x = inputs[0]
    dims, keepdim, code = ctx[:3]
    gk = g if keepdim else _unsqueeze_dims(g, dims, x.ndim)
    ok = out if keepdim else _unsqueeze_dims(out, dims, x.ndim)
    if code == K.PROD:
        return (expand(gk, x.shape) * _prod_partial(x, dims, ok),)
    if len(ctx) == 4:
        # max() / min() over all elements (torch's MaxBackward1): the members equal to the result, or its NaNs,
        # share the cotangent; the others get 0 whatever it is (selected, as the kernels' sweep)
        mask = _equal_mask(x, ok)
        with np.errstate(invalid="ignore"):  # (an inf cotangent times the mask's 0s, selected away)
            return (select_times(expand(gk, x.shape) / mask.sum(dims, keepdim=True), mask),)
    # amax / amin (torch's AmaxBackward0): the cotangent over the number of members equal to the result, times
    # the 0/1 mask of those members. A NaN result equals none: every member of its group gets g / 0 * 0, NaN; an
    # inf or NaN cotangent gives the other members NaN too (kernels/cpu.group_backward, as torch)
    mask = _equal_mask(x, ok, with_nans=False)
    with np.errstate(divide="ignore", invalid="ignore"):  # (those NaNs are the answer: no warning, as torch)
        return (expand(gk, x.shape) / mask.sum(dims, keepdim=True) * mask,)


def _prod_partial(x, dims, ok):
    """d prod(x, dims) / d x, written with ``ad`` ops: the product of the other elements of each group.

    Without zeros that is ``out / x``. With an exact zero, ``out / x`` is ``0 / 0``: each group of ``n`` elements
    is spread into an ``n x n`` matrix whose diagonal is replaced by ones, and its rows multiplied (as torch's
    ``prod_safe_zeros_backward``, which branches on the data in the same way). ``ok`` is the output with the
    reduced dims kept."""
    if not np.any(host_copy(x._data) == 0):  # (on CUDA a host copy of the values: torch's backward syncs too)
        return expand(ok, x.shape) / x
    kept = [d for d in range(x.ndim) if d not in dims]
    perm = kept + list(dims)
    lead = tuple(x.shape[d] for d in kept)
    n = 1
    for d in dims:
        n *= x.shape[d]
    grouped = reshape(permute(x, *perm), (*lead, 1, n)) if perm else reshape(x, (1, n))
    spread = expand(grouped, (*lead, n, n))
    others = prod(where(index_tensor(np.eye(n, dtype=bool), x), ones_like(spread), spread), -1)  # (*lead, n)
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
# max() / min() over all elements: amax's rows with the flag ``EVENLY`` (their gradient goes to the NaNs of a NaN
# result, where amax's goes NaN: torch's MaxBackward1 and AmaxBackward0 differ so)
MAX_ALL = Op("max_all", K.AMAX, "MaxBackward1", _group_vjp)
MIN_ALL = Op("min_all", K.AMIN, "MinBackward1", _group_vjp)


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
    if x._dev is not None:
        return _cuda_ops().group_reduce(op, x, dims, keepdim)
    out_data = np.asarray(np_fn(xd, axis=dims, keepdims=keepdim))
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(xd.dtype, n + xd.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, out_data.shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    evenly = op is MAX_ALL or op is MIN_ALL
    if op is PROD:
        aux = tape.add_aux([xd.ndim, 0, *xd.shape, *_reduce_layout(xd.shape, dims)])
    else:  # (amax / amin rows end with their sharing rule: kernels/cpu.group_backward)
        aux = tape.add_aux([xd.ndim, 0, *xd.shape, *_reduce_layout(xd.shape, dims), int(evenly)])
    row = tape.record(op.code | K.XRG, off, xoff, -1, n, aux, xrow)
    ctx = (dims, keepdim, op.code, True) if evenly else (dims, keepdim, op.code)
    out = _result(view, tape, off, row, op, (x,), ctx)
    if xd.size >= BIG_ROW:
        tape.mark_vectorized(row, out)
    return out


@forward_rule(_group_jvp(K.PROD))
def prod(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is None and isinstance(input, Tensor) and input.dtype.kind == "u" and input.dtype.itemsize < 8:
        dtype = np.int64  # torch's accumulator of unsigned bytes (numpy's is uint64)
    if dtype is not None:
        input = input.to(dtype)
    return _keep_dtype(_group_reduce(PROD, np.prod, input, dim, keepdim), dtype)


def _keep_dtype(result, dtype):
    """``result`` in the ``dtype`` asked for: numpy's integer sums and products widen to int64 (an integer
    result: no gradient to keep)."""
    return result if dtype is None or result.dtype == dtype else result.to(dtype)


@forward_rule(_group_jvp(K.AMAX))
def amax(input, dim=None, keepdim=False):
    return _group_reduce(AMAX, np.max, input, () if dim is None else dim, keepdim)


@forward_rule(_group_jvp(K.AMIN))
def amin(input, dim=None, keepdim=False):
    return _group_reduce(AMIN, np.min, input, () if dim is None else dim, keepdim)


@forward_rule(_group_jvp(K.AMAX, evenly=True))
def max_all(input):  # noqa: A002 - torch's name
    """``max(input)``: the largest element (torch's MaxBackward1: ties and NaNs share the gradient)."""
    return _group_reduce(MAX_ALL, np.max, input, (), False)


@forward_rule(_group_jvp(K.AMIN, evenly=True))
def min_all(input):  # noqa: A002 - torch's name
    """``min(input)``: the smallest element (torch's MinBackward1)."""
    return _group_reduce(MIN_ALL, np.min, input, (), False)


def _cuda_ops():
    from ..cuda import ops

    return ops
