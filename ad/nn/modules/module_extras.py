"""``Module`` methods about where a module's state lives and how it runs: ``compile`` (its calls replayed by
``ad.compile``), ``to_empty`` (fresh uninitialised parameters and buffers on a device), ``share_memory``, and
torch's deprecated ``register_backward_hook`` (the "non-full" hook: it sees the gradients of the node that made
the module's output, not of the module's inputs).

They are attached to ``Module`` by ``bind`` (``ad/nn/modules/__init__.py``), keeping ``module.py`` to registration,
traversal, state dicts and hooks.
"""

import warnings

from ...grad_mode import no_grad
from ...methods import _bump
from ...tensor import Tensor
from ..parameter import is_lazy
from .module import MODE_CHANGES, Module


def compile(self, *args, **kwargs):  # noqa: A001 - torch's name
    """``Module.compile``: later calls of the module (forward and its hooks) run through ``ad.compile`` with the
    given arguments (torch's ``torch.compile`` ones), one recording per training mode. Returns None, as torch's.

    Example:
        >>> m = ad.nn.Linear(2, 1)
        >>> m.compile()
        >>> m(ad.ones(3, 2)).shape
        (3, 1)
    """
    self.__dict__["_compiled_call_impl"] = _ModeKeyedCall(self, *args, **kwargs)


class _ModeKeyedCall:
    """Calls of ``module`` (its ``_call_impl``) through ``ad.compile``, with the training flags of the module and of
    its submodules as an argument, so part of the signature: torch.compile guards on them, and a forward that
    branches on ``self.training`` (Dropout, BatchNorm, a user's ``if self.training``) must never replay the other
    mode's recording. The flags are read again only after some module's ``training`` was set
    (``module.MODE_CHANGES``), so a call costs a counter comparison; the tuple of flags is interned, so that
    ``ad.compile``'s same-arguments fast path sees the same object."""

    def __init__(self, module, *args, **kwargs):
        from ...compile import compile as ad_compile

        self.module = module
        self.compiled = ad_compile(_CallInModes(module), *args, **kwargs)
        self.seen = None
        self.modes = None
        self.interned = {}

    def __call__(self, *args, **kwargs):
        if self.seen != MODE_CHANGES[0]:
            modes = tuple(m.training for m in self.module.modules())
            self.modes = self.interned.setdefault(modes, modes)
            self.seen = MODE_CHANGES[0]
        return self.compiled(self.modes, *args, **kwargs)


class _CallInModes:
    """``module._call_impl`` with the training flags as a first argument (only a key for ``ad.compile``). An object,
    not a closure: ``copy.deepcopy`` of a compiled module must give a copy that calls the copied module."""

    def __init__(self, module):
        self._module = module
        self.__qualname__ = f"{type(module).__name__}._call_impl"  # (what ad.compile's warnings name)

    def __call__(self, modes, *args, **kwargs):
        return self._module._call_impl(*args, **kwargs)


class OptimizedModule(Module):
    """What ``ad.compile(module)`` returns, as torch's ``OptimizedModule``: a module that holds the original as
    ``_orig_mod`` (so its parameter and state-dict names start with ``_orig_mod.``, and ``train()``/``eval()``
    reach it) and whose calls run the original's (forward and hooks) through ``ad.compile``, one recording per
    training mode. Other attributes are the original's.

    Example:
        >>> m = ad.nn.Linear(2, 1)
        >>> cm = ad.compile(m)
        >>> [name for name, _ in cm.named_parameters()], cm.weight is m.weight
        (['_orig_mod.weight', '_orig_mod.bias'], True)
    """

    def __init__(self, mod, **compile_kwargs):
        super().__init__()
        self._orig_mod = mod
        self.__dict__["_compiled_forward"] = _ModeKeyedCall(mod, **compile_kwargs)

    def forward(self, *args, **kwargs):
        return self.__dict__["_compiled_forward"](*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("__") or "_modules" not in self.__dict__:  # (copy/pickle probes, half-built)
                raise
            return getattr(self._orig_mod, name)


def to_empty(self, *, device, recurse=True):
    """``Module.to_empty``: every parameter and buffer (of the children too, unless ``recurse=False``) replaced by
    an uninitialised tensor of its shape and dtype on ``device``, keeping the Parameter objects. Returns self."""
    from ...creation import empty

    def fresh(t):
        return empty(tuple(t.shape), dtype=t.dtype, device=device)

    modules = self.modules() if recurse else (self,)
    with no_grad():
        for m in modules:
            for p in m._parameters.values():
                if p is None or is_lazy(p):
                    continue
                new = fresh(p)
                p._data = new._data
                p._dev = new._dev
                _bump(p)
                if p._grad is not None:
                    p._grad = fresh(p._grad)
            for k, b in m._buffers.items():
                if b is not None and not is_lazy(b):
                    m._buffers[k] = fresh(b)
    return self


def share_memory(self):
    """``Module.share_memory``: ``share_memory_()`` on every parameter and buffer (see ``ad/storage.py``). Returns
    self."""
    for t in (*self.parameters(), *self.buffers()):
        t.share_memory_()
    return self


_MIXED_HOOKS = (
    "Cannot use both regular backward hooks and full backward hooks on a single Module. Please use only one of them."
)
_PLEASE = " Please use register_full_backward_hook to get the documented behavior."


def claim_backward_hook_kind(module, full):
    """torch's rule: a module's backward hooks are all full or all not (``_is_full_backward_hook``)."""
    kind = module.__dict__.get("_is_full_backward_hook")
    if kind is not None and kind != full:
        raise RuntimeError(_MIXED_HOOKS)
    module.__dict__["_is_full_backward_hook"] = full


def register_backward_hook(self, hook):
    """``Module.register_backward_hook`` (deprecated): after each call, ``hook(module, grad_input, grad_output)``
    is registered on the ``grad_fn`` of the module's first tensor output, so it sees that node's gradients (its
    inputs' and its output's, in torch's order for a Linear: bias, input, weight.T), with torch's FutureWarnings
    where they are not the module's. A hook that returns a tuple of new ``grad_input`` has them passed on to that
    node's inputs instead, as torch's. Returns a handle whose ``remove()`` unregisters it.

    Raises:
        RuntimeError: the module has full backward hooks (torch's message).

    Example:
        >>> lin = ad.nn.Linear(3, 2)
        >>> h = lin.register_backward_hook(lambda m, gi, go: tuple(None if g is None else 2 * g for g in gi))
        >>> lin(ad.ones(4, 3)).sum().backward()  # lin.bias.grad is [8., 8.]: twice the rule's
    """
    claim_backward_hook_kind(self, full=False)

    def attach(module, args, result):
        _attach_non_full(module, hook, args, result)

    return self.register_forward_hook(attach)


def _attach_non_full(module, hook, args, result):
    var = result
    while not isinstance(var, Tensor):
        if isinstance(var, dict):
            var = next((v for v in var.values() if isinstance(v, Tensor)), None)
        elif isinstance(var, (tuple, list)) and var:
            var = var[0]
        else:
            return
        if var is None:
            return
    grad_fn = var.grad_fn
    if grad_fn is None:
        return
    _warn_non_full(args, result, grad_fn)
    grad_fn.register_hook(lambda grad_input, grad_output: hook(module, grad_input, grad_output))


def _warn_non_full(inputs, result, grad_fn):
    """torch's FutureWarnings for a non-full hook that will not see the module's gradients."""

    def warn(message):
        warnings.warn(message + _PLEASE, FutureWarning, stacklevel=5)

    if isinstance(result, Tensor):
        result = (result,)
    elif not (isinstance(result, tuple) and all(isinstance(r, Tensor) for r in result)):
        warn(
            "Using non-full backward hooks on a Module that does not return a single Tensor or a tuple of Tensors is "
            "deprecated and will be removed in future versions. This hook will be missing some of the grad_output."
        )
        return
    if not all(isinstance(i, Tensor) for i in inputs):
        warn(
            "Using non-full backward hooks on a Module that does not take as input a single Tensor or a tuple of "
            "Tensors is deprecated and will be removed in future versions. This hook will be missing some of the "
            "grad_input."
        )
        return
    out_nodes = {r.grad_fn for r in result if r.grad_fn is not None}
    if len(out_nodes) > 1:
        warn(
            "Using a non-full backward hook when outputs are generated by different autograd Nodes is deprecated and "
            "will be removed in future versions. This hook will be missing some grad_output."
        )
    elif {i.grad_fn for i in inputs if i.grad_fn is not None} != {n for n, _ in grad_fn.next_functions}:
        warn(
            "Using a non-full backward hook when the forward contains multiple autograd Nodes is deprecated and will "
            "be removed in future versions. This hook will be missing some grad_input."
        )


def bind(module_class):
    for fn in (compile, to_empty, share_memory, register_backward_hook):
        setattr(module_class, fn.__name__, fn)
