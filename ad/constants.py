"""torch's top-level constants and layout names: ``pi``, ``e``, ``inf``, ``nan``, ``newaxis``, ``dtype`` (the class
of ``ad.float32`` and friends: numpy's ``np.dtype``, so ``isinstance(t.dtype, ad.dtype)`` holds), the layout
``strided`` (``Tensor.layout``: ad's tensors are all strided) and the memory formats ``contiguous_format``,
``channels_last``, ``channels_last_3d``, ``preserve_format``, which ad's ``memory_format=`` arguments accept (ad
keeps every tensor in its own layout: the values are the same, only torch's physical order would differ).
Also ``Tensor.data_ptr`` (the address of the first element; ``Tensor.is_pinned`` is ad/storage.py's).
"""

import math

import numpy as np

__all__ = [
    "channels_last", "channels_last_3d", "contiguous_format", "dtype", "e", "inf", "layout", "memory_format", "nan",
    "newaxis", "pi", "preserve_format", "strided",
]

pi = math.pi
e = math.e
inf = math.inf
nan = math.nan
newaxis = None
dtype = np.dtype


class _Named:
    """A named singleton that prints as ``ad.<name>`` (torch's ``torch.strided``, ``torch.channels_last``)."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"ad.{self._name}"

    __str__ = __repr__

    def __reduce__(self):
        return self._name  # pickles as the module-level singleton


class layout(_Named):  # noqa: N801 - torch's name
    """torch's ``torch.layout``: the kind of ``ad.strided``."""

    __slots__ = ()


class memory_format(_Named):  # noqa: N801 - torch's name
    """torch's ``torch.memory_format``: the kind of ``ad.contiguous_format``, ``ad.channels_last``, ..."""

    __slots__ = ()


strided = layout("strided")
contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")


def bind():
    """``Tensor.layout`` and ``Tensor.data_ptr``."""
    from .tensor import Tensor
    from .views import _addr

    def data_ptr(self):
        """``Tensor.data_ptr()``: the address of the tensor's first element (host or device memory)."""
        return int(_addr(self._data))

    Tensor.layout = property(lambda self: strided, doc="``Tensor.layout``: ``ad.strided`` (the only layout ad has).")
    Tensor.data_ptr = data_ptr
