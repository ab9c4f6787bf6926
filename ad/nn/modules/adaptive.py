"""``AdaptiveLogSoftmaxWithLoss``: the efficient softmax of Grave et al. (2016) for large vocabularies, as torch.

Data structures: ``cutoffs`` split the classes into a shortlist ``[0, cutoffs[0])`` and ``n_clusters`` tail
clusters ``[cutoffs[i], cutoffs[i + 1])``. ``head`` (a ``Linear``) scores the shortlist classes plus one
logit per cluster; ``tail[i]`` (``Linear`` to ``in_features // div_value ** (i + 1)``, then ``Linear`` to the
cluster's size) scores the classes inside cluster i. ``log p(c) = log p_head(cluster of c) + log p_cluster(c)``
(just ``log p_head(c)`` for shortlist classes). ``forward`` evaluates each tail only on the rows whose target
falls in it; the row sets are constants, so the whole loss differentiates like any composite.
"""

from collections import namedtuple

import numpy as np

from ... import cuda as _cuda
from ... import ops
from ...tensor import Tensor
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive softmax: ``forward(input, target)`` returns ``(output, loss)``, the target log-probabilities
    (N,) and their negated mean; ``log_prob(input)`` the full (N, n_classes) log-probabilities;
    ``predict(input)`` the most likely class per row.

    Args:
        in_features (int): size of each input row.
        n_classes (int): number of classes.
        cutoffs (sequence of int): increasing, unique, in ``[1, n_classes - 1]``.
        div_value (float): the tail projections shrink by this factor per cluster (default 4.0).
        head_bias (bool): whether ``head`` has a bias (default False).

    Raises:
        ValueError: bad ``cutoffs``. RuntimeError (forward): mismatched shapes or targets out of range.

    Example:
        >>> asm = ad.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 7])
        >>> out, loss = asm(ad.randn(5, 8), ad.tensor([0, 3, 5, 9, 1]))
        >>> out.shape, loss.shape
        ((5,), ())
    """

    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (
            (cutoffs != sorted(cutoffs))
            or (min(cutoffs) <= 0)
            or (max(cutoffs) > (n_classes - 1))
            or (len(set(cutoffs)) != len(cutoffs))
            or any(int(c) != c for c in cutoffs)
        ):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an increasing order, "
                "where each value is between 1 and n_classes-1"
            )
        kw = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(self.in_features, self.head_size, bias=self.head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(self.in_features // (self.div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(
                Sequential(Linear(self.in_features, hsz, bias=False, **kw), Linear(hsz, osz, bias=False, **kw))
            )

    def reset_parameters(self):
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_, target_):
        # the row sets come from a host copy of a CUDA target, as torch's nonzero synchronizes for them
        targets = np.asarray(_cuda.host_copy(target_._data) if isinstance(target_, Tensor) else target_)
        if targets.ndim == 1:
            if input_.shape[0] != targets.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.ndim != 2:
                raise RuntimeError(
                    f"1D target tensor expects 2D input tensors, but found inputs with size {input_.shape}"
                )
        elif targets.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(
                    f"0D target tensor expects 1D input tensors, but found inputs with size {input_.shape}"
                )
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        is_batched = targets.ndim > 0
        inp = input_ if is_batched else ops.unsqueeze(input_, 0)
        targets = targets.reshape(-1).astype(np.int64)
        batch_size = targets.shape[0]
        gather_inds = np.empty(batch_size, np.int64)  # the head column of each row: its class or its cluster
        rows, pieces = [], []  # the tail log-probabilities, cluster by cluster, and the rows they belong to
        cutoff_values = [0, *self.cutoffs]
        used_rows = 0
        for i in range(len(cutoff_values) - 1):
            low, high = cutoff_values[i], cutoff_values[i + 1]
            idx = np.nonzero((targets >= low) & (targets < high))[0]
            if idx.size == 0:
                continue
            if i == 0:
                gather_inds[idx] = targets[idx]
            else:
                gather_inds[idx] = self.shortlist_size + i - 1
                cluster_logprob = F.log_softmax(self.tail[i - 1](inp[idx]), dim=1)
                relative = _cuda.index_tensor((targets[idx] - low)[:, None], inp)
                rows.append(idx)
                pieces.append(ops.squeeze(cluster_logprob.gather(1, relative), 1))
            used_rows += idx.size
        if used_rows != batch_size:
            raise RuntimeError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{targets.min()}, {targets.max()}] were found. "
            )
        head_logprob = F.log_softmax(self.head(inp), dim=1)
        output = ops.squeeze(head_logprob.gather(1, _cuda.index_tensor(gather_inds[:, None], inp)), 1)
        if pieces:  # add each tail row's log-probability at its row (shortlist rows add 0)
            order = np.concatenate(rows)
            tail = ops.cat(pieces, 0)
            n_short = batch_size - order.size
            if n_short:
                tail = ops.cat([tail, ops.zeros_like(head_logprob[:n_short, 0])], 0)
                order = np.concatenate([order, np.setdiff1d(np.arange(batch_size), order)])
            output = output + tail[np.argsort(order)]
        loss = ops.mean(-output)
        if not is_batched:
            output = ops.squeeze(output, 0)
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input, head_output):  # noqa: A002
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i : self.shortlist_size + i + 1])
        return ops.cat(parts, 1)

    def log_prob(self, input):  # noqa: A002
        """The (N, n_classes) log-probabilities of every class of (N, in_features) rows."""
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input):  # noqa: A002
        """The most likely class (int64) of each of the (N, in_features) rows; the tails are evaluated only for
        rows whose best head column is a cluster."""
        head_output = self.head(input)
        output = np.argmax(_cuda.host_copy(head_output.detach()._data), axis=1)  # (CUDA: rows chosen on the host)
        in_tail = np.nonzero(output >= self.shortlist_size)[0]
        if in_tail.size:
            log_prob = self._get_full_log_prob(input[in_tail], head_output[in_tail])
            output[in_tail] = np.argmax(_cuda.host_copy(log_prob.detach()._data), axis=1)
        return _cuda.index_tensor(output.astype(np.int64), input)
