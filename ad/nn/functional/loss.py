"""Losses, as ``torch.nn.functional``: composites of ``ad`` ops, with torch's reductions.

Every loss computes its unreduced, elementwise value and ends in ``_reduce`` (``"mean"``, ``"sum"``,
``"none"``; the legacy ``size_average`` / ``reduce`` flags map onto these as in torch). Targets that are
tensors requiring grad are differentiated through (torch does so for the regression losses, KL, BCE and
probability-target cross entropy). ``cross_entropy`` and ``nll_loss`` take class dims ``(N, C, d1, ...)``
by moving C last; the plain ``(N, C)`` mean case keeps its single compiled row (``ops.cross_entropy_mean``).
"""

import math
import warnings

import numpy as np

from kernels.cpu import class_targets_ok

from ... import composites, observe, ops
from ... import cuda as _cuda
from ...conveniences import Size
from ...saved import guard, saves_as
from ...tensor import Tensor, wrap_array
from .activation import _part, logsigmoid


def _legacy(size_average, reduce, reduction):
    """torch's ``_Reduction.legacy_get_string``: the deprecated flags, when given, decide the reduction (read
    as truth values, as torch does)."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{legacy}' instead.",
                  UserWarning, stacklevel=3)
    return legacy


def _reduce(loss, reduction):
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _host_array(value, dtype=None):
    """A target given as numbers rather than a tensor (ad accepts those): its array, or torch's TypeError for
    what is no array of numbers (a ragged sequence; numpy's ValueError would leak otherwise)."""
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError):
        raise TypeError(f"expected a Tensor (or a rectangular sequence of numbers), not {type(value).__name__} "
                        f"{value!r}") from None


def _tensor(value, like):
    if isinstance(value, Tensor):
        return value
    return wrap_array(_host_array(value, like.dtype))


def _label_tensor(target):
    """``target`` (labels such as +-1) as a tensor to compare with ad ops: a CUDA target's masks are computed on
    its device (``==`` on its device array would compare identity, not values)."""
    return target if isinstance(target, Tensor) else wrap_array(_host_array(target))


def _hinge(x):
    """``max(x, 0)`` with torch's gradient at 0 (its losses clamp_min: the margin's edge counts as inside, so
    the gradient passes there; relu's is 0)."""
    return ops.clamp(x, min=0.0)


def _check_input(input, fn):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")


def _size_warning(input, target):  # noqa: A002
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({Size(target.shape)!r}) that is different to the input size "
            f"({Size(input.shape)!r}). This will likely lead to incorrect results due to broadcasting. "
            f"Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):  # noqa: A002
    """Mean squared error ``(input - target) ** 2``, reduced."""
    _check_input(input, "mse_loss")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    target = _tensor(target, input)
    _size_warning(input, target)
    diff = input - target
    loss = diff * diff
    return guard(_reduce(loss * weight if weight is not None else loss, reduction), "MseLossBackward0", input, target)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):  # noqa: A002
    """Mean absolute error ``|input - target|`` (gradient 0 where they are equal, as torch)."""
    _check_input(input, "l1_loss")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    target = _tensor(target, input)
    _size_warning(input, target)
    loss = ops.abs(input - target)
    return _reduce(loss * weight if weight is not None else loss, reduction)


@saves_as("SmoothL1LossBackward0")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):  # noqa: A002
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0``: the L1 loss)."""
    _check_input(input, "smooth_l1_loss")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    target = _tensor(target, input)
    _size_warning(input, target)
    d = input - target
    if beta == 0:
        return _reduce(ops.abs(d), reduction)
    a = ops.abs(d)
    small = a < beta
    return _reduce(ops.where(small, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):  # noqa: A002
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    _check_input(input, "huber_loss")
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    target = _tensor(target, input)
    _size_warning(input, target)
    d = input - target
    a = ops.abs(d)
    loss = ops.where(a < delta, d * d * 0.5, (a - 0.5 * delta) * delta)
    return guard(_reduce(loss * weight if weight is not None else loss, reduction), "HuberLossBackward0", input, target)


# ---------------------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------------------


def _classes_last(input, t):  # noqa: A002
    """(N, C, d1, ...) log-probabilities and (N, d1, ...) targets -> (M, C) and (M,), M = N * d1 * ..."""
    if input.ndim <= 2:
        return input, t
    c = input.shape[1]
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    return ops.reshape(ops.permute(input, *perm), (-1, c)), t.reshape(-1)


def _class_targets(input, target, fn):  # noqa: A002
    t = target._host() if isinstance(target, Tensor) else _host_array(target)  # (class indices: host data)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"expected scalar type Long but found {ops._torch_dtype(t.dtype).capitalize()}")
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:
        if t.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if t.ndim == 1 and t.shape[0] != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {t.shape[0]}")
        return t.reshape(())
    if t.ndim == 0 or input.shape[0] != t.shape[0]:
        raise ValueError(
            f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({t.shape[0] if t.ndim else 0})."
        )
    expected = input.shape[:1] + input.shape[2:]
    if input.ndim == 2 and t.ndim != 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input.ndim == 4 and t.ndim != 3:  # (torch's 2-d kernel has its own wording)
        raise RuntimeError(f"only batches of spatial targets supported (3D tensors) but got targets of dimension: "
                           f"{t.ndim}")
    if input.ndim == 4 and t.shape != expected:
        raise RuntimeError(f"size mismatch (got input: {list(input.shape)} , target: {list(t.shape)}")
    if t.shape != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(t.shape)}")
    return t


def _picked(logp, t, weight, ignore_index):
    """Per-sample ``-w[t] * logp[t]`` (0 where ignored) of (M, C) / (M,), and the weights ``w[t]`` (0 ignored)."""
    m, c = logp.shape
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    bad = (safe < 0) | (safe >= c)
    if np.any(bad):
        raise IndexError(f"Target {int(t[bad][0])} is out of bounds.")
    picked = ops.gather_map(logp, (m,), np.arange(m, dtype=np.int64) * c + safe)
    if weight is None:
        w = keep.astype(logp.dtype)
        w_t = None
    else:
        wd = _cuda.host_copy(weight._data) if isinstance(weight, Tensor) else np.asarray(weight)
        if wd.shape != (c,):
            raise RuntimeError(f"weight tensor should be defined either for all {c} classes or no classes but got "
                               f"weight tensor of shape: {list(wd.shape)}")
        w = (wd[safe] * keep).astype(logp.dtype)
        w_t = weight
    return picked, w, keep, safe, w_t


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: A002
             reduction="mean"):
    """Negative log likelihood of class indices ``target`` (N, d1, ...) under log-probabilities ``input``
    (N, C, d1, ...); ``weight`` per class; ``ignore_index`` targets count neither in the sum nor the mean."""
    _check_input(input, "nll_loss")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    t = _class_targets(input, target, "nll_loss")
    # the class weights are constants (torch's kernels have no derivative for them)
    _not_differentiable("nll_loss2d_forward" if input.ndim > 2 else "nll_loss_forward", "weight", weight)
    out_shape = t.shape
    x = ops.unsqueeze(input, 0) if input.ndim == 1 else input
    tt = t.reshape(1) if input.ndim == 1 else t
    logp, flat_t = _classes_last(x, tt)
    picked, w, keep, _, _ = _picked(logp, flat_t, weight, ignore_index)
    if weight is None and reduction == "mean" and keep.all():
        return -ops.mean(picked)  # the common case: two rows
    loss = -picked * _cuda.index_tensor(w, picked)
    if reduction == "mean":
        total = w.sum()
        # nothing kept: torch's NaN, with a zero gradient (``* nan`` would make the gradient NaN)
        return ops.sum(loss) * (1.0 / float(total)) if total else ops.sum(loss) * 0.0 + float("nan")
    if reduction == "sum":
        return ops.sum(loss)
    return ops.reshape(loss, out_shape)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: A002
                  reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits ``input`` (N, C, d1, ...) or (C,) against class indices (N, d1, ...) or class
    probabilities (the input's shape), with torch's weight / ignore_index / label_smoothing / reduction rules.

    Probability targets are differentiated through. With class indices, label smoothing adds
    ``label_smoothing / C`` times the (weighted) sum of ``-log p`` over the classes, normalised as torch does
    (by the summed target weights of the kept samples for ``"mean"``).
    """
    _check_input(input, "cross_entropy")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    t = target._host() if isinstance(target, Tensor) else _host_array(target)  # (class indices: host data)
    class_dim = 1 if input.ndim > 1 else 0
    if t.dtype.kind == "f":
        if t.shape != input.shape:
            if t.ndim == input.ndim - 1 or t.ndim == 0:
                raise RuntimeError(f"expected target dtype to be Long or Byte for class indices, but got {t.dtype}")
            raise RuntimeError(
                f"0D or 1D target tensor expected, multi-target not supported (class probabilities must have the "
                f"input's shape {list(input.shape)}, got {list(t.shape)})"
            )
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        return _cross_entropy_probs(input, _tensor(target, input), weight, reduction, label_smoothing, class_dim)
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
            if observe.observer is not None:  # ad.compile: the replay reads the class indices again
                observe.observer.targets(target, t64, ignore_index)
            return ops.cross_entropy_mean(input, t64)  # the plain case, one row
    logp = composites.log_softmax(input, class_dim)
    # the class indices read above, not the tensor: a CUDA target read again is one more copy back per read
    nll = nll_loss(logp, t, weight, None, ignore_index, None, reduction)
    if not label_smoothing:
        return nll
    # torch's smoothing term: -sum_c w[c] logp[c] per sample (0 where ignored), scaled by eps / C
    tt = _class_targets(input, t, "cross_entropy")
    x = ops.unsqueeze(logp, 0) if logp.ndim == 1 else logp
    lp, flat_t = _classes_last(x, tt.reshape(1) if logp.ndim == 1 else tt)
    c = lp.shape[1]
    keep = flat_t != ignore_index
    wlp = lp * ops.reshape(weight, (1, c)) if weight is not None else lp
    smooth = -ops.sum(wlp, 1) * _cuda.index_tensor(keep.astype(lp.dtype), lp)
    if reduction == "mean":
        if weight is not None:
            wd = _cuda.host_copy(weight._data) if isinstance(weight, Tensor) else np.asarray(weight)
            denom = wd[flat_t[keep]].sum()
        else:
            denom = keep.sum()
        smooth = ops.sum(smooth) * (1.0 / float(denom)) if denom else ops.sum(smooth) * 0.0 + float("nan")
    elif reduction == "sum":
        smooth = ops.sum(smooth)
    else:
        smooth = ops.reshape(smooth, tt.shape)
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / c)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, class_dim):  # noqa: A002
    c = input.shape[class_dim]
    logp = composites.log_softmax(input, class_dim)
    if label_smoothing > 0:
        target = target * (1.0 - label_smoothing) + label_smoothing / c
    prod = logp * target
    if weight is not None:
        prod = prod * ops.reshape(weight, (c,) + (1,) * (input.ndim - class_dim - 1))
    if reduction == "none":
        return -ops.sum(prod, class_dim)
    total = -ops.sum(prod)
    if reduction == "sum":
        return total
    n = input.numel() // c if c else 0
    return total * (1.0 / n) if n else total * float("nan")


@saves_as("BinaryCrossEntropyBackward0")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """``-(t log x + (1 - t) log(1 - x))`` for probabilities ``input``, the logs clamped at -100 as torch."""
    _check_input(input, "binary_cross_entropy")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    target = _tensor(target, input)
    if target.shape != input.shape:
        raise ValueError(
            f"Using a target size ({Size(target.shape)!r}) that is different to the input size "
            f"({Size(input.shape)!r}) is deprecated. Please ensure they have the same size."
        )
    _not_differentiable("binary_cross_entropy", "weight", weight)  # (a constant, as in torch's kernel)
    xd = _cuda.host_copy(input._data)  # (the range check: on the host)
    if not np.all((xd >= 0) & (xd <= 1)):  # (NaN is not in [0, 1] either: torch raises for it too)
        raise RuntimeError("all elements of input should be between 0 and 1")
    loss = -(target * _clamped_log(input) + (1.0 - target) * _clamped_log(1.0 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _clamped_log(p):
    """``max(log(p), -100)``, with a finite (zero) gradient where ``p == 0``."""
    pos = p > 0
    return ops.where(pos, ops.clamp(ops.log(_part(pos, p, 1.0)), min=-100.0), wrap_array(np.asarray(-100.0, p.dtype)))


@saves_as("BinaryCrossEntropyWithLogitsBackward0")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                     reduction="mean", pos_weight=None):
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably; ``pos_weight`` weighs the positive
    term ``-t log sigmoid(x)`` (broadcast along the last dim, as torch)."""
    _check_input(input, "binary_cross_entropy_with_logits")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    target = _tensor(target, input)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({Size(target.shape)!r}) must be the same as input size ({Size(input.shape)!r})")
    for name, w in (("weight", weight), ("pos_weight", pos_weight)):  # (constants, as in torch's kernel)
        _not_differentiable("binary_cross_entropy_with_logits", name, w)
    if pos_weight is None:
        loss = ops.bce_logits(input, target)  # one row, as torch's node (pointwise.dx_bce_logits says why)
    else:
        # torch's (1 - t) x - w log sigmoid(x), w = 1 + (pos_weight - 1) t, is w times the row at the target
        # t' = pos_weight t / w (1 - t' = (1 - t) / w): the input's cotangent is then g w (sigmoid(x) - t'), one
        # product with the cotangent as torch's (an inf cotangent gives +-inf, where a sum of rows met 0 * inf).
        # Where w = 0 (pos_weight 0 at t = 1) the loss and its gradient are 0, as torch's: t' is set to 0 there.
        log_weight = (pos_weight - 1.0) * target + 1.0
        empty = log_weight == 0.0
        scaled = ops.where(empty, 0.0, pos_weight * target / ops.where(empty, 1.0, log_weight))
        loss = log_weight * ops.bce_logits(input, scaled)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):  # noqa: A002
    """``target * (log(target) - input)`` (``0`` where ``target == 0``) for log-probabilities ``input``;
    ``log_target``: ``exp(target) * (target - input)``. ``"batchmean"`` divides the sum by the batch size."""
    _check_input(input, "kl_div")
    if size_average is not None or reduce is not None:
        reduction = _legacy(size_average, reduce, reduction)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    if any(isinstance(v, Tensor) and np.dtype(v.dtype).kind in "iub" for v in (input, target)):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    target = _tensor(target, input)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        # xlogy(t, t): 0 at t == 0 (with a finite gradient, README), NaN for a negative target as torch's
        pos = target > 0
        zero, nan = (wrap_array(np.asarray(v, target.dtype)) for v in (0.0, np.nan))
        tlogt = ops.where(pos, target * ops.log(_part(pos, target, 1.0)), ops.where(target < 0, nan, zero))
        loss = tlogt - target * input
    if reduction == "batchmean":
        total = ops.sum(loss)
        if not input.ndim:
            return total
        return total * (1.0 / input.shape[0]) if input.shape[0] else total * float("nan")  # (no batch: torch's NaN)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,  # noqa: A002
                     reduction="mean"):
    """``exp(input) - target * input`` (``log_input``) or ``input - target * log(input + eps)``; ``full``
    adds Stirling's ``t log t - t + 0.5 log(2 pi t)`` where ``t > 1``."""
    _check_input(input, "poisson_nll_loss")
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    target = _tensor(target, input)
    if log_input:
        loss = ops.exp(input) - target * input
    else:
        loss = input - target * ops.log(input + eps)
    if full:
        big = target > 1
        t = _part(big, target, 1.0)
        stirling = t * ops.log(t) - t + ops.log(t * (2.0 * math.pi)) * 0.5
        loss = loss + ops.where(big, stirling, wrap_array(np.zeros((), input.dtype)))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):  # noqa: A002
    """``0.5 (log(var) + (input - target)**2 / var)`` (+ ``0.5 log(2 pi)`` when ``full``); ``var`` is clamped
    at ``eps`` without changing its gradient (as torch, which clamps under no_grad)."""
    _check_input(input, "gaussian_nll_loss")
    if isinstance(var, (int, float)) and not isinstance(var, bool):  # a number: one variance for every element
        var = _cuda.index_tensor(np.full(input.shape, float(var), input.dtype), input)
    var = _tensor(var, input)
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = ops.unsqueeze(var, -1)
        elif input.shape[:-1] == var.shape[:-1] and var.shape[-1] == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    _check_reduction(reduction)
    vd = _cuda.host_copy(var._data)  # (the check and the clamp: on the host)
    if np.any(vd < 0):
        raise ValueError("var has negative entry/entries")
    var = var + _cuda.index_tensor((np.maximum(vd, eps) - vd).astype(vd.dtype), var)  # the clamp, outside the graph
    target = _tensor(target, input)
    d = input - target
    loss = (ops.log(var) + d * d / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not (input1.ndim == input2.ndim == _tensor(target, input1).ndim):
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: input1: "
            f"{list(input1.shape)}, input2: {list(input2.shape)}, target: {list(_tensor(target, input1).shape)} "
        )
    target = _tensor(target, input1)
    return _reduce(_hinge(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1`` (torch's sum of both
    masks for other targets)."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    t = _label_tensor(target)
    zero = wrap_array(np.zeros((), input.dtype))
    margin_part = ops.where(t != 1, _hinge(margin - input), zero)
    self_part = ops.where(t != -1, input, zero)
    return _reduce(margin_part + self_part, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where ``target == -1``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    t = _label_tensor(target)
    if input1.ndim not in (1, 2) or input1.shape != input2.shape:
        raise RuntimeError(f"cosine_embedding_loss: expected 1D or 2D inputs of one shape, got "
                           f"{list(input1.shape)} and {list(input2.shape)}")
    if t.ndim != input1.ndim - 1:
        raise RuntimeError(f"{input1.ndim}D target tensor expects {input1.ndim}D input tensors, but found inputs "
                           f"with sizes {list(input1.shape)} and {list(input2.shape)}.")
    dim = input1.ndim - 1
    eps = 1e-12  # torch's EPSILON
    prod = ops.sum(input1 * input2, dim)
    mag1 = ops.sum(input1 * input1, dim) + eps
    mag2 = ops.sum(input2 * input2, dim) + eps
    cos = prod / ops.sqrt(mag1 * mag2)
    zero = wrap_array(np.zeros((), input1.dtype))
    pos = ops.where(t == 1, 1.0 - cos, zero)
    neg = ops.where(t == -1, ops.relu(cos - margin), zero)
    return _reduce(pos + neg, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))`` with ``d = pairwise_distance(., ., p,
    eps)``; ``swap``: the negative distance is the smaller of ``d(a, n)`` and ``d(p, n)``."""
    from .distance import pairwise_distance

    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise RuntimeError(
            f"The anchor, positive, and negative tensors are expected to have the same number of dimensions, but "
            f"got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative {negative.ndim}D inputs"
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = ops.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_hinge(d_pos - d_neg + margin), reduction)


def _not_differentiable(fn, name, t):
    if isinstance(t, Tensor) and t.requires_grad:
        raise RuntimeError(
            f"The function '{fn}' is not differentiable with respect to argument '{name}'. This input cannot have "
            "requires_grad True."
        )


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """``log(1 + exp(-target * input))`` (computed as ``-logsigmoid(target * input)``: no overflow where torch's
    ``log1p(exp(.))`` gives inf). ``target`` (-1 or 1, any dtype) is a constant, cast to ``input``'s dtype.

    Raises: RuntimeError for a target that requires grad (as torch) or does not broadcast; ValueError for a bad
    reduction. Example: ``F.soft_margin_loss(ad.tensor([0.0]), ad.tensor([1.0]))`` is ``log 2``.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_input(input, "soft_margin_loss")
    _check_reduction(reduction)
    _not_differentiable("soft_margin_loss", "target", target)
    target = _tensor(target, input)
    _size_warning(input, target)
    margin = input * ops.cast(target, input.dtype) if target.dtype != input.dtype else input * target
    return _reduce(-logsigmoid(margin), reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,  # noqa: A002
                      reduction="mean"):
    """Multi-class hinge loss: for each sample ``n`` (a row of ``input``, ``(N, C)`` or ``(C,)``) with class
    ``y = target[n]``, ``sum_{i != y} weight[y] * max(0, margin - input[n, y] + input[n, i]) ** p / C``.

    Raises: ValueError for ``p`` not 1 or 2, a weight that is not 1-d or a bad reduction; RuntimeError (torch's
    messages) for a target of another shape or out of range, a weight of another size or dtype, an input that
    is not a non-empty vector or matrix; NotImplementedError for an integer input.
    Example: ``F.multi_margin_loss(ad.tensor([[0.1, 0.8, 0.3]]), ad.tensor([1]))`` is ``(0.3 + 0.5) / 3``.
    """
    reduction = _legacy(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    _check_input(input, "multi_margin_loss")
    _check_reduction(reduction)
    if input.ndim not in (1, 2) or input.shape[-1] == 0:
        raise RuntimeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {list(input.shape)}"
        )
    if input.dtype.kind != "f":
        raise NotImplementedError(
            f"\"multi_margin_loss_cpu_kernel\" not implemented for '{ops._torch_dtype(input.dtype).capitalize()}'"
        )
    td = target._host() if isinstance(target, Tensor) else _host_array(target)
    n, c = (1, input.shape[0]) if input.ndim == 1 else input.shape
    if td.ndim > 1 or td.size != n:
        raise RuntimeError(
            "multi_margin_loss: target tensor should be 1-D with size equal to the number of input samples (batch "
            f"size). Expected target size [{n}], but got {list(td.shape)}. Input has shape {list(input.shape)}."
        )
    if td.dtype != np.int64:
        raise RuntimeError(f"expected scalar type Long but found {ops._torch_dtype(td.dtype).capitalize()}")
    if np.any((td < 0) | (td >= c)):
        raise RuntimeError("target out of range")
    if weight is not None:
        _not_differentiable("multi_margin_loss", "weight", weight)
        if weight.shape != (c,):
            raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}")
        if weight.dtype != input.dtype:
            raise RuntimeError(
                f"expected scalar type {ops._torch_dtype(input.dtype).capitalize()} but found "
                f"{ops._torch_dtype(weight.dtype).capitalize()}"
            )
    rows = ops.reshape(input, (n, c))
    classes = td.reshape(n, 1)
    picked = ops.gather(rows, 1, wrap_array(classes))
    hinge = ops.relu(margin - picked + rows)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * ops.index_select(weight, 0, wrap_array(td.reshape(n)))[:, None]
    others = wrap_array(np.arange(c) != classes)  # the target's own term is max(0, margin) ** p: left out
    loss = ops.sum(_part(others, hinge), 1) / c
    return _reduce(loss if input.ndim == 2 else ops.reshape(loss, ()), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                reduction="mean"):
    """One logistic loss per class, averaged over the classes (the last dim):
    ``-(target * logsigmoid(input) + (1 - target) * logsigmoid(-input)) * weight`` summed over C, over C.

    Raises: ValueError (torch's ``"<reduction> is not valid"``) for a bad reduction.
    Example: ``F.multilabel_soft_margin_loss(ad.tensor([[0.0, 0.0]]), ad.tensor([[1.0, 0.0]]))`` is ``log 2``.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_input(input, "multilabel_soft_margin_loss")
    target = _tensor(target, input)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = ops.sum(loss, input.ndim - 1) / input.shape[-1]
    if reduction == "none":
        return loss
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    raise ValueError(reduction + " is not valid")


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """Multi-label hinge loss: for each sample (a row of ``input``, ``(N, C)`` or ``(C,)``) with target classes
    ``target[n, :k]`` (``k``: up to the first ``-1``), ``sum_j sum_{i not a target} max(0, 1 - (x[y_j] - x[i])) / C``
    (a repeated target class counts each time, as torch's loop over ``j``).

    The pairs are a constant ``(N, C, C)`` count matrix built in numpy; the loss is one masked sum of hinges.

    Raises: RuntimeError (torch's messages) for an input that is not a non-empty vector or matrix, a target of
    another shape, dtype (not int64) or out of range; ValueError for a bad reduction.
    Example: ``F.multilabel_margin_loss(ad.tensor([[0.1, 0.2, 0.4, 0.8]]), ad.tensor([[3, 0, -1, 1]]))`` is
    ``(0.4 + 0.6 + 1.1 + 1.3) / 4`` (targets 3 and 0 against the non-targets 1 and 2).
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_input(input, "multilabel_margin_loss")
    _check_reduction(reduction)
    if input.ndim > 2 or input.shape[-1:] == (0,):
        raise RuntimeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {list(input.shape)}"
        )
    td = target._host() if isinstance(target, Tensor) else _host_array(target)
    if td.shape != input.shape:
        raise RuntimeError(f"inconsistent target size: {list(td.shape)} for input of size: {list(input.shape)}")
    if td.dtype != np.int64:
        raise RuntimeError(f"expected scalar type Long but found {ops._torch_dtype(td.dtype).capitalize()}")
    n, c = input.shape if input.ndim == 2 else (1, input.numel())
    labels = td.reshape(n, c)
    if np.any((labels < -1) | (labels >= c)):
        raise RuntimeError("argument #2 'target' is out of range")
    # the labels before each row's first -1
    valid = np.cumprod(labels != -1, axis=1).astype(bool)
    counts = np.zeros((n, c))
    rows = np.broadcast_to(np.arange(n)[:, None], labels.shape)
    np.add.at(counts, (rows[valid], labels[valid]), 1.0)
    pairs = counts[:, :, None] * (counts == 0)[:, None, :]  # (n, j: a target, i: not a target)
    x = ops.reshape(input, (n, c))
    hinge = ops.relu(1.0 - ops.unsqueeze(x, 2) + ops.unsqueeze(x, 1))
    loss = ops.sum(hinge * _cuda.index_tensor(pairs.astype(input.dtype), input), (1, 2)) / c
    if input.ndim < 2:
        loss = ops.reshape(loss, ())
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))`` for any distance ``d`` (a callable of two
    tensors; default ``pairwise_distance``); ``swap``: the negative distance is the smaller of ``d(a, n)`` and
    ``d(p, n)``.

    Raises: ValueError for a bad reduction or a margin <= 0; RuntimeError for inputs of different ndim (torch's).
    """
    from .distance import pairwise_distance

    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise RuntimeError(
            f"The anchor, positive, and negative tensors are expected to have the same number of dimensions, but "
            f"got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative {negative.ndim}D inputs"
        )
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = ops.minimum(d_neg, distance(positive, negative))
    return _reduce(ops.clamp(margin + d_pos - d_neg, min=0), reduction)
