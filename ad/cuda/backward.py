"""The backward of CUDA graphs on the device: ``engine.kernel_sweep``'s per-tape state for device tapes.

``DeviceSweep`` is ``engine._TapeSweep``'s twin for a ``DeviceTape`` (``tape.py``): its cotangent arena is a
device array with the tape's layout (zeroed outside the big tensors' regions, as on the CPU), the tape's
rows, attributes and aux go to the device once per backward, and ``kernels/cuda/sweep.reverse_sweep`` sweeps
them (runs of small rows in one single-block launch, big rows in full-grid launches: matmul and linear
through cuBLAS when CuPy is there, elementwise rows through kernels specialized per opcode). Python is
re-entered only where the CPU sweep re-enters it: at rows whose tensor has hooks or ``retain_grad`` (the
sweep stops above the row, the hooks run on a copy of the cotangent, the result is written back) and at
custom Functions' rows.

Host traffic is O(rows), never O(elements): the ``live`` flags (a byte per arena offset, as the CPU sweep's)
stay on the device, zeroed there; the host sets a few (seeds, custom Functions' gradients: ``_add``) and they go
up as a list of offsets before the next launch (``sweep.set_flags``). The host never reads them back: a flag is
set where the host set it or where a swept row wrote its operand's cotangent, and the rows' ``visited`` flags,
which come back after each launch (also for ``engine.free_swept``), say which rows ran (``_swept_live``).
``modified`` goes up only when the tape is ``dirty``; otherwise every sweep reads one shared zeroed array.
(Session 14's GPU run: copying the arena's ``live`` and ``modified`` flags each way cost ~380 of the 389 ms of a
64M-element chain's backward.)

Mixed graphs: cotangents of imported tensors (``DeviceTape.externs``) are handed on as on the CPU, copied
across when the tensor's home is on the other side: a ``.cuda()`` copy of a CPU tensor seeds the CPU tape
with a host copy of its cotangent; a ``.cpu()`` copy of a CUDA tensor lives on the device tape, so the CPU
tape that consumed it seeds the device sweep with a host array (``seed`` uploads it). Leaf gradients of CUDA
leaves are CUDA tensors (a copy out of the cotangent arena, which is then recycled).

Custom Functions on CUDA tensors record their outputs on the device tape (``function._record``): the
sweep stops at their rows and runs their backward in Python, as on the CPU.

What takes ``graph_sweep`` instead (``needs_graph_sweep``; ``autograd._run``): ``create_graph=True``,
forward-mode levels and anomaly mode (as on the CPU); a backward whose graph reaches a node without a device
row (``DeviceTape.graph_rows``: an op ``tape._encode`` does not know, e.g. one added without a row, or a
result of another float type); a backward from a CUDA leaf. None of the 190 CUDA op-table cases does.
"""

import numpy as np

from kernels import opcodes as K
from kernels.cpu import FREED, SAVES

from .. import engine
from ..grad_mode import no_grad
from ..tensor import Tensor, wrap_array
from . import tape as _tape
from .arrays import empty, simulated, to_device, wrap

# rows with at least this many work items get full-grid launches (kernels/cuda/sweep.py); tests lower it
BIG_THRESHOLD = None  # None: the kernel module's default
_SIM_THREADS = 8  # threads of the sweep's blocks under the simulator (each one a Python thread)

_consts = {}  # device constants, made once: SAVES, an empty region list, zeroed flags


def _const(name):
    arr = _consts.get(name)
    if arr is None:
        arr = _consts[name] = to_device(SAVES if name == "saves" else np.zeros(0, np.int64))
    return arr


def _zero_flags(n):
    """A device uint8 array of at least ``n`` zeros, shared (the kernels only read it: ``modified`` of a tape
    that nothing modified in place); grown, by doubling, when a bigger one is asked for."""
    arr = _consts.get("zeros")
    if arr is None or arr.shape[0] < n:
        arr = empty((max(n, 2 * arr.shape[0] if arr is not None else 0),), np.uint8)
        _tape.zero(arr)
        _consts["zeros"] = arr
    return arr


def _flat(a):
    return a.reshape(a.size) if a.ndim != 1 else a


def _add_into(dst, src):
    """``dst += src`` on the device (1-D, same size; ``src`` a device or host array)."""
    from kernels.cuda import ad_glue as kc

    if not hasattr(src, "copy_to_host"):
        src = to_device(np.ascontiguousarray(np.asarray(src).reshape(-1), dtype=dst.dtype))
    kc.launch(kc.add_inplace_kernel, dst.size, dst, _flat(src))


class DeviceSweep:
    """Per-tape state of one backward call for a device tape (``engine._TapeSweep``'s fields and methods)."""

    __slots__ = (
        "tape",
        "plan",
        "cot",
        "cot_base",
        "live",
        "live_base",
        "host_live",
        "pending",
        "swept",
        "visited",
        "start",
        "lowest",
        "functions",
        "hooked",
        "nexterns",
        "uploaded",
        "big_off",
        "big_n",
    )

    on_device = True

    def __init__(self, tape, plan=None):
        self.tape = tape
        if tape.hook_rows:  # hooks may record or run a nested backward: this tape's layout stays as sized here
            _tape.retire(tape)
        self.plan = plan
        used = tape.used + 1
        base = _tape.POOL.take(tape.dtype, used)
        if base is None:
            base = empty((used,), tape.dtype)
        self.cot_base = base
        self.cot = base[:used] if base.shape[0] != used else base
        # zero except the big tensors' regions, whose first writer stores or clears (``_add``, the kernel)
        regions = sorted(tape.big_regions)
        self.big_off = np.array([o for o, _ in regions], np.int64)
        self.big_n = np.array([n for _, n in regions], np.int64)
        lo = 0
        for off, n in regions:
            _tape.zero(self.cot[lo:off])
            lo = off + n
        _tape.zero(self.cot[lo:used])
        # the kernels' flags, on the device only; pooled as the arena (an allocation and a free of an arena's
        # size per backward would cost the device a synchronization)
        live = _tape.POOL.take(np.dtype(np.uint8), used)
        self.live_base = live if live is not None else empty((used,), np.uint8)
        self.live = self.live_base[:used] if self.live_base.shape[0] != used else self.live_base
        _tape.zero(self.live)
        self.host_live = set()  # offsets whose flag the host set
        self.pending = []  # ... and not yet on the device
        self.swept = set()  # offsets whose flag a swept row set (``_swept_live``)
        self.visited = np.zeros(tape.nrows + 1, np.uint8)
        self.start = -1
        self.lowest = tape.nrows
        self.functions = []  # (custom Functions record on CPU tapes: none here; engine.free_swept reads it)
        self.hooked = set()
        self.nexterns = len(tape.externs)
        self.uploaded = None

    # --- seeds and cotangents ---------------------------------------------------------------------------

    def seed(self, t, g):
        """Add cotangent ``g`` (a device or host array) of tensor ``t`` of this tape."""
        self._add(t._off, g)
        last = t._row + t._nrows - 1
        if last > self.start:
            self.start = last
        if t._row < self.lowest:
            self.lowest = t._row

    def tensor_of(self, t):
        """A new tensor (on ``t``'s device, in ``t``'s dtype) holding ``t``'s cotangent."""
        n = t._data.size
        region = self.cot[t._off : t._off + n]
        if t._dev is None:  # a host copy of a CUDA tensor
            return wrap_array(region.copy_to_host().astype(t._data.dtype, copy=False).reshape(t._data.shape))
        data = empty(t._data.shape, t._data.dtype)
        if n:
            _tape.store(_flat(data), region)
        return wrap(data, t._dev)

    def grad_of(self, t):
        return self.tensor_of(t) if self.is_live(t._off) else None

    def is_live(self, off):
        """Whether the tensor at arena offset ``off`` has a cotangent (its ``live`` flag, known on the host)."""
        return off in self.host_live or off in self.swept

    def _set_live(self, off):
        if off not in self.host_live:
            self.host_live.add(off)
            if off not in self.swept:
                self.pending.append(off)

    def _swept_live(self):
        """The offsets whose ``live`` flag the rows swept so far set (from ``visited``): every row that ran sets
        its operands' flags where they require grad (x, y, and a linear's bias), as both sweep kernels do."""
        rows = self.uploaded["rows_h"]
        ran = rows[self.visited[: rows.shape[0]] != 0]
        op = ran[:, 0]
        offsets = [ran[(op & K.XRG) != 0, 2], ran[(op & K.YRG) != 0, 3]]
        biased = ran[(op & K.CODE_MASK) == K.LINEAR_BIAS, 5]
        if biased.size:
            aux = self.uploaded["aux_h"]
            offsets.append(aux[biased + 3][aux[biased + 5] != 0])
        return set(np.concatenate(offsets).tolist())

    # --- the sweep -------------------------------------------------------------------------------------------

    def run(self, leaf_grads, state_of):
        """Sweep this tape (stopping at hooked rows), then hand the imported tensors' cotangents on."""
        self._sweep()
        self._hand_on(leaf_grads, state_of)

    def _sweep(self):
        tape = self.tape
        start = self.start
        hook_rows = sorted((r for r in tape.hook_rows if r <= start), reverse=True) if tape.hook_rows else ()
        for h in hook_rows:
            self._launch(start, h + 1)
            if h < self.lowest:
                return
            handlers = [ref() for ref in tape.hook_rows.get(h, ())]
            for t in handlers:  # tensors' hooks first: a Function's backward sees the hooked gradients
                if not isinstance(t, Tensor) or t._op is None or t._tape is not tape or not self.is_live(t._off):
                    continue
                if self.plan is not None and id(t) not in self.plan.leads:
                    continue
                self._arrive(t)
            for rec in handlers:
                if rec is not None and not isinstance(rec, Tensor) and not any(r is rec for r in self.functions):
                    self._function(rec)
            start = h
        self._launch(start, 0)

    def _arrive(self, t):
        """``t``'s hooks and ``retain_grad`` on its cotangent (engine._arrive, on the device)."""
        if not (t._hooks or t._retains_grad) or id(t) in self.hooked:
            return
        self.hooked.add(id(t))
        g = self.tensor_of(t)
        plan = self.plan
        if plan is not None and id(t) in plan.runs:
            plan.captured.setdefault(id(t), self.tensor_of(t))
        g = engine.run_hooks(t, g)
        n = t._data.size
        if n:
            _tape.store(self.cot[t._off : t._off + n], g._data)
        if t._retains_grad:
            engine._retain(t, g)

    def _function(self, rec):
        """A custom Function's backward (``function._Record``), once, when one of its outputs is reached
        (engine._sweep_tape and ``_Record.kernel_backward``, on the device)."""
        tape = self.tape
        plan = self.plan
        if not any(o is not None and o._tape is tape and self.is_live(o._off) for o in rec.outputs):
            return
        if plan is not None and not any(o is not None and id(o) in plan.runs for o in rec.outputs):
            return
        for o in rec.outputs:
            if o is None or o._tape is not tape:
                continue
            if self.is_live(o._off):
                self._arrive(o)
            elif o._hooks:
                g = engine.hooks_on_undefined(o)
                if g is not None:
                    self._add(o._off, g._data)
        grads = rec.output_grads(lambda o: self.tensor_of(o) if o._tape is tape and self.is_live(o._off) else None)
        for k, raw in enumerate(rec.raw_outputs):  # (materialized zeros of CUDA outputs on their device)
            g = grads[k]
            if g is not None and g._dev is None and isinstance(raw, Tensor) and raw._dev is not None:
                grads[k] = g.to(raw._dev)
        with no_grad():
            in_grads = rec.call_backward(grads)
        for i, g in enumerate(in_grads):
            if g is not None:
                off, row = rec.slots[i]
                self._add(off, g._data)
                if row < self.lowest:
                    self.lowest = row
        self.functions.append(rec)

    def _add(self, off, data):
        """Add ``data`` (device or host) into the cotangent region at ``off``, stored if it has none yet."""
        n = data.size
        if n:
            region = self.cot[off : off + n]
            if self.is_live(off):
                _add_into(region, data)
            else:
                _tape.store(region, data)
        self._set_live(off)

    def _upload(self):
        """The tape's arrays on the device, once per backward (rows of nodes off the paths to ``inputs``
        masked as engine._run_kernel does)."""
        if self.uploaded is not None:
            return self.uploaded
        tape = self.tape
        rows, attrs, aux = tape.arrays()
        rows = np.array(rows)  # (contiguous copies: the row buffer may grow while hooks run)
        attrs = np.ascontiguousarray(attrs)
        aux = np.array(aux)
        if self.plan is not None:
            blocked = self.plan.blocked.get(tape.id)
            if blocked:
                rows[np.array(blocked, np.int64), 1] = tape.used  # the spare last slot: never live
        freed = np.zeros(tape.nrows + 1, np.uint8)
        flags = tape.freed_flags()
        m = min(flags.shape[0], tape.nrows)
        freed[:m] = flags[:m]
        used = tape.used + 1
        self.uploaded = {
            "rows_h": rows,
            "attrs_h": attrs,
            "aux_h": aux,
            "rows": to_device(rows),
            "attrs": to_device(attrs),
            "aux": to_device(aux),
            "freed": to_device(freed),
            "modified": to_device(tape.modified[:used]) if tape.dirty else _zero_flags(used),
            "visited": to_device(self.visited),
            "big_off": to_device(self.big_off) if self.big_off.size else _const("none"),
            "big_n": to_device(self.big_n) if self.big_n.size else _const("none"),
        }
        return self.uploaded

    def _launch(self, start, stop):
        """``reverse_sweep`` over rows ``start`` down to ``stop``."""
        if start < stop or start < self.lowest:
            return
        from kernels.cuda import sweep as ks

        d = self._upload()
        ks.set_flags(self.live, self.pending)
        self.pending.clear()
        status = np.zeros(3, np.int64)
        options = {"host_rows": d["rows_h"], "host_aux": d["aux_h"], "host_attrs": d["attrs_h"]}
        if simulated():
            options.update(threads=_SIM_THREADS, grid_threads=_SIM_THREADS)
        if BIG_THRESHOLD is not None:
            options["big_threshold"] = BIG_THRESHOLD
        args = [d[k] for k in ("rows", "attrs", "aux")] + [self.tape.values, self.cot, self.live, d["visited"]]
        args += [d["freed"], d["modified"], _const("saves"), start, stop, self.lowest, status, d["big_off"], d["big_n"]]
        try:
            result = ks.reverse_sweep(*args, **options)
        finally:
            self.visited = d["visited"].copy_to_host()  # (rows' bytes: also what engine.free_swept reads)
        self.swept = self._swept_live()
        if result < 0:
            if status[0] == FREED:
                raise RuntimeError(engine.FREED_MESSAGE)
            raise RuntimeError(engine._modified_message(self.tape, int(status[1]), int(status[2])))
        self.lowest = result

    def _hand_on(self, leaf_grads, state_of):
        """The cotangents of imported tensors, newest first, down to where the sweep stopped: to a leaf's
        result, or as a seed into the tape that owns the tensor (copied across devices where needed)."""
        externs = self.tape.externs
        for k in range(self.nexterns - 1, -1, -1):
            row, off, t = externs[k]
            if row < self.lowest:
                break
            if not self.is_live(off):
                continue
            g = self.cot[off : off + t._data.size]
            if t._op is None:
                _add_leaf(leaf_grads, t, g)
            else:
                home = state_of(t._tape)
                if not home.on_device:
                    g = g.copy_to_host().astype(t._data.dtype, copy=False)
                home.seed(t, g)

    def release(self, retain_graph):
        """The cotangent arena and the flags back to the pool (nothing views them: results were copied out);
        without ``retain_graph`` the tape retires, so the next forward records a new one."""
        self.cot = self.live = None
        _tape.POOL.give(self.cot_base, _tape._refs(self.cot_base))
        _tape.POOL.give(self.live_base, _tape._refs(self.live_base))
        if not retain_graph:
            _tape.retire(self.tape)


def _add_leaf(leaf_grads, t, g):
    """Add cotangent ``g`` (a device slice of the arena) to leaf ``t``'s entry: a CUDA tensor of its own for a
    CUDA leaf, a host array for a host leaf (``engine._add_leaf``)."""
    if t._dev is None:
        engine._add_leaf(leaf_grads, t, g.copy_to_host().reshape(t._data.shape))
        return
    key = id(t)
    prev = leaf_grads.get(key)
    if prev is None:
        data = empty(t._data.shape, t._data.dtype)
        if data.size:
            _tape.store(_flat(data), g)
        leaf_grads[key] = (t, wrap(data, t._dev), True)
    elif g.size:
        _add_into(_flat(prev[1]._data), g)


def needs_graph_sweep(outputs):
    """Whether a backward from ``outputs`` must take ``graph_sweep`` because of CUDA: an output is a
    CUDA leaf, or the graph reaches a node without a row on a device tape (``DeviceTape.graph_rows``)."""
    for out in outputs:
        if out._dev is not None and out._op is None:
            return True
    if not _tape.GRAPH_ONLY:
        return False
    return graph_reaches(outputs, lambda t: t._row in getattr(t._tape, "graph_rows", ()))


def graph_reaches(outputs, test):
    """Whether ``test(t)`` holds for a node ``t`` of the graph of ``outputs`` (a walk over the Python graph)."""
    seen = set()
    stack = [t for t in outputs if t._op is not None]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if test(t):
            return True
        for inp in engine._inputs_of(t):
            if inp is not None and inp._rg and inp._op is not None and id(inp) not in seen:
                stack.append(inp)
    return False
