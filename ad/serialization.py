"""``ad.save`` / ``ad.load`` in a format that never executes code on load, and pickling of tensors.

The file is a zip archive (numpy's ``.npz`` layout) holding:

- ``ad_index.json``: ``{"format": "ad.save", "version": 1, "root": NODE}``, where a NODE is a JSON list
  ``[tag, payload]``: ``["none"]``, ``["bool", b]``, ``["int", i]``, ``["float", x]``, ``["str", s]``,
  ``["list", [NODE...]]``, ``["tuple", [NODE...]]``, ``["dict", [[NODE, NODE]...]]`` (keys may be ints, as
  optimizer state dicts have), ``["odict", ...]``, ``["size", [ints]]``, ``["dtype", name]``,
  ``["tensor", {"id": k, "requires_grad": b, "parameter": b}]`` and ``["ndarray", k]``;
- ``arrays/k.npy``: the array of entry ``k``, written by ``numpy.lib.format`` and read back with
  ``allow_pickle=False``. A tensor that appears several times is stored once and loads as one tensor.

``ad.load`` reads only this: a file that is not such an archive (a torch pickle, an arbitrary pickle, an
``.npy`` of objects) is refused with ``pickle.UnpicklingError`` before anything in it is interpreted. Saving
anything else (a whole ``Module``, a function) raises ``TypeError``: save ``model.state_dict()``.

Pickling (``pickle``, ``copy.deepcopy``) of a tensor stores its values and ``requires_grad`` only: the
graph is not pickled, a non-leaf pickles as a leaf holding its value (as torch).
"""

import copy
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor, wrap_array

__all__ = ["save", "load"]

_INDEX = "ad_index.json"
_FORMAT = "ad.save"
_VERSION = 1


class _Writer:
    def __init__(self):
        self.arrays = []
        self.ids = {}

    def array_id(self, key, arr):
        if key in self.ids:
            return self.ids[key]
        k = len(self.arrays)
        self.ids[key] = k
        self.arrays.append(arr if arr.flags.c_contiguous else arr.copy(order="C"))  # keeps 0-d arrays 0-d
        return k

    def encode(self, obj, depth=0):
        from .conveniences import Size
        from .nn.parameter import Parameter

        if depth > 200:
            raise ValueError("ad.save: the object is nested more than 200 levels deep (a reference cycle?)")
        if obj is None:
            return ["none"]
        if isinstance(obj, (bool, np.bool_)):
            return ["bool", bool(obj)]
        if isinstance(obj, (int, np.integer)):
            return ["int", int(obj)]
        if isinstance(obj, (float, np.floating)):
            return ["float", float(obj)]
        if isinstance(obj, str):
            return ["str", obj]
        if isinstance(obj, Tensor):
            # a CUDA tensor's values are written from a host copy, with its device, where load puts it back
            data = obj._data if obj._dev is None else obj.detach().cpu()._data
            k = self.array_id(id(obj), data)
            entry = {"id": k, "requires_grad": bool(obj._rg), "parameter": isinstance(obj, Parameter)}
            if obj._dev is not None:
                entry["device"] = str(obj.device)
            return ["tensor", entry]
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError("ad.save cannot store numpy arrays of Python objects")
            return ["ndarray", self.array_id(id(obj), obj)]
        if isinstance(obj, np.dtype):
            return ["dtype", obj.name]
        if isinstance(obj, Size):
            return ["size", [int(s) for s in obj]]
        if isinstance(obj, OrderedDict):
            return ["odict", [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in obj.items()]]
        if type(obj) is dict or isinstance(obj, dict) and type(obj).__module__ == "collections":
            return ["dict", [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in obj.items()]]
        if type(obj) is list:
            return ["list", [self.encode(v, depth + 1) for v in obj]]
        if type(obj) is tuple:
            return ["tuple", [self.encode(v, depth + 1) for v in obj]]
        hint = " (save model.state_dict() instead)" if hasattr(obj, "state_dict") else ""
        raise TypeError(
            f"ad.save stores tensors, numpy arrays, numbers, strings, None and lists, tuples and dicts of them; "
            f"got {type(obj).__name__}{hint}"
        )


def save(
    obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True, _disable_byteorder_record=False
):
    """Write ``obj`` (tensors and nested dicts/lists/tuples of tensors, numbers and strings: state dicts,
    optimizer state) to ``f`` (a path or a binary file object).

    Example:
        >>> ad.save(model.state_dict(), "model.ad")
        >>> model.load_state_dict(ad.load("model.ad"))

    Raises:
        TypeError: ``obj`` holds something else (a whole module, a function, ...).
    """
    if pickle_module is not None:
        raise ValueError("ad.save writes no pickle: pickle_module is not accepted")
    writer = _Writer()
    root = writer.encode(obj)
    index = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root}, allow_nan=True)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write_zip(fh, index, writer.arrays)
    else:
        _write_zip(f, index, writer.arrays)


def _write_zip(fh, index, arrays):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(_INDEX, index)
        for k, arr in enumerate(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            z.writestr(f"arrays/{k}.npy", buf.getvalue())


def _refuse(why):
    raise pickle.UnpicklingError(
        f"ad.load reads only files written by ad.save (a zip archive with {_INDEX}); {why}. Nothing in the "
        "file was executed."
    )


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Read what ``ad.save`` wrote. Never unpickles and never runs code from the file (``weights_only`` is
    accepted, and is always effectively ``True``).

    Raises:
        pickle.UnpicklingError: the file is not an ``ad.save`` archive (for example a torch or pickle file).
        RuntimeError: ``map_location`` names a device other than the CPU or CUDA, or a tensor is to be loaded
            on CUDA where there is none.
    """
    if pickle_module is not None:
        raise ValueError("ad.load reads no pickle: pickle_module is not accepted")
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        map_location = str(map_location)
        if map_location.split(":")[0] not in ("cpu", "cuda"):
            raise RuntimeError(f"ad.load: map_location={map_location!r}: ad tensors live on the CPU or CUDA")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return _load(fh, map_location)
    return _load(f, map_location)


def _target_device(saved, map_location):
    """Where a tensor saved on ``saved`` (None: the CPU) is loaded: ``map_location`` (a device, or a dict from
    saved device names to devices) or where it was saved (a callable ``map_location`` is not applied)."""
    name = saved or "cpu"
    if isinstance(map_location, str):
        name = map_location
    elif isinstance(map_location, dict):
        name = str(map_location.get(name, name))
    if name.startswith("cuda"):
        from . import cuda

        if not cuda.is_available():
            raise RuntimeError(
                "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False. If you "
                "are running on a CPU-only machine, please use torch.load with map_location=torch.device('cpu') to "
                "map your storages to the CPU."
            )
        return name
    return None


def _load(fh, map_location=None):
    try:
        z = zipfile.ZipFile(fh, "r")
    except zipfile.BadZipFile:
        _refuse("this file is not a zip archive (a pickle, or torch's legacy format?)")
    with z:
        names = set(z.namelist())
        if _INDEX not in names:
            if any(n.endswith("data.pkl") for n in names):
                _refuse("this is a torch.save archive, whose data.pkl is a pickle")
            _refuse(f"the archive has no {_INDEX}")
        try:
            index = json.loads(z.read(_INDEX).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            _refuse(f"its index is not valid JSON ({e})")
        if not isinstance(index, dict) or index.get("format") != _FORMAT:
            _refuse("its index does not name the ad.save format")
        if index.get("version") != _VERSION:
            _refuse(f"its format version {index.get('version')!r} is not one this ad reads ({_VERSION})")
        reader = _Reader(z, names, map_location)
        return reader.decode(index["root"])


class _Reader:
    def __init__(self, z, names, map_location=None):
        self.map_location = map_location
        self.z = z
        self.names = names
        self.arrays = {}
        self.tensors = {}

    def array(self, k):
        if not isinstance(k, int):
            _refuse("an array reference is not an integer")
        if k not in self.arrays:
            name = f"arrays/{k}.npy"
            if name not in self.names:
                _refuse(f"the index refers to a missing array {name}")
            with self.z.open(name) as member:
                data = io.BytesIO(member.read())
            try:
                self.arrays[k] = np.lib.format.read_array(data, allow_pickle=False)
            except ValueError as e:
                _refuse(f"{name} is not a plain numpy array ({e})")
        return self.arrays[k]

    def decode(self, node):
        from .conveniences import Size
        from .nn.parameter import Parameter

        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            _refuse(f"malformed index entry {node!r:.80}")
        tag = node[0]
        payload = node[1] if len(node) > 1 else None
        if tag == "none":
            return None
        if tag in ("bool", "int", "float", "str"):
            return payload
        if tag == "list":
            return [self.decode(v) for v in payload]
        if tag == "tuple":
            return tuple(self.decode(v) for v in payload)
        if tag in ("dict", "odict"):
            out = OrderedDict() if tag == "odict" else {}
            for k, v in payload:
                key = self.decode(k)
                out[key if not isinstance(key, list) else tuple(key)] = self.decode(v)
            return out
        if tag == "size":
            return Size(int(s) for s in payload)
        if tag == "dtype":
            return np.dtype(str(payload))
        if tag == "ndarray":
            return self.array(payload)
        if tag == "tensor":
            k = payload["id"]
            if k not in self.tensors:
                t = wrap_array(self.array(k))
                device = _target_device(payload.get("device"), self.map_location)
                if device is not None:
                    t = t.to(device)
                if payload.get("parameter"):
                    t = Parameter(t, bool(payload.get("requires_grad")))
                elif payload.get("requires_grad"):
                    t.requires_grad_(True)
                self.tensors[k] = t
            return self.tensors[k]
        _refuse(f"unknown index entry {tag!r}")


# ---------------------------------------------------------------------------------------------------------
# pickling and deep copies of tensors


def _rebuild_tensor(data, requires_grad):
    t = wrap_array(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _tensor_reduce_ex(self, protocol):
    return _rebuild_tensor, (self._data.copy(), bool(self._rg))


def _tensor_deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    if self._op is not None:
        raise RuntimeError(
            "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the moment."
        )
    if self._dev is not None:  # a device array has no deepcopy: a copy on the same device
        from .grad_mode import no_grad

        with no_grad():
            new = self.detach().clone()
    else:
        new = wrap_array(copy.deepcopy(self._data, memo))
    if self._rg:
        new.requires_grad_(True)
    memo[id(self)] = new
    if self._grad is not None:
        new._grad = copy.deepcopy(self._grad, memo)
    return new


def bind():
    Tensor.__reduce_ex__ = _tensor_reduce_ex
    Tensor.__deepcopy__ = _tensor_deepcopy
