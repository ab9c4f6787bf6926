"""``ad.func``: torch.func's function transforms (functorch) over ``ad``'s autograd.

``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian``, ``linearize``, ``vmap``,
``functional_call``, ``stack_module_state``, ``functionalize``, ``debug_unwrap`` and
``replace_all_batch_norm_modules_`` take torch.func's arguments
(``argnums`` as an int or a tuple, ``has_aux``, ``chunk_size``, ``in_dims`` / ``out_dims``, ``randomness``; pytrees
of tuples, lists and dicts as inputs and outputs) and raise torch's errors. Where to start reading:
``transforms.py`` (reverse mode on ``ad.autograd.grad`` with fresh leaves, forward mode on
``ad.autograd.forward_ad``, batched sweeps for the Jacobians), ``vmap.py`` (a loop over the examples: ``f`` runs
once per example, not as a batched trace), ``functional_call.py``, ``_pytree.py``.

Example (per-example gradients of a model's loss):
    >>> model = ad.nn.Linear(3, 1)
    >>> params = {k: v.detach() for k, v in model.named_parameters()}
    >>> def loss(p, x, y):
    ...     return ((ad.func.functional_call(model, p, (x,)) - y) ** 2).sum()
    >>> x, y = ad.randn(8, 3), ad.randn(8, 1)
    >>> g = ad.func.vmap(ad.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    >>> g["weight"].shape
    (8, 1, 3)
"""

from .batch_norm_replacement import replace_all_batch_norm_modules_
from .functional_call import functional_call, stack_module_state
from .transforms import (
    debug_unwrap,
    functionalize,
    grad,
    grad_and_value,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    vjp,
)
from .vmap import vmap

__all__ = [
    "debug_unwrap",
    "functional_call",
    "functionalize",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "replace_all_batch_norm_modules_",
    "stack_module_state",
    "vjp",
    "vmap",
]
