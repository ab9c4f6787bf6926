"""Zero-copy exchange with other array libraries: ``ad.from_dlpack`` / ``ad.to_dlpack`` (the DLPack protocol,
so numpy arrays, torch tensors, JAX and CuPy arrays go in and out), ``Tensor.__dlpack__`` (``torch.from_dlpack``
and ``np.from_dlpack`` of an ad tensor), and ``ad.frombuffer`` (a tensor over a Python buffer's memory).

On the CPU, DLPack goes through numpy's implementation; a CUDA object comes in through its
``__cuda_array_interface__`` (``ad.as_tensor``, no copy), since numba's device arrays speak that protocol.
"""

import warnings

import numpy as np

from . import creation
from .tensor import Tensor

__all__ = ["from_dlpack", "frombuffer", "to_dlpack"]

_DLPACK_CPU, _DLPACK_CUDA = 1, 2


class _Capsule:
    """A legacy DLPack capsule (what ``to_dlpack`` returns) given the protocol's two methods, for numpy."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (_DLPACK_CPU, 0)


def from_dlpack(ext_tensor, *, device=None, copy=None):
    """``torch.from_dlpack``: a tensor sharing the memory of ``ext_tensor``, an object with ``__dlpack__`` (a
    numpy array, a torch tensor, ...) or a DLPack capsule from ``to_dlpack``.

    Args:
        device: where the result should be (a copy when it is not where the data is).
        copy (bool, optional): True: always copy; False: never (raises if a copy is needed); None: as needed.

    Raises:
        TypeError: ``ext_tensor`` speaks neither DLPack nor the CUDA array interface.
        BufferError: the object cannot be exported (a torch tensor that requires grad, ...).
    """
    if isinstance(ext_tensor, Tensor):
        out = ext_tensor if not copy else ext_tensor.clone()
        return out if device is None else out.to(device)
    dl_device = getattr(ext_tensor, "__dlpack_device__", None)
    if dl_device is not None and dl_device()[0] == _DLPACK_CUDA or (
        dl_device is None and hasattr(ext_tensor, "__cuda_array_interface__")
    ):
        out = creation.as_tensor(ext_tensor)
    else:
        if type(ext_tensor).__name__ == "PyCapsule":
            ext_tensor = _Capsule(ext_tensor)
        elif not hasattr(ext_tensor, "__dlpack__"):
            raise TypeError(f"from_dlpack: expected an object with __dlpack__ or a DLPack capsule, got "
                            f"{type(ext_tensor).__name__}")
        out = creation.from_numpy(np.from_dlpack(ext_tensor))
    if copy:
        out = out.clone()
    if device is not None and creation.device(device) != out.device:
        if copy is False:
            raise BufferError(f"from_dlpack: copy=False but the data is on {out.device}, not {device}")
        out = out.to(device)
    return out


def to_dlpack(tensor):
    """``torch.to_dlpack``: a DLPack capsule over ``tensor``'s memory (for ``from_dlpack`` of any library).

    Raises:
        RuntimeError: ``tensor`` requires grad (torch's message), or is on a CUDA device (use
            ``__cuda_array_interface__`` there).
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
    return _export(tensor)


def _export(tensor, **kwargs):
    if tensor.requires_grad:
        raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
    if tensor.device.type != "cpu":
        raise RuntimeError("ad exports CUDA tensors through __cuda_array_interface__, not DLPack")
    return tensor._data.__dlpack__(**kwargs)


def _tensor_dlpack(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    """``Tensor.__dlpack__``: the DLPack capsule of a CPU tensor (``np.from_dlpack(t)``, ``torch.from_dlpack(t)``)."""
    kwargs = {k: v for k, v in (("max_version", max_version), ("copy", copy)) if v is not None}
    return _export(self, **kwargs)


def _tensor_dlpack_device(self):
    """``Tensor.__dlpack_device__``: ``(1, 0)`` for the CPU, ``(2, index)`` for a CUDA device."""
    if self.device.type == "cuda":
        return (_DLPACK_CUDA, self.device.index or 0)
    return (_DLPACK_CPU, 0)


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
    """``torch.frombuffer``: a 1-D tensor over the memory of ``buffer`` (any object with the buffer protocol), from
    byte ``offset``, ``count`` elements of ``dtype`` (-1: to the end). Writes through the tensor change the buffer.

    Raises:
        ValueError: an empty buffer, an offset or count outside it, or a length that is not a multiple of the
            element size (torch's messages).
    """
    dt = np.dtype(dtype)
    length = memoryview(buffer).nbytes
    if length == 0 or count == 0:
        raise ValueError(f"both buffer length ({length}) and count ({count}) must not be 0")
    if offset < 0 or offset >= length:
        raise ValueError(
            f"offset ({offset} bytes) must be non-negative and no greater than buffer length ({length} bytes) minus 1"
        )
    if count < 0:
        if (length - offset) % dt.itemsize:
            raise ValueError(f"buffer length ({length - offset} bytes) after offset ({offset} bytes) must be a "
                             f"multiple of element size ({dt.itemsize})")
        count = (length - offset) // dt.itemsize
    elif offset + count * dt.itemsize > length:
        raise ValueError(f"requested buffer length ({count} * {dt.itemsize} bytes) after offset ({offset} bytes) "
                         f"must not be greater than actual buffer length ({length} bytes)")
    data = np.frombuffer(buffer, dt, count, offset)
    if not data.flags.writeable:
        warnings.warn(
            "The given buffer is not writable, and PyTorch does not support non-writable tensors. This means you "
            "can write to the underlying (supposedly non-writable) buffer using the tensor. You may want to copy the "
            "buffer to protect its data or make it writable before converting it to a tensor. This type of warning "
            "will be suppressed for the rest of this program.",
            UserWarning,
            stacklevel=2,
        )
    out = creation.from_numpy(data)
    if requires_grad:
        out.requires_grad_(True)
    return out


def bind():
    """``Tensor.__dlpack__`` and ``Tensor.__dlpack_device__``."""
    Tensor.__dlpack__ = _tensor_dlpack
    Tensor.__dlpack_device__ = _tensor_dlpack_device
