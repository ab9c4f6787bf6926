"""Compiled functions that differentiate inside (``jax.jit(jax.grad(f))``, a compiled Hessian-vector product, a
training step that calls ``loss.backward()``): the recording call split at each backward into *phases*, each
replayed as an ordinary template (``ad/compile_template.py``, ``ad/compile_replay.py``), with the backward
calls between them run again on the replayed tensors.

A backward inside ``fn`` (``autograd.grad``, ``autograd.backward``, ``Tensor.backward``) tells the recorder
(``ad/compile.py``'s ``_Recorder.grad_event``, through ``observe.observer``) before it sweeps:

- with ``create_graph=True`` (``grad`` only) nothing ends: the differentiable sweep records ordinary ops, on
  the phase's tape, and they become rows of its template like any other (``double_backward.fused_grad``,
  whose node is a custom Function, is skipped while recording). Its seeds of ones are constants of the
  template (``observe.created``). A later backward through those rows is a double backward, replayed.
- without it, the phase ends: its tape is snapshotted (``TapeSnapshot``: the sweep frees rows and clears the
  tape's imports), the sweep runs, and the next op starts a new tape (the next phase). The event keeps which
  tensors it differentiated, with respect to what, its seeds and options; a replay calls the same function
  on the replayed tensors (the compiled kernel sweep, exactly as eager: ``.grad`` accumulation, hooks,
  freeing, errors).

The usual event (``grad`` of one real scalar with respect to arguments, each of which got a gradient in the
recording: a compiled Hessian-vector product's second ``grad``, ``jax.jit(jax.grad(f))``) replays through
``_call_grad_direct``: the same ``engine.kernel_sweep`` without ``autograd.grad``'s argument handling and
dispatch, after checking on this call's tensors what that dispatch would have decided (no hooks on the inputs,
no anomaly or forward mode, a CPU tape that is not a fused replay's); otherwise ``_call_grad``. Where the output's
tape imports no tensor that requires grad other than the inputs (a compiled HVP's), ``engine.sweep_leaves``: that
sweep of one tape, without ``kernel_sweep``'s bookkeeping of several (the same tape sweep and hand-over). The ops a hook
on a leaf adds to a ``create_graph`` sweep would be rows of a phase: ``ad/compile.py`` runs a call eagerly
where a leaf that such a sweep returned a gradient for has hooks now (``_Entry.hooked``).

Data structures:

- ``Program`` (what ``_Entry.template`` holds when the recording had a backward without ``create_graph``):
  ``steps`` in recording order, ``("p", j, template, carried)`` (phase ``j``: a ``_Template`` whose ``out`` is
  the tuple of its tensors that later steps read; ``carried``: the references of the earlier phases' and
  events' tensors its tape imports, passed to its replay after the call's tensor arguments) and ``("e", e,
  call, outputs, inputs, grad_outputs, retain_graph, options)`` (event ``e``); ``out``, the result's structure;
  ``direct``, for a program of one phase and one ``_call_grad_direct`` event (a compiled Hessian-vector product),
  what ``replay`` runs without the references' bookkeeping (``Program._direct``), else None; ``dual``, the same
  for one phase and one ``grad`` inside a dual level, with its ``compile_dual.DualProgram`` where one applies
  (``compile_dual.call_dual_grad``: forward over reverse, whose
  event's inputs are followed by the dual tensors and their tangents, ``options`` by their number, and whose
  results are the gradients, then their tangents).
- References (program level): ``("a", k)`` tensor argument k, ``("p", j, pos)`` tensor ``pos`` of phase ``j``'s
  out, ``("g", e, k)`` the k-th result of event ``e``, ``("k", values)`` a constant made inside ``fn``,
  ``("e", tensor)`` a tensor from outside ``fn``, ``("d", k)`` a leaf that requires grad which ``fn`` made as
  a detached alias of argument k (``functional.jacobian``'s ``x.detach().requires_grad_()``: one per call),
  ``("v", ref, offset, shape, strides, size)`` a view (elements) of the array of event result ``ref``
  (``functional.jacobian``'s blocks of the batched rows), ``("G", ref)`` the ``.grad`` of the leaf ``ref``
  as it is when read (a backward inside ``fn`` made or accumulated it; ``.grad = None`` between calls makes
  the next backward a new tensor, which a reference to the recording's own object would miss).

Correct by construction, as the other templates: two recordings must agree on every phase, event and
reference (a tensor computed inside ``fn`` without recording is a reference to the recording's own object,
which the second recording does not reproduce: eager). A phase after the first backward may not hold a check
that sends the call eagerly (cross_entropy's class indices, gathers from index tensors): the backward before
it has run by then (``.grad`` accumulated); such programs run eagerly.
"""

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import compile_dual, engine
from .compile_replay import _EAGER, _SHAPE_DTYPE, _out_value, _replay
from .compile_template import TapeSnapshot, _differs, _root, _same_ref, _tensors_of, _Unsupported, build_tape
from .tensor import Tensor, wrap_array


class Program:
    __slots__ = ("steps", "out", "templates", "fresh", "checked", "direct", "dual")

    def finish(self):
        for tpl in self.templates:
            tpl.finish()
        # the templates whose tensors from outside a call checks before it runs anything: all but the first step's
        # when that is a phase (``_replay`` checks its own first, before it runs anything either)
        first = self.steps[0][2] if self.steps and self.steps[0][0] == "p" else None
        self.checked = [tpl for tpl in self.templates if tpl.outside and tpl is not first]
        self.direct = self._direct()
        self.dual = self._dual()

    def _dual(self):
        """``(template, position, input references, retain_graph, options, prepared)`` where the program is one
        phase, then a grad inside a dual level (``compile_dual.call_dual_grad``) of the phase's tensor at
        ``position``, and the result reads nothing but the phase's tensors, the event's results, arguments and
        constants (a compiled forward-over-reverse Hessian-vector product): ``replay`` then runs the two without
        the references' bookkeeping, as one ``compile_dual.DualProgram`` (``prepared``) where one applies. Else
        None."""
        if len(self.steps) != 2 or self.steps[0][0] != "p" or self.steps[1][0] != "e":
            return None
        (_, _, tpl, carried), (_, _, call, outputs, inputs, grad_outputs, retain_graph, options) = self.steps
        if carried or call is not compile_dual.call_dual_grad or outputs[0][:2] != ("p", 0):
            return None
        if not all(r[0] in "pgaek" for r in _refs_of(self.out)) or not all(r[0] in "paek" for r in inputs):
            return None
        prepared = compile_dual.prepare(tpl, outputs[0][2], inputs, options)
        return tpl, outputs[0][2], inputs, retain_graph, options, prepared

    def _direct(self):
        """``(template, position, argument indices, retain_graph, options)`` where the program is one phase, then
        ``_call_grad_direct`` of the phase's tensor at ``position`` with respect to arguments, and the result
        reads nothing but the phase's tensors, the event's results, arguments and constants (a compiled
        Hessian-vector product, jit of grad): ``replay`` then runs the two without the references' bookkeeping.
        Else None."""
        if len(self.steps) != 2 or self.steps[0][0] != "p" or self.steps[1][0] != "e":
            return None
        (_, _, tpl, carried), (_, _, call, outputs, inputs, grad_outputs, retain_graph, options) = self.steps
        if carried or call is not _call_grad_direct or grad_outputs is not None or outputs[0][:2] != ("p", 0):
            return None
        if not all(r[0] in "pgaek" for r in _refs_of(self.out)):
            return None
        return tpl, outputs[0][2], tuple(r[1] for r in inputs), retain_graph, options

    def replay(self, tensors):
        direct = self.direct
        if direct is not None:
            tpl, position, args, retain_graph, options = direct
            out = _replay(tpl, tensors)
            if out is _EAGER:
                return _EAGER
            inputs = tuple([tensors[k] for k in args])
            results = _call_grad_direct((out[position],), inputs, None, retain_graph, options)
            return _out_value(self.out, functools.partial(_resolve_direct, tensors, out, results))
        dual = self.dual
        if dual is not None:
            tpl, position, refs, retain_graph, options, prepared = dual
            try:
                done = None if prepared is None else prepared.replay(tensors, retain_graph)
                if done is _EAGER:
                    return _EAGER
                if done is None:
                    out = _replay(tpl, tensors)
                    if out is _EAGER:
                        return _EAGER
                    resolve = functools.partial(_resolve_direct, tensors, out, None)
                    results = compile_dual.call_dual_grad(
                        (out[position],), tuple([resolve(r) for r in refs]), None, retain_graph, options
                    )
                else:
                    out, results = done
            except compile_dual.Refused:
                return _EAGER  # (nothing observable ran yet: the phase's replay made new tensors only)
            return _out_value(self.out, functools.partial(_resolve_direct, tensors, out, results))
        for tpl in self.checked:
            if list(map(_SHAPE_DTYPE, tpl.outside)) != tpl.outside_shapes:
                return _EAGER  # (checked before any backward runs: see the module docstring)
        env = {}  # (a closure resolving through it would be a cycle: every call's tensors left to the collector)
        resolve = functools.partial(_resolve, tensors, env)
        for step in self.steps:
            if step[0] == "p":
                _, j, tpl, carried = step
                out = _replay(tpl, tensors + [resolve(r) for r in carried] if carried else tensors)
                if out is _EAGER:
                    return _EAGER  # (only the first phase can answer so: nothing has run yet)
                for pos, t in enumerate(out):
                    env[("p", j, pos)] = t
                continue
            _, e, call, outputs, inputs, grad_outputs, retain_graph, options = step
            try:
                results = call(
                    tuple([resolve(r) for r in outputs]),
                    None if inputs is None else tuple([resolve(r) for r in inputs]),
                    None if grad_outputs is None else tuple([None if r is None else resolve(r) for r in grad_outputs]),
                    retain_graph,
                    options,
                )
            except compile_dual.Refused:
                if e == 0:
                    return _EAGER  # (the first backward: nothing observable ran yet)
                raise RuntimeError(
                    "ad.compile: a tangent from outside the function changed its shape or dtype after earlier "
                    "backwards of this call ran; run it without ad.compile"
                ) from None
            if results is not None:
                for k, t in enumerate(results):
                    env[("g", e, k)] = t
        return _out_value(self.out, resolve)


def _resolve(tensors, env, r):
    """This call's tensor for program reference ``r`` (``env``: the phases' and events' tensors so far)."""
    kind = r[0]
    if kind == "a":
        return tensors[r[1]]
    if kind == "p" or kind == "g":
        return env[r]
    if kind == "k":
        return wrap_array(np.array(r[1]))
    if kind == "d":
        t = env.get(r)
        if t is None:
            t = env[r] = tensors[r[1]].detach().requires_grad_()
        return t
    if kind == "G":
        g = _resolve(tensors, env, r[1])._grad
        if g is None:
            raise RuntimeError(
                "ad.compile: a compiled function reads a .grad that its backward did not make in this call "
                "(a hook or a changed graph); run it without ad.compile"
            )
        return g
    if kind == "v":
        base = _resolve(tensors, env, r[1])._data
        flat = base.reshape(-1) if base.flags.c_contiguous else np.ascontiguousarray(base).reshape(-1)
        if r[5] is not None:  # (a contiguous block: a slice, without numpy's as_strided and its Python)
            return wrap_array(flat[r[2] : r[2] + r[5]].reshape(r[3]))
        item = flat.itemsize
        return wrap_array(as_strided(flat[r[2] :], r[3], tuple(s * item for s in r[4])))
    return r[1]


def _resolve_direct(tensors, out, results, r):
    """``_resolve`` in ``Program.replay``'s direct case: ``out`` the phase's tensors, ``results`` the event's."""
    kind = r[0]
    if kind == "p":
        return out[r[2]]
    if kind == "g":
        return results[r[2]]
    return _resolve(tensors, None, r)


def _refs_of(spec):
    """The program references in a result's structure (``_out_spec``)."""
    kind = spec[0]
    if kind == "c":
        return []
    if kind in ("s", "nt", "d"):
        return [r for s in spec[2] for r in _refs_of(s)]
    return [spec]


def _call_grad(outputs, inputs, grad_outputs, retain_graph, options):
    from .autograd import _grad_call

    return _grad_call(outputs, inputs, grad_outputs, retain_graph, False, *options)


def _call_grad_direct(outputs, inputs, grad_outputs, retain_graph, options):
    """``_call_grad`` for the usual event of a compiled Hessian-vector product or training step: ``grad`` of one
    real scalar with respect to arguments that are leaves without hooks, on a CPU tape, outside anomaly and
    forward mode. Then ``autograd.grad`` seeds a one, sweeps with ``engine.kernel_sweep`` and returns the leaves'
    cotangents: this makes the same sweep without the generic dispatch around it (about 15 us a call), and where
    the output's tape imports no tensor that requires grad but the inputs (the usual case) through
    ``engine.sweep_leaves``, without ``kernel_sweep``'s bookkeeping of several tapes (about 5 us more). Any other
    case, checked on this call's tensors, takes ``_call_grad``."""
    ag = _AUTOGRAD[0] or _autograd()
    (out,) = outputs
    data = out._data
    if (
        ag.anomaly_mode._enabled
        or ag._fw.levels
        or not out._rg
        or out._dev is not None
        or data.ndim != 0
        or data.dtype.kind != "f"
        or getattr(out._tape, "fused", None) is not None
        or ag._cuda.needs_graph_sweep(outputs)
    ):
        return _call_grad(outputs, inputs, grad_outputs, retain_graph, options)
    targets = {}
    for t in inputs:
        if t._op is not None or not t._rg or t._hooks or t._dev is not None:
            return _call_grad(outputs, inputs, grad_outputs, retain_graph, options)
        targets[id(t)] = t
    stack = ag._sweep_stack()
    stack.append(False)  # (as _grad_call: a sweep of grad, not of backward)
    try:
        if engine._restricts_nothing(outputs, targets):  # (one tape, no plan: the usual case)
            seed = _ONE.get(data.dtype)
            if seed is None:
                seed = _ONE[data.dtype] = np.ones((), data.dtype)
                seed.flags.writeable = False
            leaf_grads = engine.sweep_leaves(out, seed, retain_graph)
        else:  # (a fresh seed: the gradient of an output that is itself a leaf is its seed)
            leaf_grads, _ = engine.kernel_sweep(outputs, [np.ones((), data.dtype)], targets, retain_graph)
    finally:
        stack.pop()
    arrays = leaf_grads.arrays
    result = []
    for k, t in enumerate(inputs):
        g = arrays.get(id(t))
        if g is None:  # (the recording used every input: only a hook that changed the graph can get here)
            if not options[0]:
                raise RuntimeError(ag.unused_input_message(k))
            result.append(None)
            continue
        result.append(wrap_array(g))
    return tuple(result)


_ONE = {}  # dtype -> a read-only 0-d one: ``_call_grad_direct``'s seed for ``engine.sweep_leaves`` (only read)
_AUTOGRAD = [None]  # ad.autograd, once imported (it imports this module's importers)


def _autograd():
    from . import autograd

    _AUTOGRAD[0] = autograd
    return autograd


def _direct_grad_applies(ev, refs):
    """Whether event ``ev`` (a ``GradEvent``, ``refs`` its inputs' program references) may use
    ``_call_grad_direct``: ``grad`` of one output without ``grad_outputs``, not batched, not materializing,
    with respect to arguments only, each of which got a gradient in the recording."""
    allow_unused, batched, materialize = ev.options
    return (
        ev.kind == "grad"
        and len(ev.outputs) == 1
        and ev.grad_outputs is None
        and not batched
        and not materialize
        and ev.inputs is not None
        and all(r[0] == "a" for r in refs)
        and ev.results is not None
        and all(g is not None for g in ev.results)
    )


def _call_backward(outputs, inputs, grad_outputs, retain_graph, options):
    from .autograd import backward

    backward(outputs, grad_outputs, retain_graph, inputs=inputs)


class GradEvent:
    """A backward without ``create_graph`` that a recording call ran (``_Recorder.grad_event``)."""

    __slots__ = ("kind", "outputs", "inputs", "grad_outputs", "retain_graph", "options", "results", "duals", "tangents")

    def __init__(self, kind, outputs, inputs, grad_outputs, retain_graph, options):
        self.kind = kind
        self.outputs = outputs
        self.inputs = inputs
        self.grad_outputs = grad_outputs
        self.retain_graph = retain_graph
        self.options = options
        self.results = None
        self.duals = None  # a grad inside a dual level (ad/compile_dual.py): [(dual tensor, its tangent)]
        self.tangents = None  # ... and its results' tangents (None where one has none)


def seeds_of(grad_outputs):
    """``grad_outputs`` (``grad``'s; ``backward``'s ``grad_tensors``) as a tuple of tensors and Nones, or None;
    raises ``_Unsupported`` for numbers and arrays (which the replay would take as constants)."""
    if grad_outputs is None:
        return None
    seeds = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs)
    if not all(g is None or isinstance(g, Tensor) for g in seeds):
        raise _Unsupported("a backward inside the function has gradients that are not tensors")
    return seeds


def end_phase(rec):
    """The rows recorded since the last phase ended (this thread's current tapes) become a phase; the next
    recorded op starts a new tape."""
    from . import tape as _tape

    tapes = [T for T in _tape._state.current.values() if T.id > rec.first_id]
    if len(tapes) > 1:
        rec.reason = rec.reason or "its ops spread over several tapes (several dtypes)"
    for T in tapes:
        rec.phases.append(TapeSnapshot(T))
        rec.steps.append(("p", len(rec.phases) - 1))
    _tape.reset_current()


def build(result, tensors, rec, created):
    """The ``Program`` of a recording call that ran backwards without ``create_graph`` (``rec.steps``);
    raises ``_Unsupported`` with the reason when it cannot be replayed."""
    if rec.reason is not None:
        raise _Unsupported(rec.reason)
    end_phase(rec)  # (the rows after the last backward)
    if rec.reason is not None:
        raise _Unsupported(rec.reason)
    phases = rec.phases
    if created != len(phases):
        raise _Unsupported("its ops spread over several tapes (a graph larger than one tape)")
    if rec.dual is not None and any(d is t for d, _ in rec.dual.duals for t in _tensors_of(result, [])):
        raise _Unsupported("it returns a make_dual tensor (a view of its primal)")
    for S in phases:
        if not S.clean:
            raise _Unsupported("a tensor was written in place inside the function")
    phase_of = {id(S.tape): j for j, S in enumerate(phases)}
    exports = [{} for _ in phases]  # per phase, the tensors of its tape that later steps read (id -> tensor)

    def want(t, phase=-1):
        j = phase_of.get(id(t._tape)) if t._tape is not None and t._op is not None else None
        if j is not None and j != phase:
            exports[j].setdefault(id(t), t)

    for j, S in enumerate(phases):
        for _, _, t, _ in S.imports:
            want(t, j)
    for step in rec.steps:
        if step[0] == "e":
            ev = step[1]
            for t in ev.outputs + (ev.inputs or ()) + tuple(g for g in ev.grad_outputs or () if g is not None):
                want(t)
            for d, _ in ev.duals or ():
                want(d)
    for t in _tensors_of(result, []):
        want(t)

    refs = {}
    for k, t in enumerate(tensors):
        refs.setdefault(id(t), ("a", k))
    prog = Program()
    prog.steps = []
    prog.templates = []
    prog.fresh = []  # the detached aliases: new objects in each recording (never a tensor from outside)
    data_of = {id(t._data): k for k, t in reversed(list(enumerate(tensors)))}
    for t in _candidates(rec, phases, result):
        k = data_of.get(id(t._data))
        if k is not None and id(t) not in refs and t._op is None and t._rg and not t._hooks:
            refs[id(t)] = ("d", k)
            prog.fresh.append(t)
    results = []  # (event result, its reference): what a view may be of
    grads = {}  # id of a leaf's .grad -> that leaf (the leaves among the arguments and what the phases read)
    for t in list(tensors) + [t for S in phases for _, _, t, _ in S.imports] + list(_candidates(rec, [], result)):
        if isinstance(t, Tensor) and t._op is None and t._grad is not None:
            grads.setdefault(id(t._grad), t)

    def ref(t):
        r = refs.get(id(t))
        if r is not None:
            return r
        owner = grads.get(id(t))
        if owner is not None and events:
            r = refs[id(t)] = ("G", ref(owner))
            return r
        if not t._rg and t._tape is None and id(_root(t._data)) in rec.made:
            return ("k", np.array(t._data))
        if not t._rg and t._tape is None:
            for base, r in results:
                v = _view_of(t._data, base._data)
                if v is not None:
                    return ("v", r, *v)
        return ("e", t)

    events = 0
    for step in rec.steps:
        if step[0] == "p":
            j = step[1]
            S = phases[j]
            carried = {}
            for _, _, t, _ in S.imports:
                r = refs.get(id(t))
                if r is None and events and id(t) in grads:
                    r = ref(t)  # (a .grad a backward before this phase made)
                if r is not None and r[0] != "a":
                    carried.setdefault(id(t), t)
            carried = list(carried.values())
            wanted = tuple(exports[j].values())
            tpl = build_tape(S, wanted, list(tensors) + carried, rec)
            if events and (tpl.targets or tpl.remaps):
                raise _Unsupported(
                    "after a backward inside the function, it reads class indices or gather indices (a check that "
                    "can send a call eagerly once the backward has run)"
                )
            prog.steps.append(("p", j, tpl, [refs[id(t)] for t in carried]))
            prog.templates.append(tpl)
            for pos, t in enumerate(wanted):
                refs[id(t)] = ("p", j, pos)
            continue
        ev = step[1]
        input_refs = None if ev.inputs is None else [ref(t) for t in ev.inputs]
        options = ev.options
        if ev.duals is not None:  # (a grad inside a dual level: the dual tensors and their tangents follow)
            call = compile_dual.call_dual_grad
            input_refs += [ref(d) for d, _ in ev.duals] + [ref(tan) for _, tan in ev.duals]
            options += (len(ev.duals),)
        elif ev.kind != "grad":
            call = _call_backward
        else:
            call = _call_grad_direct if _direct_grad_applies(ev, input_refs) else _call_grad
        prog.steps.append(
            (
                "e",
                events,
                call,
                [ref(t) for t in ev.outputs],
                input_refs,
                None if ev.grad_outputs is None else [None if g is None else ref(g) for g in ev.grad_outputs],
                ev.retain_graph,
                options,
            )
        )
        for k, t in enumerate(ev.results or ()):
            if t is not None and id(t) not in refs:
                refs[id(t)] = ("g", events, k)
                if t._data.flags.c_contiguous:
                    results.append((t, ("g", events, k)))
        if ev.duals is not None:  # the gradients' tangents, and the primals unpack_dual made of the gradients
            n = len(ev.results)
            for k, t in enumerate(ev.tangents):
                if t is not None:
                    refs.setdefault(id(t), ("g", events, n + k))
            for g, primal in rec.dual.unpacked:
                if id(g) in refs:
                    refs.setdefault(id(primal), refs[id(g)])
        events += 1
    prog.out = _out_spec(result, ref)
    return prog


def _candidates(rec, phases, result):
    """The tensors a program may reference: the phases' imports, the events' tensors, the result's."""
    for S in phases:
        for _, _, t, _ in S.imports:
            yield t
    for step in rec.steps:
        if step[0] == "e":
            ev = step[1]
            yield from ev.outputs + (ev.inputs or ()) + tuple(g for g in ev.grad_outputs or () if g is not None)
    yield from _tensors_of(result, [])


def _view_of(a, base):
    """``(offset, shape, strides, size)`` in elements of array ``a`` inside the C-contiguous array ``base`` (same
    dtype; ``size`` None unless ``a`` is C-contiguous), or None."""
    if a.dtype != base.dtype or base.size == 0:
        return None
    start = base.ctypes.data
    at = a.ctypes.data - start
    item = base.itemsize
    if at < 0 or at >= base.nbytes or at % item or any(s % item for s in a.strides):
        return None
    strides = tuple(s // item for s in a.strides)
    last = at // item + sum((n - 1) * s for n, s in zip(a.shape, strides) if n > 0)
    if any(s < 0 for s in strides) or last >= base.size:
        return None
    return at // item, a.shape, strides, a.size if a.flags.c_contiguous else None


def _out_spec(obj, ref):
    if isinstance(obj, Tensor):
        return ref(obj)
    if type(obj) is tuple or type(obj) is list:
        return ("s", type(obj), [_out_spec(o, ref) for o in obj])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("nt", type(obj), [_out_spec(o, ref) for o in obj])
    if type(obj) is dict:
        return ("d", list(obj), [_out_spec(o, ref) for o in obj.values()])
    if isinstance(obj, (tuple, list, dict, set)):
        raise _Unsupported(f"it returns a {type(obj).__name__}")
    return ("c", obj)


def differs(a, b):
    """Why two recordings (``Program``s or ``_Template``s) of one signature differ (None if the same program)."""
    if type(a) is not type(b):
        return "two calls ran different backwards inside the function"
    if type(a) is not Program:
        return _differs(a, b)
    if len(a.fresh) != len(b.fresh) or any(x is y for x, y in zip(a.fresh, b.fresh)):
        return "it reads a tensor from outside that shares its data with an argument"
    if len(a.steps) != len(b.steps):
        return "two calls ran different backwards inside the function"
    for x, y in zip(a.steps, b.steps):
        if x[0] != y[0] or x[1] != y[1]:
            return "two calls ran different backwards inside the function"
        if x[0] == "p":
            why = _differs(x[2], y[2])
            if why is not None:
                return why
            if not _same_refs(x[3], y[3]):
                return "two calls carried different tensors across a backward inside the function"
            continue
        if (
            x[2] is not y[2]
            or not _same_refs(x[3], y[3])
            or (x[4] is None) != (y[4] is None)
            or not _same_refs(x[4] or (), y[4] or ())
            or (x[5] is None) != (y[5] is None)
            or not _same_refs(x[5] or (), y[5] or ())
            or x[6] != y[6]
            or x[7] != y[7]
        ):
            return (
                "two calls differentiated different tensors inside the function (a tensor it computes without "
                "recording, or other options)"
            )
    if not _same_out(a.out, b.out):
        return "two calls returned different Python values"
    return None


def _same_refs(xs, ys):
    return len(xs) == len(ys) and all(
        (x is None and y is None) or (x is not None and y is not None and _same_pref(x, y)) for x, y in zip(xs, ys)
    )


def _same_pref(x, y):
    if x[0] == "G" or y[0] == "G":
        return x[0] == y[0] and _same_pref(x[1], y[1])
    return _same_ref(x, y)


def _same_out(x, y):
    if x[0] != y[0]:
        return False
    if x[0] == "c":
        try:
            return type(x[1]) is type(y[1]) and bool(x[1] == y[1])
        except Exception:
            return False
    if x[0] in ("s", "nt", "d"):
        return (
            (x[1] == y[1] if x[0] == "d" else x[1] is y[1])
            and len(x[2]) == len(y[2])
            and all(_same_out(p, q) for p, q in zip(x[2], y[2]))
        )
    return _same_pref(x, y)
