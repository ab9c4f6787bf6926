"""Conveniences a torch user reaches for: ``ad.Size``, the default dtype, ``inference_mode``, the dtype
methods of ``Tensor`` (``.long()``, ``.int()``, ``.half()``, ...) and the extra dtype names.

The default floating dtype lives in ``ad.creation._default_float`` (float64 unless ``set_default_dtype``
changed it): the creation functions read it where no dtype is given.
"""

import functools

import numpy as np

from . import creation
from .grad_mode import _grad_state, _GradModeContext
from .tensor import Tensor, wrap_array

__all__ = [
    "Size",
    "get_default_dtype",
    "set_default_dtype",
    "inference_mode",
    "is_inference_mode_enabled",
    "int8",
    "int16",
    "uint8",
    "half",
    "short",
    "int",
    "char",
    "byte",
]

int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
uint8 = np.dtype(np.uint8)
half = np.dtype(np.float16)
short = int16
int = np.dtype(np.int32)  # noqa: A001 - torch's name
char = int8
byte = uint8


class Size(tuple):
    """A shape: a tuple of ints with ``numel()`` and torch's repr."""

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, key):
        out = super().__getitem__(key)
        return Size(out) if isinstance(key, slice) else out

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __repr__(self):
        return f"ad.Size({list(self)})"


def get_default_dtype():
    """The floating dtype that creation functions use when none is given (``ad.float64`` unless changed)."""
    return creation._default_float


def set_default_dtype(d):
    """Set the default floating dtype (``ad.float32``, ``ad.float64`` or ``ad.float16``).

    Raises:
        TypeError: ``d`` is not a floating point dtype.
    """
    try:
        dt = np.dtype(d)
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f" or dt.itemsize not in (2, 4, 8):
        raise TypeError(f"only floating-point types are supported as the default type (got {d})")
    creation._default_float = dt


class _InferenceState:
    depth = 0


class inference_mode(_GradModeContext):
    """``no_grad`` for inference (torch's faster variant); ``inference_mode(False)`` leaves grad mode alone.
    Works as a context manager and as a decorator. ad does not mark the tensors made inside as inference
    tensors: they behave as tensors made under ``no_grad``."""

    def __new__(cls, mode=True):
        self = object.__new__(cls)
        if callable(mode) and not isinstance(mode, bool):
            self._mode_flag = True
            return self(mode)
        return self

    def __init__(self, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            mode = True
        self._mode_flag = bool(mode)

    def __enter__(self):
        self._prev = _grad_state.enabled
        if self._mode_flag:
            _grad_state.set(False)
            _InferenceState.depth += 1
        return None

    def __exit__(self, *exc):
        if self._mode_flag:
            _InferenceState.depth -= 1
        _grad_state.set(self._prev)
        return False

    def __call__(self, fn):
        flag = self._mode_flag

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(flag):
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return inference_mode(self._mode_flag)


def is_inference_mode_enabled():
    return _InferenceState.depth > 0


def _to_dtype(dtype):
    def method(self, memory_format=None):
        if self.dtype == dtype:
            return self
        if dtype.kind != "f" or dtype.itemsize < 4:
            # not differentiable in ad (integers, bool; float16 has no tape): a new tensor without a graph
            return wrap_array(self._data.astype(dtype))
        return self.to(dtype)

    method.__name__ = dtype.name
    method.__doc__ = f"This tensor as {dtype.name} (``self`` if it already is)."
    return method


def bind():
    """Add the dtype methods to ``Tensor``."""
    for name, dtype in (
        ("long", np.dtype(np.int64)),
        ("int", int),
        ("short", int16),
        ("char", int8),
        ("byte", uint8),
        ("bool", np.dtype(np.bool_)),
        ("half", half),
        ("float", np.dtype(np.float32)),
        ("double", np.dtype(np.float64)),
    ):
        setattr(Tensor, name, _to_dtype(dtype))
    Tensor.is_floating_point = lambda self: self.dtype.kind == "f"
    Tensor.element_size = lambda self: self.dtype.itemsize
    Tensor.nelement = Tensor.numel
