"""``Parameter`` (a leaf tensor that a ``Module`` registers) and ``Buffer`` (a tensor it registers as state).

A ``Parameter`` is a ``Tensor`` subclass sharing the array of the tensor it wraps (no copy, as torch), made a
leaf that requires grad by default. Ops on it return plain ``Tensor`` results.
"""

import copy

from ..tensor import Tensor, _new

__all__ = ["Parameter", "Buffer"]


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
