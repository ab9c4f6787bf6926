"""``DataParallel``: average the gradients of a list of leaves across ranks during ``backward()``.

Data structures: ``params`` (the leaves, in the order given); ``buckets``, each a ``_Bucket`` of parameter
indices that share a dtype, at most ``bucket_cap_mb`` of gradients, with one flat numpy ``buffer`` holding
their gradients side by side (``offsets``). Buckets are formed in reverse parameter order (the sweep produces
the last layers' gradients first, as torch's DDP assumes).

One backward: each parameter's gradient-ready hook (``ad/autograd/sweep_hooks.py``: the compiled sweep calls
it as soon as the parameter's gradient is complete, with the rest of the sweep still to run) copies the
gradient into its bucket's buffer. A bucket whose parameters are all in starts its non-blocking all-reduce
(``Iallreduce``), in bucket order (every rank must start the same collectives in the same order, whatever
order its sweep finished them in); each hook also polls the requests in flight, which is what lets MPI move
them forward while the sweep computes. The first hook queues ``_finish`` as the backward's final callback: it
starts the buckets not yet started (gradients that did not arrive count as zeros), waits for all (with the
group's timeout), and writes ``.grad = previous .grad + mean over ranks`` (the previous ``.grad``, kept when
the hook ran, is what gradient accumulation over several backwards left). Every rank computes the same values,
so the parameters stay identical across ranks.
"""

import time

import numpy as np

from ..autograd import sweep_hooks
from ..grad_mode import no_grad
from ..tensor import Tensor, wrap_array
from . import collectives
from . import process_group as pg

__all__ = ["DataParallel"]


class _Bucket:
    __slots__ = ("indices", "offsets", "buffer", "arrived", "has", "request")

    def __init__(self, indices, params):
        self.indices = indices
        sizes = [params[i]._data.size for i in indices]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.buffer = np.empty(int(self.offsets[-1]), params[indices[0]]._data.dtype)
        self.arrived = 0  # how many of its parameters' gradients are in the buffer
        self.has = np.zeros(len(indices), bool)  # which
        self.request = None


class DataParallel:
    """Average the gradients of ``params`` over all ranks during each ``backward()``, overlapping the
    communication with the rest of the sweep; ``backward()`` returns with every ``.grad`` averaged.

    Args:
        params: the parameters (leaf tensors that require grad), or a module (its ``parameters()``). They are
            broadcast from rank 0 at construction, so every rank starts from the same values.
        bucket_cap_mb: the most megabytes of gradients reduced by one all-reduce (torch's default: 25).
        group: the process group (only the default one exists).

    Raises:
        ValueError: the process group is not initialized; no parameters; a repeated parameter.
        RuntimeError: a parameter that is not a leaf that requires grad, or that has tensor hooks (they would
            change the gradient after it was reduced); ``backward(create_graph=True)``.
        TypeError: a parameter that is not a Tensor.

    Example:
        >>> dist.init_process_group("mpi")
        >>> model = make_model(); ddp = dist.DataParallel(model.parameters())
        >>> loss_fn(model(x_shard), y_shard).backward()   # .grad: the mean over ranks
        >>> opt.step()
    """

    def __init__(self, params, bucket_cap_mb=25, group=None):
        st = pg.check_group(group)
        if hasattr(params, "parameters"):
            params = params.parameters()
        params = list(params)
        if not params:
            raise ValueError("DataParallel got an empty parameter list")
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"DataParallel: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad or p._op is not None:
                raise RuntimeError(f"DataParallel: parameter {i} must be a leaf tensor that requires grad")
            if not isinstance(p._data, np.ndarray):
                raise RuntimeError(f"DataParallel: parameter {i} is on {p.device}; ad.distributed runs on the CPU")
            if p._hooks:
                raise RuntimeError(
                    f"DataParallel: parameter {i} has tensor hooks, which would change its gradient after the "
                    "all-reduce; use register_post_accumulate_grad_hook to act on the averaged .grad"
                )
            if id(p) in seen:
                raise ValueError(f"DataParallel: parameter {i} appears twice")
            seen.add(id(p))
        if bucket_cap_mb <= 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.params = params
        self.world_size = st.world_size
        self.buckets = self._make_buckets(params, int(bucket_cap_mb * 1024 * 1024))
        self._where = {}  # id(param) -> (bucket, position in the bucket)
        for b in self.buckets:
            for k, i in enumerate(b.indices):
                self._where[id(params[i])] = (b, k)
        self._frame = None  # the backward being reduced (sweep_hooks frame), None between backwards
        self._old = {}  # param index -> its .grad before this backward (a copy), for accumulation
        self._next = 0  # the next bucket to start
        # what the last backward did (for benchmarks and tests): buckets whose all-reduce started in the sweep,
        # buckets already reduced when the sweep ended, seconds the final callback waited for the rest
        self.launched_in_sweep = 0
        self.reduced_in_sweep = 0
        self.wait_s = 0.0
        self._progress = pg.Progress()  # moves the started all-reduces along while the sweep computes
        works = [collectives.broadcast(p, 0, async_op=True) for p in params]
        for w in works:
            w.wait()
        self._handles = [sweep_hooks.register_grad_ready_hook(p, self._grad_ready) for p in params]

    @staticmethod
    def _make_buckets(params, cap_bytes):
        buckets, current, size, dtype = [], [], 0, None
        for i in reversed(range(len(params))):
            data = params[i]._data
            if current and (data.dtype != dtype or size + data.nbytes > cap_bytes):
                buckets.append(current)
                current, size = [], 0
            current.append(i)
            size += data.nbytes
            dtype = data.dtype
        buckets.append(current)
        return [_Bucket(indices, params) for indices in buckets]

    def remove(self):
        """Stop averaging: unregister the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for p in self.params:  # no hooks left: the sweep need not stop for these leaves any more
            if not p.__dict__.get("_grad_ready_hooks"):
                p.__dict__.pop("_grad_ready_hooks", None)

    # ------------------------------------------------------------------ during backward
    def _grad_ready(self, p, g):
        frame = sweep_hooks.current_frame()
        if self._frame is not frame:
            if self._frame is not None:
                raise RuntimeError(
                    "DataParallel: an earlier backward failed after its gradients' all-reduce had started; the "
                    "ranks are out of step (destroy the process group and restart)"
                )
            self._start_round(frame)
        bucket, k = self._where[id(p)]
        index = bucket.indices[k]
        if p._grad is not None:
            self._old[index] = np.array(p._grad._data, copy=True)
        bucket.buffer[bucket.offsets[k] : bucket.offsets[k + 1]] = g.reshape(-1)
        bucket.arrived += 1
        bucket.has[k] = True
        self._launch_ready()
        started = [b.request for b in self.buckets[: self._next]]
        if started:
            pg.poll(started)  # MPI advances non-blocking collectives only inside MPI calls

    def _start_round(self, frame):
        self._frame = frame
        self._old = {}
        self._next = 0
        self.launched_in_sweep = 0
        for b in self.buckets:
            b.arrived = 0
            b.has[:] = False
            b.request = None
        sweep_hooks.queue_callback(self._finish)

    def _launch_ready(self):
        st = pg._state
        while self._next < len(self.buckets):
            b = self.buckets[self._next]
            if b.arrived < len(b.indices):
                return
            b.request = st.comm.Iallreduce(st.MPI.IN_PLACE, b.buffer, op=st.MPI.SUM)
            self._next += 1
            self.launched_in_sweep += 1
            self._progress.start()

    def _finish(self):
        """The final callback of the backward: start what is left, wait, write the means into ``.grad``."""
        st = pg._state
        t0 = time.perf_counter()
        try:
            self.reduced_in_sweep = sum(1 for b in self.buckets[: self._next] if b.request.Test())
            for b in self.buckets[self._next :]:
                for k in np.flatnonzero(~b.has):  # gradients that did not reach this rank count as zeros
                    b.buffer[b.offsets[k] : b.offsets[k + 1]] = 0
                    p = self.params[b.indices[k]]
                    if p._grad is not None:  # (this backward left it as it was)
                        self._old[b.indices[k]] = np.array(p._grad._data, copy=True)
                b.request = st.comm.Iallreduce(st.MPI.IN_PLACE, b.buffer, op=st.MPI.SUM)
            self._next = len(self.buckets)
            self._progress.stop()  # (the wait below polls)
            pg.wait([b.request for b in self.buckets], "DataParallel's gradient all-reduce")
            self.wait_s = time.perf_counter() - t0
            with no_grad():
                for b in self.buckets:
                    for k, i in enumerate(b.indices):
                        self._write(i, b.buffer[b.offsets[k] : b.offsets[k + 1]])
        finally:
            self._progress.stop()
            self._frame = None
            self._old = {}

    def _write(self, i, total):
        """``.grad`` of parameter ``i`` = its previous ``.grad`` (if any) + ``total / world_size``, in one pass
        into the ``.grad`` array this backward wrote when there is no previous one (the common case)."""
        p = self.params[i]
        shape = p._data.shape
        total = total.reshape(shape)
        old = self._old.get(i)
        if p._grad is None:
            p._grad = wrap_array(np.divide(total, self.world_size, dtype=p._data.dtype))
            return
        out = p._grad._data
        if old is None:
            np.divide(total, self.world_size, out=out)
        else:
            np.add(old, total / self.world_size, out=out)
        p._grad._version += 1
