"""Device arrays for CUDA tensors: making them, copying between host and device, and the
``__cuda_array_interface__`` (CAI) both ways.

A CUDA tensor's ``_data`` is a numba device array: C-contiguous, except for views (``ad/views.py``), whose
``_data`` is a strided device array over their base's storage (``strided_view``: the base's memory, an element
offset and element strides, as numpy views of CPU storage). Kernels read C-contiguous arrays (or 1-D arrays,
indexed logically): ``dense`` copies a view into one (a strided gather), ``assign`` writes values through one.

Under numba's simulator the device array is a ``FakeCUDAArray`` around a host numpy array (``._ary``); it has
no CAI of its own, so ``cuda_array_interface`` builds one from that array, and ``as_device_array`` wraps any CAI
object's memory without a copy in both modes.
"""

import numpy as np

from ..tensor import Tensor, _new, device

_cuda = None  # numba.cuda, once imported
_SimArray = None  # the simulator's device array type for CUDA tensors (``_sim_array_type``)


def require_cuda():
    """``numba.cuda``, imported now; torch's errors when there is no device to use."""
    global _cuda
    if _cuda is None:
        try:
            from numba import cuda
        except ImportError:  # pragma: no cover - numba-cuda is a dependency
            raise AssertionError("Torch not compiled with CUDA enabled: numba-cuda is not installed") from None
        if not cuda.is_available():
            raise RuntimeError(
                "Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a "
                "driver (or set NUMBA_ENABLE_CUDASIM=1 to use numba's CUDA simulator)"
            )
        if not cuda.config.ENABLE_CUDASIM:
            _refuse_numpy_without_row_stack()
        _cuda = cuda
    return _cuda


def _refuse_numpy_without_row_stack():
    """numba-cuda up to 0.30.4 (in maintenance: NVIDIA/numba-cuda#907) registers an overload of ``np.row_stack``,
    which numpy 2.5 removed, when it compiles its first kernel: that raises AttributeError deep inside numba.
    Say what is wrong, and the fix, before any kernel is compiled."""
    if hasattr(np, "row_stack"):
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = tuple(int(p) for p in version("numba-cuda").split(".")[:3] if p.isdigit())
    except PackageNotFoundError:  # pragma: no cover - numba-cuda is how numba.cuda is installed
        return
    if release <= (0, 30, 4):
        raise RuntimeError(
            f"numba-cuda {'.'.join(map(str, release))} cannot compile CUDA kernels with numpy {np.__version__} "
            "(it overloads np.row_stack, which numpy 2.5 removed): install numpy<2.5, as the cuda extra of ad "
            "pins it (pip install 'numpy<2.5')"
        )


def simulated():
    require_cuda()
    from numba.cuda import config

    return bool(config.ENABLE_CUDASIM)


# what a real numba device array has beyond FakeCUDAArray's own methods (``SimDeviceArray.__getattr__``)
_DEVICE_ARRAY_ATTRS = frozenset(("strides", "ndim", "size", "dtype", "nbytes", "flags", "alloc_size", "stream"))
_HOST_OPERATORS = tuple(f"__{n}__" for n in ("add", "sub", "mul", "floordiv", "truediv", "mod", "pow"))
_HOST_OPERATORS += tuple(f"__{n}__" for n in ("lt", "le", "gt", "ge"))


def _no_host_arithmetic(self, other):
    raise TypeError("arithmetic on a CUDA device array on the host: use a kernel (ad/cuda/ops.py)")


def _sim_array_type():
    """Under the simulator, CUDA tensors hold this ``FakeCUDAArray``, made to behave as a real device array
    where the simulator's does not: ``shape`` is a plain tuple (the simulator's refuses negative indices), and
    numpy cannot read it implicitly (``__array__`` raises, as for a real device array, so a host fallback in
    ``ad`` fails in the simulated tests as it would on a GPU, instead of silently computing on the host)."""
    global _SimArray
    if _SimArray is None:
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        class SimDeviceArray(FakeCUDAArray):
            @property
            def shape(self):
                return self._ary.shape

            def reshape(self, *args, **kwargs):
                # (never a silent copy: a real device array refuses to reshape a view that would need one)
                try:
                    return SimDeviceArray(self._ary.reshape(*args, **kwargs, copy=False))
                except ValueError:
                    if self._ary.size and not self._ary.flags.c_contiguous:
                        raise NotImplementedError("operation requires copying") from None
                    raise

            def ravel(self, *args, **kwargs):
                return self.reshape(self._ary.size)

            def view(self, *args, **kwargs):
                return SimDeviceArray(self._ary.view(*args, **kwargs))

            def __getitem__(self, idx):
                ret = self._ary[idx]
                return SimDeviceArray(ret) if type(ret) is np.ndarray else ret

            def copy_to_device(self, ary, stream=0):
                # (the simulator's own reads both arrays as numpy, which these refuse)
                src = ary._ary if hasattr(ary, "_ary") else np.asarray(ary)
                if src.squeeze().shape != self._ary.squeeze().shape or src.dtype != self._ary.dtype:
                    raise ValueError(f"incompatible arrays: {src.shape} {src.dtype} vs. {self.shape} {self.dtype}")
                np.copyto(self._ary, src.reshape(self._ary.shape))

            @property
            def __cuda_array_interface__(self):
                return cuda_array_interface(self)

            def __array__(self, *args, **kwargs):
                raise TypeError("implicit conversion of a (simulated) CUDA device array to numpy: copy it first")

            def __getattr__(self, name):
                # the simulator forwards every numpy attribute to the host array (``.copy()``, ``.cumsum()``,
                # ``.astype()``...): only a real device array's are passed, so a host computation fails here
                if name in _DEVICE_ARRAY_ATTRS:
                    return getattr(self._ary, name)
                raise AttributeError(f"a CUDA device array has no attribute {name!r}")

        for op in _HOST_OPERATORS:  # a real device array has no arithmetic: the simulator's computes on the host
            setattr(SimDeviceArray, op, _no_host_arithmetic)
        # ``==`` and ``!=`` on a real device array compare identity (``darr == 1`` is False: a silent wrong mask,
        # found on the first real GPU run); the simulator's compare elementwise on the host. Be the real one.
        SimDeviceArray.__eq__ = object.__eq__
        SimDeviceArray.__ne__ = object.__ne__
        SimDeviceArray.__hash__ = object.__hash__

        _SimArray = SimDeviceArray
    return _SimArray


def _device(darr):
    """``darr`` as the device array type CUDA tensors hold (itself on a GPU)."""
    if _SimArray is not None or simulated():
        return _sim_array_type()(darr._ary if hasattr(darr, "_ary") else darr)
    return darr


def device_index(dev):
    """The CUDA device index of ``dev`` (``"cuda"``, ``"cuda:N"``, ``ad.device`` or an int); checked."""
    if isinstance(dev, int):
        index = dev
    else:
        dev = device(dev)
        if dev.type != "cuda":
            raise ValueError(f"Expected a cuda device, but got: {dev}")
        index = dev.index
    cuda = require_cuda()
    if index is None:
        index = current_index()
    if not 0 <= index < len(cuda.gpus):
        raise RuntimeError(f"CUDA error: invalid device ordinal (device {index} requested, {len(cuda.gpus)} available)")
    return index


def current_index():
    """The current CUDA device's index (the simulator has one device, 0)."""
    return getattr(require_cuda().get_current_device(), "id", 0)


def cuda_device(dev):
    """The ``ad.device`` a CUDA tensor on ``dev`` reports (always with its index, as torch's)."""
    return device("cuda", device_index(dev))


def is_device_array(obj):
    """Whether ``obj`` is a numba device array (real or simulated)."""
    cuda = require_cuda()
    if simulated():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        return isinstance(obj, FakeCUDAArray)
    return cuda.is_cuda_array(obj) and hasattr(obj, "copy_to_host")


def to_device(arr):
    """A device copy of host array ``arr`` (C-contiguous; a 0-d array stays 0-d: ``np.ascontiguousarray`` would make
    it 1-d)."""
    arr = np.asarray(arr)
    return _device(require_cuda().to_device(arr if arr.flags.c_contiguous else np.array(arr, order="C")))


def empty(shape, dtype):
    return _device(require_cuda().device_array(tuple(shape), np.dtype(dtype)))


def to_host(darr):
    """A host copy of device array ``darr``."""
    return darr.copy_to_host()


def cuda_array_interface(darr):
    """``darr``'s ``__cuda_array_interface__`` (built from the host array under the simulator; on a GPU,
    numba's with the strides of broadcast views restored: ``kernels.cuda.launch.interface``)."""
    if not hasattr(darr, "_ary"):
        from kernels.cuda.launch import interface

        return interface(darr)
    host = darr._ary  # the simulator's device memory is host memory
    ai = host.__array_interface__
    return {
        "shape": ai["shape"],
        "typestr": ai["typestr"],
        "data": ai["data"],
        "strides": None if host.flags.c_contiguous else ai["strides"],
        "version": 3,
    }


class Exported:
    """A device array to hand to another library (``cupy.asarray(Exported(a))``): its correct
    ``__cuda_array_interface__`` (``cuda_array_interface``), and the array kept alive with the consumer's view."""

    def __init__(self, darr):
        self.array = darr
        self.__cuda_array_interface__ = cuda_array_interface(darr)


def as_device_array(obj):
    """A device array viewing the memory of ``obj`` (anything with ``__cuda_array_interface__``), no copy."""
    cuda = require_cuda()
    if not simulated():
        return cuda.as_cuda_array(obj)
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    if isinstance(obj, FakeCUDAArray):
        return _device(obj)
    cai = obj.__cuda_array_interface__

    class _Host:  # numpy reads the same memory through the array interface
        __array_interface__ = {
            "shape": tuple(cai["shape"]),
            "typestr": cai["typestr"],
            "data": cai["data"],
            "strides": cai.get("strides"),
            "version": 3,
        }

    return _device(np.asarray(_Host()))


def wrap(darr, dev, requires_grad=False):
    """A new leaf CUDA tensor around device array ``darr`` on ``dev`` (an ``ad.device``), no copy."""
    t = _new(Tensor)
    t._data = darr
    t._dev = dev
    if requires_grad:
        t._rg = True
    return t


def from_host(arr, dev, requires_grad=False):
    """A new leaf CUDA tensor on ``dev`` holding a copy of host array ``arr``."""
    return wrap(to_device(arr), cuda_device(dev), requires_grad)


# --- strided views of device storage (ad/views.py) ------------------------------------------------------------


def address(darr):
    """The device address of ``darr``'s first element (host memory under the simulator)."""
    if hasattr(darr, "_ary"):
        return darr._ary.__array_interface__["data"][0]
    return darr.__cuda_array_interface__["data"][0]


def element_strides(darr):
    """``darr``'s strides in elements."""
    item = darr.dtype.itemsize
    return tuple(s // item for s in darr.strides)


def is_contiguous(darr):
    return darr.size == 0 or bool(darr.is_c_contiguous())


def strided_view(darr, shape, strides, offset):
    """A device array viewing ``darr``'s memory (no copy): ``shape``, element ``strides`` (non-negative), first
    element ``offset`` elements past ``darr``'s first element (within ``darr``'s extent)."""
    shape = tuple(int(s) for s in shape)
    item = darr.dtype.itemsize
    if 0 in shape:
        return empty(shape, darr.dtype)
    if hasattr(darr, "_ary"):
        host = darr._ary
        start = np.lib.stride_tricks.as_strided(host, shape=(offset + 1,), strides=(item,))[offset:] if offset else host
        view = np.lib.stride_tricks.as_strided(start, shape=shape, strides=tuple(int(s) * item for s in strides))
        return _device(view)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    return DeviceNDArray(
        shape, tuple(int(s) * item for s in strides), darr.dtype, gpu_data=darr.gpu_data.view(int(offset) * item)
    )


def _span(darr):
    """``darr`` (a strided view, non-negative strides) as the flat 1-D array of the memory from its first element
    to its last, and its element strides: the storage a strided gather or assign addresses."""
    strides = element_strides(darr)
    extent = 1 + sum((n - 1) * s for n, s in zip(darr.shape, strides))
    return strided_view(darr, (extent,), (1,), 0), strides


def dense(darr):
    """``darr`` if C-contiguous, else a C-contiguous device copy of its values (a strided gather)."""
    if is_contiguous(darr):
        return darr
    from kernels.cuda import strided as kst

    span, strides = _span(darr)
    out = empty(darr.shape, darr.dtype)
    kst.gather_strided(span, out, 0, darr.shape, strides)
    return out


def assign(darr, values):
    """Write ``values`` (a C-contiguous device array of ``darr``'s shape and dtype) into ``darr``'s memory
    (a view that does not overlap itself)."""
    if darr.size == 0:
        return
    from kernels.cuda import strided as kst

    span, strides = _span(darr)
    kst.assign_strided(values, span, 0, darr.shape, strides)
