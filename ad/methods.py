"""Binds the op table and composites to ``Tensor`` as methods and operators (one place, torch's names)."""

import weakref

import numpy as np

from . import composites, ops, views
from .elementwise_methods import _torch_name
from .forward import _fw, reregister
from .grad_mode import _grad_state
from .tape import held, mark_modified
from .tensor import Tensor, wrap_array

_INPLACE_LEAF = "a leaf Variable that requires grad is being used in an in-place operation."


def _operand_data(other):
    return other._data if isinstance(other, Tensor) else other


def _inplace(name, np_op, out_of_place):
    def method(self, other, *args, **kwargs):
        _check_inplace_shape(self, other)  # before anything is recorded or written, on every path
        if self._dev is None and (self._data.dtype.kind != "f" or np_op is np.subtract):
            _check_inplace_cast(self, np_op, _operand_data(other))
        views.check_operand_overlap(self, other)
        if _records_inplace(self, other):
            if other is not self:
                return _rebase(self, lambda snap: out_of_place(snap, other, *args, **kwargs))
            return _rebase(self, lambda snap: _self_aliased(out_of_place(snap, snap, *args, **kwargs), snap))
        if _dual_inplace(self, other, lambda: out_of_place(self, other, *args, **kwargs)):
            return self
        if self._dev is not None or args or kwargs:  # (``alpha=``: numpy's in-place op has none)
            return _device_write(self, lambda: out_of_place(self, other, *args, **kwargs), name)
        views.check_write(self)
        value = _operand_data(other)
        shape = np.shape(value)
        if shape != self.shape and np.broadcast_shapes(self.shape, shape) != self.shape:
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                f"{list(np.broadcast_shapes(self.shape, shape))}"
            )
        np_op(self._data, value, out=self._data, casting="unsafe")
        _bump(self)
        return self

    method.__name__ = name
    method.__doc__ = (
        f"In-place ``{name}``. On a tensor that is part of a graph it is recorded (the tensor takes the new "
        "node's place); a value saved for backward and then overwritten makes that backward raise."
    )
    return method


def _check_inplace_cast(self, np_op, value):
    """torch's refusal to write a result into an integer or bool tensor whose dtype cannot hold it
    (``x.add_(0.5)`` on int64 would otherwise truncate silently)."""
    if np_op is np.subtract and (self._data.dtype.kind == "b" or np.asarray(value).dtype.kind == "b"):
        from .ops.elementwise_recording import _SUB_BOOL

        raise RuntimeError(_SUB_BOOL)
    result = np.result_type(self._data, value)
    if np_op is np.divide and result.kind in "biu":
        result = np.dtype(np.float64)
    if result != self._data.dtype and not np.can_cast(result, self._data.dtype, "same_kind"):
        raise RuntimeError(
            f"result type {_torch_name(result)} can't be cast to the desired output type {_torch_name(self.dtype)}"
        )


def _store(self, result):
    """Write tensor ``result``'s values into ``self``'s storage (on the device for a CUDA tensor)."""
    if self._dev is not None:
        from .cuda.ops import write

        write(self, result)
    else:
        self._data[...] = result._data


def _device_write(self, compute, name):
    """An in-place op that is not recorded, on a CUDA tensor (or one numpy has no in-place form of):
    ``compute()`` out of place (no graph), checked and cast as the CPU's (``elementwise_methods._fit``), then
    copied into ``self``'s storage, which keeps its identity (``.data_ptr()``, the tensors sharing it)."""
    from .elementwise_methods import _fit
    from .grad_mode import no_grad

    views.check_write(self)
    with no_grad():
        result = _fit(compute(), self, name)
        _store(self, result)
    _bump(self)
    return self


def _bump(self):
    self._version += 1
    mark_modified(self)
    views.rehome_after_write(self)
    if self._data_of is not None:
        _refresh_data_owner(self)


def _records_inplace(self, other):
    """Whether an in-place op on ``self`` must be recorded; raises for leaves that require grad."""
    if not _grad_state.enabled:
        return False
    if self._vbase is not None and self._vflags & views.NO_GRAD:
        raise views.no_grad_view_error(self)
    if self._rg and self._op is None:
        raise RuntimeError(_INPLACE_LEAF)
    return self._rg or (isinstance(other, Tensor) and other._rg)


def _rebase(self, compute):
    """Make ``self`` the node ``compute(snapshot of self)``, as torch's in-place ops do (views.rebase: the
    storage keeps its identity, a write through a view rebases its base with ``CopySlices``)."""
    return views.rebase(self, compute)


def _retarget(self, old):
    """Point the tapes' references to ``self`` (about to become another node) at ``old``."""
    for ref, off in self._imports or ():
        tape = ref()
        if tape is None:
            continue
        externs = tape.externs
        for k in range(len(externs) - 1, -1, -1):
            if held(externs[k][2]) is self and externs[k][1] == off:
                externs[k] = (externs[k][0], off, old)
                break
        hit = tape.imports.get(id(self))
        if hit is not None and held(hit[2]) is self:
            del tape.imports[id(self)]
    _retarget_rows(self, self, old)


def _retarget_rows(node, src, dst):
    """Point the Python-row handlers of ``node``'s rows (hooks, big rows) that reference ``src`` at ``dst``, and
    a custom Function's record (which holds its outputs weakly) at ``dst`` where ``src`` was its output."""
    ctx = node._ctx
    if src is not dst and node._op is not None and hasattr(ctx, "retarget"):
        ctx.retarget(src, dst)
    if node._tape is not None:
        for row in range(node._row, node._row + node._nrows):
            refs = node._tape.hook_rows.get(row)
            if refs:
                refs[:] = [weakref.ref(dst) if r() is src else r for r in refs]


def _dual_inplace(self, other, result_fn):
    """An in-place op on a tensor that carries (or receives) tangents but is not recorded for reverse mode:
    compute out of place, with forward mode, then take over the value and the tangents."""
    if not (_fw.levels and (self._tangents is not None or (isinstance(other, Tensor) and other._tangents))):
        return False
    views.check_write(self)
    result = result_fn()
    _store(self, result)
    self._tangents = dict(result._tangents) if result._tangents else None
    reregister(self)
    views.sync_tangents(self)
    _bump(self)
    return True


def _zero_(self):
    if _records_inplace(self, None):
        return _rebase(self, lambda snap: ops.overwritten(snap, 0.0))
    if _dual_inplace(self, None, lambda: ops.overwritten(self, 0.0)):
        return self
    if self._dev is not None:
        return _device_write(self, lambda: ops.zeros_like(self), "zero")
    self._data[...] = 0
    _bump(self)
    return self


def _fill_(self, value):
    if _records_inplace(self, value):
        return _rebase(self, lambda snap: ops.overwritten(snap, value))
    if _dual_inplace(self, value, lambda: ops.overwritten(self, value)):
        return self
    if isinstance(value, Tensor):
        views.check_write(self)  # torch fills from a tensor as a copy: refused into overlapping memory
    if self._dev is not None:
        if not isinstance(value, Tensor) and views.overlaps(self._data):
            return _fill_expanded(self, value)
        return _device_write(self, lambda: (ops.zeros_like(self) + value).to(self.dtype), "fill")
    self._data[...] = _operand_data(value)
    _bump(self)
    return self


def _fill_expanded(self, value):
    """``fill_`` of an expanded CUDA tensor with a number, which torch allows: each memory location once, through
    the view of its memory without the expanded (stride 0) dimensions."""
    from .grad_mode import no_grad

    key = tuple(0 if s == 0 and n > 1 else slice(None) for s, n in zip(self._data.strides, self._data.shape))
    with no_grad():
        region = self[key]
    region.fill_(value)
    return self


def _copy_(self, other, non_blocking=False):
    if _records_inplace(self, other):
        other = other if isinstance(other, Tensor) else wrap_array(np.asarray(other, self.dtype))
        if other._dev != self._dev:  # (torch copies across devices: a recorded copy to self's device first)
            other = other.to(self.device)
        return _rebase(self, lambda snap: ops.overwritten(snap, other.to(self.dtype)))
    if _dual_inplace(
        self, other, lambda: ops.overwritten(self, ops.as_tensor_operand(other).to(self.dtype))
    ):
        return self
    if self._dev is not None or (isinstance(other, Tensor) and other._dev is not None):
        return _device_copy_(self, other)
    views.check_write(self)
    value = _operand_data(other)
    _check_inplace_shape(self, value)  # torch's RuntimeError (numpy's is a ValueError), before any write
    self._data[...] = value
    _bump(self)
    return self


def _device_copy_(self, src):
    """``copy_`` with a CUDA tensor on either side: the source goes to ``self``'s device first (as torch's)."""
    src = src.detach().to(self.device) if isinstance(src, Tensor) else src
    if self._dev is None:
        return _copy_(self, src)
    src = src if isinstance(src, Tensor) else ops.as_tensor_operand(src)
    if src._dev is None:
        src = src.to(self.device)
    return _device_write(self, lambda: ops.expand(src.to(self.dtype), self.shape), "copy")


def _clamp_(self, min=None, max=None):  # noqa: A002
    if _records_inplace(self, None):
        return _rebase(self, lambda snap: ops.clamp(snap, min, max))
    if _dual_inplace(self, None, lambda: ops.clamp(self, min, max)):
        return self
    if self._dev is not None or self._data.dtype.kind != "f":  # (integers: torch's check of the result's dtype)
        return _device_write(self, lambda: ops.clamp(self, min, max), "clamp")
    views.check_write(self)
    np.clip(self._data, min, max, out=self._data)
    _bump(self)
    return self


def _setitem(self, key, value):
    if self._rg and self._dev is None and _grad_state.enabled:
        # torch indexes before it writes: a key that does not fit raises IndexError, not the RuntimeError of a
        # write into a leaf or a view of one (a recorded write costs far more than this probe)
        try:
            self._data[ops._index_key(key)[0]]
        except IndexError as e:
            raise ops.torch_index_error(e) from None
    if _records_inplace(self, value):
        if self._dev is not None:
            key = _host_key(key)  # (_index_put builds its mask on the host)
        return _rebase(self, lambda snap: _index_put(snap, key, value))
    if _dual_inplace(self, value, lambda: _index_put(self, key, value)):
        return
    if self._dev is not None:
        key = _host_key(key)
        if views.overlaps(self._data) and not ops._index_key(key)[1]:
            # an expanded tensor: the CPU writes the region only (torch allows it where the region does not
            # overlap); a write of the whole would go through every alias of an element
            from .grad_mode import no_grad

            with no_grad():
                region = self[key]
            views.check_write(region)  # (torch's setitem is a copy: refused where the region overlaps itself)
            if isinstance(value, Tensor):
                region.copy_(value)
            else:
                region.fill_(value)
            return
        _device_write(self, lambda: _index_put(self, key, value), "index_put")
        return
    nkey, advanced = ops._index_key(key)
    try:
        views.check_write(self if advanced else _region(self, nkey))
    except IndexError as e:
        raise ops.torch_index_error(e) from None
    value = _operand_data(value)
    try:
        self._data[nkey] = value
    except IndexError as e:
        raise ops.torch_index_error(e) from None
    except ValueError:  # a value that does not broadcast to the region: torch's RuntimeError (nothing written)
        region = np.shape(self._data[nkey])
        raise RuntimeError(
            f"shape mismatch: value tensor of shape {list(np.shape(value))} cannot be broadcast to indexing result "
            f"of shape {list(region)}"
        ) from None
    _bump(self)


def _host_key(key):
    """An index key with its CUDA index tensors copied to the host: the written positions are an index map
    (``ad.cuda.host_copy``: a boolean mask's positions are data-dependent, torch synchronizes for them too)."""
    if isinstance(key, tuple):
        return tuple(_host_key(k) for k in key)
    if isinstance(key, Tensor) and key._dev is not None:
        from .cuda import host_copy

        return wrap_array(host_copy(key._data))
    return key


def _region(self, nkey):
    """The view ``self[nkey]`` (basic indexing) as a tensor, for the overlap check."""
    return wrap_array(self._data[nkey])


def _index_put(self, key, value):
    """Out of place ``self[key] = value``: ``where(mask, scatter(value into key), self)`` (a select, not
    ``self * (1 - mask) + ...``, which turned an overwritten inf or nan into nan)."""
    nkey, _ = ops._index_key(key)
    mask = np.zeros(self.shape, bool)
    mask[nkey] = True
    positions = np.arange(self._data.size, dtype=np.int64).reshape(self.shape)[nkey]
    if not isinstance(value, Tensor):
        value = _on_device_of(self, np.asarray(value, self.dtype))
    value = ops.expand(value.to(self.dtype), positions.shape) if value.shape != positions.shape else value
    flat = positions.reshape(-1)
    # a position indexed more than once takes the last value written there (numpy's and torch's CPU order),
    # so only that value is placed (scattering them all would add them up)
    last = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]
    if last.size != flat.size:
        value = ops.gather_map(value, (last.size,), last)
        flat = flat[last]
    placed = ops.scatter_map(value, self.shape, flat)
    return ops.where(_on_device_of(self, mask), placed, self)


def _on_device_of(t, arr):
    """Host constant ``arr`` as a tensor on ``t``'s device."""
    from .cuda import index_tensor

    return index_tensor(arr, t)


def _invert(self):
    if self._dev is not None:
        if self._data.dtype != np.bool_:
            from .cuda.ops import not_implemented

            raise not_implemented("bitwise_not of an integer tensor")
        return _compare(np.equal)(self, False)
    return wrap_array(np.logical_not(self._data))


def _compare(np_op):
    def method(self, other):
        if self._dev is not None or (isinstance(other, Tensor) and other._dev is not None):
            from .cuda.ops import compare

            return compare(np_op.__name__, self, other)
        other = _operand_data(other)
        try:
            return wrap_array(np.asarray(np_op(self._data, other)))
        except ValueError:  # shapes that do not broadcast: torch's RuntimeError
            ops._broadcast_shape(tuple(self.shape), np.shape(other))
            raise

    return method


def _rpow(self, other):
    return ops.pow(other, self)


def _rmatmul(self, other):
    return ops.matmul(ops.as_tensor_operand(other), self)


def _T(self):
    """The dims reversed: a view, as torch's (which warns for other than 2 dims)."""
    import warnings

    if self.ndim == 0:
        warnings.warn(
            "Tensor.T is deprecated on 0-D tensors. This function is the identity in these cases.", UserWarning, 2
        )
    elif self.ndim != 2:
        warnings.warn(
            "The use of `x.T` on tensors of dimension other than 2 to reverse their shape is deprecated and it will "
            "throw an error in a future release. Consider `x.mT` to transpose batches of matrices or "
            "`x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the dimensions of a tensor.",
            UserWarning,
            2,
        )
    return ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _expand(self, *sizes, size=None):
    return ops.expand(self, *sizes) if size is None else ops.expand(self, tuple(size))


def _reshape_as(self, other):
    return ops.reshape(self, other.shape)


def _pow(self, exponent):
    return ops.pow(self, exponent)


def _type_as(self, other):
    return self.to(other.dtype)


def bind():
    T = Tensor
    # (+ - *: the fast paths themselves, which hand other operands to ops.add, ops.sub and ops.mul)
    T.__add__ = ops._add_fast
    T.__radd__ = ops._add_fast
    T.__sub__ = ops._sub_fast
    T.__rsub__ = ops.rsub
    T.__mul__ = ops._mul_fast
    T.__rmul__ = ops._mul_fast
    T.__truediv__ = ops.div
    T.__rtruediv__ = ops.rdiv
    T.__pow__ = _pow
    T.__rpow__ = _rpow
    T.__matmul__ = ops.matmul
    T.__rmatmul__ = _rmatmul
    T.__neg__ = ops.neg
    T.__pos__ = lambda self: self
    T.__abs__ = ops.abs
    T.__getitem__ = ops.getitem
    T.__setitem__ = _setitem
    T.__lt__ = _compare(np.less)
    T.__le__ = _compare(np.less_equal)
    T.__gt__ = _compare(np.greater)
    T.__ge__ = _compare(np.greater_equal)
    T.__eq__ = _compare(np.equal)
    T.__ne__ = _compare(np.not_equal)
    T.__and__ = _compare(np.logical_and)
    T.__or__ = _compare(np.logical_or)
    T.__invert__ = _invert
    T.__hash__ = object.__hash__
    T.__iadd__ = T.add_ = _inplace("add_", np.add, ops.add)
    T.__isub__ = T.sub_ = _inplace("sub_", np.subtract, ops.sub)
    T.__imul__ = T.mul_ = _inplace("mul_", np.multiply, ops.mul)
    T.__itruediv__ = T.div_ = _inplace("div_", np.divide, ops.div)
    T.__ipow__ = lambda self, exponent: self.pow_(exponent)  # in place, as torch's (``b = a; a **= 2`` changes b)
    T.zero_ = _zero_
    T.fill_ = _fill_
    T.copy_ = _copy_
    T.clamp_ = _clamp_
    T.T = property(_T)
    for name in (
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "matmul",
        "neg",
        "abs",
        "exp",
        "log",
        "log1p",
        "expm1",
        "sqrt",
        "rsqrt",
        "sin",
        "cos",
        "tan",
        "tanh",
        "sigmoid",
        "relu",
        "erf",
        "square",
        "clamp",
        "clip",
        "maximum",
        "minimum",
        "sum",
        "mean",
        "prod",
        "amax",
        "amin",
        "max",
        "min",
        "reshape",
        "view",
        "flatten",
        "transpose",
        "permute",
        "squeeze",
        "unsqueeze",
        "gather",
        "index_select",
        "split",
        "chunk",
        "mm",
        "dot",
        "t",
    ):
        fn = getattr(ops, name)
        setattr(T, name, getattr(fn, "method", fn))
    for name in ("var", "std", "logsumexp", "softmax", "log_softmax", "argmax", "argmin", "sign", "reciprocal", "norm"):
        setattr(T, name, getattr(composites, name))
    T.subtract = ops.sub
    T.multiply = ops.mul
    T.divide = ops.div
    T.negative = ops.neg
    T.expand = _expand
    T.broadcast_to = ops.broadcast_to
    T.reshape_as = _reshape_as
    T.type_as = _type_as
    T.where = lambda self, condition, other: ops.where(condition, self, other)
    _bind_views(T)

    # --- shapeindex: flip/roll/scatter/index_*/masked_*/tril/diag/sort/... methods and in-place variants
    from .ops import shape_index

    shape_index.bind_methods(T)
    # --- end shapeindex
    # --- elementwise branch (issue 13): new elementwise ops, reductions, scans, their in-place variants
    from . import elementwise_methods

    elementwise_methods.bind()
    bind_linalg()  # linalg (issue 13)
    _bind_inplace_views(T)  # in-place view ops (issue 13)
    bind_torch_signatures(T)  # torch's method signatures (issue 13)


# --- views (issue 17): view ops, detach_, Tensor methods of ad/ops/view_ops.py
def _bind_views(T):
    from .ops import view_ops

    for name in (
        "narrow",
        "select",
        "diagonal",
        "unbind",
        "movedim",
        "moveaxis",
        "swapaxes",
        "swapdims",
        "unflatten",
        "view_as",
        "expand_as",
    ):
        fn = getattr(view_ops, name)
        setattr(T, name, getattr(fn, "method", fn))
    T.mT = property(view_ops.mT)
    T.mH = property(view_ops.mH)
    T.H = property(view_ops.H)


# --- end views


# --- in-place view ops (issue 13): the tensor takes the view's layout (and node), views.inplace_view
def _inplace_view_method(name, view_op):
    def method(self, *args, **kwargs):
        return views.inplace_view(self, name, lambda t: view_op(t, *args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: this tensor takes the view's sizes and strides (same storage)."
    return method


def _bind_inplace_views(T):
    from .ops import view_ops

    def t(x):
        if x.ndim > 2:
            raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
        return ops.t(x)

    for name, fn in (
        ("t_", t),
        ("transpose_", ops.transpose),
        ("swapaxes_", view_ops.swapaxes),
        ("swapdims_", view_ops.swapdims),
        ("squeeze_", ops.squeeze),
        ("unsqueeze_", ops.unsqueeze),
    ):
        setattr(T, name, _inplace_view_method(name, fn))


# --- end in-place view ops


# ---------------------------------------------------------------------------------------------------------
# semantics: in-place ops on custom Function outputs


def _semantics_rebase(self, old):
    """``self`` is about to become a new node; ``old`` keeps its place in a custom Function's outputs."""
    if old._op is not None and old._ctx is not None and hasattr(old._ctx, "retarget"):
        old._ctx.retarget(self, old)


# --- linalg (issue 13): products and linear-algebra methods; see ad/ops/products.py
def _inplace_product(name, fn):
    """``self.addmm_(mat1, mat2)`` and friends: ``self = fn(self, ...)``, recorded like the other in-place ops."""

    def method(self, *args, **kwargs):
        other = next((a for a in args if isinstance(a, Tensor) and (a._rg or a._tangents)), None)
        if _records_inplace(self, other):
            return _rebase(self, lambda snap: fn(snap, *args, **kwargs))
        if _dual_inplace(self, other, lambda: fn(self, *args, **kwargs)):
            return self
        result = fn(self, *args, **kwargs)
        if result.shape != self.shape:
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(result.shape)}"
            )
        _store(self, result)
        _bump(self)
        return self

    method.__name__ = name
    return method


def bind_linalg():
    from . import linalg, linalg_factor
    from .ops import products as P

    T = Tensor
    for name in ("bmm", "mv", "vdot", "inner", "addmm", "addmv", "addbmm", "baddbmm", "kron", "cross", "det",
                 "slogdet", "logdet", "inverse", "matrix_exp", "matrix_power", "pinverse", "cholesky_solve",
                 "cholesky_inverse"):
        setattr(T, name, getattr(P, name) if hasattr(P, name) else getattr(linalg, name))
    T.outer = composites.outer
    T.ger = composites.outer
    T.cholesky = P.cholesky
    T.svd = P.svd
    T.qr = P.qr
    for name in ("addmm", "addmv", "addbmm", "baddbmm"):
        setattr(T, name + "_", _inplace_product(name + "_", getattr(P, name)))
    # LU and Householder (torch.Tensor.lu, lu_solve, orgqr)
    T.lu = linalg_factor.torch_lu
    T.lu_solve = linalg_factor.torch_lu_solve
    T.orgqr = linalg_factor.orgqr


# --- end linalg


def _check_inplace_shape(self, other):
    """torch's error for an in-place op whose broadcast result does not fit ``self`` (checked before anything
    is recorded or written)."""
    shape = np.shape(_operand_data(other))
    if shape != self.shape:
        full = ops._broadcast_shape(tuple(self.shape), shape)  # (torch's RuntimeError where they do not broadcast)
        if full != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(full)}")


def _refresh_data_owner(alias):
    """``alias`` is ``owner.data`` and was changed in place. torch's ``.data`` shares storage without the
    version counter: the owner's graph silently reads the new values. Recorded results already share the
    storage (arena views); the arena copies of an imported tensor are refreshed here, not flagged."""
    owner = alias._data_of()
    if owner is None or owner._data is not alias._data:
        return
    flat = owner._data.reshape(-1)
    for ref, off in owner._imports or ():
        tape = ref()
        if tape is not None and off + flat.size <= tape.values.shape[0]:
            tape.values[off : off + flat.size] = flat


def _self_aliased(result, snap):
    """``x.op_(x)``: torch saves ``other``, which is ``x`` itself, and then overwrites it, so a backward that
    needs it raises the in-place error; flag the value the recorded row read as modified (rows that read
    nothing, such as add's, are unaffected)."""
    mark_modified(snap)
    return result


# --- torch's method signatures (issue 13): methods whose torch form differs from the function's
def _split(self, split_size, dim=0):
    """``Tensor.split(split_size, dim=0)`` (torch names the function's ``split_size_or_sections`` so here)."""
    return ops.split(self, split_size, dim)


def _squeeze(self, *dims, dim=None):
    """``x.squeeze()``, ``x.squeeze(0)``, ``x.squeeze(0, 1)``, ``x.squeeze((0, 1))``, ``x.squeeze(dim=0)``."""
    return ops.squeeze(self, _dims_arg(dims, dim, "squeeze"))


def _count_nonzero(self, *dims, dim=None):
    """``x.count_nonzero(0, 1)`` as well as ``x.count_nonzero((0, 1))`` and ``dim=``."""
    from .reductions import count_nonzero

    return count_nonzero(self, _dims_arg(dims, dim, "count_nonzero"))


def _broadcast_to(self, *sizes, size=None):
    """``x.broadcast_to(2, 3)`` as well as ``x.broadcast_to((2, 3))`` and ``size=``."""
    return ops.expand(self, *sizes) if size is None else ops.expand(self, tuple(size))


def _dims_arg(dims, dim, fn):
    """One ``dim`` argument from torch's ``*dim`` or ``dim=`` forms (None: all)."""
    if dims and dim is not None:
        raise TypeError(f"{fn}() got multiple values for argument 'dim'")
    if not dims:
        return dim
    return dims[0] if len(dims) == 1 else tuple(dims)


def bind_torch_signatures(T):
    T.split = _split
    T.squeeze = _squeeze
    T.count_nonzero = _count_nonzero
    T.broadcast_to = _broadcast_to


# --- end torch's method signatures
