"""Small parts of torch's surface that are composites of other ``ad`` functions: ``addr``, ``mvlgamma``,
``narrow_copy``, ``isreal``, the ``unsafe_*`` splits, the Tensor methods ``hardshrink`` / ``prelu`` /
``reciprocal_``, the layout predicates (``is_sparse``, ``is_quantized``, ...: ad has only dense tensors), and
torch's Python-callable element loops ``apply_`` / ``map_`` / ``map2_`` (CPU, not differentiable: torch refuses
them on tensors that require grad).

Each function is a composite (no rule of its own): reverse and forward mode come from the ops it calls.
"""

import math

import numpy as np

from .ops.out import write_result
from .tensor import Tensor

__all__ = [
    "addr", "embedding_renorm_", "is_distributed", "mvlgamma", "narrow_copy", "isreal", "unsafe_chunk", "unsafe_split",
    "unsafe_split_with_sizes",
]  # fmt: skip


def addr(input, vec1, vec2, *, beta=1, alpha=1, out=None):  # noqa: A002 - torch's names
    """``beta * input + alpha * outer(vec1, vec2)`` (``beta=0``: ``input`` is not read, NaN included).

    Raises: RuntimeError (torch's messages) for a vector that is not 1-d, an ``input`` that does not broadcast
    to the outer product's shape, or a float ``alpha``/``beta`` with integer tensors.
    Example: ``ad.addr(ad.zeros(2, 2), ad.ones(2), ad.tensor([1.0, 2.0]))`` is ``[[1, 2], [1, 2]]``.
    """
    import ad

    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {name}, but got {v.ndim}-D")
    if input.dtype.kind in "iub" and any(isinstance(s, float) for s in (alpha, beta)):
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    product = ad.outer(vec1, vec2)
    shape = tuple(product.shape)
    if any(a not in (b, 1) for a, b in zip(reversed(input.shape), reversed(shape))) or input.ndim > 2:
        raise RuntimeError(
            f"The expanded size of the tensor ({shape[-1]}) must match the existing size ({input.shape[-1]}) at "
            f"non-singleton dimension {input.ndim - 1}.  Target sizes: {list(shape)}.  Tensor sizes: "
            f"{list(input.shape)}"
        )
    if input.dtype == np.bool_:  # torch: or / and for booleans
        result = ad.logical_or(input & bool(beta), product & bool(alpha)) if beta else product & bool(alpha)
    else:
        scaled = product if alpha == 1 else product * alpha
        result = scaled if beta == 0 else (input if beta == 1 else input * beta) + scaled
        result = ad.broadcast_to(result, shape)
    return write_result("addr", result, out)


def mvlgamma(input, p, *, out=None):  # noqa: A002
    """The multivariate log-gamma function of dimension ``p``: ``sum_{j<p} lgamma(input - j/2) +
    p (p - 1) / 4 log(pi)`` (integers compute in float64). Raises: RuntimeError for ``p < 1``."""
    import ad

    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = input if input.dtype.kind == "f" else input.to(ad.float64)
    total = ad.lgamma(x)
    for j in range(1, p):
        total = total + ad.lgamma(x - j / 2)
    return write_result("mvlgamma", total + p * (p - 1) / 4 * math.log(math.pi), out)


def narrow_copy(input, dim, start, length, *, out=None):  # noqa: A002
    """``narrow(input, dim, start, length)`` as a new tensor (not a view)."""
    return write_result("narrow_copy", input.narrow(dim, start, length).clone(), out)


def isreal(input):  # noqa: A002
    """True everywhere: ad has no complex dtypes."""
    if not isinstance(input, Tensor):
        raise TypeError(f"isreal(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    from .ops import ones_like

    return ones_like(input, dtype=np.bool_)


def unsafe_chunk(input, chunks, dim=0):  # noqa: A002
    """``chunk`` (torch's unsafe variant skips a view check that ad does not make)."""
    return input.chunk(chunks, dim)


def unsafe_split(input, split_size, dim=0):  # noqa: A002
    """``split`` (see ``unsafe_chunk``)."""
    return input.split(split_size, dim)


def unsafe_split_with_sizes(input, split_sizes, dim=0):  # noqa: A002
    """``split_with_sizes`` (see ``unsafe_chunk``)."""
    return input.split_with_sizes(split_sizes, dim)


# --- apply_ / map_ / map2_: a Python callable over the elements


def _python_scalar(dtype):
    """The Python type torch hands a callable for an element of ``dtype`` (and converts its results with)."""
    return bool if dtype.kind == "b" else int if dtype.kind in "iu" else float


def _element_loop(name, self, others, fn):
    """``self[i] = fn(self[i], *(o[i] for o in others))`` over ``self``'s elements in C order, ``others``
    broadcast to ``self``'s shape; written in place (the version moves, as any in-place op's)."""
    import ad

    for t in (self, *others):
        if t.requires_grad:
            raise RuntimeError(
                f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() instead."
            )
    if self.device.type != "cpu":
        raise RuntimeError(f"{name} is only implemented on CPU tensors")
    for o in others:
        if o.dtype != self.dtype:
            from .conveniences import typename

            arg = "other" if name == "map_" else ("x" if o is others[0] else "y")
            raise TypeError(f"{name}: expected {typename(self)} for '{arg}' (got {typename(o)})")
        if o.device.type != "cpu":
            raise RuntimeError(f"{name} is only implemented on CPU tensors")
    kind = _python_scalar(self.dtype)
    columns = [np.broadcast_to(o.expand(self.shape)._data, self.shape).reshape(-1) for o in others]
    values = self._data.reshape(-1).tolist()
    result = np.empty(len(values), self.dtype)
    rows = zip(values, *(c.tolist() for c in columns))
    for i, args in enumerate(rows):
        r = fn(*args)
        if kind is not bool and not isinstance(r, (int, float, bool, np.number)):
            raise TypeError(f"must be real number, not {type(r).__name__}")
        result[i] = kind(r)
    with ad.no_grad():
        self.copy_(ad.from_numpy(result.reshape(self.shape)))
    return self


def apply_(self, callable):  # noqa: A002 - torch's name
    """``Tensor.apply_``: each element replaced by ``callable(element)`` (a Python float, int or bool, as the
    dtype; results converted back: ints truncate). CPU only, slow (a Python call per element). Returns ``self``.

    Raises:
        RuntimeError: ``self`` requires grad or is on CUDA (torch's messages). TypeError: a result that is not a
            number.

    Example: ``ad.tensor([1.0, 2.0]).apply_(lambda v: v * 10)`` is ``[10., 20.]``.
    """
    return _element_loop("apply_", self, (), callable)


def map_(self, other, callable):  # noqa: A002
    """``Tensor.map_``: ``self[i] = callable(self[i], other[i])``, ``other`` broadcast to ``self``'s shape and of
    ``self``'s dtype (see ``apply_``). Returns ``self``."""
    return _element_loop("map_", self, (other,), callable)


def map2_(self, x, y, callable):  # noqa: A002
    """``Tensor.map2_``: ``self[i] = callable(self[i], x[i], y[i])`` (see ``map_``). Returns ``self``."""
    return _element_loop("map2_", self, (x, y), callable)


# --- layout and device queries of a dense host or CUDA tensor


def dim_order(self, *, ambiguity_check=False):
    """``Tensor.dim_order``: the dimensions from the outermost in memory to the innermost (by stride, the earlier
    dimension first on a tie; a broadcast dimension, stride 0, counts as outermost, as torch's).

    Raises:
        RuntimeError: ``ambiguity_check`` and two dimensions that could swap places (equal strides, a size-1 or a
            broadcast dimension), as torch's.
    """
    strides = self.stride()
    order = tuple(sorted(range(self.ndim), key=lambda d: (strides[d] != 0, -strides[d])))
    if ambiguity_check:
        if any(s == 0 for s in strides):
            raise RuntimeError("The tensor does not have unique dim order.")
        if len(set(strides)) != len(strides) or 1 in self.shape:
            raise RuntimeError(
                "The tensor does not have unique dim order, or cannot map to exact one of the given memory formats."
            )
    return order


def embedding_renorm_(input, indices, max_norm, norm_type):  # noqa: A002 - torch's names
    """``torch.embedding_renorm_``: the rows ``indices`` of ``input`` whose ``norm_type`` norm exceeds
    ``max_norm`` rescaled in place to that norm (outside the graph, as ``F.embedding``'s ``max_norm``).

    Raises:
        RuntimeError: ``input`` is a leaf that requires grad (torch's in-place error).
    """
    from .nn.functional.sparse import _renorm_rows

    if input.requires_grad and input.is_leaf:
        from .grad_mode import is_grad_enabled

        if is_grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    idx = indices.detach().cpu().numpy().reshape(-1).astype(np.int64)
    _renorm_rows(input, idx, float(max_norm), float(norm_type))
    return input


def is_distributed(input):  # noqa: A002
    """``torch.is_distributed``: False (ad tensors are never split across processes)."""
    return False


def bind():
    """The methods (and in-place variants) of the functions above, and the layout predicates."""
    from .elementwise_methods import inplace
    from .nn import functional as F

    T = Tensor
    for name in __all__:
        if name != "embedding_renorm_":  # (a function of torch's top level only)
            setattr(T, name, globals()[name])
    T.apply_, T.map_, T.map2_ = apply_, map_, map2_
    T.addr_ = inplace("addr", addr)
    T.mvlgamma_ = inplace("mvlgamma", mvlgamma)
    T.reciprocal_ = inplace("reciprocal", lambda self: self.reciprocal())
    T.hardshrink = lambda self, lambd=0.5: F.hardshrink(self, lambd)
    T.prelu = lambda self, weight: F.prelu(self, weight)
    T.dim_order = dim_order
    T.is_distributed = is_distributed
    T.const_data_ptr = lambda self: self.data_ptr()
    T.to_dense = lambda self, dtype=None, *, masked_grad=None: self if dtype is None else self.to(dtype)
    T.conj_physical_ = lambda self: self  # (real dtypes only: the conjugate is the tensor itself, as torch's)
    # devices ad has no backend for (torch's CPU and CUDA tensors answer False too)
    for name in ("is_mps", "is_xpu", "is_ipu", "is_xla", "is_maia", "is_mtia", "is_vulkan"):
        setattr(T, name, property(lambda self: False))
    for name in ("is_sparse", "is_sparse_csr", "is_quantized", "is_meta", "is_mkldnn", "is_nested"):
        setattr(T, name, property(lambda self: False))
