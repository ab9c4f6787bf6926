"""Optimizer steps for CUDA parameters: ``ad.optim``'s SGD and Adam/AdamW updates, on the device.

The CPU steps (``ad/optim/sgd.py``, ``adam.py``) update ``param._data`` in place with numpy. For a CUDA
parameter the same update, in the same order of operations (torch's single-tensor implementation), is written
with ``ad`` ops under ``no_grad`` (each one a device kernel) and copied into the parameter's and the state's
device storage (``ops.write``: the storage keeps its identity). The caller bumps the parameter's version, as
for the CPU. The state tensors (``momentum_buffer``, ``exp_avg``, ...) live on the parameter's device;
``step`` stays a host scalar (torch's default, ``capturable=False``).
"""

from ..grad_mode import no_grad
from .ops import const, write


def _grad(p, maximize):
    g = p._grad.detach()
    return -g if maximize else g


def sgd(p, state, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One SGD step of CUDA parameter ``p`` (see ``ad.optim.SGD.step``)."""
    with no_grad():
        x = p.detach()
        g = _grad(p, maximize)
        if weight_decay != 0:
            g = g + weight_decay * x
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = const(g.to(p.dtype), p.dtype)
            else:
                write(buf, buf * momentum + (1 - dampening) * g)
            g = g + momentum * buf if nesterov else buf
        write(p, x + (-lr) * g)


def adam(p, state, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled, maximize):
    """One Adam (AdamW: ``decoupled``) step of CUDA parameter ``p``; ``state["step"]`` already counts it."""
    with no_grad():
        x = p.detach()
        g = _grad(p, maximize)
        if weight_decay != 0:
            if decoupled:
                write(p, x * (1 - lr * weight_decay))
            else:
                g = g + weight_decay * x
        m, v = state["exp_avg"], state["exp_avg_sq"]
        write(m, m + (1 - beta1) * (g - m))  # lerp_(g, 1 - beta1)
        write(v, v * beta2 + (1 - beta2) * g * g)
        step = float(state["step"].item())
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if amsgrad:
            mx = state["max_exp_avg_sq"]
            from ..ops import maximum

            write(mx, maximum(mx, v))
            v = mx
        denom = v.sqrt() / bias_correction2_sqrt + eps
        write(p, x + (-step_size) * m / denom)
