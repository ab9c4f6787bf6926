"""Forward-mode rules for batched tangents: one rule per op that needs to know about the leading batch axis.

At a batched dual level (``forward_ad.make_dual(..., is_batched=True)``, see ``ad/forward.py``) a tangent
has shape ``(B, *shape)``. The rules of ``ad/ops`` are written for one tangent of the operand's shape; most of
them need no change for a batch, and the rest need the same few changes, which this module makes once:

- elementwise rules (``t * d``, ``tx * dx + ty * dy``) already broadcast the primal-shaped partials against
  ``(B, *shape)`` tangents: ``_dual_unary`` / ``_dual_binary`` pass their rule as the batched one;
- reshapes (reshape, view, squeeze, unsqueeze, unflatten) reshape to ``(B, *out.shape)``;
- ops with dim arguments (sum, mean, prod, amax, amin, transpose, permute, select, narrow, diagonal, cat,
  stack, log_softmax) shift the (wrapped) dims by one;
- ops whose operand broadcasts (expand, where, the bias of linear) align the tangent at the right first
  (``_align``: ``(B, *s)`` -> ``(B, 1, ..., 1, *s)``);
- index-map and strided gathers and scatters (flip, roll, repeat, advanced indexing, the views' writes) index
  the flat batch with the map offset by the operand's size per batch entry;
- matmul (and linear) pad the tangent's batch dims so that B lands in front of numpy's broadcast batch dims,
  1-D operands as the matrices matmul makes of them.

Each rule is ``rule(tan, out, *args, **kwargs)`` (``tan(t)``: operand ``t``'s tangent, ``(B, *t.shape)``, or
None; ``out``: the op's result) and returns a ``(B, *out.shape)`` tensor, None, or ``NotImplemented`` for
arguments it does not cover (then the op's one-tangent rule runs per batch entry: slower, never wrong). An op
without an entry here (custom Functions, the linear algebra Functions, CUDA copies) takes that path too.
"""

import builtins

import numpy as np

from .. import blas_threads
from .. import forward as _forward
from ..grad_mode import _grad_state
from ..tensor import Tensor, _wrap_dim, wrap_array
from . import (
    _extreme_tangent_shares,
    _onehot,
    _reduce_dims,
    _size,
    _terms,
    _unsqueeze_dims,
    amax,
    amin,
    cast,
    cat,
    cross_entropy_mean,
    exp,
    expand,
    gather_map,
    gather_strided,
    linear,
    linear_bias,
    log_softmax_dim,
    matmul,
    max_all,
    mean,
    min_all,
    permute,
    prod,
    reshape,
    scatter_map,
    scatter_strided,
    squeeze,
    stack,
    sum,
    transpose,
    unsqueeze,
    view,
    where,
    zeros_like,
)
from . import t as t_op
from .indexing import _split_piece, getitem
from .shape_index import _strided_view
from .structural import _probe, _probe_layout, _prod_partial
from .view_ops import _unbind_piece, diagonal, narrow, select, unflatten

# ---------------------------------------------------------------------------------------------------------
# helpers


def _align(t_, ndim):
    """Batched tangent ``(B, *s)`` as ``(B, 1, ..., 1, *s)`` with ``ndim`` dims after the batch axis."""
    pad = ndim - (t_.ndim - 1)
    return t_ if pad <= 0 else reshape(t_, (t_.shape[0],) + (1,) * pad + tuple(t_.shape[1:]))


def _to_out(r, out, nb=None):
    """``r`` reshaped to ``(B, *out.shape)`` (a no-op when it has that shape); B is ``r``'s first dim unless
    given."""
    want = (r.shape[0] if nb is None else nb,) + tuple(out.shape)
    return r if r.shape == want else reshape(r, want)


def _shift(dims, nd):
    """Dims of a primal of ``nd`` dims, wrapped, as dims of its batched tangent."""
    return tuple(_wrap_dim(d, nd) + 1 for d in dims)


def _flat_offsets(nb, size, index_map):
    """The index map of a flat batch: entry ``b`` of the batch is offset by ``b * size``."""
    idx = np.ascontiguousarray(index_map, dtype=np.int64).reshape(1, -1)
    return (np.arange(nb, dtype=np.int64).reshape(-1, 1) * size + idx).reshape(-1)


def linear_rule(rule):
    """The batched rule of an op linear in its first operand, from ``rule(t, out, x, *args, **kwargs)``."""

    def batched(tan, out, x, *args, **kwargs):
        t_ = tan(x)
        return None if t_ is None else rule(t_, out, x, *args, **kwargs)

    return batched


def _register(fn, rule, linear=True):
    fn.batched_jvp = linear_rule(rule) if linear else rule


# ---------------------------------------------------------------------------------------------------------
# reshapes, permutations, views


def _reshape_rule(t_, out, x, *args, **kwargs):
    return _to_out(t_, out)


for _fn in (reshape, view, squeeze, unsqueeze, unflatten):
    _register(_fn, _reshape_rule)


def _expand_rule(t_, out, x, *sizes):
    return expand(_align(t_, out.ndim), (t_.shape[0],) + tuple(out.shape))


def _permute_rule(t_, out, x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return permute(t_, (0,) + _shift(dims, x.ndim))


def _transpose_rule(t_, out, x, dim0, dim1):
    if x.ndim == 0:
        return t_
    return transpose(t_, *_shift((dim0, dim1), x.ndim))


def _t_rule(t_, out, x):
    return t_ if x.ndim < 2 else transpose(t_, 1, 2)


def _select_rule(t_, out, x, dim, index):
    return select(t_, _wrap_dim(dim, x.ndim) + 1, index)


def _narrow_rule(t_, out, x, dim, start, length):
    return narrow(t_, _wrap_dim(dim, x.ndim) + 1, start, length)


def _diagonal_rule(t_, out, x, offset=0, dim1=0, dim2=1):
    return diagonal(t_, offset, *_shift((dim1, dim2), x.ndim))


def _is_advanced(k):
    return isinstance(k, (Tensor, list, np.ndarray, bool, np.bool_))


def _getitem_rule(t_, out, x, key):
    key = key if isinstance(key, tuple) else (key,)
    if builtins.sum(1 for k in key if _is_advanced(k)) > 1:
        return NotImplemented  # (numpy moves separated advanced indices to the front: the batch axis too)
    return _to_out(getitem(t_, (slice(None),) + key), out)


def _piece_rule(t_, out, x, key, name):
    return _split_piece(t_, (slice(None),) + key, name)


def _unbind_rule(t_, out, x, key, k):
    return _unbind_piece(t_, (slice(None),) + key, k)


_register(expand, _expand_rule)
_register(permute, _permute_rule)
_register(transpose, _transpose_rule)
_register(t_op, _t_rule)
_register(select, _select_rule)
_register(narrow, _narrow_rule)
_register(diagonal, _diagonal_rule)
_register(getitem, _getitem_rule)
_register(_split_piece, _piece_rule)
_register(_unbind_piece, _unbind_rule)


# ---------------------------------------------------------------------------------------------------------
# index maps and strided gathers / scatters: the flat batch, offset per entry


def _gather_map_rule(t_, out, x, shape, index_map, *op):
    nb = t_.shape[0]
    return gather_map(t_, (nb,) + tuple(shape), _flat_offsets(nb, x.numel(), index_map), *op)


def _scatter_map_rule(t_, out, x, shape, index_map):
    nb = t_.shape[0]
    return scatter_map(t_, (nb,) + tuple(shape), _flat_offsets(nb, _size(tuple(shape)), index_map))


def _gather_strided_rule(t_, out, x, shape, strides, base):
    nb = t_.shape[0]
    return gather_strided(t_, (nb,) + tuple(shape), [x.numel()] + list(strides), base)


def _scatter_strided_rule(t_, out, x, shape, strides, base, scale=1.0):
    nb = t_.shape[0]
    return scatter_strided(t_, (nb,) + tuple(shape), [_size(tuple(shape))] + list(strides), base, scale)


def _strided_view_rule(t_, out, x, op, view_fn):
    base, strides = _probe_layout(view_fn(_probe(x.shape)))
    return gather_strided(t_, (t_.shape[0],) + tuple(out.shape), [x.numel()] + list(strides), base)


_register(gather_map, _gather_map_rule)
_register(scatter_map, _scatter_map_rule)
_register(gather_strided, _gather_strided_rule)
_register(scatter_strided, _scatter_strided_rule)
_register(_strided_view, _strided_view_rule)


def batched_gather_map(t_, shape, index_map):
    """``gather_map`` of a batched tangent ``t_`` (``(B, *s)``): each entry's ``shape`` from its flat map."""
    return _gather_map_rule(t_, None, _Shaped(t_.shape[1:]), shape, index_map)


def batched_scatter_map(t_, shape, index_map):
    """``scatter_map`` of a batched tangent ``t_`` into ``(B, *shape)``."""
    return _scatter_map_rule(t_, None, None, shape, index_map)


class _Shaped:
    """Stands for an operand of ``shape`` where a rule reads only its size."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def numel(self):
        return _size(self.shape)


# ---------------------------------------------------------------------------------------------------------
# reductions over dims


def _reduce_rule(reduce):
    def rule(t_, out, x, dim=None, keepdim=False, **kwargs):
        dims = _reduce_dims(x, dim)
        if x.ndim == 0 or not dims:
            return NotImplemented if x.ndim else _to_out(t_, out)
        r = reduce(t_, _shift(dims, x.ndim), keepdim=keepdim, **kwargs)
        return r if r.shape[1:] == out.shape else NotImplemented

    return rule


_register(sum, _reduce_rule(sum))
_register(mean, _reduce_rule(mean))


def _group_rule(is_prod, evenly=False):
    """prod / amax / amin (``evenly``: max() / min() over all elements): the one-tangent rule
    (``ops._group_jvp``) with the reduced dims shifted."""

    def rule(t_, out, x, dim=None, keepdim=False, **kwargs):
        dims = _reduce_dims(x, dim)
        if x.ndim == 0 or not dims:
            return NotImplemented if x.ndim else _to_out(t_, out)
        ok = out if keepdim else _unsqueeze_dims(out, dims, x.ndim)
        shifted = _shift(dims, x.ndim)
        if is_prod:
            return _to_out(sum(_prod_partial(x, dims, ok) * t_, shifted, keepdim=keepdim), out)
        return _to_out(sum(_extreme_tangent_shares(t_, x, ok, dims, evenly), shifted, keepdim=keepdim), out)

    return rule


_register(prod, _group_rule(True))
_register(amax, _group_rule(False))
_register(amin, _group_rule(False))
_register(max_all, _group_rule(False, evenly=True))
_register(min_all, _group_rule(False, evenly=True))


def _log_softmax_rule(t_, out, x, dim):
    return t_ - sum(exp(out) * t_, _wrap_dim(dim, x.ndim) + 1, keepdim=True)


_register(log_softmax_dim, _log_softmax_rule)


# ---------------------------------------------------------------------------------------------------------
# joins and where


def _list_rule(join):
    def rule(tan, out, tensors, dim=0):
        tangents = [tan(t2) for t2 in tensors]
        nb = next((tt.shape[0] for tt in tangents if tt is not None), None)
        if nb is None:
            return None
        full = [
            tt if tt is not None else expand(zeros_like(t2), (nb,) + tuple(t2.shape))  # (on t2's device)
            for tt, t2 in zip(tangents, tensors)
        ]
        return join(full, _wrap_dim(dim, out.ndim) + 1)

    return rule


_register(cat, _list_rule(cat), linear=False)
_register(stack, _list_rule(stack), linear=False)


def _where_rule(tan, out, condition, x=None, y=None):
    if x is None:
        return None
    tx = tan(x) if isinstance(x, Tensor) else None
    ty = tan(y) if isinstance(y, Tensor) else None
    if tx is None and ty is None:
        return None
    zero = zeros_like(out)
    return _to_out(
        where(
            condition,
            _align(tx, out.ndim) if tx is not None else zero,
            _align(ty, out.ndim) if ty is not None else zero,
        ),
        out,
    )


_register(where, _where_rule, linear=False)


# ---------------------------------------------------------------------------------------------------------
# matmul and linear


def _as_matrix_tangent(t_, operand, other, left):
    """Batched tangent of a matmul operand, shaped so that ``matmul`` with the other (primal) operand gives
    ``(B, *batch, rows, cols)``: a 1-D operand as the matrix matmul makes of it (a row on the left, a column on
    the right), and the operand's batch dims padded to the broadcast batch dims of both."""
    shape = tuple(operand.shape)
    if len(shape) == 1:
        shape = (1,) + shape if left else shape + (1,)
    other_batch = max(other.ndim - 2, 0)
    pad = max(other_batch - (len(shape) - 2), 0)
    return reshape(t_, (t_.shape[0],) + (1,) * pad + shape)


def _left_term(tx, out, x, y):
    """``x @ y`` with ``x``'s batched tangent: with ``y`` a matrix or vector, the batch and ``x``'s rows fold
    into the rows of one product (numpy would loop over the batch of a broadcast matmul)."""
    if y.ndim <= 2:
        return _to_out(matmul(reshape(tx, (-1, x.shape[-1])), y), out, tx.shape[0])
    return _to_out(matmul(_as_matrix_tangent(tx, x, y, True), y), out)


def _right_term(ty, out, x, y):
    """``x @ y`` with ``y``'s batched tangent; with ``x`` a matrix or vector, one product over the batch."""
    nb = ty.shape[0]
    if x.ndim <= 2 and y.ndim == 1:  # (B, k) against x's rows
        return _to_out(matmul(ty, transpose(x, 0, 1) if x.ndim == 2 else x), out)
    if x.ndim <= 2 and y.ndim == 2:  # the batch joins y's columns: (k, B * m)
        k, m = y.shape
        wide = matmul(x, reshape(permute(ty, (1, 0, 2)), (k, nb * m)))
        if x.ndim == 1:
            return _to_out(wide, out, nb)
        return _to_out(permute(reshape(wide, (x.shape[0], nb, m)), (1, 0, 2)), out)
    return _to_out(matmul(x, _as_matrix_tangent(ty, y, x, False)), out)


def _matmul_terms(tx, ty, out, x, y):
    return _terms(
        _left_term(tx, out, x, y) if tx is not None else None,
        _right_term(ty, out, x, y) if ty is not None else None,
    )


def _matmul_rule(tan, out, x, y):
    tx = tan(x) if isinstance(x, Tensor) else None
    ty = tan(y) if isinstance(y, Tensor) else None
    return _matmul_terms(tx, ty, out, x, y)


def _linear_rule(tan, out, x, w):
    if w.ndim != 2:
        return NotImplemented
    tw = tan(w)
    tx = tan(x)
    if tw is None and tx is not None and _plain(tx, w):  # (a Jacobian's tangents through a constant layer)
        td = tx._data
        rows = td.reshape(-1, td.shape[-1])
        product = np.empty((rows.shape[0], w.shape[0]), td.dtype)
        # (the GEMM of linear rows: OpenBLAS's threads, but on the calling thread while the cores are found
        # contended; threaded on a loaded 2-core machine, the MLP Jacobian's forward mode took 180 ms a call)
        blas_threads.matmul(rows, w._data.T, product)
        return wrap_array(product.reshape(td.shape[:-1] + w.shape[:1]))
    return _matmul_terms(tx, None if tw is None else transpose(tw, 1, 2), out, x, transpose(w, 0, 1))


def _plain(tx, w):
    """Whether ``tx @ w.T`` by ad ops would compute just numpy's product: host arrays of one dtype, no graph to
    record (nothing requires grad, or grad mode is off) and no tangent at another visible level."""
    return (
        tx._dev is None
        and w._dev is None
        and tx._data.dtype == w._data.dtype
        and not ((tx._rg or w._rg) and _grad_state.enabled)
        and not _forward.visible_levels_of(tx, w)
    )


def _linear_bias_rule(tan, out, x, w, b):
    tb = tan(b)
    lin = _linear_rule(tan, out, x, w)
    if lin is NotImplemented:
        return NotImplemented
    return _terms(lin, _expand_rule(tb, out, b) if tb is not None else None)


_register(matmul, _matmul_rule, linear=False)
_register(linear, _linear_rule, linear=False)
_register(linear_bias, _linear_bias_rule, linear=False)


def _cross_entropy_rule(tan, out, x, target):
    tx = tan(x)
    if tx is None:
        return None
    return sum((exp(log_softmax_dim(x, 1)) - _onehot(target, x)) * tx, (1, 2)) * (1.0 / x.shape[0])


def _cast_rule(t_, out, x, dtype):
    return cast(t_, dtype)


_register(cross_entropy_mean, _cross_entropy_rule, linear=False)
_register(cast, _cast_rule)
del _fn
