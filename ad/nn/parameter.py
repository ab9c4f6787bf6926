"""``Parameter`` (a leaf tensor that a ``Module`` registers) and ``Buffer`` (a tensor it registers as state);
``UninitializedParameter`` / ``UninitializedBuffer``, the shapeless placeholders of the ``Lazy*`` modules,
which ``materialize(shape)`` turns into a ``Parameter`` / ``Tensor`` in place (the same object, so optimizers
and hooks that hold it keep working).

A ``Parameter`` is a ``Tensor`` subclass sharing the array of the tensor it wraps (no copy, as torch), made a
leaf that requires grad by default. Ops on it return plain ``Tensor`` results.
"""

import copy

from ..tensor import Tensor, _new

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"]


def _rebuild_parameter(data, requires_grad):
    return Parameter(data, requires_grad)


class Parameter(Tensor):
    """A tensor that, assigned as an attribute of a ``Module``, appears in its ``parameters()``.

    Args:
        data (Tensor): the values, shared (not copied); an empty float64 tensor if ``None``.
        requires_grad (bool): default ``True``.

    Example:
        >>> w = ad.nn.Parameter(ad.zeros(3))
        >>> w.requires_grad, w.is_leaf
        (True, True)
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        p = _new(cls)
        p._data = data._data
        p._dev = data._dev  # (a CUDA tensor's device array needs its device beside it)
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad=True):
        pass  # everything happens in __new__ (Tensor.__init__ would replace the shared array)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return _rebuild_parameter, (Tensor(self._data.copy()), self._rg)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        if self._dev is not None:  # a device array has no deepcopy: a copy on the same device
            from ..grad_mode import no_grad

            with no_grad():
                data = self.detach().clone()
        else:
            data = Tensor(copy.deepcopy(self._data, memo))
        result = Parameter(data, self._rg)
        memo[id(self)] = result
        return result


class _BufferMeta(type):
    def __instancecheck__(cls, instance):
        return isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False)


class Buffer(Tensor, metaclass=_BufferMeta):
    """Marks a tensor as a buffer when assigned to a ``Module`` attribute (``persistent=False``: not in the
    state dict). ``Buffer(t)`` returns ``t`` itself, flagged, as torch does."""

    def __new__(cls, data=None, *, persistent=True):
        if data is None:
            from ..creation import empty

            data = empty(0)
        data._is_buffer = True
        data._buffer_persistent = persistent
        return data


_UNINITIALIZED_USE = (
    "Attempted to use an uninitialized parameter in {}. This error happens when you are using a `LazyModule` or "
    "explicitly manipulating `torch.nn.parameter.{}` objects. When using LazyModules Call `forward` with a dummy "
    "batch to initialize the parameters before calling torch functions"
)


class UninitializedTensorMixin:
    """A tensor with a dtype and device but no shape yet. Its array lives in ``_uninit`` (empty) and reading
    ``_data`` -- which every op does -- raises torch's ValueError, so an op cannot silently compute with it.
    ``materialize`` gives it an (uninitialised) array of the shape and turns it into ``cls_to_become``."""

    cls_to_become = None

    @property
    def _data(self):
        raise ValueError(_UNINITIALIZED_USE.format("an ad operation", type(self).__name__))

    @_data.setter
    def _data(self, value):
        self._uninit = value

    @property
    def dtype(self):
        return self._uninit.dtype

    @property
    def shape(self):
        raise RuntimeError(
            "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
            "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
            "`forward` to initialize the parameters before accessing their attributes."
        )

    def size(self, dim=None):
        return self.shape

    def materialize(self, shape, device=None, dtype=None):
        """Give this placeholder an uninitialised array of ``shape`` (its dtype and device unless given) and make
        it a ``cls_to_become`` (``Parameter`` or ``Tensor``), in place."""
        from ..creation import empty

        shape = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
        data = empty(*shape, dtype=self._uninit.dtype if dtype is None else dtype, device=device or self.device)
        self.__class__ = self.cls_to_become
        self.__dict__.pop("_uninit", None)
        self._data = data._data
        self._dev = data._dev

    def _apply_to_placeholder(self, fn):
        """``Module._apply`` on a placeholder: ``fn`` (``.double()``, ``.to(device)``) applied to its empty array,
        so the dtype and device it will materialize with follow the module's, as torch."""
        from ..tensor import Tensor

        stand_in = Tensor(self._uninit)
        stand_in._dev = self._dev
        new = fn(stand_in)
        self._uninit, self._dev = new.__dict__["_data"], new._dev

    def share_memory_(self):
        raise RuntimeError(
            "Can't share memory on an uninitialized parameter or buffer. Call `forward` to initialize the "
            "parameters before calling `module.share_memory()`."
        )

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, protocol):
        return type(self), (self.requires_grad,)

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, dtype=self._uninit.dtype)
        return memo[id(self)]


def _placeholder(cls, base, requires_grad, device, dtype):
    from ..creation import empty

    t = base(empty(0, dtype=dtype, device=device), requires_grad)
    data = t.__dict__.pop("_data")
    t.__class__ = cls
    t._uninit = data
    return t


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape a ``Lazy*`` module infers from its first input (``materialize`` then makes it a
    ``Parameter``). Any op on it raises ValueError, as torch.

    Example:
        >>> p = ad.nn.UninitializedParameter()
        >>> p.materialize((2, 3)); type(p).__name__, p.shape
        ('Parameter', (2, 3))
    """

    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        return _placeholder(cls, Parameter, requires_grad, device, dtype)

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape a ``Lazy*`` module infers from its first input (``materialize`` makes it a
    ``Tensor``)."""

    cls_to_become = Tensor

    def __new__(cls, requires_grad=False, device=None, dtype=None):
        return _placeholder(cls, lambda data, rg: data.requires_grad_(rg) if rg else data, requires_grad, device, dtype)

    def __init__(self, requires_grad=False, device=None, dtype=None):
        pass


def is_lazy(param):
    """Whether ``param`` is an uninitialised placeholder of a ``Lazy*`` module."""
    return isinstance(param, UninitializedTensorMixin)
