"""``Adamax``, ``NAdam`` and ``RAdam``: Adam's relatives, as torch's single-tensor implementations.

Per parameter: ``step`` (0-d float64), ``exp_avg`` and ``exp_inf`` (Adamax) or ``exp_avg_sq`` (NAdam, RAdam);
NAdam also keeps ``mu_product`` (0-d float64), the running product of its momentum schedule. The updates are
written once over ``_values`` (numpy arrays on the CPU, tensors under ``no_grad`` on CUDA, both sharing the
storage) with ``_xp(p)``'s functions, in place (``_maximum_`` where numpy writes ``out=``), so CPU and CUDA
parameters share them (the buffers live on the parameter's device; the 0-d counters stay on the host),
operation for operation as torch's ``foreach=False`` path.
"""

from ..grad_mode import no_grad
from .adam import _check_adam
from .adam import _zeros_like as _zeros
from .optimizer import (
    Optimizer,
    _check_range,
    _lr,
    _maximum_,
    _params_with_grad,
    _scalar_state,
    _updated,
    _values,
    _xp,
)
from .sgd import _unsupported

__all__ = ["Adamax", "NAdam", "RAdam"]


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm), as ``torch.optim.Adamax``.

    Example:
        >>> opt = ad.optim.Adamax(model.parameters(), lr=2e-3)
    """

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        capturable=False,
    ):
        _check_adam(lr, betas, eps, weight_decay)
        _unsupported(differentiable=differentiable, capturable=capturable)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adamax update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = _lr(group), group["betas"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_inf"] = _zeros(p)
                state["step"]._data += 1
                with no_grad():
                    x, g, xp = _values(p), _values(p._grad), _xp(p)
                    if maximize:
                        g = -g
                    if weight_decay != 0:
                        g = g + weight_decay * x
                    m, u = _values(state["exp_avg"]), _values(state["exp_inf"])
                    m += (1 - beta1) * (g - m)  # lerp_(g, 1 - beta1)
                    u *= beta2
                    _maximum_(state["exp_inf"], xp.abs(g) + eps)
                    clr = lr / (1 - beta1 ** float(state["step"]._data))
                    x += (-clr) * (m / u)
                _updated(p)
        return loss


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat), as ``torch.optim.NAdam``; ``decoupled_weight_decay=True`` gives
    NAdamW.

    Example:
        >>> opt = ad.optim.NAdam(model.parameters(), lr=2e-3, momentum_decay=4e-3)
    """

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
    ):
        _check_adam(lr, betas, eps, weight_decay)
        _check_range("momentum_decay value", momentum_decay)
        _unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One NAdam update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = _lr(group), group["betas"], group["eps"]
            weight_decay, momentum_decay = group["weight_decay"], group["momentum_decay"]
            decoupled, maximize = group["decoupled_weight_decay"], group["maximize"]
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["mu_product"] = _scalar_state(1.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_avg_sq"] = _zeros(p)
                state["step"]._data += 1
                step = float(state["step"]._data)
                bias_correction2 = 1 - beta2**step
                # the momentum schedule mu_t and mu_{t+1}
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
                mu_product = state["mu_product"]._data
                mu_product *= mu
                mu_product_next = float(mu_product) * mu_next
                with no_grad():
                    x, g, xp = _values(p), _values(p._grad), _xp(p)
                    if maximize:
                        g = -g
                    if weight_decay != 0:
                        if decoupled:
                            x *= 1 - lr * weight_decay
                        else:
                            g = g + weight_decay * x
                    m, v = _values(state["exp_avg"]), _values(state["exp_avg_sq"])
                    m += (1 - beta1) * (g - m)
                    v *= beta2
                    v += (1 - beta2) * g * g
                    denom = xp.sqrt(v / bias_correction2) + eps
                    x += (-lr * (1.0 - mu) / (1.0 - float(mu_product))) * (g / denom)
                    x += ((-lr * mu_next) / (1.0 - mu_product_next)) * (m / denom)
                _updated(p)
        return loss


class RAdam(Optimizer):
    """Rectified Adam (Liu et al.), as ``torch.optim.RAdam``; ``decoupled_weight_decay=True`` gives RAdamW.

    Example:
        >>> opt = ad.optim.RAdam(model.parameters(), lr=1e-3)
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        decoupled_weight_decay=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
    ):
        _check_adam(lr, betas, eps, weight_decay)
        _unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One RAdam update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = _lr(group), group["betas"], group["eps"]
            weight_decay, decoupled, maximize = (
                group["weight_decay"],
                group["decoupled_weight_decay"],
                group["maximize"],
            )
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_avg_sq"] = _zeros(p)
                state["step"]._data += 1
                step = float(state["step"]._data)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                # the length of the approximated simple moving average, and its limit
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
                with no_grad():
                    x, g, xp = _values(p), _values(p._grad), _xp(p)
                    if maximize:
                        g = -g
                    if weight_decay != 0:
                        if decoupled:
                            x *= 1 - lr * weight_decay
                        else:
                            g = g + weight_decay * x
                    m, v = _values(state["exp_avg"]), _values(state["exp_avg_sq"])
                    m += (1 - beta1) * (g - m)
                    v *= beta2
                    v += (1 - beta2) * g * g
                    corrected = m / bias_correction1
                    if rho_t > 5.0:
                        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                        adaptive = (bias_correction2**0.5) / (xp.sqrt(v) + eps)
                        x -= corrected * lr * adaptive * rect
                    else:
                        x -= corrected * lr
                _updated(p)
        return loss
