"""torch's Tensor methods about storage: ``resize_`` / ``resize_as_`` (and the deprecated out-of-place ``resize`` /
``resize_as``), ``set_`` / ``is_set_to``, ``new_empty_strided``, ``share_memory_`` / ``is_shared``,
``pin_memory`` / ``is_pinned``, ``output_nr``, and ``untyped_storage`` (``UntypedStorage``: the bytes of a storage;
the deprecated ``storage()`` reads them as one dtype, ``TypedStorage``).

The storage model is ``ad/as_strided.py``'s: a root tensor's memory, or its ``_storage`` when the root's own
geometry no longer covers it. ``resize_`` and ``set_`` change a tensor's geometry in place without writing
values; like torch they bump its version counter, so a backward that needs a value saved before raises.

Where ad differs from torch, and why:
- ``resize_`` may grow the storage only of a root tensor that no other live tensor aliases: ad's storages are
  numpy (or device) arrays, which cannot grow in place, so the tensor moves to a new, larger storage (its data
  kept as the prefix, new elements zero), which its views would not see. A view, or a root with live views,
  raises torch's error for a storage that cannot be resized.
- ``set_`` to a geometry past the end of the source's storage raises ``as_strided``'s ``setStorage`` error
  (torch grows the storage); ``set_`` with grad mode on and a tensor that requires grad on either side raises
  where torch records a node whose backward raises ("the derivative for 'set_' is not implemented"). The
  tensor set to a source's storage joins the source's version counter, so an in-place write through either
  makes a backward that saved the other raise (torch keeps two counters and would compute with the new values).
- ``share_memory_`` marks the tensor (``is_shared()`` is then true) and returns it: ad has no
  ``torch.multiprocessing``; tensors cross processes by pickling their values, so where the storage lives is
  not observable. ``pin_memory`` returns a copy in page-locked host memory where a CUDA device is available
  (torch's error otherwise).

- ``UntypedStorage`` is a byte view (numpy ``uint8``, or a device array's) of a storage's memory, made on demand
  and cached on the root while the storage stays where it is: ``a.untyped_storage().data_ptr() ==
  b.untyped_storage().data_ptr()`` tells whether two tensors share memory, as in torch. Writing its bytes does
  not move the tensors' version counters (as torch's).

Where to start reading: ``resize_``.
"""

import math
import warnings

import numpy as np

from . import as_strided as _strided
from .grad_mode import _grad_state
from .tensor import Node, Tensor, VersionCounter, share

__all__ = ["TypedStorage", "UntypedStorage", "resize_as_"]

_NOT_RESIZABLE = "Trying to resize storage that is not resizable"
_TORCH_C_TYPE = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int", "int16": "short int",
                 "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}  # fmt: skip


def _sizes(name, args):
    """torch's ``(2, 3)`` or ``((2, 3),)`` size arguments as a list of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    try:
        sizes = [int(n) for n in args]
    except (TypeError, ValueError):
        raise TypeError(f"{name}(): argument 'size' must be tuple of ints") from None
    if any(n < 0 for n in sizes):
        raise RuntimeError("numel: integer multiplication overflow")  # (torch's message for a negative size)
    return sizes


def _c_strides(sizes):
    strides, step = [], 1
    for n in reversed(sizes):
        strides.append(step)
        step *= max(n, 1)
    return strides[::-1]


def _bump(t):
    """An in-place change of ``t``'s storage or geometry: its version moves, the arena copies of every alias are
    flagged (a backward that needs one raises, as torch's version check)."""
    from .tape import mark_modified

    mark_modified(t)
    t._version = t._version + 1


def resize_(self, *sizes, size=None, memory_format=None):
    """``Tensor.resize_``: ``self`` takes shape ``sizes`` (contiguous) over its storage from its storage offset,
    keeping its values as the prefix; a storage too small grows (see the module header). Returns ``self``.

    Raises:
        RuntimeError: ``self`` requires grad (torch's "cannot resize variables that require grad"); a storage
            that would have to grow under a view or under live aliases (torch's "not resizable").

    Example:
        >>> x = ad.arange(6.0)
        >>> x.resize_(2, 2)
        tensor([[0., 1.],
                [2., 3.]])
    """
    if size is not None:
        if sizes:
            raise TypeError("resize_() got multiple values for argument 'size'")
        sizes = (size,)
    sizes = _sizes("resize_", sizes)
    if self._rg:
        raise RuntimeError("cannot resize variables that require grad")
    root = _strided.root_of(self)
    offset = self.storage_offset()
    needed = offset + math.prod(sizes)
    if needed > _strided.storage_size(root):
        aliases = [m for m in self._vc.members if m is not self] if self._vc is not None else []
        if self._vbase is not None or aliases:
            raise RuntimeError(_NOT_RESIZABLE)
        self._storage = _grown(_strided.storage_flat(root), needed)
    elif root is self and "_storage" not in self.__dict__:
        self._storage = _strided.storage_flat(self)
    _bump(self)
    self._data = _strided.strided_data(root, sizes, _c_strides(sizes), offset)
    return self


def _grown(flat, size):
    """A new flat storage of ``size`` elements (zeros) holding ``flat``'s values as its prefix."""
    if isinstance(flat, np.ndarray):
        new = np.zeros(size, flat.dtype)
        new[: flat.shape[0]] = flat
        return new
    from .cuda import arrays

    new = arrays.to_device(np.zeros(size, flat.dtype))
    if flat.shape[0]:
        arrays.strided_view(new, (flat.shape[0],), (1,), 0).copy_to_device(flat)
    return new


def resize_as_(input, the_template, *, memory_format=None):  # noqa: A002 - torch's names
    """``torch.resize_as_`` / ``Tensor.resize_as_``: ``input.resize_(the_template.shape)``."""
    return resize_(input, tuple(the_template.shape))


def _autograd_resize(self, sizes, name):
    """torch's deprecated out-of-place ``resize``/``resize_as``: a view of ``self`` with the same number of
    elements (``ResizeBackward``)."""
    warnings.warn(f"non-inplace {name} is deprecated", UserWarning, stacklevel=3)
    if math.prod(sizes) != self.numel():
        raise RuntimeError(
            f"requested resize to {'x'.join(map(str, sizes))} ({math.prod(sizes)} elements in total), but the given "
            f"tensor has a size of {'x'.join(map(str, self.shape))} ({self.numel()} elements). autograd's resize "
            "can only change the shape of a given tensor, while preserving the number of elements. "
        )
    out = self.reshape(sizes)
    if out._op is not None:
        out._node = Node("ResizeBackward", out._inputs, out._op)
    return out


def resize(self, *sizes):
    """``Tensor.resize`` (deprecated; warns): ``self`` reshaped to ``sizes``, which must keep its number of
    elements (torch's autograd resize)."""
    return _autograd_resize(self, _sizes("resize", sizes), "resize")


def resize_as(self, tensor):
    """``Tensor.resize_as`` (deprecated; warns): ``self.resize(tensor.shape)``."""
    return _autograd_resize(self, list(tensor.shape), "resize_as")


# ---------------------------------------------------------------------------------------------------------
# set_ / is_set_to


def set_(self, source=None, storage_offset=0, size=None, stride=None):
    """``Tensor.set_``: ``self`` views ``source``'s storage, with ``source``'s geometry (``set_(source)``) or
    the given one (``set_(source, storage_offset, size, stride)``, ``stride`` contiguous by default); ``set_()``
    gives ``self`` a new empty storage. ``self`` stays a root tensor (``_base`` is None). Returns ``self``.

    Raises:
        RuntimeError: ``source`` of another dtype or device, a geometry past the storage's end, or grad mode on
            with a tensor that requires grad (see the module header; torch's messages where torch raises).

    Example:
        >>> y = ad.arange(4.0)
        >>> ad.zeros(1).set_(y, 1, (2,)).tolist()
        [1.0, 2.0]
    """
    if _grad_state.enabled and self._rg:
        if self._op is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        raise RuntimeError("the derivative for 'set_' is not implemented.")
    if source is None:
        if size is not None or stride is not None:
            raise TypeError("set_(): a size or stride needs a source")
        _bump(self)
        version = self._version
        self.__dict__.pop("_storage", None)
        self._vbase = None
        self._vc = VersionCounter(version)
        self._data = np.empty((0,), self.dtype) if self._dev is None else _strided.strided_data(self, (0,), (1,), 0)
        return self
    if isinstance(source, UntypedStorage):
        source = source._as_tensor(self.dtype)
        if size is None and storage_offset:
            raise TypeError("set_(): give the size with a storage offset")
    if not isinstance(source, Tensor):
        raise TypeError(f"set_(): argument 'source' must be Tensor, not {type(source).__name__}")
    if _grad_state.enabled and source._rg:
        raise RuntimeError("the derivative for 'set_' is not implemented.")
    if source.dtype != self.dtype:
        raise RuntimeError(
            f"Could not set tensor of type {_TORCH_C_TYPE.get(source.dtype.name, source.dtype.name)} to a tensor of "
            f"type {_TORCH_C_TYPE.get(self.dtype.name, self.dtype.name)}"
        )
    if source.device != self.device:
        raise RuntimeError(
            f"Attempted to set the storage of a tensor on device \"{self.device}\" to a storage on different device "
            f"\"{source.device}\".  This is no longer allowed; the devices must match."
        )
    if size is None:
        if storage_offset != 0 or stride is not None:
            raise TypeError("set_(): give the size with a storage offset or a stride")
        size, stride, offset = list(source.shape), list(source.stride()), source.storage_offset()
    else:
        size = _sizes("set_", (size,))
        stride = _c_strides(size) if stride is None else stride
        offset = storage_offset
    size, stride, offset = _strided.check_geometry("set_", source, size, stride, offset)
    if self._vc is not None and any(m._vbase is self for m in self._vc.members):
        raise RuntimeError("set_: ad cannot move a tensor that has live views to another storage (its views would "
                           "lose their base); call set_ on a clone, or drop the views first")
    root = _strided.root_of(source)
    data = _strided.strided_data(root, size, stride, offset)
    store = _strided.storage_flat(root)
    _bump(self)
    self._vbase = None
    self.__dict__.pop("_vflags", None)
    self._storage = store
    self._data = data
    share(root, self)  # (one version counter per storage: the module header)
    return self


def is_set_to(self, tensor):
    """``Tensor.is_set_to``: whether ``self`` and ``tensor`` view the same storage with the same offset, shape and
    strides."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"is_set_to(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
    if self.device != tensor.device or self.dtype != tensor.dtype:
        return False
    a = _strided.storage_flat(_strided.root_of(self))
    b = _strided.storage_flat(_strided.root_of(tensor))
    from .views import _addr

    return (
        _addr(a) == _addr(b)
        and a.shape == b.shape
        and self.storage_offset() == tensor.storage_offset()
        and tuple(self.shape) == tuple(tensor.shape)
        and self.stride() == tensor.stride()
    )


# ---------------------------------------------------------------------------------------------------------
# allocation-related methods


def new_empty_strided(self, size, stride, *, dtype=None, layout=None, device=None, requires_grad=False,
                      pin_memory=False):  # fmt: skip
    """``Tensor.new_empty_strided``: ``ad.empty_strided`` with ``self``'s dtype and device unless given."""
    from .conveniences import empty_strided

    return empty_strided(
        size, stride, dtype=self.dtype if dtype is None else dtype, device=self.device if device is None else device,
        requires_grad=requires_grad,
    )  # fmt: skip


def share_memory_(self):
    """``Tensor.share_memory_``: marks ``self`` as shared and returns it (see the module header)."""
    self._shared = True
    return self


def is_shared(self):
    """``Tensor.is_shared``: whether ``share_memory_`` was called on ``self`` (CUDA tensors: as torch, True)."""
    return self._dev is not None or bool(self.__dict__.get("_shared"))


def pin_memory(self, device=None):
    """``Tensor.pin_memory``: a copy of ``self`` in page-locked host memory (``self`` if it is already).

    Raises:
        RuntimeError: no CUDA device is available (torch's message), or ``self`` is a CUDA tensor.
    """
    from . import cuda

    if not cuda.is_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")
    if self._dev is not None:
        raise RuntimeError(f"cannot pin '{self.type()}' only dense CPU tensors can be pinned")
    if is_pinned(self):
        return self
    from numba import cuda as numba_cuda

    from .tensor import wrap_array

    pinned = numba_cuda.pinned_array(self.shape, self.dtype)
    pinned[...] = self._data
    # a differentiable copy, as torch's (the recorded clone's live data is the page-locked array)
    out = self.clone() if self._rg and _grad_state.enabled else wrap_array(np.asarray(pinned))
    out._data = np.asarray(pinned)
    out._pinned = pinned  # (keeps the page-locked allocation alive)
    return out


def is_pinned(self, device=None):
    """``Tensor.is_pinned``: whether ``self`` lives in memory that ``pin_memory`` page-locked."""
    root = _strided.root_of(self)
    return root.__dict__.get("_pinned") is not None


def output_nr(self):
    """``Tensor.output_nr``: which output of its ``grad_fn`` ``self`` is (``unbind``, ``split`` ... number their
    outputs; 0 otherwise)."""
    if self._op is None:
        return 0
    name = self.__dict__.get("_vname")
    return 0 if name is None else int(name[1])


# ---------------------------------------------------------------------------------------------------------
# untyped storages


class UntypedStorage:
    """torch's ``UntypedStorage``: the bytes of a storage (see the module header). ``UntypedStorage(n)`` allocates
    ``n`` zero bytes (``device=`` as the factories')."""

    def __init__(self, size=0, *, device=None):
        from .creation import zeros

        owner = zeros(int(size), dtype=np.uint8, device=device)
        self._bytes = owner._data
        self._owner = owner
        self._dev = owner._dev

    @classmethod
    def _of(cls, root):
        flat = _strided.storage_flat(root)
        out = cls.__new__(cls)
        out._bytes = flat.view(np.uint8)
        out._owner = root  # (keeps the memory alive; its version counter is the storage's)
        out._dev = root._dev
        return out

    def _as_tensor(self, dtype):
        """A root tensor over these bytes as ``dtype`` elements, sharing the owner's version counter."""
        dtype = np.dtype(dtype)
        n = self.nbytes() // dtype.itemsize
        data = self._bytes[: n * dtype.itemsize].view(dtype)
        if self._dev is None:
            from .tensor import wrap_array

            holder = wrap_array(data)
        else:
            from .cuda.ops import result

            holder = result(data, self._dev)
        share(self._owner, holder)
        return holder

    def nbytes(self):
        return int(self._bytes.shape[0])

    size = nbytes

    def __len__(self):
        return self.nbytes()

    def element_size(self):
        return 1

    @property
    def device(self):
        return self._owner.device

    @property
    def is_cuda(self):
        return self._dev is not None

    def get_device(self):
        return self._owner.get_device() if self._dev is not None else -1

    def data_ptr(self):
        from .views import _addr

        return _addr(self._bytes)

    def _host(self):
        if self._dev is None:
            return self._bytes
        return self._bytes.copy_to_host()

    def tolist(self):
        return self._host().tolist()

    def __iter__(self):
        return iter(self.tolist())

    def __getitem__(self, index):
        if isinstance(index, slice):
            out = UntypedStorage.__new__(UntypedStorage)
            out._bytes, out._owner, out._dev = self._bytes[index], self._owner, self._dev
            return out
        return int(self._host()[index])

    def __setitem__(self, index, value):
        if self._dev is not None:
            raise RuntimeError("UntypedStorage item assignment is implemented for CPU storages")
        self._bytes[index] = np.asarray(value).astype(np.int64) & 0xFF  # (torch keeps the low byte)

    def fill_(self, value):
        if self._dev is not None:
            from .cuda import ops as cuda_ops

            cuda_ops.write(self._as_tensor(np.uint8), int(value) & 0xFF)
        else:
            self._bytes[:] = int(value) & 0xFF
        return self

    def copy_(self, source, non_blocking=None):
        if source.nbytes() != self.nbytes():
            raise RuntimeError(f"size mismatch: {self.nbytes()} vs {source.nbytes()}")
        self._as_tensor(np.uint8).copy_(source._as_tensor(np.uint8))
        return self

    def clone(self):
        out = UntypedStorage(self.nbytes(), device=self.device)
        return out.copy_(self)

    def cpu(self):
        if self._dev is None:
            return self
        out = UntypedStorage(self.nbytes())
        out._bytes[:] = self._host()
        return out

    def is_shared(self):
        return is_shared(self._owner)

    def share_memory_(self):
        share_memory_(self._owner)
        return self

    def is_pinned(self, device=None):
        return is_pinned(self._owner)

    def type(self):
        return "torch.storage.UntypedStorage"

    def __repr__(self):
        body = "\n".join(f" {b}" for b in self.tolist())
        return f"{body}\n[ad.UntypedStorage(device={self.device}) of size {self.nbytes()}]"


class TypedStorage:
    """torch's deprecated ``TypedStorage`` (``Tensor.storage()``): an ``UntypedStorage`` read as elements of one
    dtype."""

    def __init__(self, untyped, dtype):
        self._untyped = untyped
        self.dtype = np.dtype(dtype)

    def _elements(self):
        return self._untyped._as_tensor(self.dtype)

    def size(self):
        return self._untyped.nbytes() // self.dtype.itemsize

    def __len__(self):
        return self.size()

    def nbytes(self):
        return self._untyped.nbytes()

    def element_size(self):
        return self.dtype.itemsize

    @property
    def device(self):
        return self._untyped.device

    @property
    def is_cuda(self):
        return self._untyped.is_cuda

    def data_ptr(self):
        return self._untyped.data_ptr()

    def untyped(self):
        return self._untyped

    def tolist(self):
        return self._elements().tolist()

    def __getitem__(self, index):
        return self._elements()[index].item() if isinstance(index, int) else self._elements()[index]

    def __setitem__(self, index, value):
        from .grad_mode import no_grad

        with no_grad():
            self._elements()[index] = value

    def fill_(self, value):
        self[:] = value
        return self

    def is_shared(self):
        return self._untyped.is_shared()

    def share_memory_(self):
        self._untyped.share_memory_()
        return self

    def is_pinned(self, device=None):
        return self._untyped.is_pinned()

    def __repr__(self):
        body = "\n".join(f" {v}" for v in self.tolist())
        return f"{body}\n[ad.TypedStorage(dtype={self.dtype}, device={self.device}) of size {self.size()}]"


_TYPED_DEPRECATED = (
    "TypedStorage is deprecated. It will be removed in the future and UntypedStorage will be the only storage class. "
    "This should only matter to you if you are using storages directly.  To access UntypedStorage directly, use "
    "tensor.untyped_storage() instead of tensor.storage()"
)


def storage(self):
    """``Tensor.storage`` (deprecated; warns as torch): the storage as a ``TypedStorage`` of ``self``'s dtype."""
    warnings.warn(_TYPED_DEPRECATED, UserWarning, stacklevel=2)
    return TypedStorage(untyped_storage(self), self.dtype)


def untyped_storage(self):
    """``Tensor.untyped_storage``: the bytes of ``self``'s storage (the same object while the storage stays)."""
    root = _strided.root_of(self)
    flat = _strided.storage_flat(root)
    from .views import _addr

    key = (_addr(flat), flat.shape[0])
    cached = root.__dict__.get("_untyped")
    if cached is None or cached[0] != key:
        cached = (key, UntypedStorage._of(root))
        root._untyped = cached
    return cached[1]


def bind():
    """The Tensor methods."""
    T = Tensor
    for name, fn in (("resize_", resize_), ("resize_as_", resize_as_), ("resize", resize), ("resize_as", resize_as),
                     ("set_", set_), ("is_set_to", is_set_to), ("new_empty_strided", new_empty_strided),
                     ("share_memory_", share_memory_), ("is_shared", is_shared), ("pin_memory", pin_memory),
                     ("is_pinned", is_pinned), ("untyped_storage", untyped_storage), ("storage", storage)):  # fmt: skip
        setattr(T, name, fn)
    T.output_nr = property(output_nr)
