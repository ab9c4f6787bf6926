"""``ad.compile``: record a step once, replay its tape in one compiled forward kernel afterwards.

``ad`` already records every differentiable op as a row of a tape (``ad/tape.py``): opcodes and arena
offsets, with no Python objects per op the kernels need. A compiled function keeps, per *signature* of its
arguments, the tape its first calls recorded (a ``_Template``) and afterwards, instead of running ``fn``,
builds a fresh tape with the same layout: it copies the current values of the arguments and of every tensor
the step read from outside (parameters: an optimizer's in-place update is seen) into a new value arena,
recomputes every row forwards in one ``@njit`` call (``kernels/replay.py``: consecutive elementwise rows of
the same size fused into one loop) and returns ordinary tensors on that tape. ``backward()``, ``grad``,
hooks, ``retain_graph`` and ``create_graph`` then run exactly as after an eager call, since the tape, the
Python graph (``_inputs``, ``_ctx``: rebuilt from the template) and the imports are what eager would have
made.

Backwards inside ``fn`` (``jax.jit(jax.grad(f))``, a compiled Hessian-vector product, a step that calls
``loss.backward()``; ``ad/compile_program.py``): ``autograd.grad(..., create_graph=True)`` records its
differentiable sweep as ordinary rows of the template (so a double backward's first-order rows replay with
the forward, in the same kernel calls); a backward without ``create_graph`` (``grad``, ``backward``,
``Tensor.backward``) splits the recording into phases, each replayed as a template, and the replay runs the
same backward on the replayed tensors (the compiled kernel sweep: ``.grad`` accumulation, hooks, freeing and
errors are eager's). Ops after it that read its results replay in the next phase. Forward over reverse (a
Hessian-vector product as ``jax.jit(jax.jvp(jax.grad(f)))``: a dual level inside ``fn``, ``make_dual`` of
tensors that require grad, one ``grad`` of a real scalar inside the level, ``unpack_dual`` of its gradients;
``ad/compile_dual.py``) replays too: the phase keeps the primal rows only, and the ``grad`` becomes an event
that runs the tangent forward pass and the tangent reverse sweep on the replayed tape. Not replayed (the
signature runs eagerly, with a warning that says why): ``backward(create_graph=True)``,
``grad(create_graph=True, retain_graph=False)`` or with ``is_grads_batched``, a ``create_graph`` sweep through
hooks or ``retain_grad``, any other use of forward-mode AD inside ``fn`` (nested or batched levels, a tangent of
anything but such a gradient read, a level entered outside ``fn``, ops without compiled second-order rules:
``compile_dual``'s docstring lists them), and, as everywhere, a tensor computed without recording (no operand
requires grad: ``0.5 * g`` of a gradient ``g``) that a recorded op reads.

Where to read: this module (the cache of signatures, the recording calls and the eager fallback),
``ad/compile_template.py`` (what a recording leaves: the ``_Template`` and its references),
``ad/compile_replay.py`` (a later call: the arena filled, the kernel run, the result tensors rebuilt),
``ad/compile_program.py`` (backwards inside ``fn``: phases and the backward calls between them),
``ad/compile_dual.py`` (forward over reverse inside ``fn``: a dual level's primal rows and its ``grad``),
``ad/compile_fused.py`` and ``ad/compile_backward.py`` (the replayed step's backward: fused with the forward for
small rows, a program worked out once for steps with big rows).

Data structures:

- signature (the cache key): for each tensor argument (found in nested tuples, lists and dicts) its shape,
  dtype, device and ``requires_grad``, the values of the other arguments (hashable ones; an unhashable one
  runs eagerly), and the grad mode.
- ``_Entry``: per signature, the confirmed template, the recording awaiting confirmation, or why it is eager.

Correct by construction: a signature is replayed only after two recording calls produced the same rows
and read the same outside tensors (so a tensor that ``fn`` computes without recording, from its inputs, is
never reused stale), and only if nothing while recording read a tensor's value into Python (``item``,
``bool``, ``numpy``, ``tolist``, ``__array__``, boolean-mask indices, data-dependent shapes, random draws), wrote
into a tensor in place, recorded an op the replay kernel does not compute, or spread over several tapes (other
than the phases of a backward inside ``fn``).
Otherwise that signature runs eagerly from then on, after one ``UserWarning`` that says why (and, for a
value read, which line of ``fn``). Python side effects of ``fn`` (printing, appending to a list) happen on
the recording calls only, as with ``torch.compile`` and ``jax.jit``; rebinding a global or captured name
to a new tensor after compilation is not seen (in-place updates are).
"""

import functools
import operator
import os
import sys
import warnings

from . import compile_dual, compile_program, observe
from . import tape as _tape
from .compile_program import Program
from .compile_replay import _EAGER, _replay
from .compile_template import _build, _root, _Unsupported
from .forward import _fw
from .forward import tangent_of as _fw_tangent
from .grad_mode import _grad_state
from .tensor import Tensor

CACHE_SIZE_LIMIT = 8  # signatures per compiled function (torch._dynamo.config.cache_size_limit)
_AD_DIR = os.path.dirname(os.path.abspath(__file__))
_KERNELS_DIR = os.path.join(os.path.dirname(_AD_DIR), "kernels")


def compile(fn=None, *, fullgraph=False, dynamic=None, backend=None, mode=None, options=None, disable=False):  # noqa: A001
    """Compile ``fn`` (torch's ``torch.compile`` signature; also a decorator, with or without arguments).

    The first calls with a given signature (shapes, dtypes, devices and ``requires_grad`` of the tensor
    arguments, values of the others, grad mode) run ``fn`` eagerly and record its tape; later calls replay
    that tape in one compiled kernel and return ordinary tensors whose ``backward()`` / ``autograd.grad``
    behave as after an eager call. ``fn`` must be a function of its arguments and of tensors it reads
    from outside (parameters, whose in-place updates are seen). Python side effects of ``fn`` (printing,
    appending to lists, registering hooks) happen only on the recording calls, as with ``torch.compile``
    and ``jax.jit``. Anything that reads a tensor's value into Python while recording (``item()``,
    ``bool()``, ``numpy()``, boolean-mask indices, data-dependent shapes, random draws), an in-place write or an
    op the replay cannot compute makes that signature run eagerly, with one warning naming the reason.
    After ``CACHE_SIZE_LIMIT`` (8) signatures, new ones run eagerly, with a warning. ``fn`` may
    differentiate inside (``autograd.grad``, with or without ``create_graph``; ``loss.backward()``;
    ``functional.jacobian``; ``grad`` inside a ``forward_ad`` dual level): jit of grad, a compiled Hessian-vector
    product (double backward or forward over reverse) or training step (see the module docstring for what
    replays).

    ``fullgraph``, ``dynamic``, ``backend``, ``mode`` and ``options`` are accepted for torch compatibility
    and ignored; ``disable=True`` returns ``fn`` itself. A module gives an ``OptimizedModule``, as torch's (the
    original as ``_orig_mod``, its calls compiled, one recording per training mode:
    ``ad/nn/modules/module_extras.py``).

    Example:
        >>> w = ad.tensor([1.0, 2.0], requires_grad=True)
        >>> step = ad.compile(lambda x: (ad.tanh(x * w)).sum())
        >>> for _ in range(3):
        ...     step(ad.tensor([0.5, 0.25])).backward()
        >>> w.grad.shape
        (2,)
    """
    if fn is None:
        return lambda f: compile(
            f, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode, options=options, disable=disable
        )
    if not callable(fn):
        raise RuntimeError(f"compile(): fn must be callable, got {type(fn).__name__}")
    if disable:
        return fn
    from .nn.modules.module import Module  # (ad.nn imports this module)

    if isinstance(fn, Module):  # ``model = torch.compile(model)``: a module again, as torch's
        from .nn.modules.module_extras import OptimizedModule

        return OptimizedModule(fn)
    return CompiledFunction(fn)


class _Entry:
    """One signature: its template once confirmed, the recording awaiting confirmation, or why it is eager."""

    __slots__ = ("template", "pending", "eager", "hooked")

    def __init__(self):
        self.template = None
        self.pending = None
        self.eager = None  # the reason, once this signature runs eagerly for good
        # the leaves whose gradients a recorded differentiable sweep returns (an argument's index, or the tensor
        # from outside): the ops of their hooks would be rows of the template, so a call where one has hooks
        # (registered after the recording) runs eagerly
        self.hooked = ()


class CompiledFunction:
    """What ``ad.compile(fn)`` returns: call it as ``fn``."""

    def __init__(self, fn):
        self.fn = fn
        self.cache = {}
        self.warned_limit = False
        self.warned_unhashable = False
        self.list_parts = {}  # ``_flatten``'s memo of the key parts of lists of alike tensors
        self.last = None  # ``_LastCall``: the last call's arguments, when ``_same_call`` can recognize them
        functools.update_wrapper(self, fn)

    def __get__(self, obj, objtype=None):  # a compiled method binds as the function would
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        fn = self.fn
        if not _grad_state.enabled or _fw.levels or _tape._row_tracer is not None or observe.observer is not None:
            return fn(*args, **kwargs)  # no_grad, forward mode, anomaly mode, inside another recording: eager
        last = self.last
        if last is not None and not kwargs and _same_call(args, last):
            tensors, entry = last.tensors, last.entry  # (the signature is the last call's: no key made)
            if entry.template is not None and entry.eager is None and not (entry.hooked and _hooked(entry, tensors)):
                out = _run(entry.template, tensors)
                if out is not _EAGER:
                    return out
                return fn(*args, **kwargs)
        self.last = None
        tensors = []
        parts = []
        _flatten((args, kwargs), tensors, parts, self.list_parts)
        for t in tensors:
            if t._dev is not None or t._tangents:
                return fn(*args, **kwargs)
        distinct = len(set(map(id, tensors))) == len(tensors)
        if not distinct:  # the same tensor passed twice: part of the program
            first = {}
            parts.append(tuple(first.setdefault(id(t), k) for k, t in enumerate(tensors)))
        key = tuple(parts)
        try:
            entry = self.cache.get(key)
        except TypeError:
            if not self.warned_unhashable:
                self.warned_unhashable = True
                warnings.warn(
                    f"ad.compile: {_name(fn)} got an unhashable non-tensor argument; such calls run eagerly",
                    UserWarning,
                    stacklevel=2,
                )
            return fn(*args, **kwargs)
        if entry is None:
            if len(self.cache) >= CACHE_SIZE_LIMIT:
                if not self.warned_limit:
                    self.warned_limit = True
                    warnings.warn(
                        f"ad.compile: {_name(fn)} hit its cache size limit ({CACHE_SIZE_LIMIT} signatures); calls "
                        "with new signatures run eagerly",
                        UserWarning,
                        stacklevel=2,
                    )
                return fn(*args, **kwargs)
            entry = self.cache[key] = _Entry()
        if entry.eager is not None or (entry.hooked and _hooked(entry, tensors)):
            return fn(*args, **kwargs)
        if entry.template is not None:
            if distinct and not kwargs:
                self.last = _LastCall.of(args, tensors, entry)
            out = _run(entry.template, tensors)
            if out is not _EAGER:
                return out
            return fn(*args, **kwargs)
        return self._record(entry, args, kwargs, tensors)

    def _record(self, entry, args, kwargs, tensors):
        """Run ``fn`` eagerly, recording; the second such recording that matches the first confirms it."""
        rec = _Recorder()
        rng = _default_rng_state()
        _tape.reset_current()  # fn records onto a fresh tape of its own
        first_id = rec.first_id = _tape._next_tape_id()
        observe.observer = rec
        try:
            result = self.fn(*args, **kwargs)
        finally:
            observe.observer = None
        last_id = _tape._next_tape_id()
        if rec.reason is None and _default_rng_state() != rng:
            rec.reason = "a random draw"
        if rec.reason is None and rec.dual is not None and not (rec.dual.exited and rec.dual.event is not None):
            rec.reason = (
                compile_dual.REFUSED + "a dual level inside the function without a grad() inside it, or left open"
            )
        try:
            if any(t._hooks for t in rec.swept_leaves):
                raise _Unsupported("a differentiable sweep inside the function returns a gradient through a hook")
            if rec.steps:  # a backward inside fn: phases around it (ad/compile_program.py)
                template = compile_program.build(result, tensors, rec, last_id - first_id - 1)
            else:
                template = _build(result, tensors, rec, first_id, last_id)
        except _Unsupported as e:
            template = None
            why = str(e)
        _tape.reset_current()  # the template's layout is final: later ops start a new tape
        if template is not None:
            previous = entry.pending
            if previous is None:
                entry.pending = template
                return result
            why = compile_program.differs(previous, template)
            if why is None:
                template.finish()
                position = {id(t): k for k, t in reversed(list(enumerate(tensors)))}
                entry.hooked = tuple({id(t): position.get(id(t), t) for t in rec.swept_leaves}.values())
                entry.template = template
                entry.pending = None
                return result
        entry.eager = why
        entry.pending = None
        warnings.warn(f"ad.compile: {_name(self.fn)} runs eagerly for this signature: {why}", UserWarning, stacklevel=3)
        return result


def _hooked(entry, tensors):
    """Whether a leaf whose gradient a recorded differentiable sweep returns has hooks now (``_Entry.hooked``)."""
    for t in entry.hooked:  # (a loop: a generator costs more than the usual one or two leaves)
        if (tensors[t] if type(t) is int else t)._hooks:
            return True
    return False


def _run(tpl, tensors):
    """Replay a confirmed template: one recorded tape (``_replay``), or phases around backwards (a ``Program``)."""
    return _replay(tpl, tensors) if type(tpl) is not Program else tpl.replay(tensors)


def _name(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


class _LastCall:
    """The arguments of a compiled function's last replayed call, for ``_same_call``: its positional arguments
    (each a tensor or a list or tuple of tensors, with their items), its tensors in ``_flatten``'s order, their
    arrays and grad flags, and the signature's ``_Entry``. A training loop calls with the same parameter list and
    the same argument tensors step after step (or new ones: then the key is made as usual)."""

    __slots__ = ("args", "items", "tensors", "datas", "flags", "entry")

    @staticmethod
    def of(args, tensors, entry):
        """The record of a call, or None where ``_same_call`` could not vouch for its signature (an argument that
        is neither a tensor nor a list or tuple of tensors)."""
        items = []
        for a in args:
            kind = type(a)
            if kind is tuple or kind is list:
                if not all(issubclass(k, Tensor) for k in set(map(type, a))):
                    return None
                items.append(list(a))
            elif isinstance(a, Tensor):
                items.append(None)
            else:
                return None
        last = _LastCall()
        last.args = args
        last.items = items
        last.tensors = tensors
        last.datas = list(map(_DATA, tensors))
        last.flags = list(map(_RG, tensors))
        last.entry = entry
        return last


def _same_call(args, last):
    """Whether positional ``args`` have the signature of ``last``'s: the same argument objects, lists holding the
    same tensors, every tensor with the same array (``p.data = ...`` binds another: seen; an array reshaped in place
    through numpy's ``a.shape = ...`` is not, as in ``_flatten``'s memo), grad flag and no tangent. (No device
    either: ``last``'s arrays were host arrays, and a tensor's device changes only with its array.)"""
    if len(args) != len(last.args) or not all(map(operator.is_, args, last.args)):
        return False
    for a, items in zip(args, last.items):
        if items is not None and (len(a) != len(items) or not all(map(operator.is_, a, items))):
            return False
    tensors = last.tensors
    return (
        all(map(operator.is_, map(_DATA, tensors), last.datas))
        and list(map(_RG, tensors)) == last.flags
        and not any(map(_TANGENTS, tensors))
    )


_SIGNATURE = operator.attrgetter("_data.shape", "_data.dtype", "_dev", "_rg")  # a tensor argument's part of a key
_DATA, _RG, _DEV = operator.attrgetter("_data"), operator.attrgetter("_rg"), operator.attrgetter("_dev")
_TANGENTS = operator.attrgetter("_tangents")


def _flatten(obj, tensors, parts, memo):
    """Append the tensors of ``obj`` (nested tuples, lists, dicts) to ``tensors`` and its signature to ``parts``.

    ``memo``: per list or tuple of tensors (by its place in the arguments), the last call's arrays, grad flags,
    devices, its type and its key parts; when all are the same objects and flags again, the parts are reused
    without reading every shape (``p.data = new`` binds another array: seen; an array reshaped in place through
    numpy's ``a.shape = ...`` is not)."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        parts.append((obj._data.shape, obj._data.dtype, obj._dev, obj._rg))
        return
    kind = type(obj)
    if kind is tuple or kind is list:
        if obj and all(issubclass(k, Tensor) for k in set(map(type, obj))):  # (parameters: C-level passes)
            tensors.extend(obj)
            place = len(parts)
            datas, flags, devices = list(map(_DATA, obj)), list(map(_RG, obj)), list(map(_DEV, obj))
            last = memo.get(place)
            if (
                last is not None
                and len(last[0]) == len(datas)
                and all(map(operator.is_, datas, last[0]))
                and flags == last[1]
                and devices == last[2]
                and last[3] is kind
            ):
                parts.extend(last[4])
                return
            signatures = list(map(_SIGNATURE, obj))
            same = set(signatures)
            if len(same) == 1:  # (all alike: a short key, hashed and compared once per call)
                piece = ((kind, len(obj), same.pop()),)
            else:  # (a model's parameters of several shapes: the memo spares reading them all again)
                piece = ((kind, len(obj)), *signatures)
            parts.extend(piece)
            memo[place] = (datas, flags, devices, kind, piece)
            return
        parts.append((kind, len(obj)))
        for item in obj:
            _flatten(item, tensors, parts, memo)
    elif kind is dict:
        parts.append((dict, tuple(obj)))
        for item in obj.values():
            _flatten(item, tensors, parts, memo)
    else:
        parts.append((kind, obj))


def _default_rng_state():
    from . import creation

    return creation._rng.bit_generator.state


class _Recorder:
    """The observer (``ad/observe.py``) of one recording call."""

    def __init__(self):
        self.reason = None
        self.target_reads = []  # (target, its int64 indices, ignore_index) of each single-row cross_entropy
        self.index_reads = []  # (result, index tensor, dim) of each gather whose index map came from a tensor
        self.shape_maps = []  # results whose index map follows from shapes alone (observe.shape_map)
        self.made = {}  # id of the storage of each tensor a factory made while recording -> that storage
        self.first_id = 0  # the tape id before this recording's first tape
        self.phases = []  # TapeSnapshot of each phase (ad/compile_program.py)
        self.steps = []  # ("p", phase index) and ("e", GradEvent), in recording order
        self.sweeping = False  # inside a backward without create_graph (its .grad accumulation is no write of fn)
        self.swept_leaves = []  # the leaves a differentiable sweep (create_graph) returned gradients for
        self.dual = None  # the dual level entered while recording (ad/compile_dual.py's DualLevel)

    def grad_event(self, kind, body, outputs, inputs, grad_outputs, retain_graph, create_graph, options):
        """``autograd.grad`` (``kind`` "grad") or ``backward`` called inside ``fn``: ``body`` runs it. With
        ``create_graph`` its recorded ops join the phase; without, the phase ends here (ad/compile_program.py).
        Inside a dual level: ``_dual_grad_event``."""
        if _fw.levels:
            return self._dual_grad_event(kind, body, outputs, inputs, grad_outputs, retain_graph, create_graph, options)
        if create_graph:
            if self.reason is None:
                self.reason = _differentiable_sweep_refused(kind, outputs, inputs, retain_graph, options)
            self.swept_leaves.extend(t for t in inputs or () if t._op is None)
            return body(outputs, inputs, grad_outputs, retain_graph, create_graph, *options)
        if self.reason is not None:
            return body(outputs, inputs, grad_outputs, retain_graph, create_graph, *options)
        try:
            seeds = compile_program.seeds_of(grad_outputs)
        except _Unsupported as e:
            self.reason = str(e)
            return body(outputs, inputs, grad_outputs, retain_graph, create_graph, *options)
        compile_program.end_phase(self)
        event = compile_program.GradEvent(kind, outputs, inputs, seeds, retain_graph, options)
        self.sweeping = True
        try:
            results = body(outputs, inputs, grad_outputs, retain_graph, create_graph, *options)
        finally:
            self.sweeping = False
            _tape.reset_current()  # (a hook's recorded ops would start a tape: caught as one tape too many)
        event.results = results
        self.steps.append(("e", event))
        return results

    def _dual_grad_event(self, kind, body, outputs, inputs, grad_outputs, retain_graph, create_graph, options):
        """A backward inside the dual level: the usual ``grad`` of forward over reverse ends the phase with the
        tangent rows left out and becomes an event whose gradients carry tangents (ad/compile_dual.py)."""
        run = lambda: body(outputs, inputs, grad_outputs, retain_graph, create_graph, *options)  # noqa: E731
        if self.reason is None:
            self.reason = compile_dual.refusal(self, kind, outputs, grad_outputs, create_graph, options)
        if self.reason is not None:
            return run()
        dual = self.dual
        compile_program.end_phase(self)
        if self.reason is not None:
            return run()
        if not self.steps or self.steps[-1][0] != "p":
            self.reason = (
                compile_dual.REFUSED + "a grad() inside a dual level of a graph that no op inside the function recorded"
            )
            return run()
        try:
            self.phases[-1] = compile_dual.primal_snapshot(self.phases[-1], outputs, dual)
        except _Unsupported as e:
            self.reason = str(e)
            return run()
        event = compile_program.GradEvent(kind, outputs, inputs, None, retain_graph, options)
        event.duals = list(dual.duals)
        self.sweeping = True
        try:
            results = run()
        finally:
            self.sweeping = False
            _tape.reset_current()
        event.results = results
        event.tangents = [_fw_tangent(g, dual.level) for g in results]
        if any(g is None for g in results):  # (allow_unused: the replay's sweep reaches every input it recorded)
            self.reason = compile_dual.REFUSED + "a grad() inside a dual level with an unused input"
        dual.event = event
        self.steps.append(("e", event))
        return results

    def dual_entered(self, level):
        if self.reason is None:
            if self.dual is not None or level != 0:
                self.reason = (
                    compile_dual.REFUSED + f"several or nested dual levels inside the function at {_user_line()}"
                )
            else:
                self.dual = compile_dual.DualLevel(level)

    def dual_exited(self, level):
        if self.dual is not None and level == self.dual.level:
            self.dual.exited = True

    def dual_made(self, out, tangent, level):
        if self.reason is not None:
            return
        dual = self.dual
        if dual is None or level != dual.level or dual.event is not None:
            self.reason = (
                compile_dual.REFUSED
                + f"make_dual outside the function's dual level or after its grad() at {_user_line()}"
            )
        elif _fw.batch:
            self.reason = (
                compile_dual.REFUSED
                + f"batched tangents (make_dual(is_batched=True)) inside the function at {_user_line()}"
            )
        elif out._op is None or not out._rg or tangent._rg or tangent._tangents or tangent._dev is not None:
            self.reason = (
                f"make_dual of a tensor that does not require grad, or with a tangent that requires grad, at "
                f"{_user_line()}"
            )
        else:
            dual.duals.append((out, tangent))

    def dual_unpacked(self, tensor, primal, tangent):
        if self.reason is not None:
            return
        dual = self.dual
        if dual is None or dual.event is None or not any(tensor is g for g in dual.event.results):
            self.reason = (
                compile_dual.REFUSED + f"it reads the tangent of a tensor other than a grad() result at {_user_line()}"
            )
        else:
            dual.unpacked.append((tensor, primal))

    def created(self, t):
        data = t._data
        self.made[id(data if data.base is None else _root(data))] = data

    def folded(self, out, operands):
        """``out`` was computed without recording, its values a function of ``operands``' and of Python
        constants: a constant the replay re-creates where every operand is one (constant folding; e.g. the
        cotangents a create_graph sweep derives from its seed of ones before they meet a recorded tensor)."""
        made = self.made
        for t in operands:
            data = t._data
            if id(data if data.base is None else _root(data)) not in made:
                return
        self.created(out)

    def value_read(self, what):
        if self.reason is None:
            self.reason = f"{what} reads a tensor's value into Python at {_user_line()}"

    def wrote(self, t):
        if self.reason is None and not self.sweeping:
            self.reason = f"an in-place write into a tensor at {_user_line()}"

    def targets(self, target, t64, ignore_index):
        self.target_reads.append((target, t64, ignore_index))

    def gathered(self, out, index, dim):
        self.index_reads.append((out, index, dim))

    def shape_map(self, out):
        self.shape_maps.append(out)


def _differentiable_sweep_refused(kind, outputs, inputs, retain_graph, options):
    """Why a ``create_graph=True`` backward inside ``fn`` cannot join the template (None if it can: its sweep
    records ordinary ops and changes nothing else)."""
    if kind == "backward":
        return "backward(create_graph=True) inside the function (it accumulates graphs into .grad)"
    if not retain_graph:
        return "grad(create_graph=True, retain_graph=False) inside the function (it frees the graph)"
    if options[1]:
        return "grad(create_graph=True, is_grads_batched=True) inside the function"
    for t in inputs:
        if t._hooks:
            return "grad(create_graph=True) inside the function through a tensor with hooks"
    for T in _tape._state.current.values():
        if set(T.hook_rows) - set(T.python_rows):
            return "grad(create_graph=True) inside the function through a tensor with hooks or retain_grad"
    return None


def _user_line():
    """``file:line`` of the innermost frame outside ``ad`` and ``kernels`` (the line of ``fn`` that did it)."""
    f = sys._getframe(2)
    while f is not None:
        name = os.path.abspath(f.f_code.co_filename)
        if not (name.startswith(_AD_DIR + os.sep) or name.startswith(_KERNELS_DIR + os.sep)):
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return "?"
