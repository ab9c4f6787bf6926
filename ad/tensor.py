"""``Tensor``: a numpy array plus its autograd state.

A tensor is either a *leaf* (``_op is None``: made by the user, or by an op while nothing required grad) or a
*recorded result*: then ``_op`` is its entry in the op table (``ad/ops.py``), ``_inputs`` its operand tensors
(a tuple; the elementwise and reduction fast paths store one or two operands in ``_in0``/``_in1`` instead, which
``_inputs`` reads back: see ``_Operands``), ``_ctx`` what its rules need besides them, and ``(_tape, _off,
_row)`` place it on the tape (``ad/tape.py``): its data is a view of the tape's value arena at ``_off`` and row
``_row`` recorded it (``_nrows`` rows for ops that take several, such as ``cat``). The Python graph
(``_inputs``) serves ``grad_fn`` and the differentiable sweep (``create_graph=True``); the tape serves the
compiled sweep.

Views (``ad/views.py``): a view's ``_data`` is a numpy view of its base's storage and ``_vbase`` the base;
``_vc`` is the version counter shared by every alias of one storage (``_version`` reads it). A recorded
view's arena region holds a snapshot of its values for the compiled sweep; ``_data`` is the live storage.

Attributes live in ``__dict__`` with class-level defaults so that making a tensor sets only what differs
from a plain leaf: creating tensors is on the forward pass's critical path. The leaves users make
(``user_leaf``) are the exception: each of their uses reads the defaults, which are faster read from the
tensor itself.
"""

import numbers
import warnings
import weakref

import numpy as np

from . import observe

_new = object.__new__
_ref = weakref.ref
_FLOAT_KINDS = "f"


def _pre_write_node(t):
    """The node that holds ``t``'s autograd identity: ``t``, or after writes into it under no_grad (which gave it
    identity rows over its node: ``views._rehome``), the node before them."""
    while t._prev is not None and t._op is not None and t._op.name == "rehome":
        t = t._prev
    return t


class device:
    """Where a tensor's data lives: ``ad.device("cpu")``, ``ad.device("cuda")``, ``ad.device("cuda:1")``,
    ``ad.device("cuda", 0)``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        spec = str(spec)
        if ":" in spec:
            spec, idx = spec.split(":", 1)
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{spec}:{idx}'")
            index = int(idx)
        if spec not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {spec}")
        self.type = spec
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self):
        return (
            f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"
        )

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


class VersionCounter:
    """The version of one storage, shared by every tensor that aliases it (see the module header).

    ``refs``: weak references to the aliases (a plain list: a ``WeakSet`` costs microseconds to make, and
    ``detach()`` makes one alias per call); dead ones are dropped when the list is walked (``members``)."""

    __slots__ = ("version", "refs")

    def __init__(self, version=0):
        self.version = version
        self.refs = None

    @property
    def members(self):
        """The live aliases (pruning the dead references)."""
        refs = self.refs
        if not refs:
            return ()
        live = []
        kept = []
        for r in refs:
            m = r()
            if m is not None:
                live.append(m)
                kept.append(r)
        if len(kept) != len(refs):
            self.refs = kept
        return live


def counter(t):
    vc = t._vc
    if vc is None:
        vc = t._vc = VersionCounter()
    return vc


def share(t, alias):
    """``alias`` shares ``t``'s storage and version counter."""
    vc = counter(t)
    alias._vc = vc
    refs = vc.refs
    if refs is None:
        vc.refs = [_ref(t), _ref(alias)]
    else:
        refs.append(_ref(alias))
        if len(refs) > 64 and len(refs) & (len(refs) - 1) == 0:  # at powers of two: drop the dead references
            vc.members  # noqa: B018 - the property prunes


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks, key):
        self._hooks = hooks
        self.id = key

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


_hook_ids = iter(range(1, 1 << 62))


class Node:
    """``grad_fn`` of a recorded tensor: ``name()`` and ``next_functions`` as torch shows them."""

    __slots__ = ("_tensor_inputs", "_name", "_op", "_kind", "__weakref__")

    def __init__(self, name, inputs, op=None):
        self._name = name
        self._tensor_inputs = inputs
        self._op = op

    def name(self):
        return self._name

    @property
    def next_functions(self):
        out = []
        for t in self._tensor_inputs:
            if t is None or not t._rg:
                out.append((None, 0))
            elif t._op is None:
                out.append((t._accumulate_node(), 0))
            else:
                out.append((t.grad_fn, 0))
        op = self._op
        if op is not None and op.name in _SCALAR_OPERAND_OPS and op.name != "affine" or _is_scalar_affine(self):
            out.append((None, 0))  # torch wraps the Python scalar operand as a tensor: one more (undefined) edge
        return tuple(out)

    def __call__(self, *grads):
        raise RuntimeError("calling grad_fn directly is not supported; use ad.autograd.grad")

    def __repr__(self):
        return f"<{self._name} object at {id(self):#x}>"


_AUTOGRAD_BACKWARD = [None]  # ad.autograd.backward, once ``Tensor.backward`` imported it
# ops whose Python scalar operand torch counts in next_functions (x + 2, x * 2, 2 / x, ...)
_SCALAR_OPERAND_OPS = {"affine"}  # (2 / x is reciprocal(x) * 2, as torch: the scalar is the mul's)


def _is_scalar_affine(node):
    """An affine node (``x + 2``, ``x * 2``, ``x / 2``, ``x - 2``; not ``-x`` or ``2 - x``)."""
    if node._op is None or node._op.name != "affine":
        return False
    kind = getattr(node, "_kind", None)
    return kind in ("add", "sub", "mul", "div")


class AccumulateGrad(Node):
    __slots__ = ("variable",)

    def __init__(self, variable):
        super().__init__("torch::autograd::AccumulateGrad", ())
        self.variable = variable


class _Operands:
    """``Tensor._inputs`` of a tensor that has no ``_inputs`` of its own: ``(_in0,)`` or ``(_in0, _in1)`` (the
    operands the recording fast paths store), else ``()`` (a leaf).

    Why: a tuple per recorded op is one more object for the garbage collector, which traverses every object
    that survives a collection of the youngest generation; a graph's results all survive until its backward,
    and a many-leaf graph (a parameter times a constant, then tanh, then a sum, per leaf) made seven such
    objects per leaf, three of them these tuples. A non-data descriptor: a tensor whose ``_inputs`` is set
    (every other path, and any rewrite of the operands) keeps it in its ``__dict__``, which takes precedence."""

    def __get__(self, t, cls=None):
        if t is None:
            return ()
        x = t._in0
        if x is None:
            return ()
        y = t._in1
        return (x,) if y is None else (x, y)


class Tensor:
    """A multi-dimensional array with autograd, mirroring ``torch.Tensor``.

    Make one with ``ad.tensor``, ``ad.from_numpy`` or the creation functions; differentiable operations
    are methods (``x.sin()``), operators (``x @ w``) and functions (``ad.sin(x)``).

    Example:
        >>> x = ad.tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4.], dtype=float64)
    """

    # numpy defers to our reflected operators (``array * tensor`` -> ``Tensor.__rmul__``)
    __array_priority__ = 1000

    # class-level defaults: a plain leaf that does not require grad
    _rg = False
    _grad = None
    _op = None
    _inputs = _Operands()  # (a tuple set on the tensor takes precedence)
    _in0 = None  # the operands of a result of the fast paths (see _Operands)
    _in1 = None
    _ctx = None
    _tape = None
    _off = -1
    _row = -1
    _nrows = 1
    _vc = None  # views.VersionCounter shared by every alias of the storage; None: version 0, no alias yet
    _vbase = None  # a view's base (torch's ``_base``): the root tensor whose storage ``_data`` views
    _vflags = 0  # views.MULTI / views.NO_GRAD: how the view was made (torch's view errors)
    _hooks = None
    _retains_grad = False
    _node = None
    _tangents = None
    _imports = None  # [(weakref to tape, offset)] of arena copies, flagged when this tensor changes in place
    _prev = None  # the node this tensor was before an in-place op made it a new one (differentiable_sweep.graph_sweep)
    _data_of = None  # weakref to the tensor whose ``.data`` this is (methods._refresh_data_owner)
    _dev = None  # a CUDA tensor's ad.device (its _data a numba device array: ad/cuda); None on the CPU
    _stale_view = False  # a view of a multi-output op whose storage was written since (views.retire_multi_views)
    _grad_ready_hooks = None  # {id: hook} of a leaf (ad/autograd/sweep_hooks.py)

    def __init__(self, data, *, requires_grad=False):
        arr = data._data if isinstance(data, Tensor) else np.asarray(data)
        self._data = arr
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basic properties
    @property
    def shape(self):
        return self._data.shape

    def size(self, dim=None):
        if dim is None:
            return self._data.shape
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        return CPU if self._dev is None else self._dev

    @property
    def is_cuda(self):
        return self._dev is not None

    @property
    def __cuda_array_interface__(self):
        """The CUDA array interface of a CUDA tensor's data (CuPy, numba, torch read it without a copy)."""
        if self._dev is None:
            raise AttributeError(
                "Can't get __cuda_array_interface__ on non-CUDA tensor type: ad.Tensor. If CUDA data is required "
                "use tensor.cuda() to copy tensor to device memory."
            )
        if self._rg:
            raise RuntimeError(
                "Can't get __cuda_array_interface__ on Variable that requires grad. If gradients aren't required, "
                "use var.detach() to get Variable that doesn't require grad."
            )
        from .cuda.arrays import cuda_array_interface

        return cuda_array_interface(self._data)

    def _host(self):
        """The data as a host array: ``_data`` itself on the CPU, a copy from a CUDA device."""
        return self._data if self._dev is None else self._data.copy_to_host()

    def _refuse_host_view(self):
        raise TypeError(
            f"can't convert {self._dev} device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host "
            "memory first."
        )

    @property
    def data(self):
        if self._dev is not None:
            t = _new(Tensor)
            t._data = self._data
            t._dev = self._dev
            return t
        t = Tensor(self._data)
        t._data_of = weakref.ref(self)  # an in-place op on it updates what this tensor's graph reads (methods)
        return t

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        self._data = value._data

    @data.deleter
    def data(self):
        raise RuntimeError("Deleting tensor data is not allowed. Delete tensor instead!")

    @property
    def is_leaf(self):
        if self._op is not None and self.__dict__.get("_stale_view"):
            self.grad_fn  # noqa: B018 - raises, as torch's is_leaf reads the grad_fn it cannot regenerate
        return self._op is None

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag):
        if self._op is not None and not flag:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place (leaves only, floating point only) and return ``self``."""
        if self._op is not None:
            if requires_grad:
                return self
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        if requires_grad and self._data.dtype.kind not in _FLOAT_KINDS:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if requires_grad and self._data.dtype.itemsize < 4:
            raise RuntimeError(
                f"ad differentiates float32 and float64 tensors; a {self._data.dtype} tensor cannot require grad "
                "(convert it with .float() first)"
            )
        self._rg = bool(requires_grad)
        return self

    @property
    def grad(self):
        if self._op is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
                "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
                )
            if value.shape != self.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of size "
                    f"'{list(self.shape)}'. Please ensure that the gradient and the tensor are the same size"
                )
            if value is self:
                raise RuntimeError("can't assign Variable as its own grad")
            if value.dtype != self.dtype:
                names = {"float32": ("float", "Float"), "float64": ("double", "Double")}
                got = names.get(str(value.dtype), (str(value.dtype),))[0]
                want = names.get(str(self.dtype), (None, str(self.dtype)))[1]
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{got}' to a tensor with grad_dtype '{want}'. The "
                    "gradient must match the tensor's grad_dtype (defaults to the tensor's dtype). You can set the "
                    "tensor's grad_dtype attribute with a specific dtype, or None to allow any dtype. Set grad_dtype "
                    "with caution. Diverging the dtypes of a tensor and its gradient may break downstream systems "
                    "that assume they match."
                )
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def grad_fn(self):
        if self._op is None:
            return None
        if self.__dict__.get("_stale_view"):
            from .views import stale_view_error

            raise stale_view_error(self)
        node = self._node
        if node is None:
            name = self._op.grad_fn_name
            if callable(name):
                name = name(self._ctx)
            node = Node(name, self._inputs, self._op)
            if self._op.name == "affine" and isinstance(self._ctx, tuple) and len(self._ctx) > 2:
                node._kind = self._ctx[2]
            self._node = node
        return node

    def _accumulate_node(self):
        node = self._node
        if node is None:
            node = AccumulateGrad(self)
            self._node = node
        return node

    @property
    def retains_grad(self):
        return self._retains_grad

    def retain_grad(self):
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward (no-op on leaves)."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._op is None or self._retains_grad:
            return
        self._retains_grad = True
        node = _pre_write_node(self)
        if node is not self:  # torch's grad_fn is unchanged by writes under no_grad: retain at the node before them
            self._retain_via_prev = True
            node._retain_into = self
            node._retains_grad = True
        if node._tape is not None:
            node._tape.register_hook_row(node._row + node._nrows - 1, node)

    def register_hook(self, hook):
        """Register ``hook(grad) -> Tensor or None``, called with this tensor's gradient during backward;
        a returned tensor replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = _pre_write_node(self)  # (torch's grad_fn is unchanged by writes under no_grad: hook it)
        if node._hooks is None:
            node._hooks = {}
        key = next(_hook_ids)
        node._hooks[key] = hook
        if node._op is not None and node._tape is not None:
            node._tape.register_hook_row(node._row + node._nrows - 1, node)
        return RemovableHandle(node._hooks, key)

    @property
    def _version(self):
        vc = self._vc
        return 0 if vc is None else vc.version

    @_version.setter
    def _version(self, value):
        counter(self).version = value
        if observe.observer is not None:  # (ad.compile: a write while recording)
            observe.observer.wrote(self)

    @property
    def _base(self):
        return self._vbase

    def _is_view(self):
        return self._vbase is not None

    def is_contiguous(self, memory_format=None):
        from .views import is_contiguous

        return is_contiguous(self)

    def stride(self, dim=None):
        from .views import stride

        return stride(self, dim)

    def storage_offset(self):
        from .views import storage_offset

        return storage_offset(self)

    def contiguous(self, memory_format=None):
        """``self`` if its data is C-contiguous, else a contiguous copy (recorded as ``clone``)."""
        return self if self.is_contiguous() else self.clone()

    # ------------------------------------------------------------------ conversion
    def numpy(self, *, force=False):
        if self._rg and not force and _grad_enabled():  # as torch: allowed under no_grad
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self._dev is not None:
            self._refuse_host_view()
        if observe.observer is not None:
            observe.value_read("numpy()")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if self._dev is not None:
            self._refuse_host_view()
        if observe.observer is not None:
            observe.value_read("__array__")
        arr = self._data
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        if copy:
            return arr.copy()
        return arr

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        if observe.observer is not None:
            observe.value_read("item()")
        return self._host().reshape(-1)[0].item()

    def tolist(self):
        if observe.observer is not None:
            observe.value_read("tolist()")
        return self._host().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        if observe.observer is not None:
            observe.value_read("bool()")
        return bool(self._host().reshape(-1)[0])

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    def __repr__(self):
        body = np.array2string(self._host(), separator=", ", prefix="tensor(")
        extra = []
        if self._dev is not None:
            extra.append(f"device='{self._dev}'")
        from .creation import _default_float

        dt = self._data.dtype
        if self._data.size == 0 and self._data.ndim != 1:
            extra.append(f"size={tuple(self._data.shape)}")
        # torch's rule: the default float dtype, int64 and bool go unsaid, except that an empty tensor names any
        # dtype but the default float one
        if dt != _default_float if self._data.size == 0 else dt not in (_default_float, np.int64, np.bool_):
            extra.append(f"dtype={dt}")
        if self._op is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._rg:
            extra.append("requires_grad=True")
        if self._tangents:  # a dual tensor shows its tangent at the innermost level, as torch's
            from .forward import _fw

            levels = [lvl for lvl in _fw.levels if lvl in self._tangents]
            if levels:
                extra.append(f"tangent={self._tangents[levels[-1]]!r}")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    def __format__(self, format_spec):
        # torch's: a 0-d tensor formats as its Python number (f"{t:.3f}", and the distributions' reprs show scalar
        # parameters so); other tensors, and subclasses such as Parameter, as objects do (their str, no spec)
        if self._data.ndim == 0 and type(self) is Tensor:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    # ------------------------------------------------------------------ devices
    def to(self, *args, **kwargs):
        """``to(device)``, ``to(dtype)`` or ``to(device, dtype)``; differentiable for dtype changes."""
        from . import ops

        dtype = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        for a in args:
            if isinstance(a, (str, device)):
                dev = a
            elif isinstance(a, Tensor):
                dtype = a.dtype
            else:
                dtype = a
        out = self
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            out = ops.cast(self, np.dtype(dtype))
        if dev is not None:
            out = out._to_device(dev)
        return out

    def _to_device(self, dev):
        """This tensor on ``dev``: itself if it is there, else a differentiable copy (ToCopyBackward0)."""
        dev = device(dev)
        if dev.type == "cpu":
            if self._dev is None:
                return self
        else:
            from .cuda.arrays import cuda_device

            dev = cuda_device(dev)
            if self._dev == dev:
                return self
        from .cuda.ops import to_copy

        return to_copy(self, dev)

    def cpu(self):
        return self if self._dev is None else self._to_device(CPU)

    def cuda(self, device=None, non_blocking=False):
        return self._to_device(
            "cuda" if device is None else device if not isinstance(device, int) else f"cuda:{device}"
        )

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            return f"ad.{'Double' if self.dtype == np.float64 else 'Float'}Tensor"
        return self.to(dtype)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ------------------------------------------------------------------ autograd entry points
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into the leaves (see ``ad.autograd.backward``)."""
        backward = _AUTOGRAD_BACKWARD[0]
        if backward is None:  # (imported once: a function-level import costs ~3 us a call, importlib's fromlist)
            from .autograd import backward

            _AUTOGRAD_BACKWARD[0] = backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self):
        """A new leaf sharing this tensor's data and version counter, cut from the graph (and from forward-mode
        tangents): an in-place change of either is seen by both, and by backward's saved-value checks."""
        t = _new(Tensor)
        t._data = self._data
        if self._dev is not None:
            t._dev = self._dev
        share(self, t)
        return t

    def detach_(self):
        """Make this tensor a leaf that does not require grad, in place (not a view: torch refuses)."""
        if self._vbase is not None:
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) "
                "for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, and "
                "hence detach_() cannot be called on these gradients. To fix this error, please refer to the "
                "Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution."
            )
        if self._op is not None:
            self._op = None
            self._inputs = ()
            self._in0 = self._in1 = None
            self._ctx = None
            self._tape = None
            self._node = None
        self._rg = False
        return self

    def clone(self, *, memory_format=None):
        from . import ops

        return ops.clone(self)


def _share_instance_keys(cls, names):
    """Make ``names`` keys of ``cls``'s shared instance-dict key table, before any instance exists.

    CPython (3.11+) stores the attributes of instances in a compact values array indexed by one key table
    shared by the class; the table only takes new names while the class has made few instances (about 30).
    An attribute whose name is not in it gives that instance a real ``dict`` of its own: one more object for
    the garbage collector to track and a dict to grow, per tensor. The first tensors made at import set only
    ``_data``, so without this every recorded result (which sets ``_op``, ``_inputs``, ``_tape`` ...) would pay
    for a dict. One throwaway instance that sets every attribute a tensor commonly gets fixes the table."""
    probe = _new(cls)
    for name in names:
        setattr(probe, name, None)


# every attribute the forward paths, views and leaves set (the class-level defaults above, and ``_data``)
_share_instance_keys(
    Tensor,
    ("_data", "_rg", "_op", "_inputs", "_in0", "_in1", "_ctx", "_tape", "_off", "_row", "_nrows", "_grad", "_vc")
    + ("_vbase",)
    + ("_vflags", "_hooks", "_retains_grad", "_node", "_tangents", "_imports", "_prev", "_data_of", "_dev")
    + ("_stale_view", "_grad_ready_hooks"),
)


def _grad_enabled():
    from .grad_mode import _grad_state

    return _grad_state.enabled


def _wrap_dim(dim, ndim):
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    lo = -max(ndim, 1)
    hi = max(ndim, 1) - 1
    if dim < lo or dim > hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim + max(ndim, 1) if dim < 0 else dim


def user_leaf(data, requires_grad=False):
    """``wrap_array`` for the tensors users make (``ad.tensor``, ``from_numpy``, the factories), with the
    attributes that the forward fast paths read on every operand stored on the tensor: a class-level default
    read through an instance misses CPython's specialised attribute read (about 4x the cost of an instance
    value's), and a leaf or constant is read at each op that uses it (W1 multiplies by one constant 400 times a
    step: ~5% of that op). Same values as the defaults."""
    t = wrap_array(data, requires_grad)
    if not requires_grad:
        t._rg = False
    t._op = None
    t._tape = None
    t._tangents = None
    t._vc = None
    t._dev = None
    t._vflags = 0
    t._stale_view = False
    t._grad_ready_hooks = None
    return t


def wrap_array(data, requires_grad=False):
    """A new leaf around ``data`` (no copy); numpy scalars (0-d results) become 0-d arrays."""
    t = _new(Tensor)
    if type(data) is np.ndarray:
        t._data = data
    elif isinstance(data, Tensor) and data._dev is not None:  # a CUDA tensor's data stays on its device
        t._data = data._data
        t._dev = data._dev
    else:
        t._data = np.asarray(data)
    if requires_grad:
        t._rg = True
    return t
