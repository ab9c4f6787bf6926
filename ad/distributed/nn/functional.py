"""Differentiable collectives (torch.distributed.nn.functional): each returns new tensors and records a custom
``ad.autograd.Function`` whose backward is the matching collective of the cotangents:

- ``all_reduce`` (SUM): every rank's output is the sum of all inputs, so the gradient of rank ``r``'s input is
  the sum over ranks of their outputs' cotangents: an all-reduce (SUM) again.
- ``all_gather``: output ``k`` of every rank is rank ``k``'s input, so the gradient of rank ``r``'s input is the
  sum over ranks of their ``k = r`` cotangents: a reduce-scatter (SUM).
- ``broadcast``: every output is ``src``'s input: the cotangents are summed into ``src`` (a reduce to ``src``);
  the other ranks' inputs get zero gradient.
"""

import numpy as np

from ... import autograd
from ...tensor import wrap_array
from .. import collectives as C
from .. import process_group as pg

__all__ = ["all_reduce", "all_gather", "broadcast"]


def _fresh(t):
    return wrap_array(np.array(t._data, copy=True))


class _AllReduce(autograd.Function):
    @staticmethod
    def forward(ctx, op, group, tensor):
        ctx.group = group
        out = _fresh(tensor)
        C.all_reduce(out, op=op, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        return None, None, _AllReduce.apply(C.ReduceOp.SUM, ctx.group, g)


class _AllGather(autograd.Function):
    @staticmethod
    def forward(ctx, group, tensor):
        ctx.group = group
        outs = [wrap_array(np.empty_like(tensor._data)) for _ in range(pg.get_world_size(group))]
        C.all_gather(outs, tensor, group=group)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        like = next(g for g in grads if g is not None)
        grads = [g if g is not None else wrap_array(np.zeros_like(like._data)) for g in grads]
        return None, _ReduceScatter.apply(ctx.group, *grads)


class _ReduceScatter(autograd.Function):
    @staticmethod
    def forward(ctx, group, *inputs):
        ctx.group = group
        out = wrap_array(np.empty_like(inputs[0]._data))
        C.reduce_scatter(out, list(inputs), group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        return (None, *_AllGather.apply(ctx.group, g))


class _Broadcast(autograd.Function):
    @staticmethod
    def forward(ctx, src, group, tensor):
        ctx.src, ctx.group = src, group
        out = _fresh(tensor)
        C.broadcast(out, src, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        total = _fresh(g)
        C.reduce(total, ctx.src, group=ctx.group)
        if pg.get_rank(ctx.group) != ctx.src:
            total = wrap_array(np.zeros_like(total._data))
        return None, None, total


def all_reduce(tensor, op=C.ReduceOp.SUM, group=None):
    """The reduction of ``tensor`` over all ranks, as a new tensor; differentiable for ``ReduceOp.SUM``.

    Raises:
        RuntimeError: ``op`` other than SUM on a tensor that requires grad (its gradient is not an all-reduce).
    """
    if op is not C.ReduceOp.SUM and tensor.requires_grad:
        raise RuntimeError(f"ad.distributed.nn.all_reduce is differentiable for ReduceOp.SUM only, got {op!r}")
    return _AllReduce.apply(op, group, tensor)


def all_gather(tensor, group=None):
    """Every rank's ``tensor``, as a tuple of new tensors (index = rank); differentiable."""
    return _AllGather.apply(group, tensor)


def broadcast(tensor, src, group=None):
    """Rank ``src``'s ``tensor`` on every rank, as a new tensor; differentiable."""
    return _Broadcast.apply(src, group, tensor)
