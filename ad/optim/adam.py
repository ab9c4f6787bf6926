"""``Adam`` and ``AdamW`` (decoupled weight decay), with ``amsgrad`` and ``maximize``.

Per parameter: ``step`` (a 0-d float64 tensor, as torch keeps it), ``exp_avg``, ``exp_avg_sq`` and, with
``amsgrad``, ``max_exp_avg_sq``. The update is torch's single-tensor one, operation for operation.
"""

import numpy as np

from ..tensor import wrap_array
from .optimizer import (
    Optimizer,
    _check_fused,
    _check_range,
    _lr,
    _params_with_grad,
    _step_state,
    _updated,
)
from .sgd import _unsupported

__all__ = ["Adam", "AdamW"]


def _check_adam(lr, betas, eps, weight_decay):
    _check_range("learning rate", lr)
    _check_range("epsilon value", eps)
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    _check_range("weight_decay value", weight_decay)


FUSED_MIN = 4096  # below this many elements numpy's few calls cost less than a kernel call's checks


def _fused(p, g, state, amsgrad, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    """Run the step in one compiled pass (``kernels.optim.adam_update``) when the arrays allow: big enough,
    C-contiguous, one float dtype. Returns False (nothing done) otherwise."""
    data = p._data
    if data.size < FUSED_MIN or data.dtype != g.dtype or not (data.flags.c_contiguous and g.flags.c_contiguous):
        return False
    m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
    vmax = state["max_exp_avg_sq"]._data if amsgrad else v
    if not (m.flags.c_contiguous and v.flags.c_contiguous and vmax.flags.c_contiguous):
        return False
    from kernels.optim import adam_update

    step = float(state["step"]._data)
    dt = data.dtype.type  # scalars rounded to the arrays' dtype, as numpy rounds them
    adam_update(
        data.reshape(-1),
        g.reshape(-1),
        m.reshape(-1),
        v.reshape(-1),
        vmax.reshape(-1),
        bool(maximize),
        dt(weight_decay),
        dt(1 - lr * weight_decay),
        bool(decoupled),
        dt(1 - beta1),
        dt(beta2),
        dt(1 - beta2),
        bool(amsgrad),
        dt((1 - beta2**step) ** 0.5),
        dt(eps),
        dt(-(lr / (1 - beta1**step))),
    )
    return True


def _zeros_like(p):
    if p._dev is not None:
        from ..ops import zeros_like

        return zeros_like(p.detach())
    return wrap_array(np.zeros_like(p._data))


class Adam(Optimizer):
    """Adam (Kingma and Ba), as ``torch.optim.Adam``; ``decoupled_weight_decay=True`` makes it AdamW.

    Example:
        >>> opt = ad.optim.Adam(model.parameters(), lr=1e-3)
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        _check_adam(lr, betas, eps, weight_decay)
        _unsupported(capturable=capturable, differentiable=differentiable)
        _check_fused(fused, foreach)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adam update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = _lr(group), group["betas"], group["eps"]
            weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
            decoupled = group.get("decoupled_weight_decay", False)
            for p, g in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_state(group)
                    state["exp_avg"] = _zeros_like(p)
                    state["exp_avg_sq"] = _zeros_like(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = _zeros_like(p)
                step_t = state["step"]._data
                step_t += 1
                if p._dev is not None:
                    from ..cuda import optim as cuda_optim

                    cuda_optim.adam(p, state, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled, maximize)
                    _updated(p)
                    continue
                if _fused(p, g, state, amsgrad, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
                    _updated(p)
                    continue
                if maximize:
                    g = -g
                if weight_decay != 0:
                    if decoupled:
                        p._data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p._data
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m += (1 - beta1) * (g - m)  # lerp_(g, 1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                step = float(step_t)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2**0.5
                if amsgrad:
                    mx = state["max_exp_avg_sq"]._data
                    np.maximum(mx, v, out=mx)
                    denom = np.sqrt(mx) / bias_correction2_sqrt + eps
                else:
                    denom = np.sqrt(v) / bias_correction2_sqrt + eps
                p._data += -step_size * m / denom
                _updated(p)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as ``torch.optim.AdamW``."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
