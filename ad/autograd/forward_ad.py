"""``ad.autograd.forward_ad``: forward-mode AD with nested dual levels (torch's API, nesting included).

Example (a Jacobian-vector product, then a second derivative by nesting):
    >>> import ad.autograd.forward_ad as fwAD
    >>> with fwAD.dual_level():
    ...     x = fwAD.make_dual(ad.tensor([0.5]), ad.tensor([1.0]))
    ...     fwAD.unpack_dual(x.sin()).tangent          # cos(0.5)
    >>> with fwAD.dual_level() as outer, fwAD.dual_level() as inner:
    ...     x = fwAD.make_dual(fwAD.make_dual(ad.tensor(0.5), ad.tensor(1.0), level=outer),
    ...                        ad.tensor(1.0), level=inner)
    ...     d1 = fwAD.unpack_dual(x.sin(), level=inner).tangent   # cos(x), dual at `outer`
    ...     fwAD.unpack_dual(d1, level=outer).tangent              # -sin(0.5)

Batched tangents (``ad``'s extension; torch gets the same by ``vmap`` over ``jvp``, which ``ad`` does not have):
``make_dual(x, T, is_batched=True)`` with ``T`` of shape ``(B, *x.shape)`` gives ``x`` B tangents at once, and
its level becomes batched: every tangent there carries the leading batch axis, so one forward pass computes B
Jacobian-vector products and ``unpack_dual(y).tangent`` has shape ``(B, *y.shape)``. The choice of a keyword on
``make_dual`` (not a separate function) keeps torch's calls unchanged and makes the batch a property of the
level, fixed by its first batched tangent; the rules that need to know about the batch axis are in
``ad/ops/batch_rules.py``. ``functional.jacobian(..., strategy="forward-mode", vectorize=True)`` and
``functional.hessian(..., outer_jacobian_strategy="forward-mode")`` are one pass with the identity as tangents:

    >>> with fwAD.dual_level():
    ...     x = fwAD.make_dual(ad.tensor([0.5, 1.0]), ad.eye(2), is_batched=True)
    ...     fwAD.unpack_dual(x.sin()).tangent      # the Jacobian's columns as rows: diag(cos(x))
"""

from collections import namedtuple

import numpy as np

from .. import forward, observe, ops, views
from ..forward import _fw
from ..grad_mode import _grad_state
from ..tensor import Tensor, wrap_array

__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor"]

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


def enter_dual_level():
    """Enter a new (nested) dual level and return it; levels are numbered 0, 1, 2, ... from the outermost."""
    level = len(_fw.levels)
    if observe.observer is not None:  # (ad.compile: a dual level inside a compiled function, ad/compile_dual.py)
        observe.observer.dual_entered(level)
    _fw.levels.append(level)
    return level


def exit_dual_level(*, level=None):
    """Exit the innermost dual level (``level`` must name it, if given) and clear its tangents."""
    if not _fw.levels:
        raise RuntimeError("Trying to exit a forward AD level but no level is currently active.")
    innermost = _fw.levels[-1]
    if level is None:
        level = innermost
    if not isinstance(level, int) or level < 0:
        raise RuntimeError("Dual level must be a positive number.")
    if level != innermost:
        raise RuntimeError(
            "Trying to exit a forward AD level that was not the last one that was created. This is not "
            f"supported. The innermost level is {innermost}, got level={level}."
        )
    if observe.observer is not None:
        observe.observer.dual_exited(level)
    forward.exit_level(level)
    _fw.levels.pop()


class dual_level:
    """Context manager: ``with dual_level() as level:`` enters a level and exits it at the end."""

    def __enter__(self):
        self.level = enter_dual_level()
        return self.level

    def __exit__(self, *exc):
        exit_dual_level(level=self.level)
        return False


def _check_level(level, what):
    if not _fw.levels:
        raise RuntimeError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to enter_dual_level() first."
        )
    if level is None:
        return _fw.levels[-1]
    if level not in _fw.levels:
        raise RuntimeError(f"Invalid level given to {what}: level {level} is not an active dual level")
    return level


def make_dual(tensor, tangent, *, level=None, is_batched=False):
    """A tensor with ``tensor``'s value and ``tangent`` as its tangent at ``level`` (default: innermost).

    Differentiable in reverse mode with respect to ``tensor``. Raises ValueError for a non-floating primal,
    RuntimeError for a tangent of another shape or dtype, or outside any dual level.

    ``is_batched=True`` (``ad``'s extension, torch's ``vmap(jvp)`` in one pass): ``tangent`` has shape
    ``(B, *tensor.shape)``, a batch of B tangents, and the level becomes batched: every tangent at that level
    then has a leading batch axis of B (``unpack_dual(y).tangent`` has shape ``(B, *y.shape)``), and an
    unbatched tangent given to ``make_dual`` later at that level is broadcast over the batch. A level's B is
    fixed by its first batched tangent. Raises RuntimeError for a batched tangent at a level that already
    holds unbatched tangents or another B.

    Example (two JVPs, the columns of the Jacobian, in one forward pass):
        >>> with fwAD.dual_level():
        ...     x = fwAD.make_dual(ad.tensor([0.5, 1.0]), ad.eye(2), is_batched=True)
        ...     fwAD.unpack_dual(x.sin()).tangent      # diag(cos(x)), shape (2, 2)
    """
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError("make_dual expects Tensors for both tensor and tangent")
    level = _check_level(level, "_make_dual")
    nb = forward.batch_size(level)
    if is_batched:
        tangent, nb = _batched_tangent(tensor, tangent, level, nb)
    elif nb is not None and tangent.shape == tensor.shape:
        # an unbatched tangent at a batched level: the same tangent for every batch entry
        tangent = ops.expand(tangent, (nb,) + tuple(tangent.shape))
    dtype, tdtype = tensor._data.dtype, tangent._data.dtype  # (the properties' values, read once)
    if dtype.kind != "f":
        raise ValueError(f"Expected primal to be floating point or complex, but got: {tensor.dtype}")
    if dtype.itemsize < 4:
        raise ValueError(f"ad's forward mode supports float32 and float64 primals, got {tensor.dtype}")
    if tdtype.kind != "f":
        raise ValueError(f"Expected tangent to be floating point or complex, but got: {tangent.dtype}")
    shape, tshape = tensor._data.shape, tangent._data.shape
    if (tshape[1:] if nb is not None else tshape) != shape:
        raise RuntimeError(
            "Trying to set a forward gradient that has a different size than that of the original Tensor, this "
            f"is not supported. Tensor is of size {list(tensor.shape)} while the given forward gradient is of "
            f"size {list(tangent.shape)}."
        )
    if tdtype != dtype:
        raise RuntimeError(
            f"Expected tangent to have the same dtype as the primal: the primal is {tensor.dtype}, the tangent "
            f"is {tangent.dtype}"
        )
    if _grad_state.enabled and tensor._rg:
        out = ops.clone(tensor)  # differentiable in reverse mode: an identity on the tape
        out._tangents = None
        # a view of the primal, as torch's make_dual (writes are shared; in-place on the dual of a leaf that
        # requires grad raises as on any view of such a leaf)
        views.alias(tensor, out, tensor._data.view())
        views.dual_aliases[id(out)] = out
    else:
        # an alias of the primal's data, as detach() makes one (so it shares what detach() shares with its base),
        # and a view of it, as torch's make_dual: a recorded write into the dual reaches the primal (CopySlices)
        out = tensor.detach()
        if tensor._dev is None:
            views.alias(tensor, out, tensor._data.view())
            views.dual_aliases[id(out)] = out
    if tensor._tangents:
        for lvl, t in tensor._tangents.items():
            if lvl != level:
                forward.set_tangent(out, lvl, t)
    forward.set_tangent(out, level, tangent)
    if is_batched:
        _fw.batch[level] = nb
    if observe.observer is not None:
        observe.observer.dual_made(out, tangent, level)
    return out


def _batched_tangent(tensor, tangent, level, nb):
    """Check a batched tangent against ``tensor`` and ``level``'s batch size ``nb`` (None: not batched yet);
    return it with its batch size."""
    if tangent.ndim == 0:
        raise RuntimeError("make_dual(is_batched=True) expects a tangent with a leading batch dimension, got a 0-d one")
    size = tangent.shape[0]
    if nb is None and any(ref() is not None for ref in _fw.registry.get(level, ())):
        raise RuntimeError(
            f"make_dual(is_batched=True): dual level {level} already holds unbatched tangents; batch the tangents "
            "of a level from its first make_dual"
        )
    if nb is not None and size != nb:
        raise RuntimeError(
            f"make_dual(is_batched=True): the tangent's batch size {size} differs from the batch size {nb} of "
            f"the tangents at dual level {level}"
        )
    return tangent, size


def unpack_dual(tensor, *, level=None):
    """``(primal, tangent)`` of ``tensor`` at ``level`` (default: innermost); tangent is None if it has none.

    The primal is a view of the value (reverse-mode history kept), without the tangent of that level.
    """
    if not _fw.levels:
        return UnpackedDualTensor(tensor, None)
    if level is None:
        level = _fw.levels[-1]
    elif level not in _fw.levels:
        raise RuntimeError(f"Invalid level given to _fw_primal: level {level} is not an active dual level")
    tangent = forward.tangent_of(tensor, level)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = _strip(tensor, level)
    if observe.observer is not None:
        observe.observer.dual_unpacked(tensor, primal, tangent)
    return UnpackedDualTensor(primal, tangent)


def _strip(tensor, level):
    """``tensor`` without its tangent at ``level``: a new object sharing data and reverse-mode history."""
    primal = Tensor.__new__(Tensor)
    primal.__dict__.update(tensor.__dict__)
    primal._node = None
    primal._hooks = None
    primal._retains_grad = False
    primal._tangents = None
    tape = tensor._tape
    if tape is not None:  # the primal is another handle on the node: its big rows must outlive ``tensor``
        for row in range(tensor._row, tensor._row + tensor._nrows):
            if row in tape.python_rows:
                tape.register_hook_row(row, primal)
    if len(tensor._tangents) > 1:
        for lvl, t in list(tensor._tangents.items()):
            if lvl != level:
                forward.set_tangent(primal, lvl, t)
    return primal


def _as_tuple_outputs(func, inputs):
    out = func(*inputs)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in out if isinstance(o, Tensor)]


def jacobian_by_jvp(func, inputs, diff_idx):
    """``jac[i][j]`` (numel of input j, numel of output i) by one JVP per input element (for gradcheck)."""
    from ..autograd.gradcheck import _outputs

    outs = _outputs(func, inputs)
    jac = [[None] * len(inputs) for _ in outs]
    keep = [k for k, o in enumerate(_as_tuple_outputs(func, inputs)) if isinstance(o, Tensor) and o.requires_grad]
    for j in diff_idx:
        x = inputs[j]
        cols = [np.zeros((x._data.size, o._data.size)) for o in outs]
        for e in range(x._data.size):
            seed = np.zeros(x._data.size, x.dtype)
            seed[e] = 1.0
            with dual_level():
                dual_inputs = list(inputs)
                dual_inputs[j] = make_dual(x.detach(), wrap_array(seed.reshape(x.shape)))
                every = _outputs(func, tuple(dual_inputs), differentiable_only=False)
                res = [every[k] for k in keep]
                for i, o in enumerate(res):
                    tan = unpack_dual(o).tangent
                    if tan is not None:
                        cols[i][e] = np.asarray(tan._data, np.float64).reshape(-1)
        for i in range(len(outs)):
            jac[i][j] = cols[i]
    return jac
