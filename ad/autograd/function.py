"""``ad.autograd.Function``: custom differentiable operations with Python ``forward`` / ``backward``.

``Function.apply`` runs ``forward`` under ``no_grad``, then (when an input requires grad) records each
output on the tape as a ``PYTHON`` row and registers the call's ``_Record`` as a Python row of the tape: the
compiled sweep stops there, ``backward`` runs with the outputs' cotangents, and its results are added to
the inputs' cotangents in the arena before the sweep goes on. ``create_graph=True`` calls ``backward``
with grad mode on, so a ``backward`` written with ``ad`` ops is itself differentiable. Forward mode calls
the optional ``jvp(ctx, *tangents)``.

As torch's: the call is swept at its *last* output's row (so any output's cotangent reaches it, and the hooks
of every output run first); a saved output is the recorded output (double backward goes through it); saved
tensors' versions are checked when ``saved_tensors`` is read; ``once_differentiable``, ``setup_context``,
``vjp`` (alias of ``backward``), ``mark_non_differentiable``, ``mark_dirty`` (the modified input becomes the
output: ``_take_over``) and ``set_materialize_grads`` behave as torch documents them.

The deprecated ``InplaceFunction`` (an ``inplace`` flag) and ``NestedIOFunction`` (instance methods
``forward_extended`` / ``backward_extended`` over nested inputs, run as a ``Function`` per call) sit at the end.
"""

import functools
import warnings
import weakref

import numpy as np

from kernels import opcodes as K

from .. import forward
from ..engine import FREED_MESSAGE
from ..forward import _fw
from ..grad_mode import _grad_state, no_grad
from ..ops import Op, _operand, _tape_for, zeros_like
from ..saved import result_guards, unsaved_inputs
from ..tensor import Tensor, _new, wrap_array
from .graph import current_saved_tensors_hooks


class FunctionCtx:
    """The ``ctx`` of a custom Function: ``save_for_backward``, ``saved_tensors``, ``needs_input_grad``."""

    def __init__(self):
        self._saved = ()
        self._saved_versions = None  # the saved tensors' versions when forward returned (checked on access)
        self._result_guards = ()  # (output, version) of the results torch's node saves (ad/saved.py)
        self._unchecked = ()  # indices of saved inputs torch's node does not save (checked only when read)
        self._freed = False
        self._materialize = True
        self._non_differentiable = set()
        self._dirty = ()
        self._recording = False  # (set by apply before forward: whether the call will be recorded)
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument is not a Tensor")
        hooks = current_saved_tensors_hooks()  # ad.autograd.graph.saved_tensors_hooks (issue 15)
        if hooks is not None:
            self._unpack = hooks[1]
            tensors = tuple(None if t is None else hooks[0](t) for t in tensors)
        self._saved = tensors

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        for i, (t, v) in enumerate(self._result_guards):
            if t._version != v:
                raise RuntimeError(_modified_saved_message(t, i, v, "the operation saved its result for backward"))
        versions = self._saved_versions
        if versions is not None:
            unchecked = self._unchecked
            for i, (t, v) in enumerate(zip(self._saved, versions)):
                if t is not None and t._version != v and i not in unchecked:
                    raise RuntimeError(_modified_saved_message(t, i, v))
        unpack = self.__dict__.get("_unpack")
        if unpack is not None:
            return tuple(None if t is None else unpack(t) for t in self._saved)
        return self._saved

    def check_unsaved(self):
        """Raise torch's error if a saved input that torch's node does not save (``_unchecked``: ad's primitive
        keeps it to recompute its results, in forward over reverse or create_graph) was modified since: called
        where the backward reads its values."""
        for i in self._unchecked:
            t, v = self._saved[i], self._saved_versions[i]
            if t._version != v:
                raise RuntimeError(_modified_saved_message(t, i, v, "the operation saved it to recompute its result"))

    def _snapshot_saved(self, raw_outputs, outputs):
        """After forward: a saved output becomes the recorded output (so double backward through it reaches
        this call, as torch's), and every saved tensor's version is noted. Tensors packed by
        ``saved_tensors_hooks`` are whatever the pack hook made of them: left as they are."""
        if self._saved and self.__dict__.get("_unpack") is None:
            swap = {id(r): o for r, o in zip(raw_outputs, outputs) if r is not o}
            if swap:
                self._saved = tuple(swap.get(id(t), t) if t is not None else None for t in self._saved)
            self._saved_versions = tuple(t._version if t is not None else 0 for t in self._saved)
        elif self._saved:
            # ad's own packings (allow_mutation_on_saved_tensors: ``rebind``) hold the tensor: the recorded output
            swap = {id(r): o for r, o in zip(raw_outputs, outputs) if r is not o}
            for packed in self._saved if swap else ():
                rebind = getattr(packed, "rebind", None)
                if rebind is not None:
                    rebind(swap)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    def mark_dirty(self, *tensors):
        """Declare input tensors that forward modified in place (and returns): they become the outputs.

        A leaf that requires grad cannot be modified in place when the call is recorded: torch's error, raised
        here already, so that a forward that declares before it writes leaves the leaf unchanged."""
        if self._recording and any(isinstance(t, Tensor) and t._rg and t._op is None for t in tensors):
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        self._dirty = tensors


def _modified_saved_message(t, index, version, saver="the custom Function saved it with save_for_backward"):
    kind = "DoubleTensor" if t.dtype == np.float64 else "FloatTensor"
    what = f"output 0 of {t.grad_fn.name()}" if t._op is not None else "a leaf or detached tensor"
    return (
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[torch.{kind} {list(t.shape)}], which is {what} (saved tensor {index}), is at version {t._version}; "
        f"expected version {version} instead. Hint: {saver} and an in-place operation (add_, mul_, x[i] = v, "
        "... also under no_grad) changed it before backward."
    )


class _Record:
    """One call of a custom Function on the tape: its ctx, outputs and the inputs' arena slots."""

    __slots__ = ("cls", "ctx", "_output_refs", "raw_outputs", "inputs", "slots", "__weakref__")

    def __init__(self, cls, ctx, inputs):
        self.cls = cls
        self.ctx = ctx
        self.inputs = inputs  # the forward's arguments (tensors and others), in order
        self.outputs = []  # the recorded output tensors (None where an output is not differentiable)
        self.raw_outputs = []  # what forward returned, position by position
        self.slots = {}  # index of a tensor input requiring grad -> (offset, row) on the outputs' tape

    @property
    def outputs(self):
        """The recorded outputs still alive (None where one is not differentiable or was dropped). Held weakly:
        each output holds its record (``Tensor._ctx``), and strong references back would make every graph with
        a custom Function a reference cycle, whose arena and buffers only the garbage collector frees (a
        training loop then maps fresh memory each step). A dropped output's cotangent is zero, as torch's."""
        return [None if r is None else r() for r in self._output_refs]

    @outputs.setter
    def outputs(self, tensors):
        self._output_refs = [None if t is None else weakref.ref(t) for t in tensors]

    def call_backward(self, grads):
        result = _backward_fn(self.cls)(self.ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n_in = len(self.inputs)
        if len(result) < n_in or any(r is not None for r in result[n_in:]):
            raise RuntimeError(
                f"function {self.cls.__name__}Backward returned an incorrect number of gradients (expected "
                f"{n_in}, got {len(result)})"
            )
        checked = []
        for i, (inp, g) in enumerate(zip(self.inputs, result)):
            if g is not None and not isinstance(g, Tensor):
                raise RuntimeError(f"expected Variable or None (got {type(g).__name__})")
            if g is not None and not isinstance(inp, Tensor):
                raise RuntimeError(
                    f"function {self.cls.__name__}Backward returned a gradient different than None at position "
                    f"{i + 1}, but the corresponding forward input was not a Variable"
                )
            if g is None or not inp._rg:
                checked.append(None)
                continue
            if g.shape != inp.shape:
                raise RuntimeError(
                    f"Function {self.cls.__name__}Backward returned an invalid gradient at index {i} - got "
                    f"{list(g.shape)} but expected shape compatible with {list(inp.shape)}"
                )
            checked.append(g)
        return checked

    def retarget(self, new, old):
        """Output ``new`` was modified in place (methods._rebase): the call's output is now ``old``."""
        self.outputs = [old if o is new else o for o in self.outputs]

    def output_grads(self, cot_of):
        """The cotangent of each forward output (zeros for unreached or non-differentiable tensor outputs
        unless ``set_materialize_grads(False)``; None for outputs that are not tensors)."""
        grads = []
        for out, raw in zip(self.outputs, self.raw_outputs):
            g = cot_of(out) if out is not None else None
            if g is None and self.ctx._materialize and isinstance(raw, Tensor):
                g = wrap_array(np.zeros(raw.shape, raw.dtype)) if raw._dev is None else zeros_like(raw.detach())
            grads.append(g)
        return grads

    def kernel_backward(self, s):
        """Called by the compiled sweep (``engine._sweep_tape``) at each output row it reaches; runs once."""
        if any(r is self for r in s.functions):
            return

        def cot_of(out):
            if out._tape is not s.tape or not s.live[out._off]:
                return None
            n = out._data.size
            cot = s.cot[out._off : out._off + n].reshape(out.shape)
            # a backward that only reads its cotangent and keeps no reference to it (the library's own rows,
            # ``_backward_borrows_cotangent``) is lent the sweep's buffer instead of a copy
            return wrap_array(cot if getattr(self.cls, "_backward_borrows_cotangent", False) else cot.copy())

        if not any(out is not None and out._tape is s.tape and s.live[out._off] for out in self.outputs):
            return  # no output reached: this call is not on the graph being differentiated
        grads = self.output_grads(cot_of)
        with no_grad():
            in_grads = self.call_backward(grads)
        for i, g in enumerate(in_grads):
            if g is None:
                continue
            off, row = self.slots[i]
            n = g._data.size
            if s.live[off]:
                s.cot[off : off + n] += g._data.reshape(-1)
            else:  # the first cotangent of this region: stored (it may hold garbage, see engine._TapeSweep)
                s.cot[off : off + n] = g._data.reshape(-1)
                s.live[off] = 1
            if row < s.lowest:
                s.lowest = row
        s.functions.append(self)


def _function_vjp(g, out, inputs, rec):
    raise RuntimeError("custom Function outputs are differentiated by differentiable_sweep.graph_sweep")


class Function:
    """Base class of custom differentiable operations (torch's ``autograd.Function``).

    Example:
        >>> class Cube(ad.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x ** 3
        ...     @staticmethod
        ...     def backward(ctx, g):
        ...         (x,) = ctx.saved_tensors
        ...         return 3 * x ** 2 * g
        >>> x = ad.tensor(2.0, requires_grad=True)
        >>> Cube.apply(x).backward(); x.grad
        tensor(12.)
    """

    def __init__(self, *args, **kwargs):
        warnings.warn(
            f"{self.__class__} should not be instantiated. Methods on autograd functions are all static, so you "
            "should invoke them on the class itself. Instantiating an autograd function will raise an error in a "
            "future version of PyTorch.",
            DeprecationWarning,
            stacklevel=2,
        )

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. Please use new-style autograd "
            "function with static forward method. (Example: https://pytorch.org/docs/stable/autograd.html#torch."
            "autograd.Function)"
        )

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Override to use the style where ``forward`` takes no ctx: called after forward with its inputs
        (a tuple) and output."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        if (
            getattr(cls, "_grad_fn_name", None) is not None
            and _cuda_operand(args) is not None
            and not _forward_on_device(cls)
        ):
            return _host_round_trip(cls, args, kwargs)
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        ctx._recording = _grad_state.enabled and any(ctx.needs_input_grad)
        levels = forward.visible_levels_of(*[a for a in args if isinstance(a, Tensor)]) if _fw.levels else []
        # the inputs' tangents as forward receives them (an input forward writes in place, mark_dirty, loses its
        # tangent in the hidden write; torch's jvp gets the tangent from before the call)
        tangents = {k: _input_tangents(args, k) for k in levels}
        with no_grad(), forward.hide(levels):
            if cls.setup_context is Function.setup_context:
                raw = cls.forward(ctx, *args, **kwargs)
            else:  # torch's separate style: forward(*args), then setup_context(ctx, inputs, output)
                raw = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, raw)
        single = not isinstance(raw, tuple)
        outputs = [raw] if single else list(raw)
        raw = list(outputs)
        if _grad_state.enabled and any(ctx.needs_input_grad):
            outputs = _record(cls, ctx, args, outputs)
            ctx._result_guards = result_guards(cls, outputs)
        ctx._snapshot_saved(raw, outputs)
        if ctx._saved_versions is not None and getattr(cls, "_grad_fn_name", None) is not None:
            ctx._unchecked = unsaved_inputs(cls, ctx._saved, args)
        if levels:
            _forward_tangents(cls, ctx, args, outputs, tangents)
            from ..views import sync_tangents

            for d in ctx._dirty:  # a dirty view's new tangent reaches its base and the base's views (as methods')
                if isinstance(d, Tensor) and d._vbase is not None:
                    sync_tangents(d)
        return outputs[0] if single else tuple(outputs)


def _record(cls, ctx, args, outputs):
    rec = _Record(cls, ctx, args)
    rec.raw_outputs = list(outputs)
    op = _op_for(cls)
    diff = [isinstance(o, Tensor) and o.dtype.kind == "f" and id(o) not in ctx._non_differentiable for o in outputs]
    if not any(diff):
        return outputs
    dt = next(o.dtype for o, d in zip(outputs, diff) if d)
    total = sum(o._data.size + 1 for o, d in zip(outputs, diff) if d)
    newest = max(
        (a for a in args if isinstance(a, Tensor) and a._tape is not None), key=lambda a: a._tape.id, default=None
    )
    dev = next((o._dev for o, d in zip(outputs, diff) if d and o._dev is not None), None)
    need = total + sum(a._data.size + 1 for a in args if isinstance(a, Tensor))
    if dev is not None:  # CUDA outputs: the call's rows go on the device tape (ad/cuda/tape.py)
        from ..cuda import tape as device_tape

        if any(d and o._dev != dev for o, d in zip(outputs, diff)):  # (one tape per device: no order between)
            raise RuntimeError("a custom Function returned differentiable outputs on different devices")
        tape = device_tape.tape_for(dt, need, dev, [a for a in args if isinstance(a, Tensor)])
        operand = device_tape.operand
    else:
        tape = _tape_for(dt, need, newest)
        operand = _operand
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._rg:
            rec.slots[i] = operand(tape, a)
    recorded = []
    rows = []
    for o, d in zip(outputs, diff):
        if not d or o.dtype != dt:
            recorded.append(o)
            rec._output_refs.append(None)
            continue
        n = o._data.size
        off = tape.alloc(n)
        if dev is not None:
            view = device_tape.store_view(tape, off, o)
        else:
            view = tape.view(off, o.shape, n)
            np.copyto(view, o._data)
        row = tape.record(K.PYTHON, off, -1, -1, n)
        rows.append(row)
        t = _new(Tensor)
        t._data = view
        t._dev = o._dev
        t._rg = True
        t._op = op
        t._inputs = tuple(a for a in args if isinstance(a, Tensor))
        t._ctx = rec
        t._tape = tape
        t._off = off
        t._row = row
        recorded.append(t)
        rec._output_refs.append(weakref.ref(t))
    # the sweep stops at every output's row and backward runs once, at the first (highest) reached: a sweep
    # that starts at the last output's row runs it there, after the hooks of every output (the consumers of all
    # outputs come later on the tape, so the cotangents are complete); a sweep seeded at an earlier output
    # starts below the later ones' rows and runs it at that output's row
    for row in rows:
        tape.register_hook_row(row, rec)
    for d in ctx._dirty:
        recorded = _take_over(d, rec, recorded)
    node = None
    for t in rec.outputs:  # one grad_fn for all outputs, as torch's
        if t is not None:
            node = node or t.grad_fn
            t._node = node
    # keep the record alive as long as any output is (the tape holds it weakly)
    return recorded


def _take_over(d, rec, recorded):
    """Input ``d`` was modified in place by forward (``mark_dirty``): the object ``d`` becomes the recorded
    output, and its previous node lives on in a new object that the call's inputs refer to (as
    methods._rebase does for in-place ops)."""
    from ..forward import reregister
    from ..methods import _retarget
    from ..views import _KEEP, _old_node, _regenerate_views, _stop_retaining_before

    out = next((t for t, raw in zip(recorded, rec.raw_outputs) if raw is d and t is not d), None)
    if out is None:
        return recorded
    if d._rg and d._op is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if d._vbase is not None:
        return _take_over_view(d, out, rec, recorded)
    old = _old_node(d)
    _retarget(d, old)
    reregister(old)
    rec.inputs = tuple(old if a is d else a for a in rec.inputs)
    out._inputs = tuple(old if a is d else a for a in out._inputs)
    for t in rec.outputs:
        if t is not None and t is not out:
            t._inputs = out._inputs
    keep = {k: d.__dict__[k] for k in _KEEP if k in d.__dict__}  # d's storage, version counter and views
    d.__dict__.clear()
    d.__dict__.update(out.__dict__)
    d.__dict__.update(keep)
    d._prev = old
    rec.outputs = [d if t is out else t for t in rec.outputs]
    for refs in d._tape.hook_rows.values():  # (the record is registered, not the output tensor)
        refs[:] = [weakref.ref(d) if r() is out else r for r in refs]
    if old._retains_grad:  # retain_grad follows the tensor to its new node, as after an in-place op (views.rebase)
        old._retains_grad = False
        _stop_retaining_before(old)
        d.retain_grad()
    _regenerate_views(d)  # (as after any in-place op on a base: its views read the call's output)
    return [d if t is out else t for t in recorded]


def _take_over_view(d, out, rec, recorded):
    """A dirty input that is a view: as torch's rebase of a view's history, its base takes the call's output in
    the view's place (``CopySlices``: views.rebase, which raises torch's errors for a view of a leaf, of a
    multi-output op ...), and ``d`` becomes a view of the base's new node; the call's inputs keep ``d``'s node
    from before the call (``d._prev``). The forward's own write already counted in the version."""
    from ..tensor import counter
    from ..views import rebase

    version = d._version
    rebase(d, lambda snapshot: out)
    counter(d).version = version
    old = d._prev
    rec.inputs = tuple(old if a is d else a for a in rec.inputs)
    for t in rec.outputs:
        if t is not None:
            t._inputs = tuple(old if a is d else a for a in t._inputs)
    return [d if t is out else t for t in recorded]


_OPS_BY_CLASS = {}


def _cuda_operand(args):
    for a in args:
        if isinstance(a, Tensor) and a._dev is not None:
            return a
    return None


def _forward_on_device(cls):
    """Whether ad's primitive ``cls`` computes its forward on CUDA operands itself: ``_cuda_forward`` is True
    (a device kernel), or a function saying whether it can now (cuSOLVER when CuPy is there: ad/cuda/solver.py)."""
    on_device = getattr(cls, "_cuda_forward", False)
    return on_device() if callable(on_device) else on_device


def _host_round_trip(cls, args, kwargs):
    """ad's own numpy-forward primitives (``_grad_fn_name``: scans, special functions, linear algebra, conv)
    on CUDA operands: the documented host round trip of issue 10 (``host_round_trip``)."""
    return host_round_trip(cls.apply, args, kwargs)


def host_round_trip(fn, args, kwargs):
    """``fn(*args, **kwargs)`` with CUDA operands, through the host: the CUDA tensors among the arguments are
    copied to the host (``.cpu()``), ``fn`` runs on the CPU, and its tensor outputs (alone, in a tuple or a
    named tuple) are copied back to the operands' device (``.to``); both copies are recorded
    (``ToCopyBackward0``), so gradients, ``create_graph`` and forward-mode tangents go through the same copies
    (``graph_sweep`` sweeps the mixed graph). Exact, and never silent: it costs two transfers per call
    where a device kernel would cost none. Operands on two CUDA devices raise torch's error."""
    dev = _cuda_operand((*args, *kwargs.values())).device
    for a in (*args, *kwargs.values()):
        if isinstance(a, Tensor) and a._dev is not None and a.device != dev:
            from ..cuda.ops import device_mismatch

            raise device_mismatch(dev, a.device)

    def host(a):
        return a.cpu() if isinstance(a, Tensor) and a._dev is not None else a

    out = fn(*[host(a) for a in args], **{k: host(v) for k, v in kwargs.items()})
    if isinstance(out, tuple):
        back = [o.to(dev) if isinstance(o, Tensor) else o for o in out]
        return type(out)(*back) if hasattr(out, "_fields") else tuple(back)
    return out.to(dev) if isinstance(out, Tensor) else out


def _op_for(cls):
    op = _OPS_BY_CLASS.get(cls)
    if op is None:
        # ad's own Python-swept primitives name their node as torch does (``_grad_fn_name = "CumsumBackward0"``)
        name = getattr(cls, "_grad_fn_name", None) or f"{cls.__name__}Backward"
        op = Op(f"function:{cls.__qualname__}", K.PYTHON, name, _function_vjp, register=False)
        _OPS_BY_CLASS[cls] = op
    return op


def _input_tangents(args, k):
    tangents = []
    for a in args:
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            t = forward.tangent_of(a, k)
            if t is None:  # (zeros on the input's device)
                t = wrap_array(np.zeros(a.shape, a.dtype)) if a._dev is None else zeros_like(a.detach())
            tangents.append(t)
        else:  # as torch: non-float tensors and other arguments have no tangent
            tangents.append(None)
    return tangents


def _forward_tangents(cls, ctx, args, outputs, tangents_by_level):
    if getattr(cls, "jvp", None) is None or cls.jvp is Function.jvp:
        raise NotImplementedError(
            "You must implement the jvp function for custom autograd.Function to use it with forward mode AD."
        )
    for k, tangents in tangents_by_level.items():
        # hide this level only (as forward.apply_dual does): the inputs stay dual at the other levels, so a jvp
        # written with ad ops gives a tangent that is itself dual there (nested levels: forward over forward)
        with forward.hide((k,)):
            nb = forward.batch_size(k)
            res = cls.jvp(ctx, *tangents) if nb is None else _batched_jvp(cls, ctx, args, tangents, outputs, nb)
        res = res if isinstance(res, tuple) else (res,)
        for i, (o, t) in enumerate(zip(outputs, res)):
            if t is None:
                continue
            if not isinstance(o, Tensor) or o.dtype.kind != "f" or id(o) in ctx._non_differentiable:
                raise RuntimeError(
                    f"Function's jvp returned a gradient at position {i}, but  the corresponding forward output is "
                    "not a differentiable Tensor.You should return None at that position instead."
                )
            forward.set_tangent(o, k, t)


Function.jvp = None


def _batched_jvp(cls, ctx, args, tangents, outputs, nb):
    """A batched level (``ad/forward.py``): the user's ``jvp`` takes one tangent per input, so it runs once per
    batch entry on the slices ``tangent[b]`` (zeros for an input without a tangent) and each output's tangents
    are stacked."""
    from .. import ops

    per_entry = []
    for b in range(nb):
        sliced = [
            None if t is None else (ops.getitem(t, b) if t.ndim == a.ndim + 1 else t) for a, t in zip(args, tangents)
        ]
        res = cls.jvp(ctx, *sliced)
        per_entry.append(res if isinstance(res, tuple) else (res,))
    stacked = []
    for i in range(len(per_entry[0]) if per_entry else 0):
        column = [r[i] for r in per_entry]
        if all(c is None for c in column):
            stacked.append(None)
            continue
        o = outputs[i] if i < len(outputs) else None
        stacked.append(ops.stack([c if c is not None else ops.zeros_like(o) for c in column], 0))
    return tuple(stacked)


def _backward_fn(cls):
    """The user's backward: ``backward`` or its alias ``vjp`` (defining both is an error, as in torch)."""
    has_backward = cls.backward is not Function.backward
    has_vjp = cls.vjp is not Function.vjp and cls.vjp is not cls.backward
    if has_backward and has_vjp:
        raise RuntimeError(
            "Implementing both 'backward' and 'vjp' for a custom Function is not allowed. You should only "
            "implement one of them."
        )
    return cls.vjp if has_vjp else cls.backward


_ONCE_MESSAGE = "trying to differentiate twice a function that was marked with @once_differentiable"


class _DelayedError(Function):
    """Wraps the results of a ``once_differentiable`` backward run under ``create_graph``: differentiating them
    raises (torch's DelayedError node)."""

    _grad_fn_name = "DelayedError"

    @staticmethod
    def forward(ctx, result, *deps):
        return result.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_ONCE_MESSAGE)


def once_differentiable(fn):
    """Decorator for a custom Function's ``backward`` that is not itself differentiable: it runs under
    ``no_grad`` on detached gradients; under ``create_graph=True`` its results can be used but not
    differentiated (doing so raises, as in torch)."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            plain = [a.detach() if isinstance(a, Tensor) else a for a in args]
            outputs = fn(ctx, *plain)
        if not _grad_state.enabled:
            return outputs
        deps = [a for a in args if isinstance(a, Tensor) and a._rg]
        if not deps:
            return outputs
        single = not isinstance(outputs, tuple)
        wrapped = [
            _DelayedError.apply(o, *deps) if isinstance(o, Tensor) and o.dtype.kind == "f" else o
            for o in ((outputs,) if single else outputs)
        ]
        return wrapped[0] if single else tuple(wrapped)

    return wrapper


# ---------------------------------------------------------------------------------------------------------
# deprecated public classes kept by torch: InplaceFunction and NestedIOFunction


class InplaceFunction(Function):
    """A ``Function`` whose instances carry an ``inplace`` flag (deprecated in torch, kept public): the class is
    used as any ``Function`` (``apply``); instantiating it warns, as every ``Function`` does."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace


def _flatten(obj, leaves):
    """Append the tensors (and other leaves) of nested tuples/lists ``obj`` to ``leaves``; return its structure."""
    if isinstance(obj, (tuple, list)):
        return (type(obj), [_flatten(o, leaves) for o in obj])
    leaves.append(obj)
    return None


def _unflatten(leaves, structure, at=None):
    """Rebuild the nested tuples/lists of ``structure`` from the flat ``leaves``."""
    at = [0] if at is None else at
    if structure is None:
        value = leaves[at[0]]
        at[0] += 1
        return value
    kind, parts = structure
    return kind(_unflatten(leaves, part, at) for part in parts)


class NestedIOFunction(Function):
    """The legacy custom-op style of nested inputs and outputs (deprecated in torch, kept public): a subclass
    defines ``forward_extended(*inputs)`` and ``backward_extended(*grad_outputs)`` as instance methods, whose
    arguments and results may be nested tuples/lists of tensors, and is called as ``instance(*inputs)``. The
    instance stands for the ctx: ``save_for_backward``, ``saved_tensors``, ``mark_dirty``,
    ``mark_non_differentiable`` and ``needs_input_grad`` reach the call's ``FunctionCtx``. Each call runs as a
    ``Function`` of the subclass's name (``grad_fn`` ``<Name>Backward``), so gradients, hooks, double backward
    and the compiled sweep treat it as any other custom Function.

    (torch 2.13 still exports the class, but calling an instance fails there with an AttributeError: ad runs it
    as the older releases documented.)

    Example:
        >>> class MulAdd(ad.autograd.function.NestedIOFunction):
        ...     def forward_extended(self, x, y):
        ...         self.save_for_backward(x, y)
        ...         return x * y, x + y
        ...     def backward_extended(self, g_mul, g_add):
        ...         x, y = self.saved_tensors
        ...         return g_mul * y + g_add, g_mul * x + g_add
        >>> prod, total = MulAdd()(x, y)
    """

    def __call__(self, *inputs):
        flat = []
        in_structure = _flatten(inputs, flat)
        instance = self
        self._nested_input = inputs

        def forward(ctx, *flat_inputs):
            instance._ctx = ctx
            outputs = instance.forward_extended(*_unflatten(flat_inputs, in_structure))
            instance._nested_output = outputs
            flat_outputs = []
            instance._out_structure = _flatten(outputs, flat_outputs)
            return tuple(flat_outputs)

        def backward(ctx, *grads):
            instance._ctx = ctx
            nested = _unflatten(grads, instance._out_structure)
            result = instance.backward_extended(*(nested if isinstance(nested, tuple) else (nested,)))
            flat_grads = []
            _flatten(result, flat_grads)
            return tuple(flat_grads)

        methods = {"forward": staticmethod(forward), "backward": staticmethod(backward)}
        call = type(type(self).__name__, (Function,), methods)  # (its name gives the grad_fn's: <Name>Backward)
        flat_outputs = call.apply(*flat)
        if not isinstance(flat_outputs, tuple):
            flat_outputs = (flat_outputs,)
        return _unflatten(list(flat_outputs), self._out_structure)

    @classmethod
    def apply(cls, *args, **kwargs):
        raise AttributeError(
            f"{cls.__name__} is a NestedIOFunction: call an instance, {cls.__name__}()(*inputs), "
            f"not {cls.__name__}.apply"
        )

    def forward(self, *args):
        """The flat form of ``forward_extended`` (torch's legacy entry): ``forward_extended`` with ``args``."""
        return self.forward_extended(*args)

    def backward(self, *grads):
        """The flat form of ``backward_extended``."""
        return self.backward_extended(*grads)

    def forward_extended(self, *inputs):
        raise NotImplementedError("NestedIOFunction subclasses must implement forward_extended")

    def backward_extended(self, *grad_outputs):
        raise NotImplementedError("NestedIOFunction subclasses must implement backward_extended")

    def _call_ctx(self):
        ctx = self.__dict__.get("_ctx")
        if ctx is None:
            raise RuntimeError("the ctx methods of a NestedIOFunction are available only while it is called")
        return ctx

    def save_for_backward(self, *tensors):
        self._call_ctx().save_for_backward(*tensors)

    @property
    def saved_tensors(self):
        return self._call_ctx().saved_tensors

    def mark_dirty(self, *tensors):
        self._call_ctx().mark_dirty(*tensors)

    def mark_non_differentiable(self, *tensors):
        self._call_ctx().mark_non_differentiable(*tensors)

    @property
    def needs_input_grad(self):
        return self._call_ctx().needs_input_grad
