"""``RMSprop`` (with ``centered``, ``momentum``, ``weight_decay``, ``maximize``) and ``Adagrad``.

RMSprop keeps per parameter ``step``, ``square_avg`` and, as options ask, ``momentum_buffer`` and
``grad_avg``; Adagrad keeps ``step`` and ``sum`` (made when the optimizer is, as torch does). The updates are
torch's single-tensor ones, operation for operation.
"""

import numpy as np

from ..tensor import wrap_array
from .optimizer import (
    Optimizer,
    _check_fused,
    _check_range,
    _lr,
    _params_with_grad,
    _scalar_state,
    _step_state,
    _updated,
)
from .sgd import _unsupported

__all__ = ["RMSprop", "Adagrad"]


class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``."""

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0,
        momentum=0,
        centered=False,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        _check_range("learning rate", lr)
        _check_range("epsilon value", eps)
        _check_range("momentum value", momentum)
        _check_range("weight_decay value", weight_decay)
        _check_range("alpha value", alpha)
        _unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = _lr(group), group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            centered, maximize = group["centered"], group["maximize"]
            for p, g in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["square_avg"] = wrap_array(np.zeros_like(p._data))
                    if momentum > 0:
                        state["momentum_buffer"] = wrap_array(np.zeros_like(p._data))
                    if centered:
                        state["grad_avg"] = wrap_array(np.zeros_like(p._data))
                if maximize:
                    g = -g
                state["step"]._data += 1
                if weight_decay != 0:
                    g = g + weight_decay * p._data
                sq = state["square_avg"]._data
                sq *= alpha
                sq += (1 - alpha) * g * g
                if centered:
                    ga = state["grad_avg"]._data
                    ga += (1 - alpha) * (g - ga)  # lerp_(g, 1 - alpha)
                    avg = np.sqrt(sq - ga * ga)
                else:
                    avg = np.sqrt(sq)
                avg += eps
                if momentum > 0:
                    buf = state["momentum_buffer"]._data
                    buf *= momentum
                    buf += g / avg
                    p._data += -lr * buf
                else:
                    p._data += -lr * g / avg
                _updated(p)
        return loss


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as ``torch.optim.Adagrad`` (dense gradients)."""

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0,
        weight_decay=0,
        initial_accumulator_value=0,
        eps=1e-10,
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        fused=None,
    ):
        _check_range("learning rate", lr)
        _check_range("lr_decay value", lr_decay)
        _check_range("weight_decay value", weight_decay)
        _check_range("initial_accumulator_value value", initial_accumulator_value)
        _check_range("epsilon value", eps)
        _unsupported(differentiable=differentiable)
        _check_fused(fused, foreach)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _step_state(group)
                state["sum"] = wrap_array(np.full_like(p._data, group["initial_accumulator_value"]))

    def step(self, closure=None):
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, lr_decay, eps = _lr(group), group["lr_decay"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for p, g in _params_with_grad(group):
                state = self.state[p]
                if "sum" not in state:  # a group added after construction
                    state["step"] = _step_state(group)
                    state["sum"] = wrap_array(np.full_like(p._data, group["initial_accumulator_value"]))
                state["step"]._data += 1
                step = float(state["step"]._data)
                if maximize:
                    g = -g
                if weight_decay != 0:
                    g = g + weight_decay * p._data
                clr = lr / (1 + (step - 1) * lr_decay)
                s = state["sum"]._data
                s += g * g
                std = np.sqrt(s) + eps
                p._data += -clr * g / std
                _updated(p)
        return loss
