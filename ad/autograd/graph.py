"""``ad.autograd.graph``: hooks around the graph, as ``torch.autograd.graph``.

- ``saved_tensors_hooks(pack_hook, unpack_hook)``: a thread-local stack of ``(pack, unpack)`` pairs. A custom
  ``Function``'s ``ctx.save_for_backward`` packs each tensor with the innermost pair active at that time (once
  forward has returned and the call is recorded, as torch) and ``ctx.saved_tensors`` unpacks it, attached to
  the saved tensor's graph (a double backward goes through it, as torch's). ad's built-in ops keep what they
  save in the tape's arenas (as values the compiled sweep reads), not as tensors, so the hooks do not see them
  (a deliberate difference from torch).
- Post-accumulate-grad hooks: ``Tensor.register_post_accumulate_grad_hook(hook)`` keeps ``hook(tensor)`` in
  the leaf's ``_post_accumulate_grad_hooks`` dict; ``backward`` calls them after it has written ``.grad``.
  ``_POST_ACC[0]`` counts the leaves that ever had one, so that backward skips the walk when it is 0.
- ``grad_fn.register_prehook(hook)`` / ``grad_fn.register_hook(hook)``: ad's nodes are tape rows, not
  objects with their own hook lists; a node remembers its output tensor (``_outputs``, weak), and the hooks
  become a tensor hook on that output, which runs when the output's gradient is complete, just before the
  node's backward: a prehook sees (and may replace) ``grad_outputs``; a hook sees ``grad_inputs`` computed from
  the node's rule and ``grad_outputs``, and may return new ``grad_inputs``, which the sweep gives to the inputs
  in place of the rule's (``engine.replaced_grad_inputs``).
"""

import itertools
import threading
import weakref
from typing import NamedTuple

import numpy as np

from kernels import opcodes as K

from .. import engine
from ..tensor import AccumulateGrad, Node, RemovableHandle, Tensor, _pre_write_node, wrap_array

__all__ = [
    "saved_tensors_hooks",
    "save_on_cpu",
    "disable_saved_tensors_hooks",
    "Node",
    "GradientEdge",
    "get_gradient_edge",
    "increment_version",
    "register_multi_grad_hook",
    "allow_mutation_on_saved_tensors",
]


class _HookState(threading.local):
    def __init__(self):
        self.stack = []
        self.disabled = None


_state = _HookState()


def current_saved_tensors_hooks():
    """The innermost active ``(pack_hook, unpack_hook)``, or ``None``."""
    return _state.stack[-1] if _state.stack else None


class saved_tensors_hooks:
    """Context manager: tensors saved for backward (by custom Functions) go through ``pack_hook(tensor)``
    when saved, and ``unpack_hook(packed)`` when backward reads them.

    Example:
        >>> with ad.autograd.graph.saved_tensors_hooks(lambda t: t.numpy().copy(), ad.tensor):
        ...     y = MyFunction.apply(x)
    """

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        if _state.disabled is not None:
            raise RuntimeError(_state.disabled)
        _state.stack.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc):
        _state.stack.pop()
        return False


class save_on_cpu(saved_tensors_hooks):
    """Tensors saved for backward are kept on the CPU: a CUDA tensor is copied to the host when saved and back
    to its device when backward reads it; a CPU tensor is kept as it is (``pin_memory`` changes nothing here).

    Example:
        >>> with ad.autograd.graph.save_on_cpu():
        ...     y = MyFunction.apply(x_on_gpu)
    """

    def __init__(self, pin_memory=False, device_type="cuda"):
        def pack(t):
            return (t.device, t.cpu())

        def unpack(packed):
            device, t = packed
            return t.to(device)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:
    """Context manager under which entering ``saved_tensors_hooks`` raises ``RuntimeError(error_message)``."""

    def __init__(self, error_message):
        self.error_message = error_message

    def __enter__(self):
        self._prev = _state.disabled
        _state.disabled = self.error_message
        return self

    def __exit__(self, *exc):
        _state.disabled = self._prev
        return False


# ---------------------------------------------------------------------------------------------------------
# post-accumulate-grad hooks

_POST_ACC = [0]
_ids = itertools.count(1)


def register_post_accumulate_grad_hook(self, hook):
    """Register ``hook(tensor)``, called after backward has accumulated this leaf's ``.grad`` (for an
    optimizer step fused into backward, say). Returns a handle with ``remove()``."""
    refused = "post accumulate grad hooks cannot be registered on non-leaf tensors"
    return register_leaf_hook(self, hook, "_post_accumulate_grad_hooks", _POST_ACC, refused)


def register_leaf_hook(tensor, hook, attr, count, non_leaf_error):
    """Add ``hook`` to the leaf's ``{key: hook}`` dict ``attr`` (made on first use, then ``count[0]`` is bumped:
    the engine looks for such hooks only while the count is non-zero). Returns a handle with ``remove()``.

    Raises:
        RuntimeError: ``tensor`` does not require grad, or is not a leaf (``non_leaf_error``).
    """
    if not tensor._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if tensor._op is not None:
        raise RuntimeError(non_leaf_error)
    hooks = tensor.__dict__.get(attr)
    if hooks is None:
        hooks = {}
        setattr(tensor, attr, hooks)
        count[0] += 1
    key = next(_ids)
    hooks[key] = hook
    return RemovableHandle(hooks, key)


def run_post_accumulate_grad_hooks(tensors):
    """Call the post-accumulate-grad hooks of the leaves among ``tensors``, each leaf once."""
    seen = set()
    for t in tensors:
        hooks = t.__dict__.get("_post_accumulate_grad_hooks")
        if hooks and t._op is None and id(t) not in seen:
            seen.add(id(t))
            for hook in list(hooks.values()):
                hook(t)


# ---------------------------------------------------------------------------------------------------------
# hooks on grad_fn nodes

_outputs = weakref.WeakKeyDictionary()  # Node -> weakref to the tensor it produced
_tensor_grad_fn = Tensor.grad_fn


def _grad_fn(self):
    node = _tensor_grad_fn.fget(self)
    if node is not None and node not in _outputs:
        _outputs[node] = weakref.ref(self)
    return node


def _output_of(node):
    if isinstance(node, AccumulateGrad):
        return node.variable
    ref = _outputs.get(node)
    out = ref() if ref is not None else None
    if out is None:
        raise RuntimeError(f"the output of {node.name()} no longer exists: its hooks cannot be registered")
    return out


def _sum_to(g, shape):
    """Undo broadcasting: sum ``g`` down to ``shape`` (the sweep does this for the rules' results)."""
    if g is None or tuple(g.shape) == tuple(shape):
        return g
    data = np.asarray(g._data)
    lead = data.ndim - len(shape)
    data = data.sum(axis=tuple(range(lead))) if lead > 0 else data
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and data.shape[i] != 1)
    return wrap_array(data.sum(axis=axes, keepdims=True) if axes else data)


def _node_register_prehook(self, hook):
    """Register ``hook(grad_outputs) -> None or new grad_outputs``, called before this node's backward."""

    def tensor_hook(g):
        result = hook((g,))
        if result is None:
            return None
        result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        return result[0]

    return _output_of(self).register_hook(tensor_hook)


def _node_register_hook(self, hook):
    """Register ``hook(grad_inputs, grad_outputs) -> None or new grad_inputs``, called with the gradients this
    node passes to its inputs (computed from its rule) and the gradient it received; what it returns (a tuple,
    one gradient or None per grad_input, as torch checks it) goes to the inputs in place of the rule's. Hooks
    run in the order registered, each seeing what the previous returned.

    Raises (when backward runs the hook, with torch's messages): TypeError for a result that is not a tuple or
    holds something other than tensors and None; RuntimeError for the wrong number of values, a changed size or
    dtype, or a value for an input that gets no gradient."""
    if isinstance(self, AccumulateGrad):
        raise RuntimeError("register_hook on AccumulateGrad: use Tensor.register_post_accumulate_grad_hook")
    out = _output_of(self)
    name = getattr(hook, "__name__", type(hook).__name__)

    def tensor_hook(g):
        op = out._op
        if op is None or op.vjp is None:
            raise RuntimeError(f"{self.name()} has no differentiable rule for its hook")
        earlier = engine.replaced_grad_inputs.get(id(out))  # (what an earlier hook on this node returned)
        if earlier is not None and earlier[0] is out:
            grad_inputs = list(earlier[1])
        else:
            grad_inputs = _rule_grad_inputs(out, g)
        layout = _TORCH_LAYOUTS.get(op.code)
        shown = layout[0](out, grad_inputs) if layout is not None else list(grad_inputs)
        scalar_edges = len(self.next_functions) - len(shown)  # (x * 2: torch's edge of the Python scalar)
        result = hook((*shown, *[None] * scalar_edges), (g,))
        if result is None:
            return None
        new = _checked_grad_inputs(result, shown + [None] * scalar_edges, name)[: len(shown)]
        if layout is not None:
            new = layout[1](out, new)
        if out._dev is not None:
            raise NotImplementedError(
                f"a hook on {self.name()} returned new grad_inputs: ad uses them for CPU tensors only; return None "
                "and register hooks on the input tensors instead"
            )
        engine.replaced_grad_inputs[id(out)] = (out, new)  # (taken by the sweep: engine.take_replaced_grad_inputs)
        return None

    return out.register_hook(tensor_hook)


def _rule_grad_inputs(out, g):
    """The gradients ``out``'s node passes to its operands (``_inputs`` order; None where one needs none)."""
    inputs = engine._inputs_of(out)
    grads = out._op.vjp(g, out, inputs, out._ctx)  # (in the sweep's grad mode: differentiable with create_graph)
    grad_inputs = []
    for inp, gi in zip(inputs, grads):
        if inp is None or not getattr(inp, "_rg", False) or gi is None:
            grad_inputs.append(None)
            continue
        if not isinstance(gi, Tensor):
            gi = wrap_array(np.broadcast_to(np.asarray(gi, dtype=inp.dtype), inp.shape).copy())
        grad_inputs.append(_sum_to(gi, inp.shape))
    return grad_inputs


def _checked_grad_inputs(result, shown, name):
    """A node hook's result checked as torch checks it against the grad_inputs it was shown; a list."""
    if not isinstance(result, tuple):
        raise TypeError(f"expected tuple, but hook returned '{type(result).__name__}'")
    if len(result) != len(shown):
        raise RuntimeError(
            f"hook '{name}' has returned an incorrect number of values (got {len(result)}, but expected {len(shown)})"
        )
    for new, old in zip(result, shown):
        if new is None:
            continue
        if not isinstance(new, Tensor):
            raise TypeError(f"expected Variable, but hook returned '{type(new).__name__}'")
        if old is None:
            raise RuntimeError("can't replace a None gradient with a non-None value")
        if new.dtype != old.dtype:
            raise RuntimeError(
                f"hook '{name}' has changed the type of value (was torch.{_tensor_type(old)} got "
                f"torch.{_tensor_type(new)})"
            )
        if new.shape != old.shape:
            raise RuntimeError(f"hook '{name}' has changed the size of value")
    return list(result)


def _tensor_type(t):
    return {"float64": "DoubleTensor", "float32": "FloatTensor"}.get(t.dtype.name, f"{t.dtype.name}Tensor")


def _transposed(g):
    return None if g is None else g.T


# torch's grad_inputs of ad's fused linear rows, in torch's node's order: AddmmBackward0 (bias, input, weight.T),
# MmBackward0 (input, weight.T); ad's operands are (input, weight[, bias]). (shown from ad's, ad's from shown)
_TORCH_LAYOUTS = {
    K.LINEAR_BIAS: (
        lambda out, g: [g[2], g[0], _transposed(g[1])],
        lambda out, g: [g[1], _transposed(g[2]), g[0]],
    ),
    K.LINEAR: (
        lambda out, g: [g[0], _transposed(g[1])],
        lambda out, g: [g[0], _transposed(g[1])],
    ),
}


def bind():
    Tensor.register_post_accumulate_grad_hook = register_post_accumulate_grad_hook
    Tensor.grad_fn = property(_grad_fn)
    Node.register_prehook = _node_register_prehook
    Node.register_hook = _node_register_hook


# ---------------------------------------------------------------------------------------------------------
# gradient edges and the version counter


class GradientEdge(NamedTuple):
    """Object representing a given gradient edge within the autograd graph: the ``node`` that receives the
    gradient and which of its outputs (``output_nr``) it is. ``ownership_token`` is torch's (None here too).

    Get one with ``get_gradient_edge(tensor)``; ``autograd.grad`` and ``autograd.backward`` accept one as an
    output or as an input.
    """

    node: object
    output_nr: int
    ownership_token: object = None


def get_gradient_edge(tensor):
    """The ``GradientEdge`` where ``tensor``'s gradient is computed: its ``grad_fn`` (a leaf's
    ``AccumulateGrad``) and the output number. It keeps pointing at that node after ``tensor`` is modified in
    place, so ``grad(out, edge)`` then gives the gradient with respect to the value before the write.

    Raises:
        RuntimeError: ``tensor`` does not require grad (torch's message).

    Example:
        >>> y = x * 2
        >>> edge = ad.autograd.graph.get_gradient_edge(y)
        >>> y.mul_(3)
        >>> ad.autograd.grad((y * y).sum(), edge)  # d/d(y before mul_)
    """
    if not isinstance(tensor, Tensor) or not tensor._rg:
        raise RuntimeError("It is not possible to get the gradient edge for a Tensor that does not require gradients")
    if tensor._op is None:
        return GradientEdge(tensor._accumulate_node(), 0)
    holder = _pre_write_node(tensor)
    node = holder.grad_fn
    _outputs[node] = weakref.ref(holder)
    output_nr = 0
    ctx = holder._ctx
    if holder._op.code == K.PYTHON:  # a custom Function's outputs: numbered as forward returned them
        for k, o in enumerate(ctx.outputs):
            if o is holder:
                output_nr = k
    return GradientEdge(node, output_nr)


def edge_tensor(edge):
    """The tensor whose gradient ``edge`` names: a leaf's for an ``AccumulateGrad`` node, else the recorded
    tensor that holds ``edge.node`` (after in-place writes, the pre-write object on its ``_prev`` chain).

    Raises:
        RuntimeError: the node's output no longer exists.
    """
    node = edge.node
    if isinstance(node, AccumulateGrad):
        return node.variable
    if not isinstance(node, Node):
        raise RuntimeError(f"a GradientEdge's node must be an ad graph node, got {type(node).__name__}")
    ref = _outputs.get(node)
    t = ref() if ref is not None else None
    while t is not None and t.__dict__.get("_node") is not node:
        t = t._prev
    if t is None:
        raise RuntimeError(f"the output of {node.name()} that this GradientEdge names no longer exists")
    return t


def increment_version(tensor):
    """Bump the version counter of ``tensor`` (or of each tensor of an iterable) as an in-place write would,
    without writing: a backward that needs a value saved before then raises the modified-in-place error.

    Raises:
        RuntimeError: ``tensor`` is neither a tensor nor an iterable of tensors (torch's messages; the tensors
            before a bad element are bumped, as torch).

    Example:
        >>> y = x.exp()          # saves its result
        >>> ad.autograd.graph.increment_version(y)
        >>> y.sum().backward()   # RuntimeError: ... modified by an inplace operation
    """
    from ..storage import _bump

    if isinstance(tensor, Tensor):
        _bump(tensor)
        return
    try:
        items = iter(tensor)
    except TypeError:
        raise RuntimeError("increment_version expect a Iterable[Tensor] as input") from None
    for t in items:
        if not isinstance(t, Tensor):
            raise RuntimeError("increment_version expects each element of the iterable to be a tensor")
        _bump(t)


from .multi_grad_hooks import register_multi_grad_hook  # noqa: E402 - it imports nothing from here
from .saved_mutation import allow_mutation_on_saved_tensors  # noqa: E402, I001 - it imports saved_tensors_hooks
