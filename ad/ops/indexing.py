"""Index-map ops and joins: integer-array indexing (``getitem``), ``gather``, ``index_select``, ``max``/``min``
over a dim (an index map picks the values), and ``cat``/``stack``/``split``/``chunk`` (each input a strided
scatter into the output, one row per input). ``shape_index.py`` and ``scatter_ops.py`` build the rest of torch's
indexing ops on these.
"""

import builtins
import operator
import re

import numpy as np

from kernels import opcodes as K

from .. import cuda as _cuda
from .. import observe as _observe
from ..grad_mode import _grad_state
from ..observe import value_read
from ..tape import PACK, ROW, ROW_WORDS
from ..tensor import Tensor, _wrap_dim, wrap_array
from . import (
    ADD,
    Op,
    _c_strides,
    _list_jvp,
    _operand,
    _recording,
    _result,
    _size,
    _tape_for,
    forward_rule,
    linear_op,
    maximum,
    minimum,
)
from .structural import SELECT, _view, gather_strided, max_all, min_all

# --- index maps: integer-array indexing, gather, index_select, max(dim) values


def _gather_map_vjp(g, out, inputs, ctx):
    x_shape, index_map = ctx
    return (scatter_map(g, x_shape, index_map),)


def _scatter_map_vjp(g, out, inputs, ctx):
    out_shape, index_map = ctx
    return (gather_map(g, inputs[0].shape, index_map),)


GATHER_MAP = Op("gather_map", K.GATHER_MAP, "IndexBackward0", _gather_map_vjp)
SCATTER_MAP = Op("scatter_map", K.SCATTER_MAP, "IndexPutBackward0", _scatter_map_vjp)
GATHER = Op("gather", K.GATHER_MAP, "GatherBackward0", _gather_map_vjp)
INDEX_SELECT = Op("index_select", K.GATHER_MAP, "IndexSelectBackward0", _gather_map_vjp)
# a view regenerated after an in-place write into its base (ad/views.py): a gather from the base's new node
AS_STRIDED_VIEW = Op("as_strided_view", K.GATHER_MAP, "AsStridedBackward0", _gather_map_vjp)
# torch.as_strided_copy (ad/copy_views.py): a gather of storage positions from the input
AS_STRIDED_COPY = Op("as_strided_copy", K.GATHER_MAP, "AsStridedBackward0_copy", _gather_map_vjp)
# the base's node after a write through one of its views: ``base * keep + scatter(value)`` (ad/views.py)
COPY_SLICES = Op(
    "copy_slices", K.ADD, "torch::autograd::CopySlices", ADD.vjp, ADD.partial, ADD.np_fn, jvp=ADD.jvp, register=False
)
def _gather_indexed_vjp(g, out, inputs, ctx):
    x_shape, t, per_out, per_in, inverse, shared = ctx
    if inverse is not None:  # (one output per source: the adjoint gathers back through the inverse map)
        return (gather_indexed(g, x_shape, inverse, per_in, per_out, t),)
    # several outputs may share a source: a scatter-add, whose index map is host data (graph sweeps only:
    # create_graph, forward-mode levels; the device sweep runs the row itself)
    index = _cuda.host_copy(t).reshape(-1)
    if shared:
        index = np.tile(index, _size(g.shape) // builtins.max(per_out, 1))
    plane = np.arange(index.size, dtype=np.int64) // per_out * per_in
    flat = np.where(index >= 0, plane + index, _size(x_shape))  # (no source: into one spare element, dropped)
    total = scatter_map(g, (_size(x_shape) + 1,), flat)
    return (total[: _size(x_shape)].reshape(x_shape),)


GATHER_INDEXED = Op("gather_indexed", K.GATHER_INDEXED, "IndexBackward0", _gather_indexed_vjp)
MAX_DIM = Op("max_dim", K.GATHER_MAP, "MaxBackward0", _gather_map_vjp)
MIN_DIM = Op("min_dim", K.GATHER_MAP, "MinBackward0", _gather_map_vjp)


@linear_op
def gather_map(x, shape, index_map, op=GATHER_MAP):
    """``out[i] = x.flat[index_map[i]]`` with ``out`` of ``shape``."""
    shape = tuple(shape)
    if x._dev is not None:
        return _cuda_ops().gather_map(x, shape, index_map, op)
    flat = np.ascontiguousarray(x._data).reshape(-1)
    index_map = np.ascontiguousarray(index_map, dtype=np.int64).reshape(-1)
    out_data = flat[index_map].reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(x._data.dtype, n + x._data.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    aux = len(tape.aux)
    tape.aux.append(n)
    tape.aux.frombytes(index_map.tobytes())
    row = tape.record(op.code | K.XRG, off, xoff, -1, n, aux, xrow)
    return _result(view, tape, off, row, op, (x,), (x.shape, index_map))


@linear_op
def gather_indexed(x, shape, t, per_out, per_in, inverse=None, shared=False, op=GATHER_INDEXED):
    """``out.flat[i] = x.flat[(i // per_out) * per_in + t[i]]`` (``out`` of ``shape``; 0 where ``t[i] == -1``, NaN
    where ``t[i] < -1``) for CUDA tensor ``x`` and indices ``t`` on the device (a flat int64 device array, within
    each of the planes of ``per_in`` elements): max pooling's picks and max unpooling's sources, computed there,
    with no copy of the indices to the host (``gather_map``'s index map is host data), and a convolution's
    columns (``shared``: ``t`` holds one plane's ``per_out`` indices, used for every plane). ``inverse``: for a
    one-to-one map, the index of each ``x`` element's output (-1: none), the adjoint's own gather."""
    if x._dev is not None:
        return _cuda_ops().gather_indexed(x, shape, t, per_out, per_in, inverse, shared, op)
    # a CPU tensor (the op's generic checks; the pooling ops' CPU paths use gather_map): gather_map of the host
    # indices, where() for the outputs without a source
    shape = tuple(shape)
    n = _size(shape)
    t = np.asarray(_cuda.host_copy(t), dtype=np.int64).reshape(-1)
    if shared:
        t = np.tile(t, n // builtins.max(per_out, 1))
    has = t >= 0
    flat = np.where(has, np.arange(n, dtype=np.int64) // per_out * per_in + t, 0)
    out = gather_map(x, shape, flat)
    if has.all():
        return out
    from .structural import where

    fill = np.where(t == -1, 0.0, np.nan).astype(x._data.dtype).reshape(shape)
    return where(wrap_array(has.reshape(shape)), out, wrap_array(fill))


@linear_op
def scatter_map(x, shape, index_map):
    """``out = zeros(shape); out.flat[index_map[i]] += x.flat[i]`` (repeated indices accumulate)."""
    shape = tuple(shape)
    if x._dev is not None:
        return _cuda_ops().scatter_map(x, shape, index_map, SCATTER_MAP)
    xd = x._data
    index_map = np.ascontiguousarray(index_map, dtype=np.int64).reshape(-1)
    out_flat = np.zeros(_size(shape), dtype=xd.dtype)
    np.add.at(out_flat, index_map, xd.reshape(-1))
    out_data = out_flat.reshape(shape)
    if not _recording(x):
        return wrap_array(out_data)
    n = out_data.size
    tape = _tape_for(xd.dtype, n + xd.size + 1, x)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    xoff, xrow = _operand(tape, x)
    aux = len(tape.aux)
    tape.aux.append(xd.size)
    tape.aux.frombytes(index_map.tobytes())
    row = tape.record(K.SCATTER_MAP | K.XRG, off, xoff, -1, n, aux, xrow)
    return _result(view, tape, off, row, SCATTER_MAP, (x,), (shape, index_map))


def _index_key(key, defer_reads=False):
    """Split an indexing key into numpy form; report whether it needs an index map (advanced indexing).
    ``defer_reads``: the caller tells ``ad.compile`` itself about integer index tensors (``getitem``)."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    advanced = False
    for k in key:
        if isinstance(k, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(k).__name__}'")
        if isinstance(k, Tensor):
            if not defer_reads or k._data.dtype.kind not in "iu":
                value_read("indexing with a tensor")  # (ad.compile: the index values shape the result)
            k = k._data
            advanced = True
        elif isinstance(k, (list, np.ndarray)):
            k = np.asarray(k)
            advanced = True
        elif isinstance(k, (bool, np.bool_)):
            advanced = True
        if isinstance(k, np.ndarray) and k.dtype.kind not in "iub":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        out.append(k)
    return tuple(out), advanced


_TOO_MANY = re.compile(r"too many indices for array: array is (\d+)-dimensional")


def torch_index_error(e):
    """torch's IndexError for numpy's ``e`` (an index out of range, or too many indices)."""
    too_many = _TOO_MANY.match(str(e))
    if too_many is None:
        return IndexError(str(e).replace("axis", "dimension"))
    nd = int(too_many.group(1))
    if nd == 0:
        return IndexError(
            "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in C++ to convert "
            "a 0-dim tensor to a number"
        )
    return IndexError(f"too many indices for tensor of dimension {nd}")


@linear_op
def getitem(x, key):
    if x._dev is not None:
        return _cuda_getitem(x, key)
    watching = _observe.observer is not None  # (ad.compile is recording)
    nkey, advanced = _index_key(key, defer_reads=watching)
    xd = x._data
    try:
        out_data = xd[nkey]
    except IndexError as e:
        raise torch_index_error(e) from None
    out_data = np.asarray(out_data)
    if advanced:
        replayable = _replayable_key(key, nkey) if watching else None
        if not _recording(x):
            if watching:
                value_read("indexing with a tensor")
            return wrap_array(out_data.copy() if out_data.base is not None else out_data)
        index_map = np.arange(xd.size, dtype=np.int64).reshape(xd.shape)[nkey]
        out = gather_map(x, out_data.shape, index_map, GATHER_MAP)
        if replayable is not None:  # the replay recomputes the map from the index tensor's values
            _observe.observer.gathered(out, replayable[0], ("getitem", replayable[1]))
        elif watching:
            value_read("indexing with a tensor")
        return out
    if not builtins.any(k is Ellipsis for k in nkey):
        nkey = nkey + (Ellipsis,)  # so that the result stays an array (a view) when every dim is indexed
    return _view(SELECT, x, lambda a: a[nkey])


def _replayable_key(key, nkey):
    """``(index tensor, key)`` when ``key`` holds one integer index tensor and otherwise only slices, ints,
    ``None`` and ``...`` (the result's shape does not depend on the index values; ``key`` has ``"index"`` in the
    tensor's place), else None (no tensor, boolean masks, several index arrays)."""
    key = key if isinstance(key, tuple) else (key,)
    tensors = [j for j, k in enumerate(key) if isinstance(k, Tensor)]
    if len(tensors) != 1 or nkey[tensors[0]].dtype.kind not in "iu":
        return None
    j = tensors[0]
    if not all(type(k) in _PLAIN_KEYS for i, k in enumerate(nkey) if i != j):
        return None
    return key[j], tuple("index" if i == j else k for i, k in enumerate(nkey))


_PLAIN_KEYS = (slice, int, type(None), type(Ellipsis))


def gather(input, dim, index, *, sparse_grad=False):
    if sparse_grad:
        raise NotImplementedError("gather(sparse_grad=True): ad has no sparse tensors (the gradient is dense)")
    d = _wrap_dim(dim, input.ndim)
    idx = index._host() if isinstance(index, Tensor) else np.asarray(index)  # (index maps are host data)
    if idx.dtype.kind not in "iu":
        raise RuntimeError("gather(): Expected dtype int32/int64 for index")
    if idx.ndim != input.ndim and not (input.ndim == 0 and idx.ndim == 1):  # torch: a 0-d input takes a 1-d index too
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    size = input.shape[d] if input.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:  # (torch's class: RuntimeError on every dim)
        raise RuntimeError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {d} with size {size}")
    if input.ndim == 0:  # torch treats a 0-d input as one element along dim 0
        return gather_map(input, idx.shape, np.zeros(idx.shape, np.int64), GATHER)
    flat_index = np.arange(input._data.size, dtype=np.int64).reshape(input.shape)
    try:
        index_map = np.take_along_axis(flat_index, idx.astype(np.int64), axis=d)
    except (IndexError, ValueError) as e:
        raise RuntimeError(f"gather(): index out of bounds or shape mismatch: {e}") from None
    out = gather_map(input, index_map.shape, index_map, GATHER)
    if _observe.observer is not None and isinstance(index, Tensor):  # ad.compile: the replay re-reads the index
        _observe.observer.gathered(out, index, d)
    return out


def index_select(input, dim, index):
    d = _wrap_dim(dim, input.ndim)
    idx = index._host() if isinstance(index, Tensor) else np.asarray(index)  # (index maps are host data)
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"index_select(): Expected dtype int32 or int64 for index, got {idx.dtype}")
    size = input.shape[d] if input.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        if d != 1:  # torch's class depends on its kernel's path: dim 1 has its own kernel (a RuntimeError)
            raise IndexError(f"index out of range in self (index {int(bad.reshape(-1)[0])}, size {size})")
        raise RuntimeError(
            f"INDICES element is out of DATA bounds, id={int(bad.reshape(-1)[0])} axis_dim={size} "
            f"(index_select on dimension {d} of size {size})"
        )
    if input.ndim == 0:  # torch: a 0-d input gives a 0-d result
        if idx.size != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {idx.size} value(s)")
        return gather_map(input, (), np.zeros(1, np.int64), INDEX_SELECT)
    flat_index = np.arange(input._data.size, dtype=np.int64).reshape(input.shape)
    index_map = np.take(flat_index, idx.reshape(-1).astype(np.int64), axis=d)
    out = gather_map(input, index_map.shape, index_map, INDEX_SELECT)
    if _observe.observer is not None and isinstance(index, Tensor):  # ad.compile: the replay re-reads the index
        _observe.observer.gathered(out, index, ("index_select", d))
    return out


class _MaxMin(tuple):
    """``(values, indices)``, as torch's ``torch.return_types.max``."""

    __slots__ = ()

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _max_min(x, dim, keepdim, is_max):
    if dim is None:
        if x._data.size == 0:  # (amax's error, in max's name: torch's)
            raise RuntimeError(
                f"{'max' if is_max else 'min'}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        return max_all(x) if is_max else min_all(x)
    d = _wrap_dim(dim, x.ndim)
    xd = x._data
    if xd.ndim == 0:  # a new tensor (torch's values are not the input, nor a view of it)
        values = gather_map(x, (), np.zeros(1, np.int64), MAX_DIM if is_max else MIN_DIM)
        return _MaxMin((values, wrap_array(np.array(0, np.int64))))
    if xd.shape[d] == 0:
        raise IndexError(f"{'max' if is_max else 'min'}(): Expected reduction dim {d} to have non-zero size.")
    host = xd if x._dev is None else _cuda.host_copy(xd)
    arg = np.argmax(host, axis=d) if is_max else np.argmin(host, axis=d)
    arg_k = np.expand_dims(arg, d)
    flat_index = np.arange(xd.size, dtype=np.int64).reshape(xd.shape)
    index_map = np.take_along_axis(flat_index, arg_k, axis=d)
    out_shape = arg_k.shape if keepdim else arg.shape
    values = gather_map(x, out_shape, index_map, MAX_DIM if is_max else MIN_DIM)
    return _MaxMin((values, _cuda.index_tensor(arg_k if keepdim else arg, x)))


def max(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    return _max_min(input, dim, keepdim, True)


def min(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    return _max_min(input, dim, keepdim, False)


# --- cat / stack: each input is a strided scatter into the output (one row per input)


def _cat_vjp(g, out, inputs, ctx):
    return tuple(
        gather_strided(g, t_.shape, strides, base) if t_._rg else None for t_, (strides, base) in zip(inputs, ctx)
    )


CAT = Op("cat", K.SCATTER_STRIDED, "CatBackward0", _cat_vjp)
STACK = Op("stack", K.SCATTER_STRIDED, "StackBackward0", _cat_vjp)


class _StackLayouts:
    """The layouts of ``stack``'s pieces, ``(inner, k * step)`` for piece ``k``, made when read (by the reverse
    rule): one object per stack instead of one tuple per piece for the garbage collector to count."""

    __slots__ = ("inner", "step", "count")
    holds_no_tensor = True  # (a constant context for ad.compile's templates)

    def __init__(self, inner, step, count):
        self.inner = inner
        self.step = step
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, k):
        if not -self.count <= k < self.count:
            raise IndexError("layout index out of range")
        return (self.inner, (k % self.count) * self.step)

    def __iter__(self):
        inner = self.inner
        return ((inner, k * self.step) for k in range(self.count))


_OFF = operator.attrgetter("_off")
_ROW = operator.attrgetter("_row")
_TAPE = operator.attrgetter("_tape")
_RG = operator.attrgetter("_rg")
_DATA = operator.attrgetter("_data")
_DEV = operator.attrgetter("_dev")
_SHAPE = operator.attrgetter("shape")
_DTYPE = operator.attrgetter("dtype")
MANY_PIECES = 16  # from this many same-shape pieces, ``_record_pieces`` builds the rows with numpy


def _record_pieces(op, tensors, out_data, layouts):
    """Record ``out`` as the sum of strided scatters of ``tensors`` (layouts: ``(strides, base)`` each)."""
    shape = out_data.shape
    n = out_data.size
    dt = out_data.dtype
    total = n + 1
    newest = None
    if type(layouts) is _StackLayouts and len(set(map(_TAPE, tensors))) == 1:
        # pieces of one shape on one tape (a stack of per-sample results): no loop over them
        total += len(tensors) * (tensors[0]._data.size + 1)
        newest = tensors[0] if tensors[0]._tape is not None else None
    else:
        for t_ in tensors:
            total += t_._data.size + 1
            if t_._tape is not None and (newest is None or t_._tape.id > newest._tape.id):
                newest = t_
    tape = _tape_for(dt, total, newest)
    off = tape.alloc(n)
    view = tape.view(off, shape, n)
    np.copyto(view, out_data)
    if type(layouts) is _StackLayouts and len(tensors) >= MANY_PIECES and tape.pack is PACK:
        taken = _stack_rows(tape, tensors, off, n, layouts)
        if taken is not None:
            return _result(view, tape, off, taken, op, tuple(tensors), layouts, nrows=len(tensors))
    first = -1
    count = 0
    aux = tape.aux
    pack = tape.pack
    code = K.SCATTER_STRIDED | K.XRG
    for t_, (strides, base) in zip(tensors, layouts):
        if not t_._rg:
            continue
        if t_._tape is tape:
            xoff = t_._off
            xrow = t_._row
        else:
            xoff, xrow = tape.import_tensor(t_, True)
        xs = t_._data.shape
        aux_off = len(aux)  # tape.add_aux and tape.record, inlined: one piece per element of a stack of scalars
        aux.extend((len(xs), base, *xs, *strides))
        row = tape.nrows
        if row >= tape.row_cap:
            tape.grow()
        pack(tape.rows, row * ROW.size, code, off, xoff, -1, n, aux_off, xrow, -1, 1.0, 0.0)
        tape.nrows = row + 1
        if first < 0:
            first = row
        count += 1
    return _result(view, tape, off, first, op, tuple(tensors), layouts, nrows=count)


def _stack_rows(tape, tensors, off, n, layouts):
    """The rows of a stack of many pieces that all require grad and live on ``tape`` (results of the graph being
    recorded), built at once: the same records as the loop of ``_record_pieces``, written with numpy. Returns
    the first row, or None (nothing written) when a piece does not qualify."""
    count = len(tensors)
    if not all(map(_RG, tensors)) or any(t_ is not tape for t_ in map(_TAPE, tensors)):
        return None
    xs = tensors[0]._data.shape
    nd = len(xs)
    per = 2 + 2 * nd  # aux of a piece: (ndim, base, *shape, *strides)
    aux = np.empty((count, per), np.int64)
    aux[:, 0] = nd
    aux[:, 1] = np.arange(count, dtype=np.int64) * layouts.step
    aux[:, 2:] = xs + tuple(layouts.inner)
    aux_off = len(tape.aux)
    first = tape.nrows
    while first + count > tape.row_cap:
        tape.grow()
    rows = np.empty((count, ROW_WORDS), np.int64)
    rows[:, 0] = K.SCATTER_STRIDED | K.XRG
    rows[:, 1] = off
    rows[:, 2] = np.fromiter(map(_OFF, tensors), np.int64, count)
    rows[:, 3] = -1
    rows[:, 4] = n
    rows[:, 5] = np.arange(aux_off, aux_off + count * per, per, dtype=np.int64)
    rows[:, 6] = np.fromiter(map(_ROW, tensors), np.int64, count)
    rows[:, 7] = -1
    floats = rows.view(np.float64)
    floats[:, 8] = 1.0
    floats[:, 9] = 0.0
    tape.aux.frombytes(aux.tobytes())
    tape.rows[first * ROW.size : (first + count) * ROW.size] = rows.tobytes()
    tape.nrows = first + count
    return first


def _check_tensor_list(tensors, what):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{what}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        if what == "stack":
            raise RuntimeError("stack expects a non-empty TensorList")
        raise ValueError(f"torch.{what}(): expected a non-empty list of Tensors")
    if all(map(Tensor.__instancecheck__, tensors)):  # (one C-level pass: a stack of thousands of scalars)
        return
    for t_ in tensors:
        if not isinstance(t_, Tensor):
            raise TypeError(f"{what}(): expected Tensor as element in argument 0, but got {type(t_).__name__}")


@forward_rule(_list_jvp("cat"))
def cat(tensors, dim=0):
    _check_tensor_list(tensors, "cat")
    tensors = list(tensors)
    for k, t_ in enumerate(tensors):
        if t_.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {k}) cannot be concatenated")
    if len(tensors) > 1 and builtins.any(t_.shape == (0,) for t_ in tensors):
        # torch's legacy rule: a 1-d empty tensor joins any concatenation (it is skipped)
        kept = [t_ for t_ in tensors if t_.shape != (0,)]
        if kept:
            tensors = kept if len(kept) > 1 or kept[0].ndim != 1 else tensors
    nd = tensors[0].ndim
    d = _wrap_dim(dim, nd)
    arrays = [t_._data for t_ in tensors]
    if any(t_._dev is not None for t_ in tensors):
        return _cuda_pieces(CAT, tensors, d, arrays)
    _check_cat_shapes(arrays, d)
    out_data = np.concatenate(arrays, axis=d)
    if not _recording(*tensors):
        return wrap_array(out_data)
    ostrides = _c_strides(out_data.shape)
    layouts = []
    offset = 0
    for a in arrays:
        layouts.append((list(ostrides), offset * ostrides[d]))
        offset += a.shape[d]
    return _record_pieces(CAT, tensors, out_data, layouts)


@forward_rule(_list_jvp("stack"))
def stack(tensors, dim=0):
    _check_tensor_list(tensors, "stack")
    tensors = list(tensors)
    # (the checks are C-level passes over the list: a stack of thousands of per-sample scalars is common)
    arrays = list(map(_DATA, tensors))
    shape0 = arrays[0].shape
    if len(set(map(_SHAPE, arrays))) != 1:
        k = next(k for k, a in enumerate(arrays) if a.shape != shape0)
        raise RuntimeError(
            f"stack expects each tensor to be equal size, but got {list(shape0)} at entry 0 and "
            f"{list(arrays[k].shape)} at entry {k}"
        )
    d = _wrap_dim(dim, len(shape0) + 1)
    if any(map(_DEV, tensors)):
        return _cuda_pieces(STACK, tensors, d, None)
    if d == 0 and len(set(map(_DTYPE, arrays))) == 1:
        if shape0 == () and arrays[0].dtype.kind == "f":
            # per-sample scalars (a loss per sample, per leaf): read one by one, 8x faster than np.array's
            # walk over them (bit-identical: each 0-d array converts to its exact value)
            out_data = np.fromiter(arrays, arrays[0].dtype, len(arrays))
        else:
            out_data = np.array(arrays)  # the same values as np.stack, which costs ~3 us per small piece more
    else:
        out_data = np.stack(arrays, axis=d)
    if not (_grad_state.enabled and any(map(_RG, tensors))):
        return wrap_array(out_data)
    ostrides = _c_strides(out_data.shape)
    layouts = _StackLayouts(tuple(ostrides[:d] + ostrides[d + 1 :]), ostrides[d], len(tensors))
    return _record_pieces(STACK, tensors, out_data, layouts)


def split(tensor, split_size_or_sections, dim=0):
    if tensor.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, tensor.ndim)
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        bounds = list(range(0, size, step)) + [size] if size else [0, 0]  # an empty dim: one empty piece
    else:
        sections = list(split_size_or_sections)
        if builtins.sum(sections) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at dimension "
                f"{dim}), but got split_sizes={sections}"  # (the dim as given: torch's)
            )
        bounds = [0]
        for s in sections:
            bounds.append(bounds[-1] + s)
    pieces = []
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        key = (slice(None),) * d + (slice(lo, hi), Ellipsis)
        pieces.append(_split_piece(tensor, key, ("Split", k)))
    return tuple(pieces)


@linear_op
def _split_piece(x, key, name):
    """``x[key]`` as output ``name[1]`` of several views returned together by op ``name[0]`` (torch refuses
    in-place writes into those)."""
    return _view(SELECT, x, lambda a: a[key], multi=True, name=name)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    if size == 0:  # torch: ``chunks`` empty pieces
        key = (slice(None),) * d + (slice(0, 0), Ellipsis)
        return tuple(_split_piece(input, key, ("Split", k)) for k in range(chunks))
    step = -(-size // chunks)
    return split(input, step, d)


_LIST_OPS = {"cat": cat, "stack": stack}


# --- CUDA tensors (ad/cuda/ops.py): index maps and layouts computed here, on the host, from shapes and keys


def _cuda_ops():
    from ..cuda import ops

    return ops


def _cuda_getitem(x, key):
    """``x[key]``: basic keys as a strided view of the shape, advanced ones as an index map; the map and the
    layout come from indexing a host probe of ``x``'s shape (index tensors may be CPU or CUDA tensors)."""
    if not isinstance(key, tuple):
        key = (key,)
    key = tuple(k._host() if isinstance(k, Tensor) and k._dev is not None else k for k in key)
    nkey, advanced = _index_key(key)
    if advanced:
        index_map = np.arange(x._data.size, dtype=np.int64).reshape(x._data.shape)
        try:
            index_map = np.asarray(index_map[nkey])
        except IndexError as e:
            raise torch_index_error(e) from None
        return gather_map(x, index_map.shape, index_map, GATHER_MAP)
    if not builtins.any(k is Ellipsis for k in nkey):
        nkey = nkey + (Ellipsis,)
    try:
        np.empty(x._data.shape, np.int8)[nkey]  # torch's IndexError for out-of-range keys (the probe has none)
    except IndexError as e:
        raise torch_index_error(e) from None
    return _view(SELECT, x, lambda a: a[nkey])


def _check_cat_shapes(arrays, d):
    """torch's errors for ``cat`` of arrays whose ranks, or sizes outside dim ``d``, differ."""
    first = arrays[0].shape
    for k, a in enumerate(arrays):
        if a.ndim != len(first):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(first)} and {a.ndim}")
        for j, (want, got) in enumerate(zip(first, a.shape)):
            if j != d and want != got:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size {want} but got size {got} "
                    f"for tensor number {k} in the list."
                )


def _cuda_pieces(op, tensors, d, arrays):
    """``cat`` (``arrays`` given: checked shapes) or ``stack`` of tensors of which one is a CUDA tensor."""
    if op is CAT:
        shape = list(arrays[0].shape)
        _check_cat_shapes(arrays, d)
        shape[d] = builtins.sum(a.shape[d] for a in arrays)
        ostrides = _c_strides(shape)
        layouts = []
        offset = 0
        for a in arrays:
            layouts.append((list(ostrides), offset * ostrides[d]))
            offset += a.shape[d]
    else:
        shape = list(tensors[0].shape)
        shape.insert(d, len(tensors))
        ostrides = _c_strides(shape)
        inner = ostrides[:d] + ostrides[d + 1 :]
        layouts = [(list(inner), k * ostrides[d]) for k in range(len(tensors))]
    return _cuda_ops().pieces(op, tensors, tuple(shape), layouts)
