"""``LazyModuleMixin``: the machinery of the ``Lazy*`` modules (``LazyLinear``, ``LazyConv*``,
``LazyConvTranspose*``, ``LazyBatchNorm*``, ``LazyInstanceNorm*``, declared beside their non-lazy classes).

A lazy module starts with ``UninitializedParameter`` / ``UninitializedBuffer`` placeholders (no shape). A
forward pre-hook runs ``initialize_parameters(*args)`` on the first call: it reads the input's feature size,
``materialize``s each placeholder (the same objects, so an optimizer built before the first call holds them)
and calls ``reset_parameters``. Then the hook is removed and the module's class becomes ``cls_to_become``
(``LazyLinear`` -> ``Linear``), as torch. Loading a state dict into a lazy module materializes the placeholders
with the loaded shapes (``Module.load_state_dict``)."""

from ..parameter import is_lazy

__all__ = ["LazyModuleMixin"]


class LazyModuleMixin:
    """Mixed in before the layer class: ``class LazyLinear(LazyModuleMixin, Linear)``; the layer implements
    ``initialize_parameters(input)``."""

    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters, with_kwargs=True)

    def initialize_parameters(self, *args, **kwargs):
        raise NotImplementedError(f"initialize_parameters is not implemented for {self.__class__.__name__}")

    def has_uninitialized_params(self):
        """Whether a parameter or buffer of this module (not its children) is still a placeholder."""
        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def _infer_parameters(self, module, args, kwargs=None):
        module.initialize_parameters(*args, **(kwargs or {}))
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        del module._initialize_hook
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _replicate_for_data_parallel(self):
        raise RuntimeError(
            "Modules with uninitialized parameters can't be used with `DataParallel`. "
            "Run a dummy forward pass to correctly initialize the modules"
        )
