"""``Adafactor`` (factored second moments) and ``Muon`` (orthogonalized momentum), as torch 2.13's.

Adafactor per parameter: ``step`` (0-d float64), and for a parameter of two or more dims the row and column
means of the squared gradient (``row_var`` of shape ``(..., R, 1)``, ``col_var`` of shape ``(..., 1, C)``:
O(R + C) memory instead of Adam's O(R C)), else ``variance`` (the parameter's shape). Muon per parameter (2-d
only): ``momentum_buffer``. Both updates are written once over ``_values`` (numpy arrays on the CPU, tensors
under ``no_grad`` on CUDA, sharing the parameter's storage), operation for operation as torch's single-tensor
paths; the few reductions that differ between numpy and ``ad`` (a sum over one axis, a norm) are the helpers
below.
"""

import math

import numpy as np

from ..grad_mode import no_grad
from .adam import _zeros_like
from .optimizer import Optimizer, _lr, _params_with_grad, _scalar_state, _updated, _values

__all__ = ["Adafactor", "Muon"]


def _sum_sq(v, axis):
    """Sum of squares of ``v`` along ``axis``, keeping the dim."""
    if isinstance(v, np.ndarray):
        return np.square(v).sum(axis=axis, keepdims=True)
    return (v * v).sum(axis, keepdim=True)


def _mean(v, axis):
    return v.mean(axis=axis, keepdims=True) if isinstance(v, np.ndarray) else v.mean(axis, keepdim=True)


def _clamp_min(v, low):
    return np.maximum(v, low) if isinstance(v, np.ndarray) else v.clamp(min=low)


def _norm(v):
    """The 2-norm of all of ``v``, as a Python float (a host read for a CUDA tensor, as torch's ``.item()``)."""
    if isinstance(v, np.ndarray):
        return math.sqrt(float(np.square(v).sum()))
    return math.sqrt(float((v * v).sum().item()))


def _lerp_(v, end, weight):
    """``v.lerp_(end, weight)`` in place, torch's formula (two forms that meet at weight 0.5)."""
    if abs(weight) < 0.5:
        v += weight * (end - v)
    elif isinstance(v, np.ndarray):
        np.copyto(v, end - (end - v) * (1 - weight))
    else:
        v.copy_(end - (end - v) * (1 - weight))
    return v


def _zeros(p, shape):
    """A zero state tensor of ``shape`` in ``p``'s dtype, on ``p``'s device."""
    from ..creation import zeros

    return zeros(shape, dtype=p.dtype, device=p.device)


class Adafactor(Optimizer):
    """Adafactor (Shazeer and Stern), as ``torch.optim.Adafactor``: Adam-like steps whose second moment is
    factored into row and column means for parameters of two or more dims, a relative step size
    ``min(lr, 1 / sqrt(step))`` scaled by the parameter's RMS, and update clipping at ``d``.

    Example:
        >>> opt = ad.optim.Adafactor(model.parameters(), lr=1e-2)
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _state_shape(self, p, name):
        if name == "row_var":
            return (*p.shape[:-1], 1)
        if name == "col_var":
            return (*p.shape[:-2], 1, p.shape[-1])
        return p.shape

    def step(self, closure=None):
        """One Adafactor update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, beta2_decay, d = _lr(group), group["beta2_decay"], group["d"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            eps1, eps2 = group["eps"]
            for p, _ in _params_with_grad(group):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    if p.ndim > 1:
                        state["row_var"] = _zeros(p, (*p.shape[:-1], 1))
                        state["col_var"] = _zeros(p, (*p.shape[:-2], 1, p.shape[-1]))
                    else:
                        state["variance"] = _zeros_like(p)
                if eps1 is None:  # (torch: the first parameter's dtype decides, for the rest of the group)
                    eps1 = float(np.finfo(p.dtype).eps)
                state["step"]._data += 1
                step = float(state["step"]._data)
                with no_grad():
                    x, g = _values(p), _values(p._grad)
                    if maximize:
                        g = -g
                    one_minus_beta2_t = step**beta2_decay
                    rho_t = min(lr, 1 / step**0.5)
                    alpha = max(eps2, _norm(x) / p.numel() ** 0.5) * rho_t
                    if weight_decay != 0:
                        x *= 1 - lr * weight_decay
                    if p.ndim > 1:
                        row_var, col_var = _values(state["row_var"]), _values(state["col_var"])
                        _lerp_(row_var, _sum_sq(g, -1) / g.shape[-1], one_minus_beta2_t)
                        _lerp_(col_var, _sum_sq(g, -2) / g.shape[-2], one_minus_beta2_t)
                        var_estimate = (row_var @ col_var) / _clamp_min(_mean(row_var, -2), eps1)
                    else:
                        variance = _values(state["variance"])
                        _lerp_(variance, g * g, one_minus_beta2_t)
                        var_estimate = variance
                    update = g / _clamp_min(var_estimate, eps1 * eps1) ** 0.5
                    denom = max(1.0, _norm(update) / (p.numel() ** 0.5 * d))
                    x += update * (-alpha / denom)
                _updated(p)
        return loss


NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # torch's defaults (Keller Jordan's quintic iteration)


def _orthogonalize(v, coefficients, steps, eps):
    """Newton-Schulz iteration towards the orthogonal factor of 2-d ``v`` (torch's
    ``_zeropower_via_newtonschulz``; in ``v``'s dtype, where torch rounds to bfloat16)."""
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(v.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    tall = v.shape[0] > v.shape[1]
    o = v.T if tall else v
    o = o / max(_norm(o), eps)
    for _ in range(steps):
        gram = o @ o.T
        o = a * o + (b * gram + c * (gram @ gram)) @ o
    return o.T if tall else o


def _adjusted_lr(lr, adjust_lr_fn, shape):
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(Optimizer):
    """Muon (Jordan et al.), as ``torch.optim.Muon``: SGD momentum (Nesterov by default) whose update is
    orthogonalized by a few Newton-Schulz iterations, with decoupled weight decay; 2-d parameters only.

    torch runs the iteration in bfloat16; ``ad`` (which has no bfloat16) in the parameter's dtype, so its
    updates agree with torch's to bfloat16's precision (about 1e-2 relative) and are the iteration's exact
    values otherwise.

    Example:
        >>> opt = ad.optim.Muon([layer.weight], lr=1e-3)
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=NS_COEFFICIENTS, eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        f"Muon only supports 2D parameters whereas we found a parameter with size: {p.size()}"
                    )

    def step(self, closure=None):
        """One Muon update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._call_closure(closure)
        for group in self.param_groups:
            lr, weight_decay, momentum = _lr(group), group["weight_decay"], group["momentum"]
            for p, _ in _params_with_grad(group):
                if p._grad.ndim != 2:
                    raise ValueError("Param gradient must be a 2D matrix")
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = _zeros_like(p)
                with no_grad():
                    x, g, buf = _values(p), _values(p._grad), _values(state["momentum_buffer"])
                    _lerp_(buf, g, 1 - momentum)
                    update = g + momentum * (buf - g) if group["nesterov"] else buf
                    update = _orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                    x *= 1 - lr * weight_decay
                    x += update * -_adjusted_lr(lr, group["adjust_lr_fn"], p.shape)
                _updated(p)
        return loss
