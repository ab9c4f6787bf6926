"""The forward of ``ad``'s ops on CUDA tensors, and how their results enter the graph.

A recorded CUDA result is a node of the Python graph (``_op``, ``_inputs``, ``_ctx``: the same op-table
entries and contexts as on the CPU, so the same reverse and forward rules apply) and a row of a device tape
(``tape.py``: the CPU tape's layout, values in a device arena), which the device sweep runs
(``backward.py``); ``differentiable_sweep.graph_sweep`` differentiates the Python graph where that sweep does not apply.
Values are computed by CUDA kernels (``kernels/cuda``) and never on the host: an op with no CUDA path raises
``NotImplementedError``.

Views (``view``, ``reshape``) are strided device arrays over their base's storage, as the CPU's views are numpy
views (``ad/views.py`` holds the design, device-agnostic): a write through either is seen by both. Kernels read
C-contiguous arrays: an entry point reads an operand's values through ``_values`` (a view's are copied, a
strided gather) and a write into a view goes through its strides (``write``: ``arrays.assign``).

In-place ops (``ad/methods.py``: ``_device_write`` when not recorded, ``views.rebase`` when recorded) compute
out of place on the device and copy into the tensor's device array (``write``), which keeps its identity. The
version checks are the CPU's: ``ad.tape.mark_modified`` flags the written value's arena offsets in the device
tape's ``modified`` (its own slot, and the slots it was imported into), which the sweeps check per row; a node
with no row (``tape.graph_rows``) is checked by ``tape.check_graph_row``.

Ops whose index map is computed from values (sort, max over a dim, ...) copy the values to the host for it
(``ad.cuda.host_copy``); ad's numpy-forward primitives (linalg, conv, special functions) run through the
recorded host round trip of ``autograd/function.py`` (``_host_round_trip``); ``cumsum`` and the indices of
``cummax`` / ``cummin`` are device scans.

Entry points are called by the CPU ops when an operand's ``_dev`` is set (``ad/ops/*``): each is named after
the op it serves.
"""

import numpy as np

# the shared CUDA kernels (kernels/cuda) serve float tensors, and their copies, fills and gathers any dtype;
# kernels/cuda/ad_glue.py holds what they do not cover (integer and bool arithmetic, cat/stack, the index maps'
# scatters)
from kernels import opcodes as K
from kernels import pointwise_values as _values
from kernels.cuda import ad_glue as kc
from kernels.cuda import elementwise as ke
from kernels.cuda import matmul as km
from kernels.cuda import reduce as kr
from kernels.cuda import softmax as ks
from kernels.cuda import strided as kst

from ..grad_mode import _grad_state
from ..tensor import Tensor, _new
from . import tape as _tape
from .arrays import assign, dense, element_strides, empty, is_contiguous, strided_view, to_device, wrap

# STEP_FN's five ops: the shared forward reads which one from a1 (kernels/pointwise_values.py STEP_*)
_STEP = {
    "floor": _values.STEP_FLOOR,
    "ceil": _values.STEP_CEIL,
    "trunc": _values.STEP_TRUNC,
    "round": _values.STEP_ROUND,
    "sign": _values.STEP_SIGN,
}


def result(data, dev, op=None, inputs=(), ctx=None, attrs=None, alias=False):
    """A CUDA tensor holding ``data``; a node of ``op`` over ``inputs`` if grad mode records one of them, with
    its row on the device tape (``tape.record``: the value moves into the tape's arena unless ``alias``, the
    result sharing another tensor's storage). ``attrs``: the row's (a0, a1) of an elementwise unary op."""
    t = _new(Tensor)
    t._data = data
    t._dev = dev
    if op is not None and _grad_state.enabled and any(i is not None and i._rg for i in inputs):
        t._rg = True
        t._op = op
        t._inputs = tuple(inputs)
        if ctx is not None:
            t._ctx = ctx
        _tape.record(t, dev, attrs, alias)
    return t


def record_copy(op, x, t):
    """A node of ``op`` over ``x`` holding a device copy of ``t``'s values, recorded whatever the grad mode
    (``views._rehome``: a write under no_grad into a graph node)."""
    from ..grad_mode import enable_grad

    data = empty(t._data.shape, t._data.dtype)
    if data.size:
        ke.copy(_values(t), data)
    with enable_grad():
        return result(data, t._dev, op, (x,), (0.0, 0.0))


def write(t, value):
    """Write ``value`` (a number, or a tensor on ``t``'s device broadcast to ``t``'s shape; cast to its dtype) into CUDA
    tensor ``t``'s storage, on the device: the storage keeps its identity, as an in-place op's."""
    d = t._data
    if not isinstance(value, Tensor):
        if d.size and not is_contiguous(d):
            values = empty(d.shape, d.dtype)
            ke.fill(values, value)
            assign(d, values)
        elif d.size:
            ke.fill(d, value)
        return
    value = on_device(value, t._dev)
    common_device(t, value)
    if value._data.shape != d.shape:
        value = gather_strided(value, d.shape, *_broadcast_layout(value._data.shape, d.shape), record=False)
    if d.size and not is_contiguous(d):  # a view: the values go through its strides into the base's storage
        values = _values(value)
        if values.dtype != d.dtype:
            values = _convert(values, d.dtype)
        assign(d, values)
    elif d.size:
        ke.cast(_values(value), d)


def not_implemented(name):
    return NotImplementedError(f"{name} is not implemented for CUDA tensors yet")


# --- devices ------------------------------------------------------------------------------------------------


def device_mismatch(a, b):
    first, second = (a, b) if a.type == "cuda" else (b, a)
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, {first} and {second}!"
    )


def common_device(*tensors):
    """The device of the CUDA operands; torch's error if two operands live on different devices (0-d CPU
    tensors excepted: as torch, they are scalars usable on any device)."""
    dev = None
    for t in tensors:
        if t is None:
            continue
        d = t._dev
        if d is None:
            if t._data.ndim == 0:
                continue
            from ..tensor import CPU

            d = CPU
        if dev is None:
            dev = d
        elif d != dev:
            raise device_mismatch(dev, d)
    return dev


def on_device(t, dev):
    """``t`` on ``dev``: itself, or a 0-d CPU constant copied there (a differentiable copy if it needs grad)."""
    if t._dev is not None:
        return t
    if t._rg or t._tangents is not None:
        return to_copy(t, dev)
    return wrap(to_device(t._data), dev)


def flat(a):
    """Device array ``a`` as 1-D: a view when C-contiguous, else a contiguous copy of a view's values (so
    never an output: outputs are fresh, contiguous arrays)."""
    a = dense(a)
    return a.reshape(a.size) if a.ndim != 1 else a


def _values(t):
    """CUDA tensor ``t``'s values as a C-contiguous device array: its ``_data``, or for a view (a strided array
    over its base's storage) a copy, which is what the kernels read."""
    return dense(t._data)


def _f64(dtype):
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def to_copy(x, dev):
    """``x`` copied to device ``dev`` (an ``ad.device``; ``cpu`` or ``cuda:N``), recorded as ToCopyBackward0;
    forward-mode tangents are copied along."""
    from .. import forward

    if x._tangents is not None and forward._fw.levels:
        levels = forward.visible_levels_of(x)
        if levels:

            def jvp(tan, base):
                t = tan(x)
                return None if t is None else t.to(dev)

            return forward.apply_dual(lambda: _to_copy(x, dev), jvp, (x,), levels)
    return _to_copy(x, dev)


def _to_copy(x, dev):
    from ..ops.elementwise import TO_COPY

    if dev.type == "cpu":
        from ..tensor import wrap_array

        data = _values(x).copy_to_host()  # (a view's values: C-contiguous on the host too)
        out = wrap_array(data)
        if _grad_state.enabled and x._rg:  # a host tensor recorded on x's device tape (see tape.py)
            out._rg = True
            out._op = TO_COPY
            out._inputs = (x,)
            out._ctx = dev
            _tape.record(out, x._dev)
        return out
    if x._dev is not None:
        data = empty(x._data.shape, x._data.dtype)
        if x._data.size:
            ke.copy(_values(x), data)
    else:
        data = to_device(x._data)
    return result(data, dev, TO_COPY, (x,), dev)


# --- elementwise --------------------------------------------------------------------------------------------


def unary(op, x, a0, a1, ctx):
    """Elementwise ``op`` (an op-table entry of an elementwise unary op) on CUDA tensor ``x``."""
    xd = _values(x)
    if xd.dtype.kind == "f":
        out = _tape.out_buffer(xd.shape, xd.dtype, x._dev, (x,))
        if xd.size:
            step = _STEP.get(op.name) if op.code == K.STEP_FN else None
            ke.unary_forward(op.code, flat(xd), flat(out), a0, a1 if step is None else step)
        if ctx is None and (a0 != 0.0 or a1 != 0.0):
            ctx = (a0, a1)
        return result(out, x._dev, op, (x,), ctx, (a0, a1))
    code = kc.EXTRA.get(op.name, op.code)
    if code not in kc.UNARY_CODES or (code == kc.ROUND and a0 != 0.0):
        raise not_implemented(op.name)
    dt = _f64(xd.dtype)
    if code in kc.EXTRA.values() and xd.dtype.kind in "iub":
        dt = xd.dtype  # floor of an integer tensor is that tensor (sign, round: the same dtype)
    elif code in (K.NEG, K.ABS, K.SQUARE, K.RELU) and xd.dtype.kind in "iu" or code == K.COPY:
        dt = xd.dtype  # integer arithmetic stays integer (a copy: any dtype), as on the CPU (numpy) and in torch
    out = empty(xd.shape, dt)
    if xd.size:
        kc.launch(kc.unary_kernel, xd.size, code, flat(xd), flat(out), float(a0), float(a1))
    if ctx is None and (a0 != 0.0 or a1 != 0.0):
        ctx = (a0, a1)
    return result(out, x._dev, op if dt.kind == "f" else None, (x,), ctx)


def _same_shape(x, y, dev):
    """``x`` and ``y`` on ``dev`` broadcast to one shape (recorded expands for those that require grad)."""
    from .. import ops

    x = on_device(x, dev)
    y = on_device(y, dev)
    xs = x._data.shape
    ys = y._data.shape
    if xs != ys:
        shape = ops._broadcast_shape(xs, ys)
        if xs != shape:
            x = ops.expand(x, shape)
        if ys != shape:
            y = ops.expand(y, shape)
    return x, y


def binary(op, x, y):
    """Elementwise binary ``op`` on operands of which at least one is a CUDA tensor."""
    if op.code not in kc.BINARY_CODES:
        raise not_implemented(op.name)
    dev = common_device(x, y)
    x, y = _same_shape(x, y, dev)
    xd = _values(x)
    yd = _values(y)
    dt = np.result_type(xd.dtype, yd.dtype)
    recording = _grad_state.enabled and (x._rg or y._rg)
    if recording:
        dt = _f64(dt)
    out = _tape.out_buffer(xd.shape, dt, dev, (x, y))
    if xd.size:
        if dt.kind == "f" and xd.dtype == dt and yd.dtype == dt:
            ke.binary_forward(op.code, flat(xd), flat(yd), flat(out))
        else:
            kc.launch(kc.binary_kernel, xd.size, op.code, flat(xd), flat(yd), flat(out))
    return result(out, dev, op, (x, y))


def compare(name, x, y):
    """A comparison (bool result, no graph) with at least one CUDA operand; ``y`` may be a number."""
    if not isinstance(y, Tensor):
        y = _scalar_like(y, x)
    dev = common_device(x, y)
    x = on_device(x, dev)
    y = on_device(y, dev)
    with_grad = _grad_state.enabled
    _grad_state.set(False)
    try:
        x, y = _same_shape(x, y, dev)
    finally:
        _grad_state.set(with_grad)
    out = empty(x._data.shape, np.bool_)
    if out.size:
        kc.launch(kc.compare_kernel, out.size, kc.COMPARISONS[name], flat(x._data), flat(y._data), flat(out))
    return result(out, dev)


def _scalar_like(value, like):
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return wrap(to_device(arr.reshape(1)).reshape(()), like._dev)
    if arr.dtype.kind in "iub" and like._data.dtype.kind == "f" or arr.dtype.kind == "f":
        arr = arr.astype(like._data.dtype if like._data.dtype.kind == "f" else np.float64)
    return wrap(to_device(arr.reshape(1)).reshape(()), like._dev)


def const(x_or_mask, dtype):
    """A CUDA constant (no graph) of ``dtype`` with the values of CUDA tensor ``x_or_mask`` (bool masks: 0/1)."""
    xd = _values(x_or_mask)
    out = empty(xd.shape, dtype)
    if xd.size:
        ke.cast(xd, out)
    return result(out, x_or_mask._dev)


def sign_const(x):
    xd = _values(x)
    out = empty(xd.shape, xd.dtype)
    if xd.size:
        kc.launch(kc.unary_kernel, xd.size, kc.SIGN, flat(xd), flat(out), 0.0, 0.0)
    return result(out, x._dev)


def full(shape, value, dtype, dev):
    out = empty(shape, dtype)
    if out.size:
        ke.fill(out, value)
    return result(out, dev)


def cast(x, dtype):
    from ..ops.elementwise import CAST

    xd = _values(x)
    out = empty(xd.shape, dtype)
    if xd.size:
        ke.cast(xd, out)
    return result(out, x._dev, CAST if dtype.kind == "f" else None, (x,), (0.0, 0.0))


def where(cond, x, y):
    from .. import ops

    dev = common_device(x, y)
    if cond._dev is None and not cond._rg:
        # a mask on the host (ad's composites build their masks there: tril, masked_fill, pad, ...): copied to
        # the device. (torch would refuse a CPU condition that is not 0-d; ad accepts it)
        cond = wrap(to_device(cond._data), dev) if cond._data.ndim else cond
    dev = common_device(cond, x, y)
    cond, x, y = (on_device(t, dev) for t in (cond, x, y))
    shape = ops._broadcast_shape(ops._broadcast_shape(cond.shape, x.shape), y.shape)
    if x.shape != shape:
        x = ops.expand(x, shape)
    if y.shape != shape:
        y = ops.expand(y, shape)
    if cond.shape != shape:
        cond = gather_strided(cond, shape, *_broadcast_layout(cond.shape, shape), record=False)
    dt = np.result_type(x._data.dtype, y._data.dtype)
    out = empty(shape, dt)
    if out.size:
        kc.launch(kc.where_kernel, out.size, flat(cond._data), flat(x._data), flat(y._data), flat(out))
    return result(out, dev, ops.WHERE, (x, y), cond)


def _broadcast_layout(xs, shape):
    """(strides, base) of ``xs`` broadcast to ``shape``, for ``gather_strided``."""
    from ..ops import _c_strides

    cs = _c_strides(xs)
    lead = len(shape) - len(xs)
    strides = [0] * lead + [0 if xs[k] == 1 and shape[lead + k] != 1 else cs[k] for k in range(len(xs))]
    return strides, 0


# --- strided gathers and scatters: views, broadcasting, reductions, cat ---------------------------------


def _ints(values):
    return to_device(np.asarray(list(values) or [1], np.int64))


def gather_strided(x, shape, strides, base, op=None, record=True, ctx=None):
    """``out[i] = x.flat[base + sum_k i_k * strides[k]]`` for ``i`` over ``shape``."""
    from .. import ops

    shape = tuple(shape)
    out = empty(shape, x._data.dtype)
    n = out.size
    if n:
        kst.gather_strided(_values(x), out, int(base), shape, [int(s) for s in strides])
    if not record:
        return result(out, x._dev)
    if ctx is None:
        ctx = (x.shape, tuple(strides), base)
    return result(out, x._dev, op or ops.GATHER_STRIDED, (x,), ctx)


def scatter_strided(x, shape, strides, base, scale=1.0, op=None, ctx=None):
    """``out = zeros(shape); out.flat[base + sum_k i_k * strides[k]] += scale * x[i]`` for ``i`` over x."""
    from .. import ops

    shape = tuple(shape)
    xd = _values(x)
    dt = _f64(xd.dtype)
    out = full(shape, 0.0, dt, x._dev)._data
    if xd.size:
        xs = xd.shape if xd.ndim else (1,)
        st = list(strides) if xd.ndim else [0]
        kc.launch(
            kc.scatter_add_strided_kernel, xd.size, flat(xd), flat(out), _ints(xs), _ints(st), int(base), float(scale)
        )
    if ctx is None:
        ctx = (shape, tuple(strides), base, scale)
    return result(out, x._dev, op or ops.SCATTER_STRIDED, (x,), ctx)


def view(op, x, fn):
    """A view op (``fn`` maps an array to a numpy view of it) on CUDA tensor ``x``: a strided device array over
    ``x``'s storage (no copy), recorded as the CPU's strided gather (``GATHER_STRIDED`` over ``x``'s values in C
    order; its arena slot holds a snapshot, as the CPU's views). Returns ``(result, is_view)``:
    ``ops.structural._view`` makes it a view. A negative stride (ad's internal reversals; torch has none) is a
    copy, as numba's device arrays have no negative strides."""
    from ..ops.structural import _probe, _probe_layout

    xd = x._data
    base, strides = _probe_layout(fn(_probe(xd.shape)))  # in x's C order: the row's layout
    mem = fn(_storage_probe(xd))  # the same view of x's memory: its layout in x's storage
    offset, mem_strides = _probe_layout(mem)
    if any(s < 0 for s in mem_strides):
        return gather_strided(x, mem.shape, strides, base, op), False
    data = strided_view(xd, mem.shape, mem_strides, offset)
    return result(data, x._dev, op, (x,), (x.shape, tuple(strides), base), alias=data.size != 0), True


def _storage_probe(xd):
    """The probe of ``ops.structural._probe`` with the layout of device array ``xd`` (element strides)."""
    from ..ops.structural import _PROBE_BASE

    return np.lib.stride_tricks.as_strided(_PROBE_BASE, shape=xd.shape, strides=element_strides(xd))


def reshape(op, x, shape, strict):
    """A reshape, view, squeeze or unsqueeze of CUDA tensor ``x``: ``(result, is_view)``. A view of ``x``'s
    memory when its layout allows (always for contiguous data), else a copy (``reshape``) or torch's error
    (``view``: ``strict``); ``op`` None: the CPU's choice of ``RESHAPE`` / ``RESHAPE_COPY``."""
    from ..ops.structural import _PROBE_ADDR, RESHAPE, RESHAPE_COPY

    xd = x._data
    new = resolve_shape(xd.size, shape)
    if not xd.size:
        return result(empty(new, xd.dtype), x._dev, op or RESHAPE, (x,), (0.0, 0.0)), True
    if is_contiguous(xd):
        data = xd.reshape(new)
    else:
        try:
            mem = _storage_probe(xd).reshape(new, copy=False)
        except ValueError:
            if strict:
                raise RuntimeError(
                    "view size is not compatible with input tensor's size and stride (at least one dimension spans "
                    "across two contiguous subspaces). Use .reshape(...) instead."
                ) from None
            copy = dense(xd).reshape(new)
            return result(copy, x._dev, op or RESHAPE_COPY, (x,), (0.0, 0.0)), False
        offset = mem.__array_interface__["data"][0] - _PROBE_ADDR
        data = strided_view(xd, new, mem.strides, offset)
    return result(data, x._dev, op or RESHAPE, (x,), (0.0, 0.0), alias=True), True


def resolve_shape(size, shape):
    """``shape`` with its ``-1`` inferred for ``size`` elements; torch's error if it does not fit."""
    shape = [int(s) for s in shape]
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or size % known:
            raise RuntimeError(f"shape '{shape}' is invalid for input of size {size}")
        shape[shape.index(-1)] = size // known
    elif known != size:
        raise RuntimeError(f"shape '{shape}' is invalid for input of size {size}")
    return tuple(shape)


def sum(op, x, dims, keepdim, scale):
    """``sum`` / ``mean`` (``scale`` = 1/count) over ``dims`` as a strided scatter-add."""
    from ..ops.structural import _reduce_layout

    xd = _values(x)
    strides = _reduce_layout(xd.shape, dims)
    out_shape = tuple(s for k, s in enumerate(xd.shape) if k not in dims)
    kept = tuple(1 if k in dims else s for k, s in enumerate(xd.shape))
    shape = kept if keepdim else out_shape
    ctx = (shape, tuple(strides), 0, scale)
    if xd.dtype.kind == "f" and xd.ndim and xd.size:  # a shared-memory block reduction per output element
        out = empty(shape, xd.dtype)
        kr.reduce("sum" if scale == 1.0 else "mean", xd, out, dims)
        return result(out, x._dev, op, (x,), ctx)
    out = scatter_strided(x, shape, strides, 0, scale, op, ctx)
    if xd.dtype.kind in "iub" and not x._rg:  # torch: sums of integers and bools are int64
        out = result(_convert(out._data, np.int64), x._dev)
    return out


def group_reduce(op, x, dims, keepdim):
    """``amax`` / ``amin`` / ``prod`` over ``dims`` (block reductions); the node's context as the CPU's
    (``_group_vjp``; the device sweep's PROD row handles zeros as torch: ``kernels/cuda/sweep.py``)."""
    xd = _values(x)
    is_prod = op.name == "prod"
    if xd.dtype.kind != "f" or not (xd.ndim or is_prod) or not (xd.size or is_prod):
        raise not_implemented(op.name)
    shape = tuple(1 if k in dims else s for k, s in enumerate(xd.shape) if keepdim or k not in dims)
    out = empty(shape, xd.dtype)
    evenly = op.name in ("max_all", "min_all")  # (torch's max() / min() over all elements: ops.structural)
    name = {"max_all": "amax", "min_all": "amin"}.get(op.name, op.name)
    if not xd.size:  # (an empty product is 1)
        if out.size:
            ke.fill(out, 1.0)
    elif not xd.ndim:
        kr.reduce(name, xd.reshape(1), out.reshape(1), (0,))
    else:
        kr.reduce(name, xd, out, dims)
    return result(out, x._dev, op, (x,), (dims, keepdim, op.code, True) if evenly else (dims, keepdim, op.code))


def _convert(darr, dtype):
    out = empty(darr.shape, dtype)
    if darr.size:
        ke.cast(darr, out)
    return out


def cumsum(x, dim):
    """``cumsum`` of CUDA tensor ``x`` along ``dim`` (no graph: ``reductions._Cumsum`` records it): a block-level
    scan for float data; integer and bool data (torch: int64 results, never differentiable) through the host."""
    from .. import ops
    from . import host_copy, index_tensor

    xd = _values(x)
    if xd.dtype.kind != "f":
        return index_tensor(np.cumsum(host_copy(xd).reshape(xd.shape or (1,)), axis=dim).reshape(xd.shape), x)
    shape = xd.shape or (1,)
    out = empty(xd.shape, xd.dtype)
    if xd.size:
        from kernels.cuda import scan

        scan.cumsum(flat(xd), flat(out), ops._size(shape[:dim]), shape[dim], ops._size(shape[dim + 1 :]))
    return result(out, x._dev)


def cum_extreme(x, dim, is_max):
    """The index of the running maximum (``is_max``) or minimum of float CUDA tensor ``x`` (ndim >= 1) along
    ``dim``: a block-level scan carrying (value, index) pairs (``kernels/cuda/scan.py``); an int64 CUDA tensor."""
    from kernels.cuda import scan

    from .. import ops

    xd = x._data
    shape = xd.shape
    idx = empty(shape, np.int64)
    if xd.size:
        scan.cum_extreme(flat(xd), flat(idx), ops._size(shape[:dim]), shape[dim], ops._size(shape[dim + 1 :]), is_max)
    return result(idx, x._dev)


# --- index maps -----------------------------------------------------------------------------------------------


def gather_map(x, shape, index_map, op):
    shape = tuple(shape)
    index_map = np.ascontiguousarray(index_map, dtype=np.int64).reshape(-1)
    out = empty(shape, x._data.dtype)
    if out.size:
        kst.gather_map(_values(x), to_device(index_map), out)
    return result(out, x._dev, op, (x,), (x.shape, index_map))


def scatter_map(x, shape, index_map, op):
    index_map = np.ascontiguousarray(index_map, dtype=np.int64).reshape(-1)
    out = full(tuple(shape), 0.0, x._data.dtype, x._dev)._data
    if x._data.size:
        kc.launch(kc.scatter_add_map_kernel, x._data.size, flat(x._data), flat(out), to_device(index_map))
    return result(out, x._dev, op, (x,), (tuple(shape), index_map))


def pieces(op, tensors, shape, layouts):
    """``cat`` / ``stack``: each piece stored into ``shape`` at its (strides, base). The pieces tile the result,
    so each is assigned, not added into zeros (0.0 + -0.0 is +0.0: a -0.0 piece came out +0.0, the CPU's
    stays -0.0)."""
    dev = common_device(*tensors)
    tensors = [on_device(t, dev) for t in tensors]
    dt = np.result_type(*[t._data.dtype for t in tensors])
    out = empty(shape, dt)
    for t, (strides, base) in zip(tensors, layouts):
        td = _values(t)
        if td.dtype != dt:
            td = _convert(td, dt)
        if td.size:
            kst.assign_strided(td, flat(out), base, td.shape, strides)
    return result(out, dev, op, tuple(tensors), layouts)


# --- dense layers ---------------------------------------------------------------------------------------------


def _matmul_raw(xd, yd, layout, out_shape):
    out = empty(out_shape, np.result_type(xd.dtype, yd.dtype))
    if out.size:
        if layout[2] == 0:
            ke.fill(out, 0.0)
        else:
            kc.launch(kc.matmul_kernel, out.size, flat(xd), flat(yd), flat(out), _ints(layout))
    return out


def matmul(x, y):
    """``x @ y`` (1-D, 2-D and batched operands with broadcast batches), as ``ops._matmul`` records it."""
    from .. import ops
    from ..ops.dense import _matmul_shape, _torch_dtype

    dev = common_device(x, y)
    xd = _values(x)
    yd = _values(y)
    if xd.ndim == 0 or yd.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {xd.ndim}D and {yd.ndim}D")
    xs2 = xd.shape if xd.ndim > 1 else (1,) + xd.shape
    ys2 = yd.shape if yd.ndim > 1 else yd.shape + (1,)
    if xs2[-1] != ys2[-2]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({xs2[-2]}x{xs2[-1]} and {ys2[-2]}x{ys2[-1]})")
    if xd.dtype != yd.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_torch_dtype(xd.dtype)} != {_torch_dtype(yd.dtype)}"
        )
    out_shape = _matmul_shape(xd.shape, yd.shape)
    batch = tuple(out_shape[: len(out_shape) - (xd.ndim > 1) - (yd.ndim > 1)]) if max(xd.ndim, yd.ndim) > 2 else ()
    M, K_ = xs2[-2], xs2[-1]
    N = ys2[-1]
    # operands with a batch of their own that differs from the common one: expanded (recorded, as the CPU does)
    if xd.ndim > 2 and tuple(xs2[:-2]) != batch:
        x = ops.expand(x, batch + (M, K_))
    if yd.ndim > 2 and tuple(ys2[:-2]) != batch:
        y = ops.expand(y, batch + (K_, N))
    B = ops._size(batch)
    xd, yd = _values(x), _values(y)
    out = empty(out_shape, xd.dtype)
    if xd.dtype.kind == "f" and out.size and K_:
        # cuBLAS through CuPy on a GPU, the tiled kernel otherwise: operands as (batch, rows, columns)
        x3 = xd.reshape((B if xd.ndim > 2 else 1, M, K_))
        y3 = yd.reshape((B if yd.ndim > 2 else 1, K_, N))
        km.matmul(x3, y3, out.reshape((B, M, N)))
        return result(out, dev, ops.MATMUL, (x, y))
    xb = M * K_ if xd.ndim > 2 else 0
    yb = K_ * N if yd.ndim > 2 else 0
    out = _matmul_raw(xd, yd, [B, M, K_, N, xb, K_, 1, yb, N, 1], out_shape)
    return result(out, dev, ops.MATMUL, (x, y))


def linear(x, w, b=None):
    """``x @ w.T`` (+ ``b``): ``w`` (N, K) read transposed through its strides."""
    from .. import ops

    dev = common_device(x, w, b)
    xd = _values(x)
    wd = _values(w)
    N, K_ = wd.shape
    M = ops._size(xd.shape[:-1])
    out_shape = xd.shape[:-1] + (N,)
    if xd.dtype.kind == "f" and M and N and K_:
        out = empty(out_shape, xd.dtype)
        km.linear(xd.reshape((M, K_)), wd, out.reshape((M, N)), None if b is None else _values(b))
        return result(out, dev, ops.LINEAR if b is None else ops.LINEAR_BIAS, (x, w) if b is None else (x, w, b))
    out = _matmul_raw(xd, wd, [1, M, K_, N, 0, K_, 1, 0, 1, K_], out_shape)
    if b is None:
        return result(out, dev, ops.LINEAR, (x, w))
    if out.size:
        kc.launch(kc.add_bias_kernel, out.size, flat(out), flat(b._data), N)
    return result(out, dev, ops.LINEAR_BIAS, (x, w, b))


def log_softmax(x, d):
    from .. import ops

    xd = _values(x)
    shape = xd.shape if xd.ndim else (1,)
    out = empty(xd.shape, xd.dtype)
    outer, size, inner = ops._size(shape[:d]), shape[d], ops._size(shape[d + 1 :])
    if xd.size and xd.ndim:
        ks.log_softmax_forward(xd, out, d)
    elif xd.size:
        kc.launch(kc.log_softmax_kernel, outer * inner, flat(xd), flat(out), outer, size, inner)
    return result(out, x._dev, ops.LOG_SOFTMAX, (x,), d)


def cross_entropy(x, target):
    """Mean cross entropy of logits ``x`` (M, C) against int64 class indices ``target`` (host array, (M,))."""
    from .. import ops

    loss = empty((), x._data.dtype)
    ks.cross_entropy_forward(_values(x), to_device(target), loss.reshape(1))
    return result(loss, x._dev, ops.CROSS_ENTROPY, (x,), target)


def onehot(target, x):
    M, C = x._data.shape
    out = full((M, C), 0.0, x._data.dtype, x._dev)
    if M:
        kc.launch(kc.onehot_kernel, M, to_device(np.ascontiguousarray(target, np.int64)), flat(out._data), C)
    return out


def accumulate(acc, g):
    """``acc += g`` in place on the device (``.grad`` accumulation)."""
    g = on_device(g, acc._dev)
    d = acc._data
    if d.size and not is_contiguous(d):  # a ``.grad`` set to a view: add into a copy, written back through it
        total = dense(d)
        kc.launch(kc.add_inplace_kernel, d.size, flat(total), flat(g._data))
        assign(d, total)
    elif d.size:
        kc.launch(kc.add_inplace_kernel, d.size, flat(d), flat(g._data))
