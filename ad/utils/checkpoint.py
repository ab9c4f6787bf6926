"""Activation checkpointing, as ``torch.utils.checkpoint``: run a function without recording its graph,
and run it again (with grad enabled) when backward reaches it.

``checkpoint`` is one custom ``ad.autograd.Function`` (``_Checkpoint``): its ``forward`` calls the function
under ``no_grad`` and keeps only the inputs (and the RNG state, so that dropout draws the same masks twice);
its ``backward`` recomputes on detached copies of the inputs and backpropagates the incoming cotangents
through the recomputed graph with ``ad.autograd.backward``. Gradients of the inputs come back to the outer
sweep; tensors the function captures (a module's parameters) get theirs accumulated into ``.grad`` by that
inner backward. With ``use_reentrant=False`` and no input that requires grad, an empty tensor that requires
grad is appended to the Function's inputs, so that the call is still recorded and captured parameters still
get gradients (torch's non-reentrant behaviour; the reentrant variant warns and gives none).

Both of torch's variants run this way (``ad``'s built-in ops keep what they save in the tape's arenas, where
torch's saved-tensor hooks, the machinery of the non-reentrant variant, cannot reach). Differences from
torch: under ``ad.autograd.grad`` or ``backward(inputs=...)`` both variants raise (torch raises for the
reentrant one, as ``ad`` does with its message), since the inner backward would write the ``.grad`` of captured
tensors and their gradients would be missing from the results: no silent wrong gradient.
"""

import contextlib
import warnings

from ..autograd.function import Function
from ..grad_mode import enable_grad
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "noop_context_fn", "CheckpointError"]


class CheckpointError(RuntimeError):
    """The recomputation did not reproduce the forward pass (torch's class of the same name)."""


def noop_context_fn():
    return contextlib.nullcontext(), contextlib.nullcontext()


def _as_tuple(outputs):
    return outputs if isinstance(outputs, tuple) else (outputs,)


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, run, preserve_rng_state, kwargs, recompute_context, reentrant, check, anchored, *args):
        if anchored:  # the last input is the empty anchor (see checkpoint), not an argument of run
            args = args[:-1]
        ctx.run, ctx.kwargs, ctx.recompute_context = run, kwargs, recompute_context
        ctx.reentrant, ctx.check, ctx.anchored = reentrant, check, anchored
        ctx.rng_state = get_rng_state() if preserve_rng_state else None
        ctx.inputs = [None if isinstance(a, Tensor) else a for a in args]
        ctx.tensor_indices = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.save_for_backward(*(args[i] for i in ctx.tensor_indices))
        outputs = run(*args, **kwargs)
        ctx.signature = _signature(outputs)
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        from ..autograd import _is_checkpoint_valid

        if not _is_checkpoint_valid():
            # the inner backward below writes the .grad of every tensor the function captures: grad() and
            # backward(inputs=...) must not, and would not see those gradients among their results
            raise RuntimeError(
                "When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad() or passing an "
                "`inputs` parameter to .backward(). To resolve this error, you can either set use_reentrant=False, "
                "or call .backward() without passing the `inputs` argument."
                if ctx.reentrant
                else "ad.utils.checkpoint recomputes through an inner backward that accumulates into the .grad of "
                "the tensors the function captures, so it runs only under .backward() without `inputs` (torch's "
                "non-reentrant variant also supports .grad()): call .backward(), or do not checkpoint this call."
            )
        inputs = list(ctx.inputs)
        for i, t in zip(ctx.tensor_indices, ctx.saved_tensors):
            inputs[i] = t.detach().requires_grad_(t.requires_grad)
        outer_state = get_rng_state() if ctx.rng_state is not None else None
        try:
            if ctx.rng_state is not None:
                set_rng_state(ctx.rng_state)
            with enable_grad(), ctx.recompute_context:
                outputs = _as_tuple(ctx.run(*inputs, **ctx.kwargs))
        finally:
            if outer_state is not None:
                set_rng_state(outer_state)
        if ctx.check and _signature(outputs) != ctx.signature:
            raise CheckpointError(
                "torch.utils.checkpoint: Recomputed values have different metadata than during the forward pass: "
                f"forward gave {ctx.signature}, recomputation gave {_signature(outputs)}"
            )
        pairs = [(o, g) for o, g in zip(outputs, grads) if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if pairs:
            from ..autograd import backward

            backward([o for o, _ in pairs], [g for _, g in pairs])
        elif ctx.reentrant:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        grads = tuple(a.grad if isinstance(a, Tensor) else None for a in inputs)
        return (None,) * 7 + grads + ((None,) if ctx.anchored else ())


def _signature(outputs):
    return [(tuple(o.shape), o.dtype) if isinstance(o, Tensor) else None for o in _as_tuple(outputs)]


def checkpoint(
    function,
    *args,
    use_reentrant=None,
    context_fn=noop_context_fn,
    determinism_check="default",
    debug=False,
    early_stop=True,
    **kwargs,
):
    """``function(*args, **kwargs)`` without keeping its intermediate values: backward runs it again.

    Args:
        function: the computation (returns a tensor or a tuple).
        *args: its arguments (tensors or not).
        use_reentrant: torch's variant switch; pass it explicitly (``None`` warns and means ``True``, as torch).
        context_fn: (``use_reentrant=False``) returns two context managers, entered around the forward call and
            around the recomputation.
        determinism_check: ``"default"`` checks that the recomputation gives outputs of the same shapes and
            dtypes; ``"none"`` skips the check.
        debug, early_stop: accepted for torch's signature.
        preserve_rng_state (keyword, default True): replay the forward's random draws in the recomputation.
        **kwargs: keyword arguments of ``function`` (``use_reentrant=False`` only).

    Returns:
        what ``function`` returns; gradients equal those of the plain call.

    Raises:
        ValueError: keyword arguments or ``context_fn`` / ``debug`` with ``use_reentrant=True``, or an unknown
            ``determinism_check``.

    Example:
        >>> y = ad.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
    """
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. Starting in PyTorch "
            "2.9, calling checkpoint without use_reentrant will raise an exception. use_reentrant=False is "
            "recommended, but if you need to preserve the current default behavior, you can pass "
            "use_reentrant=True. Refer to docs for more details on the differences between the two variants.",
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant and (context_fn is not noop_context_fn or debug is not False):
        raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be one of ['default', 'none'], but got {determinism_check}")
    anchored = False
    if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        if use_reentrant:
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)
        else:
            # torch's non-reentrant variant still reaches the tensors the function captures (a first block's
            # parameters, with data as its input): an empty input that requires grad makes the call recorded
            from ..creation import empty

            args, anchored = (*args, empty(0, requires_grad=True)), True
    forward_context, recompute_context = context_fn()
    # torch checks the recomputation only in the non-reentrant variant
    check = determinism_check == "default" and not use_reentrant
    with forward_context:
        return _Checkpoint.apply(function, preserve, kwargs, recompute_context, use_reentrant, check, anchored, *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):  # noqa: A002 - torch's name
    """Run a ``Sequential`` (or a list of modules) in ``segments`` checkpointed chunks; the last chunk runs
    normally, as ``torch.utils.checkpoint.checkpoint_sequential``."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be passed "
            "explicitly. use_reentrant=False is recommended.",
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)

    def run_function(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x

        return forward

    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(  # noqa: A001
            run_function(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve
        )
    return run_function(end + 1, len(functions) - 1)(input)
