"""Tensor creation: ``tensor``, ``as_tensor``, ``from_numpy`` and the factory functions (numpy dtypes).

As numpy (and unlike torch), the default floating dtype is float64; ``dtype=ad.float32`` works end to end.
The random functions draw from a module-level ``numpy.random.Generator`` that ``manual_seed`` resets.
"""

import builtins
import threading

import numpy as np

from .observe import created, value_read
from .tensor import Tensor, device, user_leaf
from .tensor import device as _device

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 - torch's name
float = float32  # noqa: A001
double = float64
long = int64
_default_float = float64  # ad.set_default_dtype changes it (ad/conveniences.py)

_seed = int(np.random.SeedSequence().entropy % (1 << 63))  # ad.initial_seed()
_rng = np.random.default_rng(_seed)


def manual_seed(seed):
    """Seed the generator behind ``rand``, ``randn``, ``randint`` and the samplers (``ad.initial_seed`` reads it)."""
    global _rng, _seed
    _seed = int(seed)
    _rng = np.random.default_rng(_seed + (1 << 64) if _seed < 0 else _seed)  # torch takes negative seeds too
    return _rng


# ad.set_default_device's device, per thread as torch's (None: the host). The factories resolve ``device=None``
# to it in _finish; from_numpy and frombuffer, which share memory, and the *_like factories, which follow their
# input, do not use it.
_default_device = threading.local()


def get_default_device():
    """``torch.get_default_device()``: the device factories put tensors on when given none (``ad.device('cpu')``
    unless ``set_default_device`` changed it; a CUDA device without an index reads as index 0)."""
    dev = getattr(_default_device, "device", None)
    if dev is None:
        return device("cpu")
    return device(dev.type, 0) if dev.type == "cuda" and dev.index is None else dev


def set_default_device(device):
    """``torch.set_default_device(device)``: make ``device`` (a string, an ``ad.device`` or a CUDA index) the one
    that ``ad.tensor``, ``ad.zeros``, ``ad.rand``, ... use when their ``device=`` is None; ``None`` resets to the
    host. As torch's, the setting is per thread and ``from_numpy`` is not affected.

    Example:
        >>> ad.set_default_device("cpu")
        >>> ad.get_default_device()
        device(type='cpu')
    """
    if device is None:
        _default_device.device = None
        return
    _default_device.device = _device(device) if not isinstance(device, int) else _device("cuda", device)


def or_default_device(dev):
    """``dev``, or ``set_default_device``'s device when ``dev`` is None (None: the host), for the factories that
    build on the host and move the result with ``.to``."""
    return dev if dev is not None else getattr(_default_device, "device", None)


def _cuda_target(dev):
    """``dev`` as an ``ad.device`` if it names a CUDA device, else None (``"cpu"``: the host; ``None``: the
    default device of ``set_default_device``)."""
    if dev is None:
        dev = getattr(_default_device, "device", None)
    if dev is None:
        return None
    dev = device(dev) if not isinstance(dev, int) else device("cuda", dev)
    return dev if dev.type == "cuda" else None


_SUPPORTED = "biuf"  # bool, integers, floats (complex is not supported by ad)


def _check_array(arr, what="tensor"):
    """torch's refusals for numpy data it cannot hold, and ad's for complex data (not supported yet)."""
    if arr.dtype.kind == "c":
        raise TypeError(f"ad does not support complex dtypes yet (got {arr.dtype}); use real and imaginary parts")
    if arr.dtype.kind in "OUSV" or arr.dtype.kind not in _SUPPORTED + "c":
        if what == "from_numpy" or arr.dtype.kind in "c":
            raise TypeError(
                f"can't convert np.ndarray of type numpy.{arr.dtype.type.__name__}. The only supported types are: "
                "float64, float32, float16, int64, int32, int16, int8, uint8, and bool."
            )
        if arr.dtype.kind in "US":
            raise TypeError(f"new(): invalid data type '{arr.dtype.type.__name__.rstrip('_')}'")
        numbers = (builtins.bool, builtins.int, builtins.float, np.number)  # module names shadow the builtins
        odd = next((v for v in arr.flat if not isinstance(v, numbers)), None)
        raise RuntimeError(f"Could not infer dtype of {type(odd).__name__}")
    if arr.dtype == np.longdouble and np.longdouble != np.float64:
        raise TypeError(
            "can't convert np.ndarray of type numpy.longdouble. The only supported types are: float64, "
            "float32, float16, int64, int32, int16, int8, uint8, and bool."
        )
    if not arr.dtype.isnative:
        raise ValueError(
            "given numpy array has byte order different from the native byte order. Conversion between byte orders "
            "is currently not supported."
        )
    return arr


def _check_size(shape):
    for s_ in shape:
        if int(s_) < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s_}: {list(shape)}")
    return shape


def _finish(arr, dtype, requires_grad, dev, constant=True):
    """The tensor of ``arr``; ``constant``: its values follow from the factory's arguments alone (what
    ``ad.compile`` re-creates: ``observe.created``), not from memory it shares or leaves uninitialized."""
    cuda_dev = _cuda_target(dev)
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    if requires_grad and arr.dtype.kind != "f":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    if requires_grad and arr.dtype.itemsize < 4:
        raise RuntimeError(
            f"ad differentiates float32 and float64 tensors; a {arr.dtype} tensor cannot require grad "
            "(convert it with .float() first)"
        )
    if cuda_dev is not None:
        from .cuda.arrays import from_host

        return from_host(arr, cuda_dev, bool_(requires_grad))
    out = user_leaf(arr, bool_(requires_grad))
    return created(out) if constant else out


def _like_device(t, dev):
    """``*_like`` factories put their result on ``t``'s device unless told otherwise."""
    return dev if dev is not None else t.device


def _on_device(t, dtype, requires_grad, dev):
    """A new leaf copy of CUDA tensor ``t`` (``ad.tensor`` of a CUDA tensor): on ``dev`` (default: ``t``'s)."""
    from .grad_mode import no_grad

    with no_grad():
        out = t.detach().to(dev if dev is not None else t.device)
        if out is t or out._data is t._data:
            out = t.detach().clone()
        if dtype is not None:
            out = out.to(dtype)
    out = out.detach()
    if requires_grad:
        out.requires_grad_(True)
    return out


def bool_(v):
    return v is True or (v is not False and v is not None and v != 0)


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new leaf tensor holding a copy of ``data`` (nested lists, scalars, arrays or tensors).

    Example:
        >>> ad.tensor([[1.0, 2.0]], requires_grad=True).shape
        (1, 2)
    """
    if isinstance(data, Tensor):
        if data._dev is not None:
            return _on_device(data, dtype, bool_(requires_grad), device)
        value_read("tensor() of a tensor")  # (a copy of its values: no constant for ad.compile to re-create)
        data = data._data
    if data is None:
        raise RuntimeError("Could not infer dtype of NoneType")
    if isinstance(data, np.ndarray):
        _check_array(data)
    try:
        arr = np.array(data, dtype=np.dtype(dtype) if dtype is not None else None, copy=True)
    except ValueError as e:
        raise ValueError(f"expected a sequence of equal-length sequences (ragged nested data): {e}") from None
    _check_array(arr)
    if dtype is None and arr.dtype == float64 and _default_float != float64 and not isinstance(data, np.ndarray):
        arr = arr.astype(_default_float)  # Python floats take the default dtype (numpy arrays keep theirs)
    return _finish(arr, None, requires_grad, device)


def as_tensor(data, dtype=None, device=None):
    """A tensor sharing memory with ``data`` where possible (no copy for matching numpy arrays)."""
    if isinstance(data, Tensor):
        out = data if dtype is None or np.dtype(dtype) == data.dtype else data.to(dtype)
        return out if device is None else out.to(device)
    if hasattr(data, "__cuda_array_interface__") or type(data).__module__.startswith("numba.cuda.simulator"):
        from .cuda.arrays import as_device_array, cuda_device, wrap

        out = wrap(as_device_array(data), cuda_device("cuda"))  # no copy: the same device memory
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = out.to(dtype)
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray):
        _check_array(data)
    arr = _check_array(np.asarray(data, dtype=np.dtype(dtype) if dtype is not None else None))
    return _finish(arr, None, False, device, constant=False)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """torch.asarray: a tensor of ``obj`` sharing its memory when it can (numpy arrays, tensors, and objects
    with ``__cuda_array_interface__``: CuPy, torch CUDA tensors, numba device arrays), a copy when ``copy``."""
    if copy:
        out = tensor(obj, dtype=dtype, device=device)
    else:
        out = as_tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        out = out.detach() if out is obj else out
        out.requires_grad_(True)
    return out


def from_numpy(ndarray):
    """A tensor that shares memory with ``ndarray`` (zero copy)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return user_leaf(_check_array(ndarray, "from_numpy"))


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return _check_size(tuple(size[0]))
    return _check_size(tuple(size))


def _default(dtype):
    return np.dtype(dtype) if dtype is not None else _default_float


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.zeros(_shape(size), _default(dtype)), None, requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.ones(_shape(size), _default(dtype)), None, requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.empty(_shape(size), _default(dtype)), None, requires_grad, device, constant=False)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    _check_size(tuple(size))
    if dtype is None:
        dtype = np.asarray(fill_value).dtype if not isinstance(fill_value, builtins.float) else _default_float
    return _finish(np.full(tuple(size), fill_value, np.dtype(dtype)), None, requires_grad, device)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return _finish(
        np.zeros(input.shape, np.dtype(dtype) if dtype else input.dtype),
        None,
        requires_grad,
        _like_device(input, device),
    )


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return _finish(
        np.ones(input.shape, np.dtype(dtype) if dtype else input.dtype),
        None,
        requires_grad,
        _like_device(input, device),
    )


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    return _finish(
        np.full(input.shape, fill_value, np.dtype(dtype) if dtype else input.dtype),
        None,
        requires_grad,
        _like_device(input, device),
    )


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return _finish(
        np.empty(input.shape, np.dtype(dtype) if dtype else input.dtype),
        None,
        requires_grad,
        _like_device(input, device),
        constant=False,
    )


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    arr = np.arange(start, end, step)
    if dtype is None and arr.dtype.kind == "f":
        arr = arr.astype(_default_float)
    return _finish(arr, dtype, requires_grad, device)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    return _finish(np.linspace(start, end, steps, dtype=_default(dtype)), None, requires_grad, device)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"n must be greater or equal to 0, got {n if n < 0 else m}")
    return _finish(np.eye(n, m, dtype=_default(dtype)), None, requires_grad, device)


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    value_read("a random draw")
    rng = generator if generator is not None else _rng
    return _finish(rng.random(_shape(size), dtype=_default(dtype)), None, requires_grad, device)


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    value_read("a random draw")
    rng = generator if generator is not None else _rng
    return _finish(rng.standard_normal(_shape(size), dtype=_default(dtype)), None, requires_grad, device)


def randint(low=0, high=None, size=(), *, generator=None, dtype=None, device=None, requires_grad=False):
    if isinstance(high, (tuple, list)):  # torch's ``randint(high, size)``
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    _check_size(tuple(size))
    value_read("a random draw")
    rng = generator if generator is not None else _rng
    return _finish(rng.integers(low, high, size=tuple(size)), dtype or int64, requires_grad, device)


def rand_like(input, *, dtype=None, requires_grad=False, device=None):
    return rand(
        input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad, device=_like_device(input, device)
    )


def randn_like(input, *, dtype=None, requires_grad=False, device=None):
    return randn(
        input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad, device=_like_device(input, device)
    )
