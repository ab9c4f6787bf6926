"""The CUDA tape: the CPU tape's struct-of-arrays layout (``ad/tape.py``) with its value arena on the device.

Data structures (read ``ad/tape.py``'s docstring first; everything there holds here, except where said):

- ``DeviceTape.values``: the value arena, a 1-D numba device array (fixed capacity, float32 or float64, one
  tape per thread, dtype and device). A recorded CUDA result's ``_data`` is a reshaped view of
  ``values[off: off + n]``: the kernel computed it into a fresh device array, which ``record`` copies into the
  arena (one device-to-device copy) and drops; elementwise ops compute straight into their arena slot
  (``out_buffer``). Results that alias another tensor's storage (views: ``alias=True``)
  keep their own ``_data`` (a strided device array over their base's memory), and the arena holds a snapshot
  of their values in C order, as CPU views.
  Imported operands (leaves, constants, tensors of other tapes, host tensors of a ``.cuda()`` copy) are
  copied into the arena once per tape and version, so the sweep reads every value by offset.
- ``rows``, ``aux``, ``externs``, ``imports``, ``hook_rows``, ``freed``: the CPU tape's, in the same format
  (the functions that write them are ``Tape``'s own), on the host. ``modified`` (host, uint8 per offset) is
  set by ``tape.mark_modified`` as on the CPU; a backward uploads it when the tape is ``dirty``.
- ``graph_rows``: rows of nodes the device sweep cannot run (ops whose row ``_encode`` does not encode): a
  placeholder row (``K.PYTHON``, which the kernel skips) holds their place, and a backward whose graph reaches
  one takes ``graph_sweep`` (``backward.needs_graph_sweep``), which checks their saved values by their op
  (``check_graph_row``: the ``modified`` flags of the node and its operands, the versions of leaf operands).

A ``.cpu()`` copy of a CUDA tensor that requires grad is a host tensor recorded on the device tape (a COPY
row from the CUDA operand; its arena slot holds no values, COPY reads none): the CPU tape that consumes it
imports it as any tensor of another tape, and the engine hands its cotangent across (``ad/cuda/backward.py``).

Arenas are pooled between steps (``_DevicePool``, the CPU's ``_ArenaPool`` for device memory): a retired
tape's arena is reused once no tensor views it.
"""

import array
import sys
import threading
import weakref

import numpy as np

from kernels import opcodes as K

from ..grad_mode import _grad_state
from ..tape import BIG_ROW, DEFAULT_CAPACITY, ROW, Tape, _next_tape_id, _pack_for
from .arrays import dense, empty

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)

# unary codes whose partial reads the row's attributes: recorded only when the forward hands them over
_ATTR_CODES = frozenset(
    (K.CLAMP, K.POW_SCALAR, K.RPOW_SCALAR, K.AFFINE, K.RDIV_SCALAR, K.LOGIT, K.GELU, K.ELU, K.CELU)
)

# device tapes with a node the device sweep cannot run (``graph_rows``): while none lives, no walk is needed
GRAPH_ONLY = weakref.WeakSet()


def _refs(arr):
    """How many views hold ``arr``'s memory (None: unknown or already freed, never reused)."""
    if hasattr(arr, "_ary"):  # simulator: numpy views keep their base alive
        return sys.getrefcount(arr._ary)
    try:
        count = arr.gpu_data.owner.refct
    except AttributeError:  # memory numba does not own (CuPy's, torch's): no count
        return None
    except ReferenceError:  # numba freed it (its owner is gone): see ``_DevicePool.give``
        return None
    return count or None  # 0: freed, its owner not yet collected


class _DevicePool:
    """Arena buffers of retired device tapes, reused by the next tape once nothing views them."""

    MAX_BUFFERS = 8  # (cotangent arenas and live-flag buffers: a backward over several tapes takes two each)
    MAX_BYTES = 4 << 30  # device memory the pool may hold idle, oldest buffers dropped first

    def __init__(self):
        self.lock = threading.Lock()
        self.buffers = []  # (array, its reference count when nothing viewed it)

    def take(self, dtype, n):
        with self.lock:
            for k in range(len(self.buffers) - 1, -1, -1):
                buf, idle = self.buffers[k]
                if buf.dtype == dtype and n <= buf.shape[0] <= 4 * n + (1 << 16) and _refs(buf) == idle:
                    del self.buffers[k]
                    return buf
        return None

    def give(self, buf, idle):
        # A tape collected in a reference cycle: the garbage collector runs weakref callbacks before __del__,
        # so numba's finalizer of the arena's memory (an OwnedPointer's ``deref``) may have freed it before
        # DeviceTape.__del__ hands the arena here. Pooling it would hand freed memory to the next tape.
        if idle is None or _refs(buf) is None or not self.lock.acquire(blocking=False):  # (from __del__: never wait)
            return
        try:
            self.buffers.append((buf, idle))
            del self.buffers[: -self.MAX_BUFFERS]
            while sum(b.nbytes for b, _ in self.buffers) > self.MAX_BYTES:
                del self.buffers[0]
        finally:
            self.lock.release()


POOL = _DevicePool()


def new_arena(dtype, n):
    buf = POOL.take(dtype, n)
    return buf if buf is not None else empty((n,), dtype)


class DeviceTape:
    """A tape whose value arena lives on a CUDA device (see the module docstring)."""

    __slots__ = (
        "id",
        "dtype",
        "dev",
        "values",
        "idle_refs",
        "capacity",
        "used",
        "rows",
        "nrows",
        "row_cap",
        "aux",
        "externs",
        "imports",
        "freed",
        "modified",
        "dirty",
        "hook_rows",
        "python_rows",
        "big_regions",
        "owner",
        "traces",
        "pack",
        "pack_ints",
        "is_current",
        "graph_rows",
        "__weakref__",
    )

    on_device = True

    def __init__(self, dtype, capacity, dev):
        self.id = _next_tape_id()
        self.dtype = dtype
        self.dev = dev
        self.values = new_arena(dtype, capacity)
        self.idle_refs = _refs(self.values)
        self.capacity = capacity
        self.used = 0
        self.rows = bytearray(ROW.size * 128)
        self.row_cap = 128
        self.nrows = 0
        self.aux = array.array("q")
        self.externs = []
        self.imports = {}
        self.freed = np.zeros(0, np.uint8)
        self.modified = np.zeros(capacity + 1, np.uint8)
        self.dirty = False
        self.hook_rows = {}
        self.python_rows = set()  # (none: every row runs in the kernel)
        self.big_regions = []  # (offset, size) of tensors of BIG_ROW elements or more (see ``big``)
        self.owner = threading.get_ident()
        self.traces = {}
        self.pack, self.pack_ints = _pack_for(self.traces)
        self.is_current = 0  # never a CPU tape's thread marker: the CPU fast paths pass device tapes on
        self.graph_rows = set()

    def __del__(self):
        try:
            POOL.give(self.values, self.idle_refs)
        except Exception:  # interpreter shutdown
            pass

    # the CPU tape's bookkeeping, unchanged (rows, aux, freed flags, hook rows)
    alloc = Tape.alloc
    record = Tape.record
    grow = Tape.grow
    add_aux = Tape.add_aux
    arrays = Tape.arrays
    freed_flags = Tape.freed_flags
    register_hook_row = Tape.register_hook_row

    def sweep_state(self, plan):
        """This tape's state in a backward (``engine.kernel_sweep``): a ``backward.DeviceSweep``."""
        from .backward import DeviceSweep

        return DeviceSweep(self, plan)

    def big(self, off, n):
        """A tensor of ``n`` elements at ``off``: a big one's cotangent region is not cleared by a backward
        (its first writer stores: ``engine._TapeSweep``, ``kernels/cuda/sweep.py``), a pass over memory saved."""
        if n >= BIG_ROW:
            self.big_regions.append((off, n))

    def view(self, off, shape):
        n = 1
        for s in shape:
            n *= s
        v = self.values[off : off + n]
        return v.reshape(shape) if len(shape) != 1 else v


class _Current(threading.local):
    def __init__(self):
        self.tapes = {}  # (dtype, device) -> DeviceTape


_current = _Current()


def tape_for(dtype, n, dev, inputs):
    """The thread's device tape for ``dtype`` on ``dev`` with room for ``n`` elements, newer than every
    operand's tape (a row references only its own tape or older ones)."""
    newest = 0
    for t in inputs:
        if t is not None and t._tape is not None and t._tape.id > newest:
            newest = t._tape.id
    key = (dtype, dev)
    tape = _current.tapes.get(key)
    if tape is None or tape.used + n + 1 > tape.capacity or tape.id < newest:
        tape = DeviceTape(dtype, DEFAULT_CAPACITY if 2 * n + 16 <= DEFAULT_CAPACITY else 16 * n + 16, dev)
        _current.tapes[key] = tape
    return tape


def retire(tape):
    """Stop recording on ``tape`` (the next recorded op starts a new one); it lives while tensors use it."""
    key = (tape.dtype, tape.dev)
    if _current.tapes.get(key) is tape:
        del _current.tapes[key]


def reset_current():
    _current.tapes.clear()


# --- copies into the arena -----------------------------------------------------------------------------------


def store(dst, src):
    """Copy ``src`` (a host array or a C-contiguous device array, any float dtype) into the 1-D device slice
    ``dst`` of the same size, converting the dtype."""
    if not hasattr(src, "copy_to_host"):
        dst.copy_to_device(np.ascontiguousarray(np.asarray(src).reshape(-1), dtype=dst.dtype))
        return
    src = dense(src)  # (a view's values: a strided gather)
    src = src.reshape(src.size) if src.ndim != 1 else src
    if src.dtype == dst.dtype:
        dst.copy_to_device(src)  # device to device
    else:
        from kernels.cuda import elementwise as ke

        ke.cast(src, dst)


def zero(darr):
    """Set device array ``darr`` (C-contiguous) to zeros: a memset."""
    if darr.size == 0:
        return
    if hasattr(darr, "_ary"):  # simulator: device memory is host memory
        darr._ary[...] = 0
    else:
        from numba.cuda.cudadrv.driver import device_memset

        device_memset(darr, 0, darr.nbytes)


def operand(tape, t):
    """Arena offset and producing row of operand ``t`` on ``tape``, imported (copied in) if it lives elsewhere;
    an import that requires grad is an extern: its cotangent is handed on after the sweep."""
    if t._tape is tape:
        return t._off, t._row
    key = id(t)
    hit = tape.imports.get(key)
    if hit is not None and hit[2] is t and hit[3] == t._version:
        return hit[0], hit[1]
    if t.__dict__.get("_stale_view"):
        from ..views import stale_view_error

        raise stale_view_error(t)
    data = t._data
    n = data.size
    off = tape.alloc(n)
    tape.big(off, n)
    if n:
        store(tape.values[off : off + n], data)
    row = tape.nrows
    if t._rg:
        tape.externs.append((row, off, t))
    tape.imports[key] = (off, row, t, t._version)
    if t._imports is None:
        t._imports = []
    t._imports.append((weakref.ref(tape), off))
    return off, row


def store_view(tape, off, t):
    """The arena view at ``off`` holding a copy of CUDA tensor ``t``'s values (custom Function outputs)."""
    view = tape.view(off, t._data.shape)
    tape.big(off, t._data.size)
    if t._data.size:
        store(view.reshape(t._data.size) if view.ndim != 1 else view, t._data)
    return view


# --- recording --------------------------------------------------------------------------------------------------


class _Pending(threading.local):
    slot = None  # (arena view, tape, offset) that ``out_buffer`` handed out for the next recorded result


_pending = _Pending()


def _need(n, inputs):
    return 2 * n + 8 + sum(i._data.size + 1 for i in inputs if i is not None)


def out_buffer(shape, dtype, dev, inputs):
    """A device array for an op's result of ``shape``: its slot in the device tape's arena when the result will
    be recorded (grad mode on, an operand requiring grad, a float dtype), so that ``record`` finds the value in
    place and copies nothing; a fresh array otherwise. The op must record its result before any other (the
    elementwise ops: their operands are broadcast before this is called)."""
    dtype = np.dtype(dtype)
    if not (_grad_state.enabled and (dtype == _F64 or dtype == _F32) and any(i._rg for i in inputs)):
        return empty(shape, dtype)
    n = _size(shape)
    tape = tape_for(dtype, _need(n, inputs), dev, inputs)
    off = tape.alloc(n)
    tape.big(off, n)
    view = tape.view(off, tuple(shape))
    _pending.slot = (view, tape, off)
    return view


def record(t, dev, attrs=None, alias=False):
    """Record node ``t`` (``_op``, ``_inputs``, ``_ctx`` set; ``_data`` its value, on ``dev`` or, for a
    ``.cpu()`` copy, on the host) on the device tape: its value into the arena (unless ``out_buffer`` put it
    there), one row."""
    data = t._data
    n = data.size
    inputs = t._inputs
    slot = _pending.slot
    if slot is not None and slot[0] is data:
        _pending.slot = None
        _, tape, off = slot
    else:
        tape = tape_for(data.dtype, _need(n, inputs), dev, inputs)
        off = tape.alloc(n)
        tape.big(off, n)
        if t._dev is not None:  # (a host copy's slot holds no values: its COPY row reads none)
            view = tape.view(off, data.shape)
            if n:
                store(view.reshape(n) if view.ndim != 1 else view, data)
            if not alias:
                t._data = view
    row = None
    if data.dtype == _F64 or data.dtype == _F32:
        row = _encode(tape, t, off, n, attrs)
    if row is None:  # (the graph sweep reads the operands' own tensors: nothing imported)
        row = tape.record(K.PYTHON, off, -1, -1, n)
        tape.graph_rows.add(row)
        GRAPH_ONLY.add(tape)
        if any(i is not None and i._op is None for i in inputs):  # (for ``check_graph_row``)
            t._leaf_versions = tuple(None if i is None or i._op is not None else i._version for i in inputs)
    t._tape = tape
    t._off = off
    t._row = row


def check_graph_row(t, inputs):
    """Raise torch's error if a value that node ``t`` of a graph row (no row the sweeps read: ``graph_sweep``
    differentiates it from its operands' own tensors) needs for its backward (its op's ``SAVES`` entry, as the
    rows' check) was overwritten in place since ``t`` was recorded: its own value or an operand node's (their
    ``modified`` flags, set by ``ad.tape.mark_modified``), or a leaf operand's (its version moved past the one
    ``record`` noted)."""
    from kernels.cpu import READS_OUT, READS_X, READS_Y, SAVES, needed_reads_py

    bits = t._op.code
    if inputs and inputs[0] is not None and inputs[0]._rg:
        bits |= K.XRG
    if len(inputs) > 1 and inputs[1] is not None and inputs[1]._rg:
        bits |= K.YRG
    reads = needed_reads_py(int(SAVES[t._op.code]), bits)
    stale = t if reads & READS_OUT and t._tape.modified[t._off] else None
    leaf_versions = t.__dict__.get("_leaf_versions") or ()
    for k, bit in ((0, READS_X), (1, READS_Y)):
        if stale is not None or not reads & bit or k >= len(inputs) or inputs[k] is None:
            continue
        i = inputs[k]
        if i._op is None:
            if k < len(leaf_versions) and leaf_versions[k] is not None and i._version != leaf_versions[k]:
                stale = i
        elif i._tape is not None and i._tape.modified[i._off]:
            stale = i
    if stale is not None:
        kind = "DoubleTensor" if stale._data.dtype == np.float64 else "FloatTensor"
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"[torch.cuda.{kind} {list(stale.shape)}] saved by {t.grad_fn.name()} was changed after it was "
            "saved. Hint: compute on a clone() instead, or apply the in-place update after backward."
        )


def _bit(t, bit):
    return bit if t._rg else 0


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _encode(tape, t, off, n, attrs):
    """Record ``t``'s row in the CPU tape's format (ad/ops/* record the same rows); None if the device sweep has
    no row for this node."""
    op = t._op
    code = op.code
    inputs = t._inputs
    ctx = t._ctx
    shape = t._data.shape
    if K.is_unary(code):
        if len(inputs) != 1 or inputs[0]._data.size != n:
            return None
        if attrs is None:
            if code in _ATTR_CODES:
                return None
            attrs = (0.0, 0.0)
        x = inputs[0]
        xoff, xrow = operand(tape, x)
        return tape.record(code | _bit(x, K.XRG), off, xoff, -1, n, 0, xrow, -1, float(attrs[0]), float(attrs[1]))
    if K.BINARY_FIRST <= code <= K.BINARY_LAST or code == K.WHERE:
        if len(inputs) != 2 or any(i._data.shape != shape for i in inputs):
            return None
        x, y = inputs
        a = 0
        if code == K.WHERE:
            cond = ctx._data if ctx is not None and hasattr(ctx, "_data") else None
            if cond is None or cond.shape != shape or not hasattr(cond, "copy_to_host"):
                return None
            a = tape.alloc(n)
            if n:
                store(tape.values[a : a + n], cond)
        xoff, xrow = operand(tape, x)
        yoff, yrow = operand(tape, y)
        return tape.record(code | _bit(x, K.XRG) | _bit(y, K.YRG), off, xoff, yoff, n, a, xrow, yrow)
    if len(inputs) == 1:
        return _encode_one(tape, t, off, n, code, inputs[0], ctx, shape)
    if code == K.SCATTER_STRIDED:
        return _encode_pieces(tape, t, off, n, inputs, ctx)
    if code == K.MATMUL:
        return _encode_matmul(tape, off, n, inputs, shape)
    if code == K.LINEAR or code == K.LINEAR_BIAS:
        return _encode_linear(tape, off, n, code, inputs)
    return None


def _encode_one(tape, t, off, n, code, x, ctx, shape):
    """Rows of one operand: strided and mapped gathers and scatters, reductions, log_softmax, cross entropy."""
    xd = x._data
    if code == K.GATHER_STRIDED:
        if not isinstance(ctx, tuple) or len(ctx) != 3 or len(ctx[1]) != len(shape):
            return None
        aux = [len(shape), int(ctx[2]), *shape, *(int(s) for s in ctx[1])]
        a0 = 0.0
    elif code == K.SCATTER_STRIDED or code == K.SUM_ALL:
        if not isinstance(ctx, tuple) or len(ctx) != 4 or len(ctx[1]) != xd.ndim:
            return None
        if code == K.SUM_ALL:
            if n != 1:
                return None
            xoff, xrow = operand(tape, x)
            return tape.record(K.SUM_ALL | _bit(x, K.XRG), off, xoff, -1, 1, xd.size, xrow, -1, float(ctx[3]))
        aux = [xd.ndim, int(ctx[2]), *xd.shape, *(int(s) for s in ctx[1])]
        a0 = float(ctx[3])
    elif code == K.AMAX or code == K.AMIN or code == K.PROD:
        if not isinstance(ctx, tuple) or len(ctx) not in (3, 4):
            return None
        from ..ops.structural import _reduce_layout

        aux = [xd.ndim, 0, *xd.shape, *_reduce_layout(xd.shape, ctx[0])]
        if code != K.PROD:  # (the sharing rule: max() / min() over all elements have a fourth ctx item)
            aux.append(int(len(ctx) == 4))
        a0 = 0.0
    elif code == K.GATHER_MAP or code == K.SCATTER_MAP:
        if not isinstance(ctx, tuple) or len(ctx) != 2:
            return None
        index_map = np.ascontiguousarray(ctx[1], dtype=np.int64).reshape(-1)
        if index_map.size != (n if code == K.GATHER_MAP else xd.size):
            return None
        xoff, xrow = operand(tape, x)
        a = len(tape.aux)
        tape.aux.append(int(index_map.size))
        tape.aux.frombytes(index_map.tobytes())
        return tape.record(code | _bit(x, K.XRG), off, xoff, -1, n, a, xrow)
    elif code == K.LOG_SOFTMAX:
        xs = xd.shape if xd.ndim else (1,)
        d = int(ctx)
        aux = [_size(xs[:d]), xs[d], _size(xs[d + 1 :])]
        a0 = 0.0
    elif code == K.CROSS_ENTROPY:
        target = np.ascontiguousarray(ctx, dtype=np.int64).reshape(-1)
        if xd.ndim != 2 or target.size != xd.shape[0] or n != 1:
            return None
        xoff, xrow = operand(tape, x)
        a = len(tape.aux)
        tape.aux.append(xd.shape[0])
        tape.aux.append(xd.shape[1])
        tape.aux.frombytes(target.tobytes())
        return tape.record(K.CROSS_ENTROPY | _bit(x, K.XRG), off, xoff, -1, 1, a, xrow)
    else:
        return None
    xoff, xrow = operand(tape, x)
    a = tape.add_aux(aux)
    return tape.record(code | _bit(x, K.XRG), off, xoff, -1, n, a, xrow, -1, a0)


def _encode_pieces(tape, t, off, n, inputs, layouts):
    """``cat`` / ``stack``: one SCATTER_STRIDED row per piece that requires grad (``ad/ops/indexing.py``'s
    ``_record_pieces``); the node spans them (``_nrows``)."""
    if not isinstance(layouts, (list, tuple)) or len(layouts) != len(inputs):
        return None
    if any(len(strides) != p._data.ndim for p, (strides, _) in zip(inputs, layouts)):
        return None
    first = None
    count = 0
    for p, (strides, base) in zip(inputs, layouts):
        if not p._rg:
            continue
        xoff, xrow = operand(tape, p)
        a = tape.add_aux([p._data.ndim, int(base), *p._data.shape, *(int(s) for s in strides)])
        row = tape.record(K.SCATTER_STRIDED | K.XRG, off, xoff, -1, n, a, xrow, -1, 1.0)
        first = row if first is None else first
        count += 1
    if count != 1:
        t._nrows = count
    return first


def _encode_matmul(tape, off, n, inputs, out_shape):
    """``x @ y`` as ``ad/cuda/ops.matmul`` computes it: operands of the common batch (expanded before), 1-D
    operands as one row (x) or one column (y); aux (B, M, K, N, x batch stride, y batch stride)."""
    x, y = inputs
    xs, ys = x._data.shape, y._data.shape
    if not xs or not ys:
        return None
    xs2 = xs if len(xs) > 1 else (1,) + xs
    ys2 = ys if len(ys) > 1 else ys + (1,)
    M, K_ = xs2[-2], xs2[-1]
    N = ys2[-1]
    if K_ == 0 or ys2[-2] != K_:
        return None
    batch = out_shape[: len(out_shape) - (len(xs) > 1) - (len(ys) > 1)] if max(len(xs), len(ys)) > 2 else ()
    if (len(xs) > 2 and tuple(xs[:-2]) != tuple(batch)) or (len(ys) > 2 and tuple(ys[:-2]) != tuple(batch)):
        return None
    B = _size(batch)
    if B * M * N != n:
        return None
    xoff, xrow = operand(tape, x)
    yoff, yrow = operand(tape, y)
    a = tape.add_aux([B, M, K_, N, M * K_ if len(xs) > 2 else 0, K_ * N if len(ys) > 2 else 0])
    return tape.record(K.MATMUL | _bit(x, K.XRG) | _bit(y, K.YRG), off, xoff, yoff, n, a, xrow, yrow)


def _encode_linear(tape, off, n, code, inputs):
    """``x @ w.T`` (+ ``b``): aux (M, K, N) (+ the bias' offset, row and whether it requires grad)."""
    x, w = inputs[0], inputs[1]
    wd = w._data
    if wd.ndim != 2 or x._data.ndim < 1 or x._data.shape[-1] != wd.shape[1]:
        return None
    N, K_ = wd.shape
    M = _size(x._data.shape[:-1])
    if M * N != n or len(inputs) != (3 if code == K.LINEAR_BIAS else 2):
        return None
    xoff, xrow = operand(tape, x)
    woff, wrow = operand(tape, w)
    layout = [M, K_, N]
    if code == K.LINEAR_BIAS:
        b = inputs[2]
        if b._data.size != N:
            return None
        boff, brow = operand(tape, b)
        layout += [boff, brow, 1 if b._rg else 0]
    a = tape.add_aux(layout)
    return tape.record(code | _bit(x, K.XRG) | _bit(w, K.YRG), off, xoff, woff, n, a, xrow, wrow)
