"""A replayed call of a compiled function (``ad/compile.py``): the template's tape rebuilt around this call's
tensors (``ad/compile_template.py``), its rows recomputed by ``kernels/replay.py``, its result tensors made.

``_ReplayState`` holds the tensors of one call: nodes a Python sweep reaches are built at once (or, where the
template's backward program reads their operands without them, when the tape's ``hook_rows`` is first read:
``_ReplayTape.rows_pending``), the others (``_ReplayedTensor``) on demand. ``_EAGER`` is ``_replay``'s answer
when this call's inputs fail a check an op makes (the call then runs eagerly).
"""

import functools
import operator
import weakref
from array import array
from collections import deque
from itertools import repeat

import numpy as np

from kernels import opcodes as K
from kernels.cpu import class_targets_ok

from . import blas_threads, chain_forward, compile_fused, parallel
from . import tape as _tape
from .ops.dense import linear_product
from .tensor import Tensor, _new, wrap_array

_EAGER = object()  # _replay's answer when this call must run eagerly (its inputs fail a check the op makes)


def _replay(tpl, tensors, forward=None):
    """A later call: the template's tape rebuilt around this call's tensors, its rows recomputed (by ``forward(values,
    slots, aux)`` where given, for a template without a fused forward: ``compile_dual.DualProgram``'s, which
    runs the rows with their tangents)."""
    aux = tpl.aux
    target_arrays = {}
    if tpl.targets:
        aux = aux.copy()
        for a, M, C, src, ignore_index, k in tpl.targets:
            if src[0] == "c":
                t64 = src[1]
            else:
                t = _resolve_outside(src, tensors)
                host = t._host() if isinstance(t, Tensor) else np.asarray(t)
                if host.dtype.kind not in "iu" or host.shape != (M,):
                    return _EAGER
                t64 = np.ascontiguousarray(host, dtype=np.int64)
            if not class_targets_ok(t64, C, ignore_index):
                return _EAGER  # the eager call raises, or takes cross_entropy's general path
            aux[a + 2 : a + 2 + M] = t64
            target_arrays[k] = t64
    if tpl.outside and list(map(_SHAPE_DTYPE, tpl.outside)) != tpl.outside_shapes:
        return _EAGER  # a tensor from outside got data of another shape (``p.data = ...``): not this program
    if tpl.remaps:
        if aux is tpl.aux:
            aux = aux.copy()
        for a, n, src, dim, x_shape, ix_shape, k in tpl.remaps:
            index_map = _gather_map(_index_values(src, tensors), dim, x_shape, ix_shape)
            if index_map is None:
                return _EAGER  # the eager call raises gather's error
            aux[a + 1 : a + 1 + n] = index_map
            target_arrays[k] = (x_shape, index_map)
    tape = _ReplayTape(tpl.dtype, max(tpl.used, 1), bytearray(tpl.rows_bytes))
    tape.nrows = tpl.nrows
    tape.used = tpl.used
    aux_q = array("q")
    aux_q.frombytes(aux.tobytes())
    tape.aux = aux_q
    values = tape.values
    tape_ref = tape.ref
    tpl.replays += 1
    prune = tpl.replays % PRUNE_EVERY == 0  # (drop the dead tapes' entries from the sources' ``_imports``)
    imports = tpl.copies
    pool = None
    leaf_sources = False  # every source of the many copies is a leaf (or a constant): none has an op
    if tpl.import_index is not None:  # many small ones (a model of many leaves): one gather, one scatter
        pool = tensors + tpl.outside
        sources = tpl.pick_copies(pool)
        if tpl.import_flat:
            values[tpl.import_index] = np.concatenate(list(map(_DATA, sources)))
        else:
            values[tpl.import_index] = np.concatenate([t._data.reshape(-1) for t in sources])
        if any(map(_OP, sources)) or any(map(_READY_HOOKS, sources)):
            _register_copies(tpl, sources, tape_ref, prune)
        else:  # leaves and constants: their versions now, checked when a sweep reads the copies (_ReplayTape)
            leaf_sources = True
            counters = list(map(_VC, sources))
            tape.guard = (sources, tpl.copy_offs, counters, list(map(_VERSION, filter(None, counters))))
    else:
        sources = []
        for off, n, src in imports:
            kind = src[0]
            if kind == "k":
                values[off : off + n] = src[1].reshape(-1)
                sources.append(None)  # (nothing outside can change a constant in place)
                continue
            t = tensors[src[1]] if kind != "e" else src[1]
            data = t._data if kind != "b" else np.broadcast_to(t._data, src[2])
            values[off : off + n] = data.reshape(-1)
            sources.append(t)
        for t, (off, _, _) in zip(sources, imports):
            if t is None:
                continue
            if t._imports is None:
                t._imports = []
            t._imports.append((tape_ref, off))  # an in-place change of t flags this copy (tape.mark_modified)
            if prune:
                _prune(t._imports)
    slots = []  # (array, arena offset) of each big import read in place (kernels/replay.py's extern slots)
    for off, _, src in tpl.externs_in:
        kind = src[0]
        t = None if kind == "k" else tensors[src[1]] if kind != "e" else src[1]
        flat = (src[1] if t is None else t._data if kind != "b" else np.broadcast_to(t._data, src[2])).reshape(-1)
        if flat.dtype != values.dtype or not flat.flags.c_contiguous or not flat.flags.writeable:
            flat = np.array(flat, dtype=values.dtype)  # (the kernel's slots share the arena's array type)
        slots.append((flat, off))
        if t is None:
            continue
        if t._imports is None:
            t._imports = []
        t._imports.append((tape_ref, off))
        if prune:
            _prune(t._imports)
    fused = tpl.fused
    if fused is not None and compile_fused.wanted(tpl, fused):
        compile_fused.run(tpl, fused, tape, aux)  # the loss's gradients too, for its next backward()
    if forward is not None:
        forward(values, slots, aux)
    elif tape.fused is None:
        rerun = functools.partial(_run_segments, tpl, aux, slots)
        runs = rerun(values, tpl.segments)
        if runs:  # values a fused run left out of the arena: written if a sweep reading them comes
            tape.unwritten = chain_forward.materializer(tape_ref, runs, rerun)

    state = _ReplayState(tpl, tensors, tape, target_arrays)
    program = tpl.backward
    rows_pending = program is not None and program.operands is not None
    if rows_pending:  # (the backward program reads the Python rows' operands without their tensors)
        tape.rows_pending = weakref.ref(state)
    else:
        for k in tpl.eager_nodes:
            state.strong[k] = state.make(k, False)
    if tpl.pick_externs is not None:
        leaves = tpl.pick_externs(pool or tensors + tpl.outside)
        tape.ext_rows = list(tpl.extern_rows)  # (tape.externs = zip(rows, offs, leaves), without the tuples)
        tape.ext_offs = list(tpl.extern_offs)
        tape.ext_refs = list(leaves)
        if tpl.leaves_alike is None:  # (arguments' dtypes are the signature's, outside tensors' are checked above)
            dtype = np.dtype(tpl.dtype)
            tpl.leaves_alike = len(set(map(id, leaves))) == len(leaves) and all(t._data.dtype == dtype for t in leaves)
        if tpl.leaves_alike and ((leaf_sources and tpl.externs_copied) or not any(map(_OP, leaves))):
            tape.leaves = (leaves, list(map(_DATA, leaves)), tpl)
    else:
        tape.externs = [(row, off, state.resolve(r)) for row, off, r in tpl.externs]
    if tpl.hook_rows and not rows_pending:
        tape.hook_rows = _hook_rows(tpl, state)
    if tpl.python_rows:
        tape.python_rows = set(tpl.python_rows)
    if tpl.big_regions:
        tape.big_regions = list(tpl.big_regions)
    tape.backward_program = program
    return _out_value(tpl.out, state.resolve)


def _hook_rows(tpl, state):
    """The replayed tape's ``hook_rows``: the template's, each reference resolved to this call's tensor."""
    return {row: [weakref.ref(state.resolve(r)) for r in refs] for row, refs in tpl.hook_rows.items()}


def live_replay_tapes():
    """The tapes of replayed calls alive now (what the tests check replays by)."""
    return [t for t in (ref() for ref in _tape._live_tapes.copy().values()) if isinstance(t, _ReplayTape)]


def _run_segments(tpl, aux, slots, values, segments):
    """Compute the rows of ``segments`` (``_Template.finish``'s stretches) into ``values``; return the fused runs
    that left values out of the arena."""
    forward_chunk, forward_sweep = _FORWARD_KERNELS or _forward_kernels()
    rows, attrs, flags = tpl.rows, tpl.attrs, tpl.flags
    none = (values[:0], -1)
    skipped = []
    for seg in segments:
        if seg[0] == "f":
            chain_forward.run(seg[1], values, slots)
            if seg[1].skips:
                skipped.append(seg[1])
            continue
        if seg[0] == "m":
            _blas_row(values, seg[3], [slots[k] for k in seg[2]])
            continue
        used = seg[-1]
        ext0, e0 = slots[used[0]] if used else none
        ext1, e1 = slots[used[1]] if len(used) > 1 else none
        if seg[0] == "k":
            forward_sweep(rows, attrs, aux, values, flags, seg[1], seg[2], ext0, e0, ext1, e1)
        elif seg[0] == "p":
            parallel.run(
                seg[3], functools.partial(forward_chunk, rows, attrs, values, seg[1], seg[2], ext0, e0, ext1, e1)
            )
        else:
            _ufunc_row(values, rows, seg[1], seg[2], seg[3], ext0 if used else None)
    return skipped


# kernels/replay.py's forward_chunk and forward_sweep, imported on the first replay (a function-level import
# costs a Python call, importlib's _handle_fromlist, about 3 us each time it runs)
_FORWARD_KERNELS = []


def _forward_kernels():
    from kernels.replay import forward_chunk, forward_sweep

    _FORWARD_KERNELS[:] = [forward_chunk, forward_sweep]
    return _FORWARD_KERNELS


_DATA = operator.attrgetter("_data")
_OP, _VC, _VERSION = operator.attrgetter("_op"), operator.attrgetter("_vc"), operator.attrgetter("version")
_READY_HOOKS = operator.attrgetter("_grad_ready_hooks")
_SHAPE_DTYPE = operator.attrgetter("_data.shape", "_data.dtype")
_IMPORTS = operator.attrgetter("_imports")
PRUNE_EVERY = 64  # replays of a template between two prunings of its sources' ``_imports`` lists


class _ReplayTape(_tape.Tape):
    """The tape of a replayed call. ``guard``: ``(sources, offsets, counters, versions)`` of the many small
    leaves and constants copied into the arena without an ``_imports`` entry each (a tuple per source and step,
    which the garbage collector would traverse): the version counters (``Tensor._vc``) of the sources at the
    replay, and the versions of those that have one. Reading ``dirty`` or ``modified`` (what a sweep checks
    before it reads a saved value) first flags the copy of each source whose version changed since, as
    ``tape.mark_modified`` flags an ``_imports`` entry at the write. (Not seen: a write through ``p.data``'s
    alias, which bumps no version: the copy keeps the values of the replay, where eager tapes refresh theirs.)"""

    __slots__ = ("guard", "leaves", "backward_program", "rows_pending")

    takes_rows = False  # (built whole, never a thread's current tape: engine._TapeSweep has nothing to retire)

    def __init__(self, dtype, capacity, rows):
        self.guard = None
        self.backward_program = None  # the template's (ad/compile_backward.py): engine._sweep_tape runs it
        self.leaves = None  # (the leaves read as externs, their arrays, the template): see ``hand_leaf_grads``
        # a weak reference to the call's ``_ReplayState`` while the tensors of the Python rows (and the nodes they
        # read: ``_Template.eager_nodes``) and ``hook_rows`` are not made yet (the backward program reads their
        # operands without them: ad/compile_backward.py); reading ``hook_rows`` makes them (``_make_rows``)
        self.rows_pending = None
        super().__init__(dtype, capacity, rows)

    @property
    def hook_rows(self):
        if self.rows_pending is not None:
            self._make_rows()
        return _HOOK_ROWS.__get__(self)

    @hook_rows.setter
    def hook_rows(self, value):
        _HOOK_ROWS.__set__(self, value)

    def _make_rows(self):
        """Make what the replay left pending: the tensors of ``_Template.eager_nodes`` (held by the call's state,
        as the replay would have made them; a node a lazy tensor already stands for keeps that object, made a
        plain tensor with its operands resolved, so that the state holds it without a cycle) and ``hook_rows``."""
        state = self.rows_pending()
        self.rows_pending = None
        if state is None:  # (every tensor of the tape holds the state: nothing can sweep it once the state died)
            raise RuntimeError("internal error: a replayed tape's rows were read after all its tensors died")
        tpl = state.tpl
        for k in tpl.eager_nodes:  # (ascending: a node's operands come first, and are then held strongly)
            ref = state.weak.pop(k, None)
            t = ref() if ref is not None else None
            if t is None:
                t = state.make(k, False)
            else:
                _settle(t)
            state.strong[k] = t
        _HOOK_ROWS.__set__(self, _hook_rows(tpl, state))

    def hand_leaf_grads(self, s, leaf_grads):
        """``engine.kernel_sweep``'s hand-over of the cotangents of this tape's externs when they are all
        distinct leaves of the arena's dtype (a model's parameters), in C-level passes instead of a Python
        step per extern: each leaf's gradient is a view of this backward's cotangent arena, as the generic
        hand-over makes it. False (nothing done) where the generic one is needed: a restricted sweep, a leaf
        not reached, gradients already collected, a leaf whose data was rebound since the replay."""
        spec = self.leaves
        if spec is None or leaf_grads or s.plan is not None or s.nexterns != len(self.ext_rows):
            return False
        leaves, datas, tpl = spec
        if s.lowest > min(tpl.extern_rows) or not all(map(operator.is_, map(_DATA, leaves), datas)):
            return False
        if not s.live[tpl.extern_index].all():
            return False
        leaf_grads.fill(leaves, tpl.extern_grads(s.cot, datas))  # (``leaf_grads`` is empty: an engine.LeafGrads)
        return True

    def __del__(self):
        self.guard = None
        super().__del__()

    def _check_guard(self):
        guard = self.guard
        if guard is None:
            return
        sources, offsets, counters, versions = guard
        now = list(map(_VC, sources))
        if now == counters and list(map(_VERSION, filter(None, now))) == versions:
            return
        self.guard = None  # (flagging reads ``modified``)
        try:
            old = iter(versions)
            for off, before, vc in zip(offsets, counters, now):
                if (0 if vc is None else vc.version) != (0 if before is None else next(old)):
                    _tape._set_modified(self, off)
        finally:
            self.guard = guard

    @property
    def dirty(self):
        self._check_guard()
        return _DIRTY.__get__(self)

    @dirty.setter
    def dirty(self, value):
        _DIRTY.__set__(self, value)

    @property
    def modified(self):
        self._check_guard()
        return _MODIFIED.__get__(self)

    @modified.setter
    def modified(self, value):
        _MODIFIED.__set__(self, value)


_DIRTY, _MODIFIED, _HOOK_ROWS = _tape.Tape.dirty, _tape.Tape.modified, _tape.Tape.hook_rows


def _register_copies(tpl, sources, tape_ref, prune):
    """Append ``(tape_ref, offset)`` to each source's ``_imports`` (so an in-place change of it flags this
    tape's copy: ``tape.mark_modified``), in C-level passes; every ``PRUNE_EVERY`` replays, drop the entries of
    dead tapes (a tensor that is never written in place, which clears the list, is imported by every step)."""
    lists = list(map(_IMPORTS, sources))
    if None in lists:
        for t in sources:
            if t._imports is None:
                t._imports = []
        lists = list(map(_IMPORTS, sources))
    deque(map(list.append, lists, zip(repeat(tape_ref), tpl.copy_offs)), maxlen=0)
    if prune:
        for copies in lists:
            _prune(copies)


def _prune(copies):
    if len(copies) > 4:
        copies[:] = [c for c in copies if c[0]() is not None]


def _index_values(src, tensors):
    """The current values of the index tensor a gather read (``src``: its reference in the template)."""
    kind = src[0]
    if kind == "k":
        return src[1]
    if kind == "b":
        return np.broadcast_to(tensors[src[1]]._data, src[2])
    t = tensors[src[1]] if kind == "a" else src[1]
    return t._data


def _gather_map(idx, dim, x_shape, ix_shape):
    """``gather``'s flat index map (as ``ops.indexing.gather`` makes it; ``index_select``'s for ``dim =
    ("index_select", d)``, ``x[key]``'s for ``("getitem", key)``) from index values ``idx``, or None when they
    are not valid for this program (another dtype kind or shape, out of bounds: eager raises)."""
    if idx.dtype.kind not in "iu" or idx.shape != ix_shape:
        return None
    flat_index = np.arange(int(np.prod(x_shape)), dtype=np.int64).reshape(x_shape)
    select = type(dim) is tuple
    if select and dim[0] == "getitem":  # ``x[..., index, ...]``: the recorded key with this call's index
        key = dim[1]
        j = key.index("index")
        try:
            return np.asarray(flat_index[key[:j] + (idx,) + key[j + 1 :]]).reshape(-1)
        except IndexError:
            return None
    if select:
        dim = dim[1]
    size = x_shape[dim]
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        return None
    if select:
        return np.take(flat_index, idx.reshape(-1).astype(np.int64), axis=dim).reshape(-1)
    return np.take_along_axis(flat_index, idx.astype(np.int64), axis=dim).reshape(-1)


def blas_plan(rows, aux, r, slots):
    """Row ``r``'s BLAS call (a matmul or linear row), worked out once per template for ``_blas_row``: ``(code,
    output offset, size, output shape, operands)``, an operand ``(k, at, size, shape, strides)`` read from
    position ``at`` of the ``k``-th of the segment's extern slots (``slots``: their ``(offset, size, source)``
    in ``_Template.externs_in``), or of the arena where ``k`` is -1; ``strides`` (in elements) only for a batch
    operand that is broadcast (a batch stride of 0)."""
    code, o, x, y, n, a = (int(v) for v in rows[r, :6])
    code &= K.CODE_MASK

    def operand(off, shape, strides=None):
        k, at = -1, off
        for j, (e, size, _) in enumerate(slots):
            if e <= off < e + size:
                k, at = j, off - e
        return (k, at, _prod(shape), shape, strides)

    if code == K.MATMUL:
        B, M, K_, N, xbs, ybs = (int(v) for v in aux[a : a + 6])
        if B == 1:
            return code, o, n, (M, N), (operand(x, (M, K_)), operand(y, (K_, N)))
        # (a batch stride of 0: an operand broadcast over the batch)
        return code, o, n, (B, M, N), (operand(x, (B, M, K_), (xbs, K_, 1)), operand(y, (B, K_, N), (ybs, N, 1)))
    M, K_, N = (int(v) for v in aux[a : a + 3])
    operands = (operand(x, (M, K_)), operand(y, (N, K_)))
    if code == K.LINEAR_BIAS:
        operands += (operand(int(aux[a + 3]), (N,)),)
    return code, o, n, (M, N), operands


def _blas_row(values, plan, slots):
    """A matmul or linear row (``blas_plan``'s ``plan``) through numpy's BLAS into its output region, as the eager
    op computes it (``ops/dense.linear_product``, the bias added in place); ``slots``: the
    segment's extern slots, ``(array, offset)`` pairs."""
    code, o, n, out_shape, operands = plan
    out = values[o : o + n].reshape(out_shape)
    x = _operand(values, slots, *operands[0])
    y = _operand(values, slots, *operands[1])
    if code == K.MATMUL:
        if x.ndim == 2 and y.ndim == 2 and x.dtype is y.dtype:
            blas_threads.matmul(x, y, out)  # (as the eager op: ops/dense._record_matmul)
        else:
            np.matmul(x, y, out=out)
        return
    linear_product(x, y, out)
    if code == K.LINEAR_BIAS:
        out += _operand(values, slots, *operands[2])


def _operand(values, slots, k, at, size, shape, strides):
    src = values if k < 0 else slots[k][0]
    if strides is None:
        return src[at : at + size].reshape(shape)
    item = src.itemsize
    return np.lib.stride_tricks.as_strided(src[at:], shape, tuple(s * item for s in strides), writeable=False)


def _prod(shape):
    n = 1
    for k in shape:
        n *= k
    return n


def _ufunc_row(values, rows, r, ufunc, n, operand):
    """Row ``r``'s output region = ``ufunc`` of its operand's (``operand``: its array, when it is read in place),
    in chunks across threads (as the eager op)."""
    o, x = int(rows[r, 1]), int(rows[r, 2])
    src, dst = values[x : x + n] if operand is None else operand, values[o : o + n]
    if n < parallel.PARALLEL_MIN:  # (one chunk: parallel.run would call the closure on the whole range)
        ufunc(src, out=dst)
        return
    parallel.run(n, lambda lo, hi: ufunc(src[lo:hi], out=dst[lo:hi]))


class _ReplayedTensor(Tensor):
    """A replayed result whose operands (``_inputs``: the Python graph, which ``grad_fn``, ``grad(inputs=)``
    and ``create_graph`` walk) are built from the template when first asked for; a backward that needs only
    the tape never builds them."""

    @property
    def _inputs(self):
        d = self.__dict__
        got = d.get("_inputs_v")
        if got is None:
            state, k = d["_replay"]
            got = d["_inputs_v"] = tuple([state.resolve(r) for r in state.tpl.nodes[k].inputs])
        return got

    @_inputs.setter
    def _inputs(self, value):
        self.__dict__["_inputs_v"] = value


def _settle(t):
    """Make the lazy replayed tensor ``t`` the plain tensor that ``_ReplayState.make(k, False)`` would have made:
    its operands resolved (held), no reference to the state (which then holds ``t``)."""
    d = t.__dict__
    inputs = t._inputs
    t.__class__ = Tensor
    d.pop("_inputs_v", None)
    del d["_replay"]
    d["_inputs"] = inputs


class _ReplayState:
    """The tensors of one replayed call. Nodes a sweep reaches from Python (``tpl.eager_nodes``: hooked
    tensors, big rows, and what they read) are built at once (or when ``hook_rows`` is first read: see
    ``_ReplayTape.rows_pending``), as plain tensors, and held here; the others
    are ``_ReplayedTensor``s built on demand, which hold this state (it holds them weakly: no cycles, so a
    finished graph's arenas are recycled as soon as its tensors die)."""

    __slots__ = ("tpl", "tensors", "tape", "target_arrays", "strong", "weak", "broadcasts", "__weakref__")

    def __init__(self, tpl, tensors, tape, target_arrays):
        self.tpl = tpl
        self.tensors = tensors
        self.tape = tape
        self.target_arrays = target_arrays
        self.strong = {}
        self.weak = {}
        self.broadcasts = {}

    def resolve(self, r):
        if r is None:
            return None
        kind = r[0]
        if kind == "n":
            k = r[1]
            t = self.strong.get(k)
            if t is None:
                ref = self.weak.get(k)
                t = ref() if ref is not None else None
                if t is None:
                    t = self.make(k, True)
                    self.weak[k] = weakref.ref(t)
            return t
        if kind == "a":
            return self.tensors[r[1]]
        if kind == "b":
            got = self.broadcasts.get(r)
            if got is None:
                got = self.broadcasts[r] = wrap_array(np.broadcast_to(self.tensors[r[1]]._data, r[2]))
            return got
        if kind == "k":  # a constant made inside fn: a new tensor of its values, as each eager call makes
            got = self.broadcasts.get(id(r))
            if got is None:
                got = self.broadcasts[id(r)] = wrap_array(r[1].copy())
            return got
        return r[1]

    def make(self, k, lazy):
        nd = self.tpl.nodes[k]
        t = _new(_ReplayedTensor if lazy else Tensor)
        d = t.__dict__
        d["_data"] = self.tape.values[nd.off : nd.off + nd.n].reshape(nd.shape)
        d["_rg"] = nd.rg
        d["_op"] = nd.op
        if lazy:
            d["_replay"] = (self, k)
        else:
            d["_inputs"] = tuple([self.resolve(r) for r in nd.inputs])
        d["_ctx"] = self.target_arrays[k] if nd.ctx is None else _ctx_value(nd.ctx, self.resolve)
        d["_tape"] = self.tape
        d["_off"] = nd.off
        d["_row"] = nd.row
        if nd.nrows != 1:
            d["_nrows"] = nd.nrows
        if nd.hooks:
            d["_hooks"] = dict(nd.hooks)
        if nd.retains_grad:
            d["_retains_grad"] = True
        return t


def _resolve_outside(src, tensors):
    if src[0] == "a":
        return tensors[src[1]]
    return src[1]


def _ctx_value(spec, resolve):
    kind = spec[0]
    if kind == "c":
        return spec[1]
    if kind == "r":
        return resolve(spec[1])
    return spec[1](_ctx_value(s, resolve) for s in spec[2])


def _out_value(spec, resolve):
    kind = spec[0]
    if kind == "c":
        return spec[1]
    if kind == "s":  # (a list, not a generator: a tuple or list of a few tensors, every call)
        return spec[1]([_out_value(s, resolve) for s in spec[2]])
    if kind == "nt":
        return spec[1](*[_out_value(s, resolve) for s in spec[2]])
    if kind == "d":
        return {key: _out_value(s, resolve) for key, s in zip(spec[1], spec[2])}
    return resolve(spec)
