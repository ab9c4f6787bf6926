"""``ctc_loss``: the connectionist temporal classification loss, torch's forward (alpha) recursion in log space.

Data: each target ``l`` (length S) is extended with blanks to ``l'`` = (blank, l1, blank, l2, ..., blank), length
``2S + 1``; the whole batch shares a width ``L = 2 * max(S) + 1``. ``emit[t]`` (N, L) is ``log_probs[t]`` at each
extended label (one ``gather_map`` for all t). The recursion

    alpha[0, s] = emit[0, s] for s < 2 (s = 1 only for a non-empty target), unreachable elsewhere
    alpha[t, s] = logsumexp(alpha[t-1, s], alpha[t-1, s-1], alpha[t-1, s-2] where l'_s != blank and
                            l'_s != l'_{s-2}) + emit[t, s]

runs in ad ops, a few per time step, and each sample's alpha stays frozen past its input length; the loss is
``-logsumexp(alpha[T_n - 1, 2 S_n], alpha[T_n - 1, 2 S_n - 1])``. Being a composite, its gradient is the true
derivative with respect to ``log_probs`` (and every order, forward mode, CUDA come free). torch's kernel returns
``exp(log_probs) - occupancy`` instead, which equals the true gradient once it passes back through the usual
``log_softmax`` (whose backward removes a term proportional to ``exp(log_probs)``): through ``log_softmax`` the
two agree, and the tests compare them there. Each step's log-sum-exp is shifted by a constant maximum
(``_logsumexp``).

Unreachable states hold a finite sentinel far below any log-probability instead of -inf, so that no
``exp(-inf - -inf)`` makes a NaN in a gradient; a sample whose target cannot be aligned (input too short) has loss
inf (or 0 with ``zero_infinity``), and no gradient.
"""

import numpy as np

from ... import cuda as _cuda
from ... import ops
from ...tensor import Tensor
from .loss import _check_reduction


def _lengths(value, name, batch):
    if isinstance(value, Tensor):
        arr = _cuda.host_copy(value._data)
    elif isinstance(value, (tuple, list)):
        arr = np.asarray(value)
    else:
        raise TypeError(f"ctc_loss(): argument '{name}' must be a Tensor or a tuple of ints, not "
                        f"{type(value).__name__}")
    arr = arr.astype(np.int64).reshape(-1)
    if arr.size != batch:
        raise RuntimeError(f"{name} must be of size batch_size")
    return arr


def _targets(targets, target_lengths, batch, batched):
    """The targets as a padded ``(N, max S)`` array, from torch's two layouts (padded 2-D, or concatenated 1-D)."""
    t = _cuda.host_copy(targets._data) if isinstance(targets, Tensor) else np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"ctc_loss: expected targets to be an integer tensor, got {t.dtype}")
    t = t.astype(np.int64)
    longest = int(target_lengths.max()) if batch else 0
    if t.ndim == 1 and batched:  # concatenated
        total = int(target_lengths.sum())
        if t.shape[0] != total:
            raise RuntimeError(f"Expected tensor to have size {total} at dimension 0, but got size {t.shape[0]} for "
                               f"argument #2 'targets' (while checking arguments for ctc_loss_allocate_outputs)")
        padded = np.zeros((batch, longest), np.int64)
        sample = np.repeat(np.arange(batch), target_lengths)  # each label's sample, and its place in that target
        starts = np.cumsum(target_lengths) - target_lengths
        padded[sample, np.arange(total) - starts[sample]] = t
        return padded
    t = t.reshape(batch, -1)
    if t.shape[1] < longest:
        raise RuntimeError(f"Expected tensor to have size at least {longest} at dimension 1, but got size "
                           f"{t.shape[1]} for argument #2 'targets' (while checking arguments for "
                           f"ctc_loss_allocate_outputs)")
    return t[:, :longest]


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """The CTC loss: ``-log`` of the total probability of all alignments of each target to its input.

    Args:
        log_probs: ``(T, N, C)`` (or ``(T, C)`` unbatched) log-probabilities, usually ``log_softmax`` outputs.
        targets: ``(N, S)`` padded class indices, or 1-D: the targets of the batch concatenated.
        input_lengths, target_lengths: ``(N,)`` tensors or tuples of ints.
        blank: the blank class; reduction: ``"mean"`` (each loss over its target length, then the batch mean),
            ``"sum"`` or ``"none"``; zero_infinity: impossible alignments give 0 (and no gradient) instead of inf.
    Raises: ValueError for a bad reduction; RuntimeError (torch's messages) for lengths of the wrong size or out of
    range, short targets, or a blank outside the classes.
    Example: one step, one class and the blank, target ``[1]``: the loss is ``-log_probs[0, 0, 1]``.
    """
    _check_reduction(reduction)
    if not isinstance(log_probs, Tensor):
        raise TypeError(f"ctc_loss(): argument 'log_probs' (position 1) must be Tensor, not "
                        f"{type(log_probs).__name__}")
    batched = log_probs.ndim == 3
    if log_probs.ndim not in (2, 3):
        raise RuntimeError(f"ctc_loss: expected log_probs to be 2-D (unbatched) or 3-D, got {log_probs.ndim}-D")
    lp = log_probs if batched else ops.unsqueeze(log_probs, 1)
    steps, batch, classes = lp.shape
    if not 0 <= blank < classes:
        raise RuntimeError("blank must be in label range")
    in_len = _lengths(input_lengths, "input_lengths", batch)
    tgt_len = _lengths(target_lengths, "target_lengths", batch)
    for name, values, high in (("input_lengths", in_len, steps), ("target_lengths", tgt_len, None)):
        if values.size and values.min() < 0:
            raise RuntimeError(f"Expected {name} to have value at least 0, but got value {values.min()} (while "
                               f"checking arguments for ctc_loss_allocate_outputs)")
        if high is not None and values.size and values.max() > high:
            raise RuntimeError(f"Expected {name} to have value at most {high}, but got value {values.max()} (while "
                               f"checking arguments for ctc_loss_allocate_outputs)")
    labels = _targets(targets, tgt_len, batch, batched)  # (N, S)
    valid_label = np.arange(labels.shape[1])[None, :] < tgt_len[:, None]
    if np.any(valid_label & ((labels < 0) | (labels >= classes))):
        raise RuntimeError(f"ctc_loss: targets must be class indices in [0, {classes})")
    labels = np.where(valid_label, labels, blank)
    width = 2 * labels.shape[1] + 1
    ext = np.full((batch, width), blank, np.int64)
    ext[:, 1::2] = labels
    # alpha[t-1, s-2] feeds alpha[t, s] only between two different labels
    skip = np.zeros((batch, width), bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    if steps == 0 or batch == 0:
        return _reduced(ops.sum(lp, (0, 2)) * 0.0, tgt_len, reduction, batched)
    # emit[t, n, s] = log_probs[t, n, ext[n, s]]
    flat = (np.arange(steps)[:, None, None] * batch + np.arange(batch)[None, :, None]) * classes + ext[None]
    emit = ops.gather_map(lp, (steps, batch, width), flat)
    dtype = np.dtype(lp.dtype)
    unreachable = float(np.finfo(dtype).min) / 8  # (finite: see the module's docstring)

    def const(arr):
        return _cuda.index_tensor(np.ascontiguousarray(arr, dtype=dtype), lp)

    start = np.zeros((batch, width), bool)
    start[:, 0] = True
    start[:, 1:2] = (tgt_len > 0)[:, None]  # (no column 1 when every target is empty)
    floor = const(np.full((batch, width), unreachable))
    alpha = ops.where(_cuda.index_tensor(start, lp), emit[0], floor)
    pad1 = const(np.full((batch, 1), unreachable))
    pad2 = const(np.full((batch, 2), unreachable))
    skip_t = _cuda.index_tensor(skip, lp)
    for t in range(1, steps):
        active = in_len > t
        if not active.any():
            break
        prev1 = ops.cat([pad1, alpha[:, :-1]], 1)
        prev2 = ops.where(skip_t, ops.cat([pad2, alpha[:, :-2]], 1), floor)
        new = _logsumexp([alpha, prev1, prev2]) + emit[t]
        alpha = new if active.all() else ops.where(_cuda.index_tensor(active[:, None], lp), new, alpha)
    # each sample's total: its last two extended states (only the last one for an empty target)
    last = 2 * tgt_len
    ends = np.stack([last, np.maximum(last - 1, 0)], 1)  # (N, 2); the second is masked for an empty target
    final = ops.gather_map(alpha, (batch, 2), np.arange(batch)[:, None] * width + ends)
    final = ops.where(_cuda.index_tensor(np.stack([np.ones(batch, bool), tgt_len > 0], 1), lp), final,
                      const(np.full((batch, 2), unreachable)))
    loss = -_logsumexp([final[:, 0], final[:, 1]])
    # no alignment: a total at the sentinel, or an empty input (T_n = 0; only an empty target aligns to it, loss 0)
    values = _cuda.host_copy(loss._data)
    feasible = (values < -unreachable / 2) & (in_len > 0)
    if not feasible.all():
        empty_pair = (in_len == 0) & (tgt_len == 0)
        fill = np.where(empty_pair | zero_infinity, 0.0, np.inf)
        loss = ops.where(_cuda.index_tensor(feasible, lp), loss, const(fill))
    return _reduced(loss, tgt_len, reduction, batched)


def _logsumexp(terms):
    """``log(sum(exp(terms)))`` of same-shape tensors, shifted by their (constant) elementwise maximum: every
    exponent is <= 0, so no derivative order overflows (``logaddexp``'s differentiable partial
    ``1 / (1 + exp(y - x))`` does, at the sentinel's distances, in its second derivative)."""
    stacked = ops.stack(terms)
    shift = np.max(_cuda.host_copy(stacked._data), axis=0)
    shift_t = _cuda.index_tensor(shift, stacked)
    return ops.log(ops.sum(ops.exp(stacked - shift_t), 0)) + shift_t


def _reduced(loss, tgt_len, reduction, batched):
    if reduction == "mean":
        per = loss / _cuda.index_tensor(np.maximum(tgt_len, 1).astype(np.dtype(loss.dtype)), loss)
        return ops.mean(per)
    if reduction == "sum":
        return ops.sum(loss)
    return loss if batched else ops.reshape(loss, ())
