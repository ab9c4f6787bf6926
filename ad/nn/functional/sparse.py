"""Lookups: ``embedding`` (rows of a weight matrix by index) and ``one_hot``."""

import numpy as np

from ... import cuda as _cuda
from ... import ops
from ...grad_mode import no_grad
from ...tensor import Tensor, wrap_array


def _indices(input, fn):  # noqa: A002
    idx = _cuda.host_copy(input._data) if isinstance(input, Tensor) else np.asarray(input)  # (an index map)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {idx.dtype} instead (while checking arguments for {fn})")
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
        if weight._dev is not None:
            raise NotImplementedError("embedding with max_norm is not implemented for CUDA tensors yet")
        with no_grad():
            rows = np.unique(idx)
            w = weight._data
            norms = np.linalg.norm(w[rows], ord=norm_type, axis=1)
            scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
            w[rows] = w[rows] * scale[:, None]
            weight._version += 1
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
        constant = wrap_array(out._data * (1.0 - factor))
        out = out * wrap_array(np.broadcast_to(factor, out.shape).copy()) + constant
    return out


def one_hot(tensor, num_classes=-1):
    """``(*) -> (*, num_classes)`` int64 one-hot encoding (``num_classes=-1``: the largest class + 1)."""
    idx = tensor._data if isinstance(tensor, Tensor) else np.asarray(tensor)
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
    return wrap_array(out)
