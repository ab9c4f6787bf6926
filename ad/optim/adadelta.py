"""``Adadelta``, ``ASGD`` and ``Rprop``, as torch's single-tensor implementations.

Per parameter: Adadelta keeps ``step``, ``square_avg`` and ``acc_delta``; ASGD keeps ``step``, ``eta`` (the
decayed learning rate), ``mu`` (the averaging coefficient), all 0-d float64, and ``ax`` (the averaged
parameter); Rprop keeps ``step``, ``prev`` (the last gradient used) and ``step_size`` (one per element). The
updates are written once over ``_values`` (numpy arrays on the CPU, tensors under ``no_grad`` on CUDA, both
sharing the storage) with ``_xp(p)``'s functions, in place (``_put`` where a function makes a new array), so
CPU and CUDA parameters share them (the buffers live on the parameter's device; the 0-d scalars stay on the
host).
"""

from ..creation import full_like
from ..grad_mode import no_grad
from .adam import _zeros_like
from .optimizer import Optimizer, _check_range, _lr, _params_with_grad, _put, _scalar_state, _updated, _values, _xp
from .sgd import _unsupported

__all__ = ["Adadelta", "ASGD", "Rprop"]


class Adadelta(Optimizer):
    """Adadelta (Zeiler), as ``torch.optim.Adadelta``.

    Example:
        >>> opt = ad.optim.Adadelta(model.parameters(), rho=0.9)
    """

    def __init__(
        self,
        params,
        lr=1.0,
        rho=0.9,
        eps=1e-6,
        weight_decay=0,
        foreach=None,
        *,
        capturable=False,
        maximize=False,
        differentiable=False,
    ):
        _check_range("learning rate", lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_range("epsilon value", eps)
        _check_range("weight_decay value", weight_decay)
        _unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adadelta update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, rho, eps = _lr(group), group["rho"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["square_avg"] = _zeros_like(p)
                    state["acc_delta"] = _zeros_like(p)
                state["step"]._data += 1
                with no_grad():
                    x, g, xp = _values(p), _values(p._grad), _xp(p)
                    if maximize:
                        g = -g
                    if weight_decay != 0:
                        g = g + weight_decay * x
                    sq, acc = _values(state["square_avg"]), _values(state["acc_delta"])
                    sq *= rho
                    sq += (1 - rho) * g * g
                    std = xp.sqrt(sq + eps)
                    delta = xp.sqrt(acc + eps) / std * g
                    acc *= rho
                    acc += (1 - rho) * delta * delta
                    x += (-lr) * delta
                _updated(p)
        return loss


class ASGD(Optimizer):
    """Averaged stochastic gradient descent (Polyak and Juditsky), as ``torch.optim.ASGD``; the average is
    ``state[p]["ax"]``.

    Example:
        >>> opt = ad.optim.ASGD(model.parameters(), lr=1e-2, t0=100)
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        lambd=1e-4,
        alpha=0.75,
        t0=1e6,
        weight_decay=0,
        foreach=None,
        maximize=False,
        differentiable=False,
        capturable=False,
    ):
        _check_range("learning rate", lr)
        _check_range("weight_decay value", weight_decay)
        _unsupported(differentiable=differentiable, capturable=capturable)
        defaults = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One ASGD update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, lambd, alpha, t0 = _lr(group), group["lambd"], group["alpha"], group["t0"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["eta"] = _scalar_state(lr)
                    state["mu"] = _scalar_state(1.0)
                    state["ax"] = _zeros_like(p)
                state["step"]._data += 1
                eta, mu = float(state["eta"]._data), float(state["mu"]._data)
                with no_grad():
                    x, g = _values(p), _values(p._grad)
                    if maximize:
                        g = -g
                    if weight_decay != 0:
                        g = g + weight_decay * x
                    x *= 1 - lambd * eta  # decay
                    x += (-eta) * g
                    ax = _values(state["ax"])
                    if mu != 1:
                        ax += (x - ax) * mu
                    else:
                        _put(state["ax"], x)
                step = float(state["step"]._data)
                state["eta"]._data[...] = lr / ((1 + lambd * lr * step) ** alpha)
                state["mu"]._data[...] = 1 / max(1, step - t0)
                _updated(p)
        return loss


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller and Braun): per-element step sizes grown by ``etas[1]`` while the
    gradient keeps its sign and shrunk by ``etas[0]`` when it flips, as ``torch.optim.Rprop``.

    Example:
        >>> opt = ad.optim.Rprop(model.parameters(), lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50))
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        etas=(0.5, 1.2),
        step_sizes=(1e-6, 50),
        *,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        _check_range("learning rate", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        _unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr,
            etas=etas,
            step_sizes=step_sizes,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Rprop update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            (etaminus, etaplus), (step_size_min, step_size_max) = group["etas"], group["step_sizes"]
            maximize = group["maximize"]
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["prev"] = _zeros_like(p)
                    state["step_size"] = full_like(p.detach(), _lr(group))
                state["step"]._data += 1
                with no_grad():
                    x, g, xp = _values(p), _values(p._grad), _xp(p)
                    if maximize:
                        g = -g
                    prev, step_size = _values(state["prev"]), _values(state["step_size"])
                    sign = xp.sign(g * prev)
                    factor = xp.where(sign > 0, etaplus, xp.where(sign < 0, etaminus, xp.ones_like(x)))
                    step_size *= factor
                    _put(state["step_size"], xp.clip(step_size, step_size_min, step_size_max))
                    # after a sign flip the step is skipped and the gradient forgotten, so the next step grows
                    # again
                    g = xp.where(factor == etaminus, 0.0, g)
                    x -= xp.sign(g) * step_size
                    _put(state["prev"], g)
                _updated(p)
        return loss
