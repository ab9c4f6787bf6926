"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov, weight decay and maximize.

Per parameter, ``state[p]["momentum_buffer"]`` (only when ``momentum != 0``). The update is torch's
single-tensor one, operation for operation (see ``optimizer.py`` for how parameters are updated in place).
"""

from ..tensor import wrap_array
from .optimizer import Optimizer, _check_fused, _check_range, _lr, _params_with_grad, _updated, required

__all__ = ["SGD"]


def _unsupported(**flags):
    for name, value in flags.items():
        if value:
            raise NotImplementedError(f"ad.optim does not implement {name}=True (updates run in numpy, in place)")


class SGD(Optimizer):
    """``p -= lr * d`` with ``d`` the (weight-decayed, momentum-averaged) gradient, as ``torch.optim.SGD``.

    Example:
        >>> opt = ad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0,
        dampening=0,
        weight_decay=0,
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
    ):
        if lr is not required:
            _check_range("learning rate", lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _unsupported(differentiable=differentiable)
        _check_fused(fused, foreach)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, momentum, dampening = _lr(group), group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p, g in _params_with_grad(group):
                if p._dev is not None:
                    from ..cuda import optim as cuda_optim

                    cuda_optim.sgd(p, self.state[p], lr, momentum, dampening, weight_decay, nesterov, maximize)
                    _updated(p)
                    continue
                if maximize:
                    g = -g
                if weight_decay != 0:
                    g = g + weight_decay * p._data
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = wrap_array(g.astype(p.dtype, copy=True))
                        state["momentum_buffer"] = buf
                    else:
                        b = buf._data
                        b *= momentum
                        b += (1 - dampening) * g
                    g = g + momentum * buf._data if nesterov else buf._data
                p._data += -lr * g
                _updated(p)
        return loss
