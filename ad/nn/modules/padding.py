"""Padding modules over ``F.pad``: ``ConstantPad*`` / ``ZeroPad*`` (a fill value), ``ReflectionPad*``,
``ReplicationPad*`` and ``CircularPad*``. ``padding`` is an int (every side) or torch's flat tuple
``(left_last, right_last, left_2nd_last, ...)``; ``1d``/``2d``/``3d`` pad the last one, two or three dims."""

from .. import functional as F
from .module import Module
from .utils import _ntuple

__all__ = [
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
]

# the padding tuple of a 1d / 2d / 3d pad: two ints per padded dim
_PADDING = {1: _ntuple(2, "_pair"), 2: _ntuple(4, "_quadruple"), 3: _ntuple(6, "_sextuple")}


class _PadNd(Module):
    _dims = 1
    _mode = ""

    def __init__(self, padding):
        super().__init__()
        self.padding = _PADDING[self._dims](padding)

    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    _mode = "constant"

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with ``value``: ``ConstantPad1d((1, 2), 3.5)`` adds one element left, two right."""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    _dims = 3


class _ZeroPad:
    """Mixin: a constant pad with value 0 whose repr shows only the padding (as torch)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPad, ConstantPad1d):
    """Pads the last dim with zeros."""


class ZeroPad2d(_ZeroPad, ConstantPad2d):
    """Pads the last two dims with zeros."""


class ZeroPad3d(_ZeroPad, ConstantPad3d):
    """Pads the last three dims with zeros."""


class ReflectionPad1d(_PadNd):
    """Pads with the reflection of the input, not repeating the edge element (``[1, 2, 3]`` -> ``[2, 1, 2, 3, 2]``)."""

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(ReflectionPad1d):
    _dims = 2


class ReflectionPad3d(ReflectionPad1d):
    _dims = 3


class ReplicationPad1d(_PadNd):
    """Pads by repeating the edge element."""

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(ReplicationPad1d):
    _dims = 2


class ReplicationPad3d(ReplicationPad1d):
    _dims = 3


class CircularPad1d(_PadNd):
    """Pads by wrapping around (periodic boundary); the input must be batched or unbatched (C, ...)."""

    _dims, _mode = 1, "circular"

    def forward(self, input):  # noqa: A002
        if input.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"expected {self._dims + 1}D or {self._dims + 2}D input (got {input.ndim}D input)")
        return super().forward(input)


class CircularPad2d(CircularPad1d):
    _dims = 2


class CircularPad3d(CircularPad1d):
    _dims = 3
