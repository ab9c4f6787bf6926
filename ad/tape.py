"""The tape: struct-of-arrays storage of the recorded graph, written while the forward pass runs.

Data structures (one ``Tape`` per thread and dtype at a time; read this first):

- ``values``: a flat value arena (numpy, fixed capacity, float32 or float64). Every tensor produced by a
  recorded op lives in it: its ``Tensor._data`` is a reshaped view of ``values[off: off + n]``. Tensors that
  come from elsewhere (leaves, constants, tensors of another tape) are *imported*: copied into the arena once
  per tape (and again only if their version counter moved), so the kernel finds every operand at an offset.
- ``rows``: a ``bytearray`` of fixed-size records ``<8q2d``: ``[opcode|XRG|YRG, out, x, y, n, aux, x_row,
  y_row, attr0, attr1]``. ``out``/``x``/``y`` are arena offsets (so a tensor's offset is its slot), ``n`` the
  output size, ``aux`` an offset into ``aux``, ``x_row``/``y_row`` the rows that produced the operands.
  Appending a record is one ``struct.pack`` (~100 ns); ``np.frombuffer`` turns the buffer into the (R, 10)
  array views the kernel takes, without a copy.
- ``aux``: ``array('q')`` of the integers structural ops need (shapes, strides, index maps).
- ``externs``: ``(row, off, tensor)`` for imported tensors that require grad; after the sweep the cotangent
  at ``off`` is handed to that tensor (accumulated into a leaf, or seeded into the tensor's own, older tape).
  Stored as three parallel lists (``ext_rows``, ``ext_offs``, ``ext_refs``: no tuple per extern for the garbage
  collector to count, a many-leaf graph imports one leaf per op); ``externs`` is a list-like view of triples.
  ``imports`` (``id -> (off, row, tensor, version)``) finds an imported tensor's copy again. Both hold a recorded
  tensor of another tape by weak reference (``held``): its consumers keep it alive through ``_inputs``.
  ``imports`` is a read view (``_Imports``) over two dicts keyed by ``id``: ``import_at`` (``off``, ``row`` and
  ``version`` packed into one int, see ``import_new``) and ``import_refs`` (the tensor or its weak reference).
  Why: a tuple per import is an object the garbage collector counts and traverses, and a many-leaf graph
  imports two tensors per op (a leaf and a constant); ints and dict values are not.
- ``modified``: per arena offset, set when the tensor whose values sit there (or any tensor sharing its storage:
  a view, a ``detach()`` alias; ``ad/views.py``) is written in place; a row that reads a flagged value raises
  torch's in-place error at backward. Views are recorded as copies into the arena (the kernel reads every value
  by offset), so a view's region is a snapshot and its ``Tensor._data`` the live storage.
- ``traces``: ``{row: creation stack}``, filled only while anomaly mode is on (``set_row_tracer``).

Why this shape: ``backward()`` then needs no per-node Python work. It allocates a cotangent arena of the
same layout (zeroed, except the regions of tensors of ``BIG_ROW`` elements or more, listed in ``big_regions``,
whose first writer stores instead of adding: see engine._TapeSweep), seeds it, and makes one kernel call
(``kernels/cpu.py``) per tape that sweeps the rows in reverse; a row reads its operands' values and writes
their cotangents by offset.

Tapes are ordered by ``id``: a row only references tensors of its own tape or of tapes with smaller ids (an op
whose operand lives on a newer tape starts a new tape), so a backward sweeps the tapes it reaches in
decreasing ``id`` order. A tape is retired when its arena is full; it lives as long as any tensor viewing
its arena, so memory of a finished graph is released with its tensors (the current tape, which may outlive
the graph whose tail it holds, keeps no older tape alive: its imports of their tensors are weak).
"""

import array
import itertools
import struct
import sys
import threading
import weakref

import numpy as np

ROW = struct.Struct("<8q2d")
ROW_WORDS = 10
_ROW_STRIDES = (ROW.size, 8)  # byte strides of ``Tape.arrays``' views: one row, one word
# ``Tape.pack`` when no row tracer is set: one bound method object, so that ``tape.pack is PACK`` tells a tape that
# records no traces (``ROW.pack_into`` makes a new bound method at each read: never ``is`` another)
PACK = ROW.pack_into
# The integer words of a row alone, for rows whose two float attributes are 0.0 (most elementwise rows): the float
# words of a row not yet recorded are zero (fresh row buffers are zeros, ``grow`` appends zeros, and a row is
# written once, at ``nrows``), and 0.0 is all zero bits. Two float arguments fewer cost a small op ~5% less.
ROW_INTS = struct.Struct("<8q")
PACK_INTS = ROW_INTS.pack_into
# Rows that read values of this many elements or more are swept from Python ("vectorized rows",
# big_rows._vectorized_row): fused loops over chunks in several threads (sin and cos through the vectorized
# kernels/vmath.py), numpy's SIMD functions elsewhere, matmul straight to BLAS; one Python call is noise at
# this size. Tensors this large are therefore imported without copying their values into the arena: only
# vectorized rows read them, and those read the tensor's own array.
BIG_ROW = 16384
DEFAULT_CAPACITY = 1 << 20  # elements; np.empty reserves address space, pages are touched as ops write

_next_tape_id = itertools.count(1).__next__
_FLAG = np.dtype(np.uint8)
_NO_FREED = np.zeros(0, _FLAG)  # ``Tape.freed`` of a tape before its first sweep (no element: never written)
_NONE_MODIFIED = np.zeros(DEFAULT_CAPACITY + 1, _FLAG)  # ``Tape.modified`` of a tape with no in-place change


class _ArenaPool:
    """Recycles arena buffers between graphs: a training step's tape is the size of the last one, and
    mapping fresh memory for it costs page faults on every first touch (glibc maps buffers this large
    anew on each allocation). A buffer is only reused when nothing else refers to it (no tensor views:
    ``sys.getrefcount``), so recycling is invisible to users."""

    MAX_BUFFERS = 6
    MAX_TOTAL_BYTES = 768 << 20  # what the pool may hold idle (resident bytes), oldest buffers dropped first

    def __init__(self):
        self.lock = threading.Lock()
        self.buffers = []
        # per pooled buffer, the bytes it holds in memory: what its owners wrote (a big tape's arena reserves
        # room for a chain of results, and pages never written cost no memory), else its whole size
        self.resident = []
        self.nbytes = 0  # of all pooled buffers (resident bytes)
        # ids of pooled buffers known to hold only zeros (a tape's ``modified`` flags, cleared where they were
        # set when the tape died): taking one for a zeroed arena skips the memset (~1 MB per training step)
        self.clean = set()

    def take(self, dtype, n, zero_upto=0):
        lock = self.lock
        lock.acquire()  # (not ``with``: its protocol calls cost more than the rest of a hit)
        try:
            buffers = self.buffers
            for k in range(len(buffers) - 1, -1, -1):  # the most recently given first: its memory is in cache
                buf = buffers[k]
                # references: the list, ``buf`` and getrefcount's argument; any more is a live view
                if (
                    (buf.dtype is dtype or buf.dtype == dtype)
                    and n <= buf.shape[0] <= 4 * n + (1 << 16)
                    and sys.getrefcount(buf) <= 3
                ):
                    del buffers[k]
                    self.nbytes -= self.resident.pop(k)
                    key = id(buf)
                    if key in self.clean:
                        self.clean.discard(key)
                    elif zero_upto:
                        buf[:zero_upto] = 0
                    return buf
        finally:
            lock.release()
        return None

    def give(self, buf, clean=False, written=None):
        """Pool ``buf`` for reuse; ``clean``: it holds only zeros; ``written``: the elements at its start that its
        owner used (the rest was never written: no memory behind it), by default all of it."""
        nbytes = buf.nbytes if written is None else min(buf.nbytes, written * buf.itemsize)
        if nbytes > self.MAX_TOTAL_BYTES // 2:
            return
        # Never wait: ``Tape.__del__`` gives, and the garbage collector may run it inside ``take`` on this very
        # thread, which holds the lock (a deadlock with a blocking acquire); not pooling one buffer is harmless
        if not self.lock.acquire(blocking=False):
            return
        try:
            buffers = self.buffers
            buffers.append(buf)
            self.resident.append(nbytes)
            self.nbytes += nbytes
            if clean:
                self.clean.add(id(buf))
            while len(buffers) > self.MAX_BUFFERS or self.nbytes > self.MAX_TOTAL_BYTES:
                self.clean.discard(id(buffers[0]))
                self.nbytes -= self.resident.pop(0)
                del buffers[0]
        finally:
            self.lock.release()


POOL = _ArenaPool()


def empty_arena(dtype, n):
    buf = POOL.take(dtype, n)
    return buf if buf is not None else np.empty(n, dtype)


def zeroed_arena(dtype, n, used=None):
    """``n`` zeros (a recycled buffer is cleared up to ``used``, the part its last owner wrote)."""
    buf = POOL.take(dtype, n, zero_upto=n if used is None else used)
    return buf[:n] if buf is not None else np.zeros(n, dtype)


class Tape:
    __slots__ = (
        "id",
        "dtype",
        "values",
        "capacity",
        "used",
        "rows",
        "nrows",
        "aux",
        "ext_rows",
        "ext_offs",
        "ext_refs",
        "import_at",
        "import_refs",
        "freed",
        "modified",
        "hook_rows",
        "python_rows",
        "big_regions",
        "owner",
        "pack",
        "pack_ints",
        "is_current",
        "row_cap",
        "traces",
        "dirty",
        "ref",
        "unwritten",
        "fused",
        "__weakref__",
    )

    on_device = False  # (a CUDA tape's is True: ``retire`` reads it on every sweep, without getattr's miss)
    takes_rows = True  # (a replayed step's is False: built whole, never a thread's current tape, never retired)

    def __init__(self, dtype, capacity, rows=None):
        """A tape of ``capacity`` arena elements; ``rows``: its records when they are known already (a replayed
        step's, copied from its template), else room for 128 that grows as rows are recorded."""
        self.id = _next_tape_id()
        self.dtype = dtype
        self.values = empty_arena(dtype, capacity)
        self.capacity = capacity
        self.used = 0
        self.rows = bytearray(ROW.size * 128) if rows is None else rows  # grown by doubling (see ``grow``)
        self.nrows = 0
        self.aux = array.array("q")
        self.ext_rows = []  # (see ``externs``)
        self.ext_offs = []
        self.ext_refs = []
        self.import_at = {}  # id(t) -> off | row << 40 | version << 80 (see ``import_new``)
        self.import_refs = {}  # id(t) -> t, or a weak reference to t (a recorded tensor of another tape)
        self.freed = _NO_FREED  # (``freed_flags`` gives the tape its own array once it has rows)
        # per arena offset: changed in place; until the first such change, one all-zero array shared by the tapes
        # of at most the default size (``_set_modified`` gives a tape its own: most graphs never change a value in
        # place; a replayed step's tape is its template's size, and taking a flag array from the pool for it cost
        # 3 us a step)
        self.modified = _NONE_MODIFIED if capacity <= DEFAULT_CAPACITY else zeroed_arena(_FLAG, capacity + 1)
        self.dirty = False  # some flag of ``modified`` is set (lets differentiable_sweep.graph_sweep skip its checks)
        self.hook_rows = {}
        self.python_rows = set()  # rows swept by big_rows._vectorized_row instead of the kernel
        # (offset, size) of tensors of at least BIG_ROW elements: their cotangent regions are not cleared
        # when a backward allocates its arena; the first write into one stores instead of adding
        # (engine._TapeSweep), which saves a pass over memory per big tensor
        self.big_regions = []
        self.owner = threading.get_ident()
        self.traces = {}  # row -> what the row tracer returned when it was recorded (anomaly mode)
        self.pack, self.pack_ints = _pack_for(self.traces)  # (``ROW`` and ``ROW_INTS``'s pack_into, or tracing ones)
        self.ref = weakref.ref(self)  # one weak reference for all the tensors it imports (``Tensor._imports``)
        _live_tapes[self.id] = self.ref  # (one dict store, atomic under the GIL; ``__del__`` removes it)
        # the ident of the thread whose current tape this is, while that thread's grad mode is on (else 0: see
        # ``set_recording``), read by the forward fast paths (against ``threading.get_ident()``): one test that
        # grad mode is on and that an op of another thread on a tensor of this tape does not append here while
        # the owner does
        self.is_current = 0
        self.row_cap = len(self.rows) // ROW.size  # rows that fit before ``grow``
        self.unwritten = None  # writes the values a replay's fused forward left out (``materialize``)
        self.fused = None  # gradients a fused replay left for the next backward (ad/compile_fused.py)

    def __del__(self):
        # hand the arena back for the next graph, unless a view of it is still alive somewhere
        try:
            _live_tapes.pop(self.id, None)
            if sys.getrefcount(self.values) <= 2:
                POOL.give(self.values, written=self.used)
            if self.modified is not _NONE_MODIFIED and sys.getrefcount(self.modified) <= 2:
                if self.dirty:  # (flags are only ever set below ``used``, and set ``dirty``)
                    self.modified[: self.used + 1] = 0
                POOL.give(self.modified, clean=True, written=self.used + 1)
        except Exception:  # interpreter shutdown: nothing to recycle
            pass

    def materialize(self):
        """Write the arena values that a replayed step's fused forward left out (``ad/chain_forward.py``: only
        what the compiled first-order sweep reads is written); sweeps that read values through Python rules
        call this first."""
        fill = self.unwritten
        if fill is not None:
            fill()
            self.unwritten = None

    def alloc(self, n):
        """Reserve ``n`` elements (at least one, so that every tensor has its own offset)."""
        off = self.used
        self.used = off + (n if n > 0 else 1)
        return off

    def record(self, op, out, x, y, n, aux=0, xrow=-1, yrow=-1, a0=0.0, a1=0.0):
        row = self.nrows
        if row >= self.row_cap:
            self.grow()
        self.pack(self.rows, row * ROW.size, op, out, x, y, n, aux, xrow, yrow, a0, a1)
        self.nrows = row + 1
        return row

    def grow(self):
        """Double the row buffer (writers check ``nrows >= row_cap`` before packing)."""
        self.rows = self.rows + bytearray(len(self.rows))
        self.row_cap = len(self.rows) // ROW.size

    def add_aux(self, ints):
        off = len(self.aux)
        self.aux.extend(ints)
        return off

    @property
    def externs(self):
        """``[(row, off, tensor or weak reference)]`` of the imported tensors that require grad (a view over the
        three parallel lists; assigning a sequence of triples replaces them)."""
        return _Externs(self)

    @externs.setter
    def externs(self, triples):
        triples = list(triples)
        self.ext_rows = [e[0] for e in triples]
        self.ext_offs = [e[1] for e in triples]
        self.ext_refs = [e[2] for e in triples]

    @property
    def imports(self):
        """``id(t) -> (off, row, tensor or weak reference, version)`` of the tensors imported here (a view)."""
        return _Imports(self)

    def import_tensor(self, t, with_extern):
        """Copy tensor ``t`` (from outside this tape) into the arena; return ``(offset, row)``."""
        key = id(t)
        vc = t._vc
        version = 0 if vc is None else vc.version  # (t._version, inlined: every leaf and constant comes here)
        packed = self.import_at.get(key)
        if packed is not None and packed >> _VERSION_SHIFT == version:
            ref = self.import_refs[key]
            if ref is t or (type(ref) is weakref.ref and ref() is t):
                return packed & _FIELD, (packed >> _ROW_SHIFT) & _FIELD
        return self.import_new(t, with_extern, key, version)

    def import_new(self, t, with_extern, key, version):
        """``import_tensor`` of a tensor not imported here yet (or changed in place since): callers that looked
        it up in ``import_at`` already come here directly."""
        if t._stale_view:  # (a view of a multi-output op whose storage was written since)
            from .views import stale_view_error

            raise stale_view_error(t)
        data = t._data
        n = data.size
        off = self.used  # self.alloc(n), inlined
        self.used = off + (n or 1)
        if n < BIG_ROW:
            self.values[off : off + n] = data if data.ndim == 1 else data.reshape(-1)
        else:  # only vectorized rows read values this large, and they read ``t._data`` (see BIG_ROW)
            self.big_regions.append((off, n))
        row = self.nrows  # the consumer about to be recorded: the sweep may stop right after it
        # a recorded tensor of another tape is held weakly (its consumers hold it through ``_inputs``): a strong
        # reference would keep its tape, and the tapes that tape imports from, alive as long as this one, a chain
        # without end while this tape stays current across graphs (see ``held``)
        ref = t if t._tape is None else weakref.ref(t)
        if with_extern and not (t._vflags & 2 and t._op is None):  # (not a no_grad view: views.NO_GRAD, alias)
            self.ext_rows.append(row)  # (self.externs.append((row, off, ref)), without the tuple)
            self.ext_offs.append(off)
            self.ext_refs.append(ref)
            if row and t._op is None and t._grad_ready_hooks is not None:
                # distributed (issue 14): stop the sweep below t's first use here, where its cotangent from this
                # tape is complete, to run its gradient-ready hooks (ad/autograd/sweep_hooks.py)
                self.register_hook_row(row - 1, t)
        self.import_at[key] = off | row << _ROW_SHIFT | version << _VERSION_SHIFT
        self.import_refs[key] = ref
        # so that an in-place update of t can flag this copy as stale (see ``mark_modified``)
        copies = t._imports
        if copies is None:
            t._imports = [(self.ref, off)]
        elif len(copies) == 1 and copies[0][0]() is None:
            copies[0] = (self.ref, off)  # (the common case: the last step's tape is gone)
        else:
            self.add_copy(copies, off)
        return off, row

    def add_copy(self, copies, off):
        """Append this tape's copy at ``off`` to a tensor's ``_imports`` list ``copies`` (the rarer cases of
        ``import_new``'s last step: several copies live, or the list holds dead ones)."""
        # drop the copies on dead tapes at the front (a leaf or constant used by every training step has the
        # last step's there): each one a tuple that the garbage collector would go on traversing
        while copies and copies[0][0]() is None:
            del copies[0]
        copies.append((self.ref, off))
        if len(copies) >= 16 and len(copies) & (len(copies) - 1) == 0:
            # at powers of two, drop the copies on dead tapes: a leaf or constant that is never written in
            # place (which clears the list) is imported by every step's tape
            copies[:] = [c for c in copies if c[0]() is not None]

    def view(self, off, shape, n):
        v = self.values[off : off + n]
        return v.reshape(shape) if len(shape) != 1 else v

    def arrays(self):
        """Kernel views of the rows and aux (copies when another thread may be appending to them)."""
        nrows = self.nrows
        if self.owner == threading.get_ident():
            raw, aux = self.rows, self.aux
        else:
            raw, aux = bytearray(self.rows[: nrows * ROW.size]), array.array("q", self.aux)
        # the integer words and the two float attributes of each row, as strided views of the same bytes (one
        # constructor call each, where frombuffer, reshape, view and two slices made five numpy calls)
        words = np.ndarray((nrows, 8), np.int64, raw, 0, _ROW_STRIDES)
        floats = np.ndarray((nrows, 2), np.float64, raw, 64 if nrows else 0, _ROW_STRIDES)
        # a copy of aux, not a view: a view exports the array.array's buffer, and while any view lives (a sweep's
        # frame kept by a traceback until the next gc) ``aux.extend`` raises BufferError on the next recording
        # (the temporary view below is gone before this returns)
        aux_arr = np.frombuffer(aux, np.int64).copy() if len(aux) else np.zeros(1, np.int64)
        return words, floats, aux_arr

    @staticmethod
    def masked_rows(rows, blocked, spare):
        """A copy of the kernel rows ``rows`` (from ``arrays``) in which the ``blocked`` rows write to ``spare``
        (the arena's unused last slot: the kernel skips them), strided as ``rows`` is, so that the kernels see
        one array layout (numba compiles a sweep anew, seconds, for each layout it meets)."""
        masked = np.empty((rows.shape[0], ROW_WORDS), np.int64)[:, : rows.shape[1]]
        masked[...] = rows
        masked[np.array(blocked, np.int64), 1] = spare
        return masked

    def freed_flags(self):
        if self.freed.shape[0] < self.nrows:
            # (with room to spare: a graph's sweeps come as it grows, a double backward's at each stage)
            had = self.freed.shape[0]
            grown = np.zeros(max(self.nrows, 2 * had, 64), np.uint8)
            if had:  # (a tape's first sweep: nothing to copy)
                grown[:had] = self.freed
            self.freed = grown
        return self.freed

    def mark_vectorized(self, row, t):
        """Sweep ``row`` (which produced ``t``) in Python with numpy instead of in the kernel."""
        self.python_rows.add(row)
        if row in self.hook_rows:
            self.register_hook_row(row, t)
        else:  # (a row just recorded: nothing registered there yet)
            self.hook_rows[row] = [weakref.ref(t)]
        n = t._data.size
        if n >= BIG_ROW:
            self.big_regions.append((t._off, n))

    def register_hook_row(self, row, handler):
        """Make the sweep stop before ``row`` and call Python: ``handler`` is a tensor with hooks or
        ``retain_grad``, or a custom Function's record (held weakly: the tape never keeps them alive)."""
        refs = self.hook_rows.setdefault(row, [])
        if not any(r() is handler for r in refs):
            refs.append(weakref.ref(handler))


# ``Tape.import_at`` packs an import's offset, row and version into one int (no object for the collector)
_ROW_SHIFT = 40
_VERSION_SHIFT = 80
_FIELD = (1 << 40) - 1


class _Externs:
    """``Tape.externs``: the triples ``(row, off, tensor or weak reference)`` made when read, over the tape's
    three parallel lists. Supports what a list's reader uses: ``len``, iteration (also reversed), indexing and
    slicing (a list of triples), item assignment and ``append``."""

    __slots__ = ("tape",)

    def __init__(self, tape):
        self.tape = tape

    def __len__(self):
        return len(self.tape.ext_rows)

    def __iter__(self):
        t = self.tape
        return zip(list(t.ext_rows), list(t.ext_offs), list(t.ext_refs))

    def __reversed__(self):
        return reversed(list(self))

    def __getitem__(self, k):
        t = self.tape
        if isinstance(k, slice):
            return list(zip(t.ext_rows[k], t.ext_offs[k], t.ext_refs[k]))
        return (t.ext_rows[k], t.ext_offs[k], t.ext_refs[k])

    def __setitem__(self, k, triple):
        t = self.tape
        t.ext_rows[k], t.ext_offs[k], t.ext_refs[k] = triple

    def append(self, triple):
        t = self.tape
        row, off, ref = triple
        t.ext_rows.append(row)
        t.ext_offs.append(off)
        t.ext_refs.append(ref)

    def __eq__(self, other):
        return list(self) == list(other)

    __hash__ = None

    def __repr__(self):
        return repr(list(self))


class _Imports:
    """``Tape.imports``: the tape's imports as ``id(t) -> (off, row, tensor or weak reference, version)``, each
    entry made when read (the tape keeps them packed: see the module header). Supports what a dict's reader
    uses: ``get``, ``[]``, ``in``, ``len``, iteration over keys, ``keys``/``values``/``items``, ``del`` and
    ``clear``."""

    __slots__ = ("tape",)

    def __init__(self, tape):
        self.tape = tape

    def _entry(self, key, packed):
        return (packed & _FIELD, (packed >> _ROW_SHIFT) & _FIELD, self.tape.import_refs[key], packed >> _VERSION_SHIFT)

    def get(self, key, default=None):
        packed = self.tape.import_at.get(key)
        return default if packed is None else self._entry(key, packed)

    def __getitem__(self, key):
        return self._entry(key, self.tape.import_at[key])

    def __contains__(self, key):
        return key in self.tape.import_at

    def __len__(self):
        return len(self.tape.import_at)

    def __iter__(self):
        return iter(list(self.tape.import_at))

    def keys(self):
        return list(self.tape.import_at)

    def values(self):
        return [self._entry(k, p) for k, p in self.tape.import_at.items()]

    def items(self):
        return [(k, self._entry(k, p)) for k, p in self.tape.import_at.items()]

    def __delitem__(self, key):
        del self.tape.import_at[key]
        del self.tape.import_refs[key]

    def clear(self):
        self.tape.import_at.clear()
        self.tape.import_refs.clear()


def held(ref):
    """The tensor of an ``imports``/``externs`` entry (a weak reference for a recorded tensor of another tape;
    ``None`` once it died, with every tensor whose graph reads it)."""
    return ref() if type(ref) is weakref.ref else ref


def dead_import_error():
    return RuntimeError(
        "Trying to backward through a tensor of an older tape that was freed: a graph that reads it is still "
        "alive but nothing holds the tensor (was detach_() called on an intermediate result used since?)"
    )


# Row tracing, for anomaly mode (ad/autograd/anomaly_mode.py): every row a tape records goes through its
# ``pack``, so while a tracer is set, each live tape's ``pack`` also stores ``tracer()`` (the creation stack)
# under the row's number in ``Tape.traces``. Swapping ``pack`` on the tapes, instead of testing a flag where
# ops record, keeps the forward hot paths exactly as fast when anomaly mode is off.
_row_tracer = None
# every tape not yet collected, of any thread (the mode is process-wide): tape id -> the tape's weak reference
# (``Tape.ref``). A dict that ``Tape.__del__`` empties rather than a WeakSet: that costs a new weak reference
# with a Python callback per tape and the callback's call at its death, two Python calls per graph.
_live_tapes = {}
_live_lock = threading.Lock()


def _pack_for(traces):
    """``(pack, pack_ints)`` for a tape whose row traces go to ``traces``: ``PACK`` and ``PACK_INTS`` while no
    tracer is set."""
    tracer = _row_tracer
    if tracer is None:
        return PACK, PACK_INTS
    pack_into = PACK
    size = ROW.size

    def pack(buf, offset, *fields):
        pack_into(buf, offset, *fields)
        traces[offset // size] = tracer()

    def pack_ints(buf, offset, *fields):
        pack(buf, offset, *fields, 0.0, 0.0)

    return pack, pack_ints


def set_row_tracer(tracer):
    """From now on, have every tape (live or new) keep ``tracer()`` for each row it records; ``None`` stops."""
    global _row_tracer
    _row_tracer = tracer
    for ref in _live_tapes.copy().values():  # (a copy: one C call, so other threads' tapes may come and go)
        tape = ref()
        if tape is not None:
            tape.pack, tape.pack_ints = _pack_for(tape.traces)


class _TapeState(threading.local):
    def __init__(self):
        self.current = {}  # dtype -> this thread's current tape
        self.recording = True  # this thread's grad mode (``set_recording``)


_state = _TapeState()


def current_tape(dtype, n, min_id=0):
    """The thread's tape for ``dtype`` with room for ``n`` elements, newer than tape ``min_id``."""
    tapes = _state.current
    tape = tapes.get(dtype)
    if tape is None or tape.used + n + 1 > tape.capacity or tape.id < min_id:
        # a result larger than the default arena gets a tape with room for a chain of such results (pages are
        # only touched when written); below that, the default keeps the per-tape allocation cheap
        tape = Tape(dtype, DEFAULT_CAPACITY if 2 * n + 16 <= DEFAULT_CAPACITY else 16 * n + 16)
        old = tapes.get(dtype)
        if old is not None:
            old.is_current = 0
        tapes[dtype] = tape
        tape.is_current = threading.get_ident() if _state.recording else 0
    return tape


def set_recording(mode):
    """This thread's grad mode became ``mode`` (``grad_mode._GradState.set``): its current tapes take rows from
    the forward fast paths only while it is on (``Tape.is_current``: the ident, or 0)."""
    state = _state
    state.recording = mode
    ident = threading.get_ident() if mode else 0
    for tape in state.current.values():
        tape.is_current = ident


def mark_modified(t):
    """``t`` was modified in place: flag every arena copy of it and of every tensor sharing its storage (views,
    ``detach()`` aliases: ``views.VersionCounter.members``), so a sweep that reads one raises."""
    vc = t._vc
    if vc is not None and vc.refs:
        for m in vc.members:
            _flag(m)
    _flag(t)


def _flag(t):
    if t._tape is not None:
        _set_modified(t._tape, t._off)
    if t._imports:
        for ref, off in t._imports:
            tape = ref()
            if tape is not None:
                _set_modified(tape, off)
        t._imports = None


def _set_modified(tape, off):
    """Flag arena offset ``off`` of ``tape`` as changed in place (its first flag gives it its own array)."""
    if tape.modified is _NONE_MODIFIED:
        with _live_lock:
            if tape.modified is _NONE_MODIFIED:
                tape.modified = zeroed_arena(_FLAG, tape.capacity + 1)
    tape.modified[off] = 1
    tape.dirty = True


def reset_current():
    """Retire this thread's current tapes: the next recorded op starts a new one."""
    for tape in list(_state.current.values()):
        retire(tape)


def retire(tape):
    """Stop recording on ``tape`` (if it is this thread's current one); it lives on while tensors use it. A
    device tape (``ad/cuda/tape.py``) retires from its own thread's table, so that its arena returns to the
    device pool once no tensor views it (a graph swept by ``differentiable_sweep.graph_sweep`` on CUDA)."""
    if getattr(tape, "on_device", False):
        from .cuda.tape import retire as retire_device_tape

        retire_device_tape(tape)
        return
    tapes = _state.current
    if tapes.get(tape.dtype) is tape:
        del tapes[tape.dtype]
        tape.is_current = 0
