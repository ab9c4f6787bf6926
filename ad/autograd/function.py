"""``ad.autograd.Function``: custom differentiable operations with Python ``forward`` / ``backward``.

``Function.apply`` runs ``forward`` under ``no_grad``, then (when an input requires grad) records each
output on the tape as a ``PYTHON`` row and registers the call's ``_Record`` as a Python row of the tape: the
compiled sweep stops there, ``backward`` runs with the outputs' cotangents, and its results are added to
the inputs' cotangents in the arena before the sweep goes on. ``create_graph=True`` calls ``backward``
with grad mode on, so a ``backward`` written with ``ad`` ops is itself differentiable. Forward mode calls
the optional ``jvp(ctx, *tangents)``.
"""

import numpy as np

from kernels import opcodes as K

from .. import forward
from ..engine import FREED_MESSAGE
from ..forward import _fw
from ..grad_mode import _grad_state, no_grad
from ..ops import Op, _operand, _tape_for
from ..tensor import Tensor, _new, wrap_array
from .graph import current_saved_tensors_hooks


class FunctionCtx:
    """The ``ctx`` of a custom Function: ``save_for_backward``, ``saved_tensors``, ``needs_input_grad``."""

    def __init__(self):
        self._saved = ()
        self._freed = False
        self._materialize = True
        self._non_differentiable = set()
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
        unpack = self.__dict__.get("_unpack")
        if unpack is not None:
            return tuple(None if t is None else unpack(t) for t in self._saved)
        return self._saved

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    def mark_dirty(self, *tensors):
        raise RuntimeError("in-place custom Functions (mark_dirty) are not supported by ad")


class _Record:
    """One call of a custom Function on the tape: its ctx, outputs and the inputs' arena slots."""

    __slots__ = ("cls", "ctx", "outputs", "inputs", "slots", "__weakref__")

    def __init__(self, cls, ctx, inputs):
        self.cls = cls
        self.ctx = ctx
        self.inputs = inputs  # the forward's arguments (tensors and others), in order
        self.outputs = []
        self.slots = {}  # index of a tensor input requiring grad -> (offset, row) on the outputs' tape

    def call_backward(self, grads):
        result = self.cls.backward(self.ctx, *grads)
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

    def output_grads(self, cot_of):
        grads = []
        for out in self.outputs:
            g = cot_of(out) if out is not None else None
            if g is None and self.ctx._materialize and out is not None:
                g = wrap_array(np.zeros(out.shape, out.dtype))
            grads.append(g)
        return grads

    def kernel_backward(self, s):
        """Called by the compiled sweep (``engine._sweep_tape``) at this call's first output row."""

        def cot_of(out):
            if out._tape is not s.tape or not s.live[out._off]:
                return None
            n = out._data.size
            return wrap_array(s.cot[out._off : out._off + n].reshape(out.shape).copy())

        grads = self.output_grads(cot_of)
        if all(g is None for g in grads):
            return
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
    raise RuntimeError("custom Function outputs are differentiated by engine.graph_sweep")


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

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        levels = forward.visible_levels_of(*[a for a in args if isinstance(a, Tensor)]) if _fw.levels else []
        with no_grad(), forward.hide(levels):
            raw = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(raw, tuple)
        outputs = [raw] if single else list(raw)
        if _grad_state.enabled and any(ctx.needs_input_grad):
            outputs = _record(cls, ctx, args, outputs)
        if levels:
            _forward_tangents(cls, ctx, args, outputs, levels)
        return outputs[0] if single else tuple(outputs)


def _record(cls, ctx, args, outputs):
    rec = _Record(cls, ctx, args)
    op = _op_for(cls)
    diff = [isinstance(o, Tensor) and o.dtype.kind == "f" and id(o) not in ctx._non_differentiable for o in outputs]
    if not any(diff):
        return outputs
    dt = next(o.dtype for o, d in zip(outputs, diff) if d)
    total = sum(o._data.size + 1 for o, d in zip(outputs, diff) if d)
    newest = max(
        (a for a in args if isinstance(a, Tensor) and a._tape is not None), key=lambda a: a._tape.id, default=None
    )
    tape = _tape_for(dt, total + sum(a._data.size + 1 for a in args if isinstance(a, Tensor)), newest)
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._rg:
            rec.slots[i] = _operand(tape, a)
    recorded = []
    first_row = -1
    for o, d in zip(outputs, diff):
        if not d or o.dtype != dt:
            recorded.append(o)
            rec.outputs.append(None)
            continue
        n = o._data.size
        off = tape.alloc(n)
        view = tape.view(off, o.shape, n)
        np.copyto(view, o._data)
        row = tape.record(K.PYTHON, off, -1, -1, n)
        if first_row < 0:
            first_row = row
        t = _new(Tensor)
        t._data = view
        t._rg = True
        t._op = op
        t._inputs = tuple(a for a in args if isinstance(a, Tensor))
        t._ctx = rec
        t._tape = tape
        t._off = off
        t._row = row
        recorded.append(t)
        rec.outputs.append(t)
    tape.register_hook_row(first_row, rec)
    # keep the record alive as long as any output is (the tape holds it weakly)
    return recorded


_OPS_BY_CLASS = {}


def _op_for(cls):
    op = _OPS_BY_CLASS.get(cls)
    if op is None:
        # ad's own Python-swept primitives name their node as torch does (``_grad_fn_name = "CumsumBackward0"``)
        name = getattr(cls, "_grad_fn_name", None) or f"{cls.__name__}Backward"
        op = Op(f"function:{cls.__qualname__}", K.PYTHON, name, _function_vjp, register=False)
        _OPS_BY_CLASS[cls] = op
    return op


def _forward_tangents(cls, ctx, args, outputs, levels):
    if getattr(cls, "jvp", None) is None or cls.jvp is Function.jvp:
        raise RuntimeError(f"{cls.__name__} does not implement jvp(ctx, *tangents): it is needed for forward mode AD")
    for k in levels:
        tangents = []
        for a in args:
            if isinstance(a, Tensor):
                t = forward.tangent_of(a, k)
                tangents.append(t if t is not None else wrap_array(np.zeros(a.shape, a.dtype)))
            else:
                tangents.append(None)
        with forward.hide(levels):
            res = cls.jvp(ctx, *tangents)
        res = res if isinstance(res, tuple) else (res,)
        for o, t in zip(outputs, res):
            if isinstance(o, Tensor) and t is not None:
                forward.set_tangent(o, k, t)


Function.jvp = None
