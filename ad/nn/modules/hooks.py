"""Module backward hooks (``register_full_backward_hook`` / ``register_full_backward_pre_hook``).

As torch does, a call of a module with backward hooks passes its tensor inputs and its tensor outputs through
identity custom Functions: the outputs' one sees ``grad_output`` first (pre-hooks run there and may replace it),
the inputs' one then sees ``grad_input`` and runs the full hooks with both. A dict shared by the two carries
``grad_output`` from one to the other.
"""

from ...autograd.function import Function
from ...tensor import Tensor


class _Identity(Function):
    """The pass-through both hook Functions share: copies of ``tensors``, with the shared dict on ``ctx``."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        return tuple(t.clone() for t in tensors)


class _OutputsHook(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state["module"]
        for hook in list(module._backward_pre_hooks.values()):
            result = hook(module, grads)
            if result is not None:
                grads = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        state["grad_output"] = grads
        if not state["has_inputs"]:
            for hook in list(module._backward_hooks.values()):
                hook(module, (None,) * state["n_inputs"], grads)
        return (None, *grads)


class _InputsHook(_Identity):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state["module"]
        grad_output = state.get("grad_output")
        for hook in list(module._backward_hooks.values()):
            result = hook(module, grads, grad_output)
            if result is not None:
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != len(grads):
                    raise RuntimeError(
                        f"Backward hook returned an invalid number of grad_input, got {len(result)}, but expected "
                        f"{len(grads)}"
                    )
                grads = result
        return (None, *grads)


def _unpack(value):
    return value if isinstance(value, tuple) else (value,)


def call_with_backward_hooks(module, args, kwargs):
    """``module.forward(*args, **kwargs)`` with its tensors routed through the hook Functions."""
    idx = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    state = {"module": module, "has_inputs": bool(idx), "n_inputs": sum(isinstance(a, Tensor) for a in args)}
    if idx and module._backward_hooks:
        wrapped = _unpack(_InputsHook.apply(state, *(args[i] for i in idx)))
        args = list(args)
        for i, w in zip(idx, wrapped):
            args[i] = w
        args = tuple(args)
    else:
        state["has_inputs"] = False
    out = module.forward(*args, **kwargs)
    outs = _unpack(out)
    tensors = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
    if not tensors:
        return out
    wrapped = _unpack(_OutputsHook.apply(state, *(outs[i] for i in tensors)))
    outs = list(outs)
    for i, w in zip(tensors, wrapped):
        outs[i] = w
    return tuple(outs) if isinstance(out, tuple) else outs[0]
