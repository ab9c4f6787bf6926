"""Lookups: ``embedding`` (rows of a weight matrix by index), ``embedding_bag`` (sums, means or maxima of bags of
rows) and ``one_hot``."""

import warnings

import numpy as np

from ... import cuda as _cuda
from ... import linalg, ops
from ...grad_mode import no_grad
from ...methods import _bump
from ...tensor import Tensor, wrap_array


def _indices(input, fn):  # noqa: A002
    idx = _cuda.host_copy(input._data) if isinstance(input, Tensor) else np.asarray(input)  # (an index map)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got torch.{ops._torch_dtype(idx.dtype).capitalize()}Tensor instead (while "
                           f"checking arguments for {fn})")
    return idx.astype(np.int64)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,  # noqa: A002
              sparse=False):
    """Rows of ``weight`` (V, D) at the indices ``input``: shape ``input.shape + (D,)``.

    ``padding_idx``: that row gets no gradient. ``max_norm``: the looked-up rows whose ``norm_type`` norm
    exceeds it are rescaled in place first (outside the graph, as torch). ``scale_grad_by_freq``: each
    row's gradient is divided by its count in ``input``. ``sparse`` gradients are not supported.
    """
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported by ad")
    idx = _indices(input, "embedding")
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    v, dim = weight.shape
    if padding_idx is not None:
        if padding_idx > 0 and padding_idx >= v:
            raise AssertionError("Padding_idx must be within num_embeddings")
        if padding_idx < 0:
            if padding_idx < -v:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx += v
    if idx.size and (idx.min() < -v or idx.max() >= v or idx.min() < 0):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    flat = (idx[..., None] * dim + np.arange(dim, dtype=np.int64)).reshape(idx.shape + (dim,))
    out = ops.gather_map(weight, idx.shape + (dim,), flat)
    factor = None
    if scale_grad_by_freq:
        counts = np.bincount(idx.reshape(-1), minlength=v)
        factor = (1.0 / counts[idx])[..., None].astype(weight.dtype)
    if padding_idx is not None:
        keep = (idx != padding_idx)[..., None].astype(weight.dtype)
        factor = keep if factor is None else factor * keep
    if factor is not None:
        # same value, gradient scaled by ``factor``: out * f + const(out) * (1 - f)
        # (the factor on the weight's device; the constant computed there, outside the graph)
        f = _cuda.index_tensor(np.broadcast_to(factor, out.shape).copy(), weight)
        with no_grad():
            constant = out.detach() * (1.0 - f)
        out = out * f + constant
    return out


def one_hot(tensor, num_classes=-1):
    """``(*) -> (*, num_classes)`` int64 one-hot encoding (``num_classes=-1``: the largest class + 1)."""
    # (a CUDA index: checked and encoded on a host copy, as torch's CUDA one_hot synchronizes for its checks)
    idx = _cuda.host_copy(tensor._data) if isinstance(tensor, Tensor) else np.asarray(tensor)
    if idx.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        if idx.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(idx.max()) + 1
    if idx.size and idx.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if idx.size and idx.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = np.zeros(idx.shape + (num_classes,), np.int64)
    np.put_along_axis(out, idx.astype(np.int64)[..., None], 1, -1)
    return _cuda.index_tensor(out, tensor) if isinstance(tensor, Tensor) else wrap_array(out)


def _renorm_rows(weight, idx, max_norm, norm_type):
    """torch's ``embedding_renorm_``: the rows ``idx`` whose ``norm_type`` norm exceeds ``max_norm`` are rescaled in
    place, outside the graph."""
    if weight._dev is not None:  # the same update from device ops (the rows from the host's indices)
        with no_grad():
            rows = _cuda.index_tensor(np.unique(idx), weight)
            picked = ops.index_select(weight, 0, rows)
            norms = linalg.vector_norm(picked, ord=norm_type, dim=1, keepdim=True)
            scale = ops.where(norms > max_norm, max_norm / (norms + 1e-7), ops.ones_like(norms))
            weight.index_copy_(0, rows, picked * scale)
        return
    with no_grad():
        rows = np.unique(idx)
        w = weight._data
        norms = np.linalg.norm(w[rows], ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        w[rows] = w[rows] * scale[:, None]
        _bump(weight)  # (a graph that saved the weight before now raises in backward, as torch's)


def _bags(input, offsets, include_last_offset):  # noqa: A002
    """Flat indices ``(T,)``, each token's bag ``(T,)``, the number of bags and each bag's extent ``(B,)`` (the next
    start less its start, the input's end for the last bag: torch's mean divides by it), from torch's two layouts."""
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             f"fixed length sequences. However, found offsets of type {type(offsets)}")
        idx = _indices(input, "embedding_bag")
        b, length = idx.shape
        return idx.reshape(-1), np.repeat(np.arange(b), length), b, np.full(b, length)
    if input.ndim != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    off = _cuda.host_copy(offsets._data) if isinstance(offsets, Tensor) else np.asarray(offsets)
    if off.ndim != 1:
        raise ValueError("offsets has to be a 1D Tensor")
    idx = _indices(input, "embedding_bag")
    off = off.astype(np.int64)
    t = idx.size
    if off.size and off[0] != 0:
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                           f"position 0. However, got {off[0]}")
    if off.size and off[-1] > t:
        raise RuntimeError(f"offsets[-1] can not be greater than input's length {t} but got offsets[-1] of {off[-1]}")
    starts = off[:-1] if include_last_offset else off
    if not starts.size:  # include_last_offset with one offset: no bag (torch crashes on a non-empty input)
        return idx[:0], idx[:0], 0, idx[:0]
    # torch's offset2bag: a token's bag is the number of bag starts at or before it, less one. So the last bag runs
    # to the end of the input even with include_last_offset, and decreasing offsets (which torch does not reject)
    # bag the tokens as torch's sum and max do. A bag's extent is its token count unless the offsets decrease
    bag_of = np.cumsum(np.bincount(starts, minlength=t + 1)[:t]) - 1
    return idx, bag_of, len(starts), np.diff(np.append(starts, t))


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,  # noqa: A002
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of ``weight`` rows, without the intermediate ``(T, D)`` tensor escaping.

    ``input``: 2-D ``(B, L)`` (B bags of L indices) or 1-D with ``offsets`` (bag ``b`` starts at ``offsets[b]``;
    ``include_last_offset``: the last offset closes the last bag). ``per_sample_weights`` (``mode="sum"``) scale each
    looked-up row and are differentiated. ``padding_idx`` entries are left out of their bag (and of its count). An
    empty bag gives zeros.

    The rows are a ``gather_map`` of ``weight``; ``sum`` / ``mean`` add them into their bags with ``scatter_map``
    (scaled by 1 / bag size for the mean), ``max`` picks each bag's (first) maximum per feature by an index map
    computed in numpy, so the gradient goes to that row only, as torch's.

    Raises: ValueError / NotImplementedError / RuntimeError as torch (shapes, modes, offsets, index range).
    Example: ``F.embedding_bag(ad.tensor([0, 2, 1]), w, ad.tensor([0, 2]), mode="sum")`` is
    ``[w[0] + w[2], w[1]]``.
    """
    if isinstance(weight, Tensor) and isinstance(input, Tensor) and weight.dtype == np.int64 \
            and input.dtype.kind == "f":
        warnings.warn("Argument order of nn.functional.embedding_bag was changed. Usage `embedding_bag(weight, input, "
                      "...)` is deprecated, and should now be `embedding_bag(input, weight, ...)`.", stacklevel=2)
        weight, input = input, weight
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights (torch.Size({list(per_sample_weights.shape)})) is not "
                         f"None, then it must have the same shape as the input (torch.Size({list(input.shape)}))")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.ndim}")
    idx, bag_of, bags, extents = _bags(input, offsets, include_last_offset)
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max":
        if scale_grad_by_freq:
            raise ValueError("max mode does not support scaling the gradient by the frequency")
        if sparse:
            raise ValueError("max mode does not support sparse weights")
    if sparse:
        raise NotImplementedError("embedding_bag: sparse gradients are not supported by ad")
    v, dim = weight.shape
    if idx.size and (idx.min() < 0 or idx.max() >= v):
        position = int(np.flatnonzero((idx < 0) | (idx >= v))[0])
        # torch's float32 sum / mean kernel words it so (its others as below): ad words it by mode alone, so that
        # ported code on ad's default float64 reads as it did on torch's default float32
        if mode != "max":
            raise RuntimeError(f"Index {position} of input takes value {idx[position]} which is not in the valid "
                               f"range [0, {v})")
        raise RuntimeError(f"embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be "
                           f"{idx[position]}")
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                      f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                      f"on GitHub.")
        if per_sample_weights.dtype != weight.dtype:
            names = {np.dtype(np.float64): "Double", np.dtype(np.float32): "Float"}
            raise RuntimeError(f"Expected tensor for argument #1 'weight' to have the same type as tensor for argument "
                               f"#1 'per_sample_weights'; but type torch.{names.get(weight.dtype, '')}Tensor does not "
                               f"equal torch.{names.get(per_sample_weights.dtype, '')}Tensor (while checking arguments "
                               f"for embedding_bag)")
    if padding_idx is not None:
        if not -v <= padding_idx < v:
            raise RuntimeError(f"padding_idx must be within the number of embeddings, -{v} through {v - 1}, but got "
                               f"{padding_idx}")
        padding_idx = padding_idx + v if padding_idx < 0 else padding_idx
    tokens = np.arange(idx.size) if padding_idx is None else np.flatnonzero(idx != padding_idx)
    every_bag_of = bag_of  # (padding tokens included: torch's mean divisor counts them)
    idx, bag_of = idx[tokens], bag_of[tokens]
    cols = np.arange(dim, dtype=np.int64)
    if mode == "max":
        return _bag_max(weight, idx, bag_of, bags)
    rows = ops.gather_map(weight, (idx.size, dim), idx[:, None] * dim + cols)
    if scale_grad_by_freq:  # same value, the weight's gradient divided by each index's count in the input
        counts = np.bincount(idx, minlength=v)
        factor = np.broadcast_to((1.0 / counts[idx])[:, None], rows.shape).astype(weight.dtype)
        rows = rows * _cuda.index_tensor(factor, weight) + _cuda.index_tensor(rows._host() * (1.0 - factor), weight)
    if per_sample_weights is not None:
        psw = ops.reshape(per_sample_weights, (-1,))
        if padding_idx is not None:
            psw = ops.gather_map(psw, (tokens.size,), tokens)
        rows = rows * ops.unsqueeze(psw, 1)
    if mode == "mean":
        # torch's divisor: the bag's extent less its padding tokens, at least 1. With increasing offsets that is the
        # bag's token count; where the offsets decrease it is not (torch's own gradient there divides by the
        # negative extent, and fails torch's gradcheck: ad's is the derivative of the forward)
        padding = np.bincount(every_bag_of, minlength=bags) - np.bincount(bag_of, minlength=bags)
        sizes = np.maximum(extents - padding, 1)
        scale = (1.0 / sizes[bag_of])[:, None].astype(weight.dtype)
        rows = rows * _cuda.index_tensor(scale, weight)
    return ops.scatter_map(rows, (bags, dim), bag_of[:, None] * dim + cols)


def _bag_max(weight, idx, bag_of, bags):
    """Each bag's maximum per feature: the first largest row value, found on a ``(bags, longest bag, D)`` padded
    array (-inf padding), gathered from ``weight``; an empty bag gives zeros."""
    dim = weight.shape[1]
    first = np.searchsorted(bag_of, bag_of, "left")  # (bag_of is non-decreasing)
    position = np.arange(idx.size) - first
    longest = int(position.max()) + 1 if idx.size else 1
    table = np.full((bags, longest), -1, np.int64)
    table[bag_of, position] = idx
    w = _cuda.host_copy(weight._data)
    values = np.where((table >= 0)[:, :, None], w[np.maximum(table, 0)], -np.inf)  # (bags, longest, D)
    best = np.take_along_axis(table, np.argmax(values, axis=1), 1)  # (bags, D): the row index of each maximum
    empty = best < 0
    out = ops.gather_map(weight, (bags, dim), np.maximum(best, 0) * dim + np.arange(dim))
    if empty.any():  # (a select: a product would make a negative maximum's zero -0.0; torch's is 0.0)
        out = ops.where(_cuda.index_tensor(~empty, weight), out, 0.0)
    return out
