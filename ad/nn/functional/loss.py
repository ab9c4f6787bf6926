"""``ad.nn.functional``: relu, softmax, log_softmax, cross_entropy, mse_loss, linear (composites of ops)."""

import numpy as np

from kernels.cpu import class_targets_ok

from ... import composites, ops
from ...tensor import Tensor, wrap_array

relu = ops.relu
sigmoid = ops.sigmoid
tanh = ops.tanh
softmax = composites.softmax
log_softmax = composites.log_softmax


def _reduce(loss, reduction):
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def linear(input, weight, bias=None):  # noqa: A002 - torch's names
    """``input @ weight.T + bias``."""
    if (
        isinstance(bias, Tensor)
        and weight.ndim == 2
        and bias.ndim == 1
        and input.ndim >= 1
        and bias.shape[0] == weight.shape[0]
        and input.shape[-1] == weight.shape[1]
        and input.dtype == weight.dtype == bias.dtype
    ):
        return ops.linear_bias(input, weight, bias)  # one row (anything unusual: the general path and its errors)
    out = ops.linear(input, weight) if weight.ndim == 2 else ops.matmul(input, weight)
    return out + bias if bias is not None else out


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    if not isinstance(target, Tensor):
        target = wrap_array(np.asarray(target, dtype=input.dtype))
    if input.shape != target.shape:
        import warnings

        warnings.warn(
            f"Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}). This will likely lead to incorrect results due to broadcasting.",
            UserWarning,
            stacklevel=2,
        )
    diff = input - target
    return _reduce(diff * diff, reduction)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):  # noqa: A002
    """Negative log likelihood of class indices ``target`` (N,) under log-probabilities ``input`` (N, C)."""
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"expected scalar type Long but found {t.dtype}")
    if input.ndim == 1:
        input = ops.unsqueeze(input, 0)
        t = t.reshape(1)
    if input.ndim != 2:
        raise ValueError(f"Expected 2 dimensions (got {input.ndim})")
    n, c = input.shape
    if t.shape != (n,):
        raise ValueError(f"Expected input batch_size ({n}) to match target batch_size ({t.shape[0] if t.ndim else 0}).")
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    if np.any((safe < 0) | (safe >= c)):
        raise IndexError(f"Target {int(t[(safe < 0) | (safe >= c)][0])} is out of bounds.")
    picked = ops.gather_map(input, (n,), np.arange(n, dtype=np.int64) * c + safe)
    if weight is None and reduction == "mean" and keep.all():
        return -ops.mean(picked)  # the common case: two rows
    w = (
        np.ones(n, input.dtype)
        if weight is None
        else np.asarray(weight._data if isinstance(weight, Tensor) else weight)[safe]
    )
    w = (w * keep).astype(input.dtype)
    loss = -picked * wrap_array(w)
    if reduction == "mean":
        return ops.sum(loss) * (1.0 / w.sum()) if w.sum() else ops.sum(loss) * float("nan")
    return _reduce(loss, reduction)


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,  # noqa: A002
    reduction="mean",
    label_smoothing=0.0,
):
    """Cross entropy of logits ``input`` (N, C) against class indices (N,) or class probabilities (N, C)."""
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f" and t.shape != input.shape:
        if t.ndim == input.ndim - 1 or t.ndim == 0:
            raise RuntimeError(f"expected target dtype to be Long or Byte for class indices, but got {t.dtype}")
        raise RuntimeError(
            f"0D or 1D target tensor expected, multi-target not supported (class probabilities must have the "
            f"input's shape {list(input.shape)}, got {list(t.shape)})"
        )
    if t.dtype.kind in "iu" and input.ndim > 1 and t.ndim == input.ndim:
        raise RuntimeError(f"Expected floating point type for target with class probabilities, got {t.dtype}")
    if (
        t.dtype.kind in "iu"
        and weight is None
        and reduction == "mean"
        and not label_smoothing
        and input.ndim == 2
        and input._data.dtype.kind == "f"
        and t.shape == (input.shape[0],)
        and t.size
    ):
        t64 = np.ascontiguousarray(t, dtype=np.int64)
        if class_targets_ok(t64, input.shape[1], ignore_index):  # else: the general path raises or ignores
            return ops.cross_entropy_mean(input, t64)  # the plain case, one row
    logp = composites.log_softmax(input, 1 if input.ndim > 1 else 0)
    if t.dtype.kind == "f":
        probs = wrap_array(t.astype(input.dtype))
        if label_smoothing:
            c = input.shape[1 if input.ndim > 1 else 0]
            probs = probs * (1.0 - label_smoothing) + label_smoothing / c
        loss = -ops.sum(logp * probs, 1 if input.ndim > 1 else 0)
        return _reduce(loss, reduction)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    c = input.shape[-1]
    smooth = -ops.mean(logp, -1)
    return nll * (1.0 - label_smoothing) + _reduce(smooth, reduction) * label_smoothing
