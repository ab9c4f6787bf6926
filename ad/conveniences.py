"""Conveniences a torch user reaches for: ``ad.Size``, the default dtype, ``inference_mode``, the dtype
methods of ``Tensor`` (``.long()``, ``.int()``, ``.half()``, ...) and the extra dtype names.

The default floating dtype lives in ``ad.creation._default_float`` (float64 unless ``set_default_dtype``
changed it): the creation functions read it where no dtype is given.
"""

import builtins
import functools
import numbers
import sys
import warnings

import numpy as np

from . import creation
from .grad_mode import _grad_state, _GradModeContext
from .ops.out import write_result
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
            if self._dev is not None:  # (a CUDA tensor: the cast on the device)
                return self.detach().to(dtype)
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


# ---------------------------------------------------------------------------------------------------------
# More of torch's surface a port meets: ``Tensor.new_*``, the predicates and sizes, identity conjugations of real
# tensors, dtype promotion queries, ``logspace``/``scalar_tensor``/``empty_strided``, threads and determinism.


def _size_args(size, fn):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    if not all(isinstance(s, numbers.Integral) for s in size):
        raise TypeError(f"{fn}(): argument 'size' must be tuple of ints")
    return tuple(size)


def _new_factory(name, factory):
    def method(self, *size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
        return factory(
            _size_args(size, name),
            dtype=dtype if dtype is not None else self.dtype,
            device=device if device is not None else self.device,
            requires_grad=requires_grad,
        )

    method.__name__ = name
    method.__doc__ = f"``ad.{name[4:]}`` of ``size`` with this tensor's dtype and device unless told otherwise."
    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """``ad.full(size, fill_value)`` with this tensor's dtype and device unless told otherwise."""
    return creation.full(
        tuple(size), fill_value, dtype=dtype if dtype is not None else self.dtype,
        device=device if device is not None else self.device, requires_grad=requires_grad,
    )


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False, *, layout=None, pin_memory=False):
    """``ad.tensor(data)`` with this tensor's dtype and device unless told otherwise (a copy, no graph)."""
    if isinstance(data, Tensor):
        warnings.warn(
            "To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() or "
            "sourceTensor.detach().clone().requires_grad_(True), rather than tensor.new_tensor(sourceTensor).",
            UserWarning,
            stacklevel=2,
        )
        data = data.detach().cpu()._data
    return creation.tensor(
        data, dtype=dtype if dtype is not None else self.dtype,
        device=device if device is not None else self.device, requires_grad=requires_grad,
    )


def is_nonzero(input):
    """``bool`` of a one-element tensor (torch refuses none or several elements)."""
    n = input.numel()
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input.detach().cpu()._data.reshape(-1)[0])


def is_same_size(input, other):
    return tuple(input.shape) == tuple(other.shape)


def is_floating_point(input):
    return input.dtype.kind == "f"


def is_complex(input):
    return False  # ad has no complex dtype (see the README's op table)


def is_signed(input):
    return input.dtype.kind in "fi"


def _real_identity(name):
    def fn(input):
        return input

    fn.__name__ = name
    fn.__doc__ = f"``{name}`` of a real tensor: the tensor itself (ad has no complex dtype)."
    return fn


conj = _real_identity("conj")
resolve_conj = _real_identity("resolve_conj")
resolve_neg = _real_identity("resolve_neg")


def conj_physical(input, *, out=None):
    """A real tensor's physical conjugate: a copy (recorded, as torch's ``clone``)."""

    return write_result("conj_physical", input.clone(), out, same_dtype=True)


def _imag(self):
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def adjoint(input):
    """The conjugate transpose of the last two dims (a view): ``input.mH``."""
    return input.mH


def promote_types(type1, type2):
    """The dtype of an op on tensors of ``type1`` and ``type2``: numpy's promotion, which ad's ops follow (the README
    lists where it differs from torch's: an integer with float32 gives float64)."""
    return np.promote_types(np.dtype(type1), np.dtype(type2))


def result_type(tensor, other):
    """The dtype of ad's elementwise op on ``tensor1`` and ``tensor2`` (tensors or Python numbers; a number does
    not widen a tensor of its kind, as in torch and numpy 2)."""
    return np.result_type(*(t._data if isinstance(t, Tensor) else t for t in (tensor, other)))


def can_cast(from_, to):
    """Whether torch casts ``from_`` to ``to`` implicitly (to the same or a higher kind: bool < integer < float)."""
    rank = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
    return rank[np.dtype(from_).kind] <= rank[np.dtype(to).kind]


def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=False, requires_grad=False):
    """A 0-d tensor of the number ``s`` (the default float dtype unless ``dtype``)."""
    return creation.tensor(
        float(s), dtype=dtype if dtype is not None else creation._default_float, device=device,
        requires_grad=requires_grad,
    )


def logspace(start, end, steps=None, base=10.0, *, dtype=None, layout=None, device=None, requires_grad=False, out=None):
    """``base ** linspace(start, end, steps)``."""

    if steps is None:
        raise TypeError("logspace() missing required argument 'steps'")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = np.dtype(dtype) if dtype is not None else creation._default_float
    values = np.power(float(base), np.linspace(float(start), float(end), builtins.int(steps)))
    result = creation.tensor(values, dtype=dt, device=device, requires_grad=requires_grad)
    return write_result("logspace", result, out, warn_resize=False)


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """An uninitialised tensor of ``size`` with element ``stride`` (a view into a buffer just big enough)."""
    size, stride = tuple(builtins.int(s) for s in size), tuple(builtins.int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: {len(stride)} vs {len(size)}")
    dt = np.dtype(dtype) if dtype is not None else creation._default_float
    extent = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    buf = np.zeros(extent, dt)
    arr = np.lib.stride_tricks.as_strided(buf, size, tuple(s * dt.itemsize for s in stride), writeable=True)
    t = wrap_array(arr)
    device = creation.or_default_device(device)
    t = t.to(device) if device is not None else t
    return t.requires_grad_(True) if requires_grad else t


def typename(obj):
    """torch's type name of a tensor (``torch.DoubleTensor``, ...) or the qualified name of another object."""
    if isinstance(obj, Tensor):
        from .ops.linalg import torch_dtype_name

        return f"torch.{torch_dtype_name(obj.dtype)}Tensor"
    t = type(obj)
    return t.__qualname__ if t.__module__ in ("builtins", "__builtin__") else f"{t.__module__}.{t.__qualname__}"


def is_storage(obj):
    from .storage import UntypedStorage

    return isinstance(obj, UntypedStorage)


_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Record the flag (ad's CPU kernels are deterministic already: sums run in a fixed order); while it is on,
    dense GEMMs keep BLAS's thread count whatever the load (``ad.blas_threads``: its back-off to one thread under
    contention can change a product's last bits)."""
    from . import blas_threads

    _deterministic["mode"] = bool(mode)
    _deterministic["warn_only"] = bool(warn_only)
    blas_threads.backoff = not mode


def are_deterministic_algorithms_enabled():
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled():
    return _deterministic["warn_only"]


def get_num_threads():
    """The threads ad splits big elementwise work over (``ad.parallel``; ``AD_NUM_THREADS`` / ``OMP_NUM_THREADS``)."""
    from . import parallel

    return parallel._WORKERS


def set_num_threads(num):
    """Split big elementwise work over ``int`` threads from now on. BLAS keeps the threads it started with
    (``OMP_NUM_THREADS`` before the first import sets both)."""
    from . import parallel

    n = builtins.int(num)
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    parallel.set_workers(n)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """torch's print options, applied to numpy's printing, which ``repr`` of a tensor uses."""
    presets = {
        "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
        "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
        "full": {"precision": 4, "threshold": sys.maxsize, "edgeitems": 3, "linewidth": 80},
    }
    opts = dict(presets[profile]) if profile is not None else {}
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("linewidth", linewidth)):
        if value is not None:
            opts[key] = value
    if sci_mode is not None:
        opts["suppress"] = not sci_mode
    np.set_printoptions(**opts)


def bind_more():
    """``Tensor``'s ``new_*`` factories, predicates, sizes and real-tensor conjugations."""
    T = Tensor
    T.new_zeros = _new_factory("new_zeros", creation.zeros)
    T.new_ones = _new_factory("new_ones", creation.ones)
    T.new_empty = _new_factory("new_empty", creation.empty)
    T.new_full = _new_full
    T.new_tensor = _new_tensor
    for fn in (is_nonzero, is_same_size, is_complex, is_signed, conj, resolve_conj, resolve_neg, conj_physical,
               adjoint):
        setattr(T, fn.__name__, fn)
    T.is_conj = T.is_neg = lambda self: False
    T.real = property(lambda self: self)
    T.imag = property(_imag)
    T.nbytes = property(lambda self: self.numel() * self.dtype.itemsize)
    T.itemsize = property(lambda self: self.dtype.itemsize)
    T.ndimension = lambda self: self.ndim
    T.get_device = lambda self: -1 if self._dev is None else self.device.index
    T.is_cpu = property(lambda self: self._dev is None)
