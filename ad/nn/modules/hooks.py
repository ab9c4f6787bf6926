"""Module backward hooks (``register_full_backward_hook`` / ``register_full_backward_pre_hook`` and their global
``register_module_*`` twins).

As torch does, a call of a module with backward hooks passes its tensor inputs and its tensor outputs through
identity custom Functions: the outputs' one sees ``grad_output`` first (pre-hooks run there and may replace it),
the inputs' one then sees ``grad_input`` and runs the full hooks with both. A dict shared by the two (``state``)
carries ``grad_output`` from one to the other, and the layouts the hooks see:

- ``grad_output`` has one entry per output (a tuple output counts each element): the gradient of a tensor output
  that requires grad, or ``None`` (an output that is not such a tensor, or that the loss does not reach);
- ``grad_input`` has one entry per positional argument: the gradient of a tensor argument (zeros where none
  reached it), or ``None`` for an argument that is not a tensor. Keyword arguments have no entry.
"""

import warnings

from ...autograd.function import Function
from ...creation import zeros
from ...tensor import Tensor


class _Identity(Function):
    """The pass-through both hook Functions share: copies of ``tensors``, with the shared dict on ``ctx``."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        ctx.set_materialize_grads(False)
        return tuple(t.clone() for t in tensors)


def _as_tuple(result):
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _hooks(module, kind):
    from .module import _global

    return [*getattr(_global, kind).values(), *getattr(module, f"_{kind}_hooks").values()]


def _check_count(result, expected, what):
    if len(result) != expected:
        raise RuntimeError(
            f"Backward {what} returned an invalid number of grad_{'output' if 'pre' in what else 'input'}, "
            f"got {len(result)}, but expected {expected}"
        )


class _OutputsHook(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state["module"]
        grad_output = [None] * state["n_outputs"]
        for i, g in zip(state["output_slots"], grads):
            grad_output[i] = g
        grad_output = tuple(grad_output)
        for hook in _hooks(module, "backward_pre"):
            result = hook(module, grad_output)
            if result is not None:
                result = _as_tuple(result)
                _check_count(result, len(grad_output), "pre hook")
                grad_output = result
        state["grad_output"] = grad_output
        full_hooks = _hooks(module, "backward")
        if not state["input_slots"] and full_hooks:
            # no input requires grad: the full hooks run here, with a grad_input of Nones (torch's behaviour)
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module outputs since no "
                "inputs require gradients. See the documentation of Module.register_full_backward_hook for more "
                "details.",
                stacklevel=2,
            )
            for hook in full_hooks:
                hook(module, (None,) * state["n_inputs"], grad_output)
        return (None, *(grad_output[i] for i in state["output_slots"]))


class _InputsHook(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state["module"]
        grad_input = [
            None if spec is None else zeros(spec[0], dtype=spec[1], device=spec[2]) for spec in state["input_specs"]
        ]
        for i, g in zip(state["input_slots"], grads):
            if g is not None:
                grad_input[i] = g
        grad_input = tuple(grad_input)
        for hook in _hooks(module, "backward"):
            result = hook(module, grad_input, state.get("grad_output"))
            if result is not None:
                result = _as_tuple(result)
                _check_count(result, len(grad_input), "hook")
                grad_input = result
        return (None, *(grad_input[i] for i in state["input_slots"]))


def _unpack(value):
    return value if isinstance(value, tuple) else (value,)


def call_with_backward_hooks(module, args, kwargs):
    """``module.forward(*args, **kwargs)`` with its tensors routed through the hook Functions."""
    slots = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    state = {
        "module": module,
        "n_inputs": len(args),
        "input_slots": [],
        # grad_input where no gradient came: zeros for a tensor argument, None for anything else
        "input_specs": tuple((a.shape, a.dtype, a.device) if isinstance(a, Tensor) else None for a in args),
    }
    if slots and _hooks(module, "backward"):
        state["input_slots"] = slots
        wrapped = _unpack(_InputsHook.apply(state, *(args[i] for i in slots)))
        args = list(args)
        for i, w in zip(slots, wrapped):
            args[i] = w
        args = tuple(args)
    out = module.forward(*args, **kwargs)
    outs = _unpack(out)
    tensors = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
    if not tensors:
        return out
    state["n_outputs"] = len(outs)
    state["output_slots"] = tensors
    wrapped = _unpack(_OutputsHook.apply(state, *(outs[i] for i in tensors)))
    outs = list(outs)
    for i, w in zip(tensors, wrapped):
        outs[i] = w
    return tuple(outs) if isinstance(out, tuple) else outs[0]
