"""``ad.nn.utils.parametrize``: express a module's parameter or buffer as a function of other tensors, as
``torch.nn.utils.parametrize``.

Data structures (torch's): registering a parametrization on ``module.<name>`` moves the tensor into a
``ParametrizationList`` (a ``ModuleList`` of the parametrization modules) held at
``module.parametrizations[<name>]``; the tensor itself becomes ``...original`` (or ``original0``, ``original1``,
... when the first parametrization's ``right_inverse`` returns several tensors), so the state dict's keys read
``parametrizations.<name>.original``. The module's class is swapped for a subclass ``Parametrized<Class>``, made
for this one module, with a property ``<name>`` whose getter runs the list (``original`` through each
parametrization in turn) and whose setter runs each ``right_inverse`` in reverse order and writes the result
into the originals. ``remove_parametrizations`` undoes it and restores the class when none is left.

``cached()`` makes each parametrized tensor computed once inside the context (for a forward that reads a weight
several times, as in an RNN step).
"""

from collections.abc import Sequence
from contextlib import contextmanager

from ...grad_mode import no_grad
from ...methods import _bump
from ...tensor import Tensor
from ..modules.container import ModuleDict, ModuleList
from ..modules.module_state import _size_str
from ..parameter import Parameter

__all__ = [
    "ParametrizationList",
    "cached",
    "is_parametrized",
    "register_parametrization",
    "remove_parametrizations",
    "transfer_parametrizations_and_params",
    "type_before_parametrizations",
]

_cache_depth = 0
_cache = {}  # (id(module), name) -> the parametrized tensor, while cached() is active


@contextmanager
def cached():
    """Inside this context each parametrized tensor is computed once, at its first read, and reused.

    Example:
        >>> with ad.nn.utils.parametrize.cached():
        ...     out = rnn(x)  # every step reads the same parametrized weight
    """
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _dtype_str(dtype):
    return f"ad.{dtype}"


def _store(dest, value):
    """Write ``value`` into the original ``dest`` keeping ``dest``'s identity (torch's ``set_``): an optimizer that
    holds the parameter keeps seeing it. A new shape rebinds the data."""
    with no_grad():
        if dest.shape == value.shape and dest.device == value.device:
            dest.copy_(value)
        else:
            fresh = value.detach().clone()
            dest._data = fresh._data
            dest._dev = fresh._dev
            _bump(dest)


def _register_parameter_or_buffer(module, name, value):
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and its original(s): ``original`` when the first ``right_inverse``
    gives one tensor (``is_tensor``), else ``original0 ... original{ntensors - 1}``. Calling the list computes the
    parametrized tensor; ``right_inverse(value)`` writes ``value`` back into the originals.

    Raises:
        ValueError: no modules; ``right_inverse`` returned something other than tensors, or (unless ``unsafe``)
            one tensor of another dtype; the parametrization changes the tensor's dtype or shape, or returns no
            tensor (unless ``unsafe``).
    """

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = original.shape, original.dtype
        with no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass  # (no inverse: the original is kept as it is)
        if not isinstance(new, Tensor) and not isinstance(new, Sequence):
            raise ValueError(
                "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                f"Got {type(new).__name__}"
            )
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError(
                    "When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                    f"original.dtype: {_dtype_str(original.dtype)}\n"
                    f"right_inverse(original).dtype: {_dtype_str(new.dtype)}"
                )
            if new is not original:
                _store(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, t in enumerate(new):
                if not isinstance(t, Tensor):
                    raise ValueError(
                        "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                        f"Got element {i} of the sequence with type {type(t).__name__}."
                    )
                if isinstance(original, Parameter):
                    t = Parameter(t.detach(), original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", t)
        if not self.unsafe:
            with no_grad():
                z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if z.dtype != original_dtype:
                raise ValueError(
                    "Registering a parametrization may not change the dtype of the tensor, unless `unsafe` flag is "
                    f"enabled.\nunparametrized dtype: {_dtype_str(original_dtype)}\n"
                    f"parametrized dtype: {_dtype_str(z.dtype)}"
                )
            if z.shape != original_shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, unless `unsafe` flag is "
                    f"enabled.\nunparametrized shape: {_size_str(original_shape)}\n"
                    f"parametrized shape: {_size_str(z.shape)}"
                )

    def _originals(self):
        if self.is_tensor:
            return (self.original,)
        return tuple(getattr(self, f"original{i}") for i in range(self.ntensors))

    def right_inverse(self, value):
        """Write ``value`` (a tensor of the parametrized shape) into the originals: each parametrization's
        ``right_inverse`` in reverse order, under ``no_grad``.

        Raises:
            RuntimeError: a parametrization has no ``right_inverse``. ValueError: the result's count, type or
                dtype does not fit the originals.
        """
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(
                        f"The tensor returned by `right_inverse` has dtype {_dtype_str(value.dtype)} while "
                        f"`original` has dtype {_dtype_str(self.original.dtype)}"
                    )
                _store(self.original, value)
                return
            if not isinstance(value, Sequence):
                raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
            if len(value) != self.ntensors:
                raise ValueError(
                    f"'right_inverse' must return a sequence of tensors of length {self.ntensors}. "
                    f"Got a sequence of length {len(value)}."
                )
            for i, (t, original) in enumerate(zip(value, self._originals())):
                if not isinstance(t, Tensor):
                    raise ValueError(
                        f"`right_inverse` must return a sequence of tensors. Got element {i} of type "
                        f"{type(t).__name__}"
                    )
                if t.dtype != original.dtype:
                    raise ValueError(
                        f"Tensor {i} returned by `right_inverse` has dtype {_dtype_str(t.dtype)} while `original{i}` "
                        f"has dtype {_dtype_str(original.dtype)}"
                    )
                _store(original, t)

    def forward(self):
        modules = list(self)
        x = modules[0](*self._originals())
        for module in modules[1:]:
            x = module(x)
        return x


def _deepcopy_parametrized(self, memo):
    copy = self.__class__.__new__(self.__class__)
    memo[id(self)] = copy
    from copy import deepcopy

    copy.__dict__.update(deepcopy(self.__dict__, memo))
    return copy


def _refuse_pickle(self):
    raise RuntimeError(
        "Serialization of parametrized modules is only supported through state_dict(): save "
        "module.state_dict() and load it into a module parametrized the same way."
    )


def _inject_new_class(module):
    """Swap ``module``'s class for a subclass of its own (one per module: the properties are per module)."""
    cls = module.__class__
    module.__class__ = type(
        f"Parametrized{cls.__name__}",
        (cls,),
        {"__getstate__": _refuse_pickle, "__deepcopy__": _deepcopy_parametrized, "__module__": cls.__module__},
    )


def _inject_property(module, name):
    def get_parametrized(self):
        parametrization = self.parametrizations[name]
        if not _cache_depth:
            return parametrization()
        key = (id(self), name)
        tensor = _cache.get(key)
        if tensor is None:
            tensor = _cache[key] = parametrization()
        return tensor

    def set_original(self, value):
        self.parametrizations[name].right_inverse(value)

    setattr(module.__class__, name, property(get_parametrized, set_original))


def is_parametrized(module, tensor_name=None):
    """Whether ``module`` has a parametrization (on ``tensor_name``, when given)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def type_before_parametrizations(module):
    """The class ``module`` had before its first parametrization (``type(module)`` when it has none)."""
    return module.__class__.__bases__[0] if is_parametrized(module) else type(module)


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Make ``module.<tensor_name>`` read as ``parametrization(original)``, as ``torch.nn.utils.parametrize``.

    Args:
        module (Module): the module holding the parameter or buffer.
        tensor_name (str): its name; registering on a name that is parametrized already appends
            ``parametrization`` after the existing ones.
        parametrization (Module): ``forward(x)`` gives the tensor (``forward(*originals)`` when its
            ``right_inverse`` returns a sequence); an optional ``right_inverse(value)`` initializes the original(s)
            from the current tensor and makes ``module.<tensor_name> = value`` possible.
        unsafe (bool): skip the checks that the parametrization keeps the dtype and shape.

    Returns:
        ``module`` (its class becomes ``Parametrized<Class>``).

    Raises:
        ValueError: ``module`` has no parameter, buffer or parametrized tensor called ``tensor_name``; the
            parametrization changes the dtype or shape (unless ``unsafe``) or returns no tensor.

    Example:
        >>> class Symmetric(ad.nn.Module):
        ...     def forward(self, x):
        ...         return x.triu() + x.triu(1).mT
        >>> m = register_parametrization(ad.nn.Linear(3, 3), "weight", Symmetric())
        >>> bool((m.weight == m.weight.T).all()), list(m.state_dict())
        (True, ['bias', 'parametrizations.weight.original'])
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            current = getattr(module, tensor_name)
            x = parametrization(current)
            if not isinstance(x, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(x).__name__}.")
            if x.dtype != current.dtype:
                raise ValueError(
                    "Registering a parametrization may not change the dtype of the tensor, unless the `unsafe` flag "
                    f"is enabled.\nmodule.{tensor_name}.dtype: {_dtype_str(current.dtype)}\n"
                    f"parametrization(module.{tensor_name}).dtype: {_dtype_str(x.dtype)}"
                )
            if x.shape != current.shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, unless the `unsafe` flag "
                    f"is enabled.\nmodule.{tensor_name}.shape: {_size_str(current.shape)}\n"
                    f"parametrization(module.{tensor_name}).shape: {_size_str(x.shape)}"
                )
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    if not isinstance(z, Tensor):
                        raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(z).__name__}")
                    if z.dtype != current.dtype or z.shape != current.shape:
                        raise ValueError(
                            "The tensor returned by parametrization.right_inverse must have the same dtype and "
                            f"shape as module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                            f"module.{tensor_name}: {_dtype_str(current.dtype)} {_size_str(current.shape)}\n"
                            f"returned: {_dtype_str(z.dtype)} {_size_str(z.shape)}"
                        )
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name not in module._buffers and tensor_name not in module._parameters:
        raise ValueError(
            f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with name "
            f"'{tensor_name}'"
        )
    original = getattr(module, tensor_name)
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_new_class(module)
        module.parametrizations = ModuleDict()
    _inject_property(module, tensor_name)
    module.parametrizations[tensor_name] = plist
    return module


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Remove the parametrizations on ``module.<tensor_name>``.

    Args:
        leave_parametrized (bool): the tensor keeps its current parametrized value (default); else it becomes the
            original again. With one original, the original's object is kept either way (an optimizer holding it
            keeps working).

    Returns:
        ``module``; its class is restored when no parametrization is left.

    Raises:
        ValueError: ``module.<tensor_name>`` is not parametrized; ``leave_parametrized=False`` with several
            originals.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            _store(original, value)
    else:
        if not leave_parametrized:
            raise ValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized in terms of "
                "a sequence of tensors."
            )
        with no_grad():
            value = getattr(module, tensor_name).detach()
        first = plist.original0
        original = Parameter(value, first.requires_grad) if isinstance(first, Parameter) else value
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def transfer_parametrizations_and_params(from_module, to_module, tensor_name=None):
    """Register ``from_module``'s parametrizations (all, or those on ``tensor_name``) on ``to_module``, sharing the
    parametrization modules and the original tensors. A tensor ``to_module`` lacks is created first.

    Returns:
        ``to_module`` (unchanged when ``from_module`` has no parametrization).
    """
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        if not hasattr(to_module, name):
            with no_grad():
                setattr(to_module, name, Parameter(getattr(from_module, name).detach().clone()))
        source = from_module.parametrizations[name]
        for parametrization in source:
            register_parametrization(to_module, name, parametrization)
        target = to_module.parametrizations[name]
        if source.is_tensor:
            target.original = source.original
        else:
            for i in range(source.ntensors):
                setattr(target, f"original{i}", getattr(source, f"original{i}"))
    return to_module

