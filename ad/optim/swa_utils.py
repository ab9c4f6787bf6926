"""``ad.optim.swa_utils``: stochastic weight averaging and exponential moving averages of a model's weights, as
``torch.optim.swa_utils``.

- ``AveragedModel`` wraps a deep copy of a model (``module``) and a counter ``n_averaged`` (an int64 buffer, so
  that it is saved with the state dict); ``update_parameters(model)`` folds the model's current parameters (and
  buffers, with ``use_buffers=True``) into the copy: the first call copies them, later ones apply ``avg_fn``
  (one tensor at a time) or ``multi_avg_fn`` (the lists at once), by default the running mean.
- ``get_swa_avg_fn``/``get_ema_avg_fn`` and their ``multi`` forms make those averaging functions.
- ``SWALR`` anneals each group's rate to its ``swa_lr`` over ``anneal_epochs`` steps (cosine or linear) and keeps
  it there; ``update_bn`` recomputes batch-norm statistics for the averaged weights with one pass over a loader.

Example:
    >>> swa_model = ad.optim.swa_utils.AveragedModel(model)
    >>> swa_scheduler = ad.optim.swa_utils.SWALR(opt, swa_lr=0.05)
    >>> for epoch in range(20):
    ...     train_one_epoch(model, opt)
    ...     if epoch >= 10:
    ...         swa_model.update_parameters(model)
    ...         swa_scheduler.step()
    >>> ad.optim.swa_utils.update_bn(loader, swa_model)
"""

import copy
import itertools
import math

import numpy as np

from ..creation import tensor
from ..grad_mode import no_grad
from ..nn.modules.module import Module
from ..nn.modules.normalization import _BatchNorm
from .lr_scheduler import LRScheduler, _format_param

__all__ = [
    "AveragedModel",
    "SWALR",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def get_ema_multi_avg_fn(decay=0.999):
    """An in-place update of lists of averaged tensors: ``ema += (1 - decay) * (current - ema)``."""

    @no_grad()
    def ema_update(ema_param_list, current_param_list, _num_averaged):
        for ema, current in zip(ema_param_list, current_param_list):
            ema.copy_(ema + (current - ema) * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """An in-place update of lists of averaged tensors to the running mean of ``num_averaged + 1`` values."""

    @no_grad()
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged.item()) if hasattr(num_averaged, "item") else float(num_averaged)
        for averaged, current in zip(averaged_param_list, current_param_list):
            averaged.copy_(averaged + (current - averaged) / (n + 1))

    return swa_update


def get_ema_avg_fn(decay=0.999):
    """``(ema, current, num_averaged) -> decay * ema + (1 - decay) * current``."""

    @no_grad()
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """``(averaged, current, num_averaged) -> averaged + (current - averaged) / (num_averaged + 1)``."""

    @no_grad()
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A running average (or ``avg_fn``/``multi_avg_fn``) of ``model``'s weights, kept in a deep copy.

    Args:
        model: the module whose weights are averaged (copied once, here).
        device: where the copy lives (default: where ``model`` is).
        avg_fn: ``(averaged, current, num_averaged) -> new averaged`` per tensor.
        multi_avg_fn: ``(averaged_list, current_list, num_averaged)`` updating the lists in place.
        use_buffers: average the buffers too (otherwise they are copied from ``model`` at each update).

    Calling it calls the averaged copy.
    """

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=np.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged_tensors(self, model):
        if self.use_buffers:
            return itertools.chain(model.parameters(), model.buffers())
        return model.parameters()

    @no_grad()
    def update_parameters(self, model):
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        pairs = []
        for averaged, current in zip(self._averaged_tensors(self.module), self._averaged_tensors(model)):
            pairs.append((averaged.detach(), current.detach().to(averaged.device)))
        first = int(self.n_averaged.item()) == 0
        if first:
            for averaged, current in pairs:
                averaged.copy_(current)
        elif self.multi_avg_fn is not None:
            n = self.n_averaged.to(pairs[0][0].device) if pairs else self.n_averaged
            self.multi_avg_fn([a for a, _ in pairs], [c for _, c in pairs], n)
        else:
            avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
            for averaged, current in pairs:
                averaged.copy_(avg_fn(averaged, current, self.n_averaged.to(averaged.device)))
        if not self.use_buffers:
            # the buffers (batch-norm statistics) are the model's, not averaged: update_bn recomputes them
            for own, theirs in zip(self.module.buffers(), model.buffers()):
                own.detach().copy_(theirs.detach().to(own.device))
        self.n_averaged.add_(1)


@no_grad()
def update_bn(loader, model, device=None):
    """Recompute the running statistics of every batch-norm layer of ``model`` with one pass over ``loader``
    (each item an input, or a list/tuple whose first element is the input), as a cumulative average."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # the cumulative average over the pass
    for item in loader:
        if isinstance(item, (list, tuple)):
            item = item[0]
        if device is not None:
            item = item.to(device)
        model(item)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's rate from where it is to its ``swa_lr`` over ``anneal_epochs`` steps, then hold it.

    At step s the rate is ``swa_lr * a(s) + start * (1 - a(s))`` with ``a`` the annealing weight (cosine
    ``(1 - cos(pi t)) / 2`` or linear ``t``, ``t = s / anneal_epochs`` clipped to [0, 1]); ``start`` is recovered
    from the group's current rate and the previous step's weight, so a rate changed by the user between steps is
    annealed from.

    Raises:
        ValueError: ``anneal_strategy`` not 'cos' or 'linear', ``anneal_epochs`` not an integer >= 0, or a list of
            ``swa_lr`` whose length is not the number of groups.
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for swa_lr_i, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = swa_lr_i
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _weight(self, step):
        t = max(0.0, min(1.0, step / max(1, self.anneal_epochs)))
        return (1 - math.cos(math.pi * t)) / 2 if self._anneal_strategy == "cos" else t

    def get_lr(self):
        step = self._step_count - 1  # 0 at the constructor's step
        if self.anneal_epochs == 0:
            step = max(1, step)
        before, now = self._weight(step - 1), self._weight(step)
        lrs = []
        for group in self.optimizer.param_groups:
            swa_lr = group["swa_lr"]
            start = swa_lr if before == 1 else (group["lr"] - before * swa_lr) / (1 - before)
            lrs.append(swa_lr * now + start * (1 - now))
        return lrs
