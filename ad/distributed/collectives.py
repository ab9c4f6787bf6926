"""Collectives on ``ad`` tensors, in place, with torch.distributed's names, arguments and semantics.

Each collective starts one non-blocking MPI collective (``Iallreduce``, ``Ibcast``, ...) on the numpy buffer
of the tensor (the tensor's own memory when it is C-contiguous, a contiguous copy otherwise) and returns a
``Work``. ``Work.wait()`` completes the request through ``process_group.wait`` (deadline, failure notices),
then runs the collective's ``finish``: divide for ``ReduceOp.AVG``, copy results into the destination tensors
with ``copy_`` under ``no_grad`` (which bumps their version counters, so a graph that saved one of them raises
at backward, as torch does). ``async_op=False`` waits before returning; ``async_op=True`` returns the Work.
"""

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor
from ..views import check_write
from . import process_group as pg

__all__ = [
    "ReduceOp",
    "Work",
    "all_reduce",
    "broadcast",
    "all_gather",
    "all_gather_into_tensor",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "reduce",
    "gather",
    "scatter",
    "barrier",
]


class _Op:
    def __init__(self, name, mpi_name):
        self.name = name
        self.mpi_name = mpi_name

    def __repr__(self):
        return f"<ReduceOp.{self.name}: {self.name}>"


class ReduceOp:
    """Reduction operations (torch's ``ReduceOp``). ``AVG`` sums, then divides by the world size (floating
    point only); ``BAND``/``BOR``/``BXOR`` take integer or bool tensors."""

    SUM = _Op("SUM", "SUM")
    AVG = _Op("AVG", "SUM")
    PRODUCT = _Op("PRODUCT", "PROD")
    MIN = _Op("MIN", "MIN")
    MAX = _Op("MAX", "MAX")
    BAND = _Op("BAND", "BAND")
    BOR = _Op("BOR", "BOR")
    BXOR = _Op("BXOR", "BXOR")


class Work:
    """A collective in flight (torch's ``Work``): ``wait()`` completes it, ``is_completed()`` tests it."""

    def __init__(self, requests, what, finish=None, outputs=()):
        self._requests = requests
        self._what = what
        self._finish = finish
        self._outputs = outputs
        self._done = False

    def _complete(self):
        self._done = True
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()

    def wait(self, timeout=None):
        """Block until the collective is complete and its results are in the tensors; returns True.

        Args:
            timeout: a ``timedelta``; the group's timeout (``init_process_group``) when None.

        Raises:
            ad.distributed.PeerFailure (a RuntimeError): another rank failed, or the timeout passed.
        """
        if not self._done:
            pg.wait(self._requests, self._what, timeout)
            self._complete()
        return True

    def is_completed(self):
        """Whether the collective is done (its results are then in the tensors)."""
        if not self._done and pg.poll(self._requests):
            self._complete()
        return self._done

    def is_success(self):
        return self.is_completed()

    def result(self):
        """The output tensors (after ``wait``)."""
        return list(self._outputs)


def _run(requests, what, finish, async_op, outputs=()):
    work = Work(requests, what, finish, outputs)
    if async_op:
        return work
    work.wait()
    return None


def _check_tensor(t, name):
    if not isinstance(t, Tensor):
        raise TypeError(
            f"Invalid function argument. Expected parameter `{name}` of type Tensor but got {type(t)} instead."
        )
    if not isinstance(t._data, np.ndarray):
        raise RuntimeError(
            f"ad.distributed collectives take CPU tensors; `{name}` is on {t.device}: move it with .cpu() first"
        )


def _check_list(ts, name, size, like):
    if not isinstance(ts, (list, tuple)) or not all(isinstance(t, Tensor) for t in ts):
        raise TypeError(
            f"Invalid function argument. Expected parameter `{name}` of type List[Tensor] but got {type(ts)} instead."
        )
    if len(ts) != size:
        raise ValueError(f"`{name}` must hold one tensor per rank: expected {size}, got {len(ts)}")
    for i, t in enumerate(ts):
        _check_tensor(t, f"{name}[{i}]")
        if t.shape != like.shape or t.dtype != like.dtype:
            raise RuntimeError(
                f"`{name}[{i}]` has shape {list(t.shape)} and dtype {t.dtype}; expected shape {list(like.shape)} "
                f"and dtype {like.dtype} (as the rank's tensor)"
            )


def _rank_arg(st, r, name):
    if not isinstance(r, (int, np.integer)) or not 0 <= r < st.world_size:
        raise ValueError(f"{name}={r!r} is not a rank of the group (0 .. {st.world_size - 1})")
    return int(r)


def _mpi_op(st, op, t):
    if not isinstance(op, _Op):
        raise ValueError(f"op must be an ad.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and t._data.dtype.kind != "f":
        raise ValueError(f"ReduceOp.AVG needs a floating-point tensor, got {t.dtype}")
    if op.name in ("BAND", "BOR", "BXOR") and t._data.dtype.kind not in "iub":
        raise ValueError(f"ReduceOp.{op.name} needs an integer or bool tensor, got {t.dtype}")
    return getattr(st.MPI, op.mpi_name)


def _buffer(t):
    """The contiguous numpy buffer MPI reads and writes for ``t``: its own memory when possible."""
    return t._data if t._data.flags.c_contiguous else np.ascontiguousarray(t._data)


def _store(t, value):
    """Write ``value`` into tensor ``t`` as an in-place update (version bump, stale graph copies flagged)."""
    with no_grad():
        t.copy_(value)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across all ranks with ``op``; every rank gets the result, in place.

    Example:
        >>> t = ad.tensor([float(dist.get_rank())])
        >>> dist.all_reduce(t)        # t is now [0 + 1 + ... + (world_size - 1)] on every rank
    """
    st = pg.check_group(group)
    _check_tensor(tensor, "tensor")
    check_write(tensor)
    mop = _mpi_op(st, op, tensor)
    buf = _buffer(tensor)
    req = st.comm.Iallreduce(st.MPI.IN_PLACE, buf, op=mop)

    def finish():
        if op is ReduceOp.AVG:
            buf[...] /= st.world_size
        _store(tensor, buf)

    return _run([req], "all_reduce", finish, async_op, [tensor])


def broadcast(tensor, src, group=None, async_op=False):
    """Copy ``tensor`` of rank ``src`` into ``tensor`` of every other rank."""
    st = pg.check_group(group)
    _check_tensor(tensor, "tensor")
    src = _rank_arg(st, src, "src")
    if st.rank != src:
        check_write(tensor)
    buf = _buffer(tensor)
    req = st.comm.Ibcast(buf, root=src)
    finish = (lambda: _store(tensor, buf)) if st.rank != src else None
    return _run([req], "broadcast", finish, async_op, [tensor])


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[r]`` gets rank ``r``'s ``tensor``, on every rank."""
    st = pg.check_group(group)
    _check_tensor(tensor, "tensor")
    _check_list(tensor_list, "tensor_list", st.world_size, tensor)
    recv = np.empty((st.world_size, *tensor.shape), tensor._data.dtype)
    req = st.comm.Iallgather(_buffer(tensor), recv)

    def finish():
        for t, part in zip(tensor_list, recv):
            _store(t, part)

    return _run([req], "all_gather", finish, async_op, tensor_list)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """The ranks' ``input_tensor``s, concatenated along dimension 0 (or stacked) into ``output_tensor``."""
    st = pg.check_group(group)
    _check_tensor(output_tensor, "output_tensor")
    _check_tensor(input_tensor, "input_tensor")
    if output_tensor.numel() != st.world_size * input_tensor.numel() or output_tensor.dtype != input_tensor.dtype:
        raise ValueError(
            f"output_tensor must hold world_size ({st.world_size}) x input_tensor's {input_tensor.numel()} "
            f"elements of dtype {input_tensor.dtype}; got {output_tensor.numel()} of {output_tensor.dtype}"
        )
    check_write(output_tensor)
    recv = _buffer(output_tensor)
    req = st.comm.Iallgather(_buffer(input_tensor), recv)
    return _run([req], "all_gather_into_tensor", lambda: _store(output_tensor, recv), async_op, [output_tensor])


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` of rank ``r`` gets the reduction over all ranks of their ``input_list[r]``."""
    st = pg.check_group(group)
    _check_tensor(output, "output")
    _check_list(input_list, "input_list", st.world_size, output)
    check_write(output)
    mop = _mpi_op(st, op, output)
    send = np.stack([np.asarray(t._data) for t in input_list])
    recv = _buffer(output)
    req = st.comm.Ireduce_scatter_block(send, recv, op=mop)

    def finish():
        if op is ReduceOp.AVG:
            recv[...] /= st.world_size
        _store(output, recv)

    return _run([req], "reduce_scatter", finish, async_op, [output])


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):  # noqa: A002
    """``reduce_scatter`` with the inputs as one tensor: rank ``r`` gets the reduced ``r``-th 1/world_size of
    ``input`` (split along dimension 0)."""
    st = pg.check_group(group)
    _check_tensor(output, "output")
    _check_tensor(input, "input")
    if input.numel() != st.world_size * output.numel() or output.dtype != input.dtype:
        raise ValueError(
            f"input must hold world_size ({st.world_size}) x output's {output.numel()} elements of dtype "
            f"{output.dtype}; got {input.numel()} of {input.dtype}"
        )
    check_write(output)
    mop = _mpi_op(st, op, output)
    recv = _buffer(output)
    req = st.comm.Ireduce_scatter_block(_buffer(input), recv, op=mop)

    def finish():
        if op is ReduceOp.AVG:
            recv[...] /= st.world_size
        _store(output, recv)

    return _run([req], "reduce_scatter_tensor", finish, async_op, [output])


def reduce(tensor, dst, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across all ranks into ``tensor`` of rank ``dst`` (the others' are left as they are)."""
    st = pg.check_group(group)
    _check_tensor(tensor, "tensor")
    dst = _rank_arg(st, dst, "dst")
    mop = _mpi_op(st, op, tensor)
    buf = _buffer(tensor)
    if st.rank == dst:
        check_write(tensor)
        req = st.comm.Ireduce(st.MPI.IN_PLACE, buf, op=mop, root=dst)

        def finish():
            if op is ReduceOp.AVG:
                buf[...] /= st.world_size
            _store(tensor, buf)

    else:
        req = st.comm.Ireduce(buf, None, op=mop, root=dst)
        finish = None
    return _run([req], "reduce", finish, async_op, [tensor])


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False):
    """Rank ``dst`` gets every rank's ``tensor`` in ``gather_list`` (given on ``dst`` only)."""
    st = pg.check_group(group)
    _check_tensor(tensor, "tensor")
    dst = _rank_arg(st, dst, "dst")
    if st.rank == dst:
        _check_list(gather_list, "gather_list", st.world_size, tensor)
        recv = np.empty((st.world_size, *tensor.shape), tensor._data.dtype)
        req = st.comm.Igather(_buffer(tensor), recv, root=dst)

        def finish():
            for t, part in zip(gather_list, recv):
                _store(t, part)

        return _run([req], "gather", finish, async_op, gather_list)
    if gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    req = st.comm.Igather(_buffer(tensor), None, root=dst)
    return _run([req], "gather", None, async_op)


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False):
    """Rank ``r``'s ``tensor`` gets ``scatter_list[r]`` of rank ``src`` (given on ``src`` only)."""
    st = pg.check_group(group)
    _check_tensor(tensor, "tensor")
    src = _rank_arg(st, src, "src")
    check_write(tensor)
    recv = _buffer(tensor)
    if st.rank == src:
        _check_list(scatter_list, "scatter_list", st.world_size, tensor)
        send = np.stack([np.asarray(t._data) for t in scatter_list])
        req = st.comm.Iscatter(send, recv, root=src)
    else:
        if scatter_list:
            raise ValueError("Argument ``scatter_list`` must NOT be specified on non-source ranks.")
        req = st.comm.Iscatter(None, recv, root=src)
    return _run([req], "scatter", lambda: _store(tensor, recv), async_op, [tensor])


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has reached the barrier."""
    st = pg.check_group(group)
    return _run([st.comm.Ibarrier()], "barrier", None, async_op)
