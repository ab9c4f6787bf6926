"""The template of a compiled function's signature (``ad/compile.py``): what its recording call left on its
tape, in references that a later call resolves (``ad/compile_replay.py``).

Data structures:

- ``_Template``: the recorded rows (bytes, the tape's own format), aux, per-row replay flags, the arena size,
  ``imports`` ``[(offset, size, source)]`` (what to copy in before the kernel runs), ``externs``, ``nodes``
  (one ``_Node`` per recorded result tensor: where it lives, its op, its operands as references) and the
  output structure. A reference is ``("n", k)`` (node k of this call), ``("a", k)`` (tensor argument k of
  this call), ``("b", k, shape)`` (a broadcast of argument k), ``("k", values)`` (a constant a factory made
  inside ``fn``: re-created from the recorded values, which both recordings must agree on) or ``("e",
  tensor)`` (a tensor from outside ``fn``: a parameter, a captured constant; read at each call). ``imports``
  splits into ``copies`` (copied into the arena at each call) and ``externs_in``: imports of
  ``tape.BIG_ROW`` elements or more, which the kernel reads where they are (``kernels/replay.py``'s extern
  slots; an eager tape leaves them out of its arena too).

``remaps`` ``[(aux column, n, index source, dim, x shape, index shape, node)]``: the gathers, index_selects
and ``x[..., index, ...]`` reads (``dim``: ``d``, ``("index_select", d)``, ``("getitem", key)``) whose index map
comes from an index tensor (an argument, a constant or a tensor from outside): the replay recomputes each map
from that tensor's current values and patches ``aux`` (and the node's ``_ctx``).

``_build`` makes a template from a recording, ``_differs`` compares two recordings of one signature (only a
template that two recordings agree on is replayed), ``_Template.finish`` plans its replay (row flags, the
stretches of rows each kernel call runs, which imports are read in place).
"""

import operator

import numpy as np

from kernels import opcodes as K

from . import chain_forward
from . import tape as _tape
from .tensor import Tensor

_BLAS_CODES = (K.MATMUL, K.LINEAR, K.LINEAR_BIAS)
# opcode -> the numpy ufunc with the same values (what the eager ops call on big arrays): the transcendental
# functions whose libm versions (numba's math.*) are scalar calls, several times slower than numpy's SIMD loops
# (exp, tanh, sin and cos are not here: kernels/vmath.py's loops vectorize)
_UFUNCS = {
    K.LOG: np.log,
    K.LOG1P: np.log1p,
    K.EXPM1: np.expm1,
    K.SQRT: np.sqrt,
    K.TAN: np.tan,
    K.ATAN: np.arctan,
    K.SINH: np.sinh,
    K.COSH: np.cosh,
    K.ASINH: np.arcsinh,
    K.EXP2: np.exp2,
}
# float32: vmath computes in float64, a quarter of the lanes of numpy's float32 loops (which the eager ops call)
_UFUNCS_F32 = {**_UFUNCS, K.EXP: np.exp, K.TANH: np.tanh, K.SIN: np.sin, K.COS: np.cos}


# Structural ops whose rows the replay kernel computes completely (every element of the result from the
# operands); elementwise ops are recognized by their opcode range
_STRUCTURAL_OPS = frozenset(
    (
        "gather_strided",
        "expand",
        "permute",
        "transpose",
        "getitem",
        "t",
        "sum",
        "sum_all",
        "mean",
        "mean_all",
        "reshape",
        "reshape_copy",
        "squeeze",
        "squeeze_dim",
        "squeeze_dims",
        "unsqueeze",
        "prod",
        "amax",
        "amin",
        "max_all",
        "min_all",
        "cat",
        "stack",
        "matmul",
        "log_softmax",
        "linear",
        "linear_bias",
        "cross_entropy",
        "select",
        "diagonal",
        "unbind",
        "narrow",
        "flip",
        "rot90",
        "cast",
    )
)
_NOT_ELEMENTWISE = frozenset(("rehome", "to_copy"))
# what a recorded result tensor may carry for the replay to rebuild it (views' aliasing is dropped: only
# results inside ``fn`` may be views, and ``fn`` cannot reach their storage after it returns)
_NODE_KEYS = frozenset(
    (
        "_data",
        "_rg",
        "_op",
        "_inputs",
        "_in0",
        "_in1",
        "_ctx",
        "_tape",
        "_off",
        "_row",
        "_nrows",
        "_hooks",
        "_retains_grad",
        "_node",
        "_imports",
        "_vc",
        "_vbase",
        "_vflags",
    )
)


class _Unsupported(Exception):
    """Why a recording cannot be replayed."""


def _root(a):
    """The array that owns ``a``'s memory."""
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


class _Node:
    """A recorded result tensor: where it lives, its op, its operands and ``_ctx`` as references."""

    __slots__ = ("off", "shape", "n", "row", "nrows", "rg", "op", "ctx", "inputs", "hooks", "retains_grad")


class _Template:
    __slots__ = (
        "dtype",
        "used",
        "nrows",
        "rows_bytes",
        "rows",
        "attrs",
        "aux",
        "flags",
        "imports",
        "externs",
        "nodes",
        "hook_rows",
        "python_rows",
        "big_regions",
        "out",
        "targets",
        "remaps",
        "eager_nodes",
        "import_index",
        "import_flat",
        "n_args",
        "outside",
        "outside_shapes",
        "pick_copies",
        "copy_offs",
        "pick_externs",
        "extern_rows",
        "extern_offs",
        "extern_slices",
        "extern_index",
        "extern_grid",
        "externs_copied",
        "leaves_alike",
        "replays",
        "segments",
        "copies",
        "externs_in",
        "fused",
        "backward",
    )

    def finish(self):
        """Per-row replay flags (``kernels/replay.py``) and the big fused runs split across threads."""
        from kernels import replay

        words = np.frombuffer(self.rows_bytes, np.int64).reshape(-1, 10)
        self.rows = words[:, :8]
        self.attrs = np.frombuffer(self.rows_bytes, np.float64).reshape(-1, 10)[:, 8:]
        flags = np.zeros(self.nrows, np.uint8)
        codes = [int(c) for c in words[:, 0] & K.CODE_MASK]
        sizes = [int(n) for n in words[:, 4]]
        # big rows of _UFUNCS's functions run numpy's ufunc (SIMD: several times libm's scalar calls), as the
        # eager op does; fused runs are made of the other elementwise rows
        ufuncs = _UFUNCS if np.dtype(self.dtype) == np.float64 else _UFUNCS_F32
        ufunc_rows = {r: ufuncs[c] for r, c in enumerate(codes) if c in ufuncs and sizes[r] >= replay.FUSE_MIN}
        prev_code = prev_out = prev_n = -1
        for r in range(self.nrows):
            code, out, n = codes[r], int(words[r, 1]), sizes[r]
            if code == K.SAVED_INPUT or code == K.SAVED_RESULT:
                flags[r] = replay.FLAG_SKIP
                continue  # (a guard does not break a run: it computes nothing)
            if code == K.SCATTER_STRIDED and not (prev_code == K.SCATTER_STRIDED and prev_out == out):
                flags[r] = replay.FLAG_ZERO
            elif (
                n >= replay.FUSE_MIN
                and n == prev_n
                and replay.is_elementwise(code)
                and replay.is_elementwise(prev_code)
                and r not in ufunc_rows
                and r - 1 not in ufunc_rows
            ):
                flags[r] = replay.FLAG_FUSED
            prev_code, prev_out, prev_n = code, out, n
        self.flags = flags
        reads, self.externs_in = self._extern_slots(words, codes)
        # the rows in stretches: ("k", start, stop, slots) for one kernel call, ("p", first, end, n, slots) for a
        # fused elementwise run big enough to split across threads (ad/parallel.py), ("u", row, ufunc, n, slots)
        # for a big transcendental row, ("m", row, slots, plan) for a big matmul or linear row (numpy's BLAS, as the
        # eager op: the kernel's np.dot calls scipy's own OpenBLAS, a second thread pool whose spinning workers
        # take the cores from numpy's in the backward); ``slots``: the big imports (indices into ``externs_in``,
        # at most two) that the stretch reads in place (kernels/replay.py's extern slots)
        from .compile_replay import blas_plan
        from .parallel import PARALLEL_MIN

        segments = []
        r = start = 0
        slots = set()
        while r < self.nrows:
            n = sizes[r]
            if codes[r] in _BLAS_CODES and r in self.python_rows:  # (eager's test: ops/dense.py's BIG_ROW)
                if start < r:
                    segments.append(("k", start, r, tuple(sorted(slots))))
                used = tuple(sorted(reads[r]))
                segments.append(("m", r, used, blas_plan(words, self.aux, r, [self.externs_in[k] for k in used])))
                start = r = r + 1
                slots = set()
                continue
            if r in ufunc_rows or (
                n >= PARALLEL_MIN and replay.is_elementwise(codes[r]) and not flags[r] & replay.FLAG_SKIP
            ):
                if start < r:
                    segments.append(("k", start, r, tuple(sorted(slots))))
                if r in ufunc_rows:
                    segments.append(("u", r, ufunc_rows[r], n, tuple(reads[r])))
                    start = r = r + 1
                else:
                    end, run = r + 1, set(reads[r])
                    while end < self.nrows and flags[end] & replay.FLAG_FUSED and len(run | reads[end]) <= 2:
                        run |= reads[end]
                        end += 1
                    segments.append(("p", r, end, n, tuple(sorted(run))))
                    start = r = end
                slots = set()
                continue
            if len(slots | reads[r]) > 2:
                segments.append(("k", start, r, tuple(sorted(slots))))
                start, slots = r, set()
            slots |= reads[r]
            r += 1
        if start < self.nrows:
            segments.append(("k", start, self.nrows, tuple(sorted(slots))))
        # consecutive big elementwise stretches over one size: one blocked pass (ad/chain_forward.py)
        self.segments = chain_forward.fuse(self, segments, words, codes, sizes, reads, ufuncs)
        self._plan_many_imports()
        # the nodes a sweep reaches from Python, and every node they read (closed under operands and ctx)
        eager = set()
        stack = [r[1] for refs in self.hook_rows.values() for r in refs if r is not None and r[0] == "n"]
        while stack:
            k = stack.pop()
            if k in eager:
                continue
            eager.add(k)
            nd = self.nodes[k]
            stack.extend(r[1] for r in nd.inputs if r is not None and r[0] == "n")
            stack.extend(_ctx_nodes(nd.ctx))
        self.eager_nodes = sorted(eager)
        from . import compile_backward, compile_fused

        self.fused = compile_fused.plan(self)  # forward and the loss's backward in one call, or None
        # (else) the sweep's Python rows worked out once (ad/compile_backward.py), or None
        self.backward = compile_backward.plan(self) if self.fused is None else None

    def _plan_many_imports(self):
        """Plan the per-call Python work on many small imports (a model of many leaves) as C-level passes:
        ``import_index`` (the arena positions of all copies, for one gather and one scatter), ``pick_copies``
        (an ``operator.itemgetter`` over the call's pool: its tensor arguments, then ``outside``, the tensors
        from outside ``fn``) and ``copy_offs``; likewise ``pick_externs`` with ``extern_rows`` and
        ``extern_offs`` for the tape's externs. ``outside_shapes``: their shapes and dtypes when recorded (a
        tensor from outside whose data was rebound to another shape makes the call run eagerly)."""
        outside = {}
        for _, _, src in self.imports:
            if src[0] == "e":
                outside.setdefault(id(src[1]), src[1])
        self.outside = list(outside.values())
        self.outside_shapes = [(t._data.shape, t._data.dtype) for t in self.outside]
        n_args = self.n_args
        where = {k: n_args + j for j, k in enumerate(outside)}

        def position(src):
            return src[1] if src[0] == "a" else where[id(src[1])]

        copies = self.copies
        self.import_index = self.pick_copies = None
        if len(copies) >= 16 and all(src[0] in "ae" for _, _, src in copies):
            self.import_index = np.concatenate([np.arange(off, off + n) for off, n, _ in copies])
            self.pick_copies = operator.itemgetter(*[position(src) for _, _, src in copies])
            self.copy_offs = [off for off, _, _ in copies]
        self.pick_externs = self.extern_grid = None
        self.externs_copied = False  # every extern is also one of the many copies (``import_index``)
        if len(self.externs) >= 2 and all(r[0] in "ae" for _, _, r in self.externs):
            self.pick_externs = operator.itemgetter(*[position(r) for _, _, r in self.externs])
            self.extern_rows = [row for row, _, _ in self.externs]
            self.extern_offs = [off for _, off, _ in self.externs]
            # each extern's cotangent region, for the backward's hand-over to the leaves (_ReplayTape)
            sizes = {off: n for off, n, _ in self.imports}
            self.extern_slices = [slice(off, off + sizes[off]) for off in self.extern_offs]
            self.extern_index = np.array(self.extern_offs, np.int64)
            self.extern_grid = _grid(self.extern_offs, [sizes[off] for off in self.extern_offs])
            if self.import_index is not None:  # (the replay's checks of the copies' sources then cover the externs)
                copied = {position(src) for _, _, src in copies}
                self.externs_copied = all(position(r) in copied for _, _, r in self.externs)
        self.leaves_alike = None  # whether the externs are distinct leaves of the arena's dtype (first replay)
        self.replays = 0

    def extern_grads(self, cot, datas):
        """Views of cotangent arena ``cot`` as the gradients of the externs (``datas``: their arrays, for the
        shapes), in ``extern_offs``' order: one strided view cut into rows at C level where the externs lie
        evenly spaced and alike (``extern_grid``: a model of many equal leaves), else a slice and a reshape each.
        Each view is C-contiguous fresh memory of this backward, as the generic hand-over makes it."""
        grid = self.extern_grid
        if grid is not None and self.import_flat:
            first, stride, count, size = grid
            item = cot.itemsize
            return list(np.lib.stride_tricks.as_strided(cot[first:], (count, size), (stride * item, item)))
        grads = list(map(cot.__getitem__, self.extern_slices))
        if not self.import_flat:
            grads = list(map(np.ndarray.reshape, grads, map(_SHAPE, datas)))  # (np.reshape: 3 Python calls each)
        return grads

    def _extern_slots(self, words, codes):
        """Which imports the replay reads in place instead of copying (``externs_in``: ``[(off, n, src)]``, the
        big ones, as eager tapes leave them out of the arena too), and per row the set of them it reads (indices
        into ``externs_in``); sets ``copies``, the imports copied into the arena at each call. A row reads at
        most two in place (the kernel's two extern slots): a third one it reads is copied."""
        from bisect import bisect_right

        from kernels import replay

        big = [k for k, (_, n, _) in enumerate(self.imports) if n >= _tape.BIG_ROW]
        starts = [self.imports[k][0] for k in big]
        aux = self.aux
        found = []
        for r in range(self.nrows):
            code = codes[r]
            if code == K.SAVED_INPUT or code == K.SAVED_RESULT or not big:
                found.append(())
                continue
            offs = [int(words[r, 2])]
            if replay.is_binary(code) or code in (K.MATMUL, K.LINEAR, K.LINEAR_BIAS):
                offs.append(int(words[r, 3]))
            if code == K.LINEAR_BIAS:
                offs.append(int(aux[int(words[r, 5]) + 3]))
            hit = []
            for off in offs:
                j = bisect_right(starts, off) - 1
                if j >= 0 and off < starts[j] + self.imports[big[j]][1] and big[j] not in hit:
                    hit.append(big[j])
            found.append(hit)
        copied = set()
        for hit in found:
            kept = [k for k in hit if k not in copied]
            copied.update(kept[2:])
        in_place = [k for k in big if k not in copied]
        slot = {k: j for j, k in enumerate(in_place)}
        self.copies = [imp for k, imp in enumerate(self.imports) if k not in slot]
        reads = [frozenset(slot[k] for k in hit if k in slot) for hit in found]
        return reads, [self.imports[k] for k in in_place]


def _grid(offs, sizes):
    """``(first offset, stride, count, size)`` where regions at ``offs`` of ``sizes`` are all of one size and
    evenly spaced (without overlap), else None."""
    if len(offs) < 2 or len(set(sizes)) != 1:
        return None
    stride = offs[1] - offs[0]
    if stride < sizes[0] or any(b - a != stride for a, b in zip(offs, offs[1:])):
        return None
    return offs[0], stride, len(offs), sizes[0]


_SHAPE = operator.attrgetter("shape")


class TapeSnapshot:
    """What a template is built from: a recording's tape as it stood when its phase ended (the function
    returned, or a backward inside it began: ``ad/compile_program.py``; the sweep then frees rows and clears the
    tape's imports). Imports and externs hold their tensors strongly (the recording keeps them alive anyway)."""

    __slots__ = (
        "tape",
        "id",
        "nrows",
        "used",
        "dtype",
        "rows_bytes",
        "aux",
        "imports",
        "externs",
        "hook_rows",
        "python_rows",
        "big_regions",
        "values",
        "clean",
        "row_map",
    )

    def __init__(self, T):
        self.tape = T
        self.id = T.id
        self.nrows = nrows = T.nrows
        self.used = T.used
        self.dtype = T.dtype
        self.rows_bytes = bytes(T.rows[: nrows * _tape.ROW.size])
        self.aux = np.array(T.aux, np.int64) if len(T.aux) else np.zeros(1, np.int64)
        self.imports = [(off, row, _tape.held(t), version) for off, row, t, version in T.imports.values()]
        self.externs = [(row, off, _tape.held(t)) for row, off, t in T.externs]
        self.hook_rows = {row: list(refs) for row, refs in T.hook_rows.items()}
        self.python_rows = frozenset(T.python_rows)
        self.big_regions = list(T.big_regions)
        self.values = T.values
        self.clean = not (T.dirty or (T.freed.shape[0] and T.freed[:nrows].any()))
        # the tape's row numbers -> the snapshot's, where it keeps some rows only (ad/compile_dual.py: a dual
        # level's primal rows); None: all
        self.row_map = None


def _build(result, tensors, rec, first_id, last_id):
    """The template of the recording call that returned ``result``; raises ``_Unsupported`` with the reason
    when it cannot be replayed."""
    if rec.reason is not None:
        raise _Unsupported(rec.reason)
    created = last_id - first_id - 1
    tapes = [t for t in _tape._state.current.values() if first_id < t.id < last_id]
    if created == 0:
        raise _Unsupported("it recorded no differentiable op (no input requires grad)")
    if created != 1 or len(tapes) != 1:
        raise _Unsupported("its ops spread over several tapes (several dtypes, or a graph larger than one tape)")
    S = TapeSnapshot(tapes[0])
    if not S.clean:
        raise _Unsupported("a tensor was written in place or a backward ran inside the function")
    return build_tape(S, result, tensors, rec)


def build_tape(S, result, tensors, rec):
    """The template of the rows of snapshot ``S`` (a ``TapeSnapshot``) that ``result`` (the tensors wanted
    from them: ``_Template.out``) needs; ``tensors``: what the replay passes as arguments (a reference
    ``("a", k)`` is ``tensors[k]``)."""
    from kernels.replay import REPLAYABLE, is_elementwise

    from .ops import OPS

    nrows = S.nrows
    rows_bytes = S.rows_bytes
    words = np.frombuffer(rows_bytes, np.int64).reshape(-1, 10)
    codes = words[:, 0] & K.CODE_MASK
    for code in np.unique(codes[REPLAYABLE[codes] == 0]).tolist():
        names = [op.grad_fn_name for op in OPS.values() if op.code == code and isinstance(op.grad_fn_name, str)]
        what = "a custom autograd.Function" if code == K.PYTHON else names[0] if names else f"opcode {code}"
        raise _Unsupported(f"the replay does not compute {what}")

    arg_index = {}
    for k, t in enumerate(tensors):
        arg_index.setdefault(id(t), k)
    ref_of = {}
    imports = []
    for off, _row, t, _version in S.imports:
        ref = _source(t, tensors, arg_index, rec.made)
        ref_of[id(t)] = ref
        imports.append((off, t._data.size, ref))
    imports.sort(key=lambda item: item[0])
    externs = [(row, off, ref_of[id(t)]) for row, off, t in S.externs]

    # the recorded result tensors reachable from the outputs and the hooked tensors, in recording order
    roots = []
    _tensors_of(result, roots)
    handlers = {}
    T = S.tape
    for row, refs in S.hook_rows.items():
        for r in refs:
            h = r()
            if h is None:
                continue
            if not isinstance(h, Tensor):
                raise _Unsupported("a custom autograd.Function is called inside the function")
            handlers.setdefault(row, []).append(h)
            roots.append(h)
    found = {}
    stack = [t for t in roots if t._tape is T]
    while stack:
        t = stack.pop()
        if id(t) in found:
            continue
        found[id(t)] = t
        stack.extend(i for i in t._inputs if i is not None and i._tape is T and id(i) not in found)
    order = sorted(found.values(), key=lambda t: t._row)
    node_index = {id(t): k for k, t in enumerate(order)}
    row_map = S.row_map
    if row_map is not None and not all(t._row in row_map for t in order):
        raise _Unsupported("it reads a tangent computed inside a dual level")

    def ref(t):
        if t is None:
            return None
        k = node_index.get(id(t))
        if k is not None:
            return ("n", k)
        r = ref_of.get(id(t))
        if r is None:
            k = arg_index.get(id(t))
            if k is not None:
                return ("a", k)
            if t._tape is None and not t._rg and id(_root(t._data)) in rec.made:  # (imported only broadcast)
                r = ref_of[id(t)] = ("k", np.array(t._data))
                return r
            raise _Unsupported("an op reads a tensor the function made without recording it")
        return r

    targets = []
    remaps = []
    nodes = []
    itemsize = S.values.itemsize
    base = S.values.ctypes.data
    for k, t in enumerate(order):
        d = t.__dict__
        extra = d.keys() - _NODE_KEYS
        op = t._op
        if extra and d.get("_tangents", 1) is None:  # (a dual level's tangents, cleared when it exited)
            extra.discard("_tangents")
        if extra:
            raise _Unsupported(f"a result of {op.name} carries {sorted(extra)[0]} (an in-place op or a view of one)")
        if op.code == K.PYTHON:
            raise _Unsupported("a custom autograd.Function is called inside the function")
        gathered = [(ix, dim) for out, ix, dim in rec.index_reads if out is t] if op.code == K.GATHER_MAP else ()
        if (
            not (
                (is_elementwise(op.code) and op.name not in _NOT_ELEMENTWISE)
                or op.name in _STRUCTURAL_OPS
                or len(gathered) == 1  # (other index maps may come from values: argmax, sort, masks)
                or (op.code == K.GATHER_MAP and any(o is t for o in rec.shape_maps))
            )
            or REPLAYABLE[op.code] == 0
        ):
            raise _Unsupported(f"the replay does not compute {op.name}")
        if op.name in ("cat", "stack") and not all(i._rg for i in t._inputs):
            raise _Unsupported(f"{op.name} of tensors some of which do not require grad")
        node = _Node()
        data = t._data
        node.off, node.shape, node.n = t._off, data.shape, data.size
        row = t._row if row_map is None else row_map[t._row]
        node.row, node.nrows, node.rg, node.op = row, t._nrows, t._rg, op
        node.inputs = tuple(ref(i) for i in t._inputs)
        node.hooks = dict(t._hooks) if t._hooks else None
        node.retains_grad = t._retains_grad
        in_arena = data.flags.c_contiguous and (data.size == 0 or data.ctypes.data == base + t._off * itemsize)
        # (a make_dual tensor is a view of its primal: a later step of the program reads it, the function may
        # not return it, ad/compile_program.build)
        dual = getattr(rec, "dual", None)
        if (
            not in_arena
            and any(o is t for o in _tensors_of(result, []))
            and not (dual is not None and any(d is t for d, _ in dual.duals))
        ):
            raise _Unsupported(f"it returns a view ({op.name}) of a tensor")
        if op.code == K.CROSS_ENTROPY:
            a = int(words[row, 5])
            hit = [(tg, ii) for tg, t64, ii in rec.target_reads if t64 is t._ctx]
            if len(hit) != 1:
                raise _Unsupported("cross_entropy's class indices were not traced")
            target, ignore_index = hit[0]
            src = ("c", np.array(t._ctx)) if not isinstance(target, Tensor) else ref(target)
            targets.append((a, int(S.aux[a]), int(S.aux[a + 1]), src, ignore_index, k))
            node.ctx = None
        elif gathered:
            ix, dim = gathered[0]
            a = int(words[row, 5])
            src = _source(ix, tensors, arg_index, rec.made)
            x_shape = t._inputs[0].shape
            remaps.append((a, node.n, src, dim, x_shape, ix._data.shape, k))
            node.ctx = None
        else:
            node.ctx = _ctx_spec(t._ctx, ref)
        nodes.append(node)

    tpl = _Template()
    tpl.dtype = S.dtype
    tpl.used = S.used
    tpl.nrows = nrows
    tpl.rows_bytes = rows_bytes
    tpl.aux = S.aux.copy()
    tpl.imports = imports
    tpl.n_args = len(tensors)
    tpl.import_flat = all(t._data.ndim == 1 for _, _, t, _ in S.imports)
    tpl.externs = externs
    tpl.nodes = nodes
    tpl.hook_rows = {row: [ref(h) for h in hs] for row, hs in handlers.items()}
    tpl.python_rows = S.python_rows
    tpl.big_regions = list(S.big_regions)
    tpl.targets = targets
    tpl.remaps = remaps
    tpl.out = _out_spec(result, node_index, arg_index)
    return tpl


def _source(t, tensors, arg_index, made):
    """How a later call finds the tensor that the recording imported as ``t``: an argument, a broadcast of
    one (operands are broadcast before they are imported), a constant that a factory made inside ``fn``
    (``("k", values)``: re-created from the recorded values, which the second recording must reproduce), or
    ``t`` itself (a tensor from outside)."""
    k = arg_index.get(id(t))
    if k is not None:
        return ("a", k)
    data = t._data
    if made and not t._rg and t._tape is None and id(_root(data)) in made:
        return ("k", np.array(data))
    if data.base is not None and 0 in data.strides:
        for k, a in enumerate(tensors):
            try:
                b = np.broadcast_to(a._data, data.shape)
            except ValueError:
                continue
            if b.strides == data.strides and b.ctypes.data == data.ctypes.data and b.dtype == data.dtype:
                return ("b", k, data.shape)
    return ("e", t)


_CONSTANT_TYPES = (type(None), int, float, bool, str, bytes, slice, type(Ellipsis), np.ndarray, np.dtype, np.generic)


def _ctx_spec(ctx, ref):
    """``("c", ctx)`` for a context without tensors, ``("r", reference)`` for a tensor, ``("s", type,
    [specs])`` for a tuple or list holding tensors."""
    if isinstance(ctx, Tensor):
        return ("r", ref(ctx))
    if type(ctx) is tuple or type(ctx) is list:
        specs = [_ctx_spec(c, ref) for c in ctx]
        if all(s[0] == "c" for s in specs):
            return ("c", ctx)
        return ("s", type(ctx), specs)
    if isinstance(ctx, _CONSTANT_TYPES) or getattr(type(ctx), "holds_no_tensor", False):
        return ("c", ctx)
    raise _Unsupported(f"an op keeps a {type(ctx).__name__} for its backward")


def _ctx_nodes(spec):
    """The node indices a ctx spec refers to."""
    if spec is None or spec[0] == "c":
        return []
    if spec[0] == "r":
        return [spec[1][1]] if spec[1] is not None and spec[1][0] == "n" else []
    return [k for s in spec[2] for k in _ctx_nodes(s)]


def _tensors_of(obj, found):
    if isinstance(obj, Tensor):
        found.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _tensors_of(o, found)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors_of(o, found)
    return found


def _out_spec(obj, node_index, arg_index):
    if isinstance(obj, Tensor):
        k = node_index.get(id(obj))
        if k is not None:
            return ("n", k)
        k = arg_index.get(id(obj))
        if k is not None:
            return ("a", k)
        raise _Unsupported("it returns a tensor it computed without recording (no input of it requires grad)")
    if type(obj) is tuple or type(obj) is list:
        return ("s", type(obj), [_out_spec(o, node_index, arg_index) for o in obj])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("nt", type(obj), [_out_spec(o, node_index, arg_index) for o in obj])
    if type(obj) is dict:
        return ("d", list(obj), [_out_spec(o, node_index, arg_index) for o in obj.values()])
    if isinstance(obj, (tuple, list, dict, set)):
        raise _Unsupported(f"it returns a {type(obj).__name__}")
    return ("c", obj)


def _differs(a, b):
    """Why recordings ``a`` and ``b`` of one signature differ (None if they are the same program)."""
    if a.rows_bytes != b.rows_bytes:
        return "two calls recorded different ops (Python control flow that depends on something else)"
    aux_a, aux_b = a.aux.copy(), b.aux.copy()
    for t in a.targets:
        aux_a[t[0] + 2 : t[0] + 2 + t[1]] = 0
    for t in b.targets:
        aux_b[t[0] + 2 : t[0] + 2 + t[1]] = 0
    for aux, remaps in ((aux_a, a.remaps), (aux_b, b.remaps)):
        for r in remaps:
            aux[r[0] + 1 : r[0] + 1 + r[1]] = 0
    if len(a.remaps) != len(b.remaps) or any(
        x[0] != y[0] or x[3] != y[3] or not _same_ref(x[2], y[2]) for x, y in zip(a.remaps, b.remaps)
    ):
        return "gather's indices come from different places (a tensor computed inside the function)"
    if not np.array_equal(aux_a, aux_b):
        return "two calls recorded different index maps"
    if len(a.imports) != len(b.imports) or any(
        x[0] != y[0] or not _same_ref(x[2], y[2]) for x, y in zip(a.imports, b.imports)
    ):
        return (
            "it reads a tensor that it creates itself without recording it (a computation on tensors that do not "
            "require grad, or a constant made inside the function whose values change from call to call); pass "
            "it as an argument"
        )
    if [(t[3][0] if t[3][0] != "c" else "c") for t in a.targets] != [t[3][0] for t in b.targets]:
        return "cross_entropy's class indices come from different places"
    if not _same_out(a.out, b.out):
        return "two calls returned different Python values"
    return None


def _same_ref(x, y):
    if x[0] != y[0]:
        return False
    if x[0] == "e":
        return x[1] is y[1]
    if x[0] == "k":
        a, b = x[1], y[1]
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    return x == y


def _same_out(x, y):
    if x[0] != y[0]:
        return False
    if x[0] == "c":
        try:
            return type(x[1]) is type(y[1]) and bool(x[1] == y[1])
        except Exception:
            return False
    if x[0] in ("s", "nt", "d"):
        return x[1] == y[1] and len(x[2]) == len(y[2]) and all(_same_out(p, q) for p, q in zip(x[2], y[2]))
    return x == y
