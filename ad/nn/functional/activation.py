"""Activations, as ``torch.nn.functional``: composites of ``ad`` ops (no rules of their own), except silu, gelu,
mish, elu, selu and celu, one elementwise row each with torch's partial (``ad/ops/activation_ops.py``).

Piecewise functions are ``where`` of their pieces, with each piece evaluated only on inputs where it is
finite (``_part``): an unselected branch whose value or derivative overflows would otherwise turn the
masked-out cotangent into ``0 * inf = nan``. Where torch's gradient at a kink is a convention (hardtanh's 0
at its bounds, leaky_relu's slope at 0), the comparisons are chosen to give torch's value.

``inplace=True`` (and the ``*_`` variants) overwrite ``input`` as ``Tensor.add_`` does: recorded when
``input`` is part of a graph, an error on a leaf that requires grad.
"""

import warnings

import numpy as np

from ... import composites, ops
from ... import cuda as _cuda
from ...creation import empty_like
from ...ops.elementwise_recording import _unary
from ...saved import guard, saves_as
from ...tensor import Tensor, wrap_array


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """``ad.softmax`` with torch.nn.functional's parameters (``dtype`` comes after ``_stacklevel``)."""
    return composites.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """``ad.log_softmax`` with torch.nn.functional's parameters (``dtype`` comes after ``_stacklevel``)."""
    return composites.log_softmax(input, dim, dtype)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """``softmax((logits + g) / tau, dim)`` with Gumbel(0, 1) noise ``g = -log(E)``, ``E ~ Exponential(1)``
    (drawn from ``ad.manual_seed``'s generator). ``hard``: the one-hot of the largest entry along ``dim`` in the
    forward value, the soft sample's gradient (straight through: ``y_hard - y_soft.detach() + y_soft``).
    ``eps`` is deprecated and unused, as in torch (a warning when given).

    Example: ``F.gumbel_softmax(ad.zeros(2, 3), hard=True)`` has one 1 in each row.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"empty_like(): argument 'input' (position 1) must be Tensor, not {type(logits).__name__}")
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    gumbels = -ops.log(empty_like(logits).exponential_())
    y_soft = composites.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.detach().argmax(dim, keepdim=True)
    y_hard = ops.zeros_like(logits).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


sigmoid = ops.sigmoid
tanh = ops.tanh


def _check(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    if x.dtype.kind != "f":
        raise NotImplementedError(f"\"{fn}\" not implemented for '{ops._torch_dtype(x.dtype).capitalize()}'")


def _part(mask, x, fill=0.0):
    """``x`` where ``mask``, else the constant ``fill``: the argument of a branch used only where ``mask``."""
    return ops.where(mask, x, wrap_array(np.asarray(fill, x.dtype)))


def _const(x, value):
    return wrap_array(np.asarray(value, x.dtype))


def _inplace(x, fn):
    """``x`` overwritten by ``fn(x)`` (recorded as torch's in-place ops are: see ``ad.methods``)."""
    from ...grad_mode import no_grad
    from ...methods import _bump, _dual_inplace, _rebase, _records_inplace

    if _records_inplace(x, None):
        return _rebase(x, fn)
    if _dual_inplace(x, None, lambda: fn(x)):
        return x
    with no_grad():
        result = fn(x)
    x._data[...] = result._data
    _bump(x)
    return x


def _maybe_inplace(x, inplace, fn):
    return _inplace(x, fn) if inplace else fn(x)


def relu(input, inplace=False):  # noqa: A002 - torch's names
    """``max(input, 0)``; gradient 0 at 0, as torch."""
    return _maybe_inplace(input, inplace, ops.relu)


def relu_(input):  # noqa: A002
    return _inplace(input, ops.relu)


def _hardtanh(x, lo, hi):
    # torch's gradient is 1 strictly inside (lo, hi) and 0 at and beyond the bounds; NaN is not at or beyond
    # them: it passes (NaN, slope 1, as torch's scalar loop)
    inside = ~((x <= lo) | (x >= hi))
    return ops.where(inside, x, ops.clamp(x.detach(), lo, hi))


@saves_as("HardtanhBackward0")
def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):  # noqa: A002
    """``clamp(input, min_val, max_val)`` with torch's zero gradient at the bounds."""
    _check(input, "hardtanh")
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _maybe_inplace(input, inplace, lambda x: _hardtanh(x, float(min_val), float(max_val)))


def hardtanh_(input, min_val=-1.0, max_val=1.0):  # noqa: A002
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace=False):  # noqa: A002
    """``min(max(input, 0), 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


@saves_as("LeakyReluBackward0")
def leaky_relu(input, negative_slope=0.01, inplace=False):  # noqa: A002
    """``input`` where positive, else ``negative_slope * input`` (the slope at 0, as torch)."""
    _check(input, "leaky_relu")
    s = float(negative_slope)
    return _maybe_inplace(input, inplace, lambda x: ops.where(x > 0, x, x * s))


def leaky_relu_(input, negative_slope=0.01):  # noqa: A002
    return leaky_relu(input, negative_slope, inplace=True)


def _activation(op, a0=0.0, a1=0.0):
    """``x -> op(x)`` as one row (``ad/ops/activation_ops.py``): torch's node, its partial from ``x``."""
    return lambda x: _unary(op, x, a0, a1)


def _saving_result(op, a0, a1, inplace, node):
    """elu's family: torch's in-place node (``node``) saves the result, the out-of-place one the input; the row
    reads the input (in place: its snapshot), so the in-place form guards the result (ad/saved.py)."""
    if not inplace:
        return _activation(op, a0, a1)
    return lambda x: guard(_unary(op, x, a0, a1), node)


def elu(input, alpha=1.0, inplace=False):  # noqa: A002 - torch's names
    """``input`` where positive, else ``alpha * (exp(input) - 1)``."""
    _check(input, "elu")
    return _maybe_inplace(input, inplace, _saving_result(ops.ELU, float(alpha), 1.0, inplace, "EluBackward1"))


def elu_(input, alpha=1.0):  # noqa: A002
    return elu(input, alpha, inplace=True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):  # noqa: A002
    """``scale * elu(input, alpha)`` with the self-normalising constants."""
    _check(input, "selu")
    return _maybe_inplace(input, inplace, _saving_result(ops.ELU, _SELU_ALPHA, _SELU_SCALE, inplace, "EluBackward1"))


def selu_(input):  # noqa: A002
    return selu(input, inplace=True)


def celu(input, alpha=1.0, inplace=False):  # noqa: A002
    """``max(0, input) + min(0, alpha * (exp(input / alpha) - 1))``."""
    _check(input, "celu")
    alpha = float(alpha)
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return _maybe_inplace(input, inplace, _saving_result(ops.CELU, alpha, 0.0, inplace, "CeluBackward1"))


def celu_(input, alpha=1.0):  # noqa: A002
    return celu(input, alpha, inplace=True)


def gelu(input, approximate="none"):  # noqa: A002
    """``input * Phi(input)``; ``approximate="tanh"``: torch's tanh approximation."""
    _check(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return _unary(ops.GELU, input, 0.0 if approximate == "none" else 1.0, 0.0)


def silu(input, inplace=False):  # noqa: A002
    """``input * sigmoid(input)``."""
    _check(input, "silu")
    return _maybe_inplace(input, inplace, _activation(ops.SILU))


# From z = 37 on, log(1 + exp(z)) is z in float64 and float32 (exp(-z) is below half an ulp of z), and so is its
# derivative, 1: softplus(z) = z and logsigmoid(-z) = -z there (and exp(z) stays far from overflow below)
_LOG1P_EXP_IS_Z = 37.0


def _softplus(x, beta, threshold):
    # torch's log1p(exp(z)) (a chain of one-argument ops: its derivative exp(z) / (1 + exp(z)) is a product, so an
    # inf cotangent or tangent stays inf, where a sum of two pieces gave inf - inf = NaN); above the threshold
    # the identity, as torch, and beyond _LOG1P_EXP_IS_Z too (torch's exp overflows from 709 on: inf)
    linear = (x * beta > threshold) | (x * beta > _LOG1P_EXP_IS_Z)
    z = _part(~linear, x) * beta
    return ops.where(linear, x, ops.log1p(ops.exp(z)) * (1.0 / beta))


def softplus(input, beta=1.0, threshold=20.0):  # noqa: A002
    """``log(1 + exp(beta * input)) / beta``, the identity where ``beta * input > threshold``."""
    _check(input, "softplus")
    return guard(_softplus(input, float(beta), float(threshold)), "SoftplusBackward0", input)


def mish(input, inplace=False):  # noqa: A002
    """``input * tanh(softplus(input))``."""
    _check(input, "mish")
    return _maybe_inplace(input, inplace, _activation(ops.MISH))


def softsign(input):  # noqa: A002
    """``input / (1 + |input|)``."""
    _check(input, "softsign")
    return input / (ops.abs(input) + 1.0)


@saves_as("HardsigmoidBackward0")
def hardsigmoid(input, inplace=False):  # noqa: A002
    """``relu6(input + 3) / 6``; gradient 1/6 strictly inside (-3, 3), as torch."""
    _check(input, "hardsigmoid")

    def fn(x):
        inside = (x > -3.0) & (x < 3.0)
        if x._dev is not None:
            return ops.where(inside, x * (1.0 / 6.0) + 0.5, ops.clamp(x.detach() / 6.0 + 0.5, 0.0, 1.0))
        return ops.where(inside, x * (1.0 / 6.0) + 0.5, wrap_array(np.clip(x._data / 6.0 + 0.5, 0.0, 1.0)))

    return _maybe_inplace(input, inplace, fn)


@saves_as("HardswishBackward0")
def hardswish(input, inplace=False):  # noqa: A002
    """``input * relu6(input + 3) / 6`` (torch's gradient: 0 up to -3, ``x / 3 + 0.5`` on (-3, 3), 1 from 3)."""
    _check(input, "hardswish")

    def fn(x):
        inside = (x > -3.0) & (x < 3.0)
        xm = _part(inside, x)  # (the quadratic of +-inf would be +-inf, and its slope, masked by where, NaN)
        # the value is torch's ``x * (x + 3) / 6``, the gradient that of ``(x + 1.5)**2 / 6``, whose rule is one
        # product ``g * (x / 3 + 0.5)`` as torch's (the product rule's ``g * x / 6`` term is NaN for an inf
        # cotangent at 0): the value plus ``q - q``, written so that the sum keeps the value's -0.0
        value = (xm * (xm + 3.0) * (1.0 / 6.0)).detach()
        q = ops.square(xm + 1.5) * (1.0 / 6.0)
        mid = value - (q.detach() - q)
        return ops.where(x <= -3.0, _const(x, 0.0), ops.where(inside, mid, x))

    return _maybe_inplace(input, inplace, fn)


def logsigmoid(input):  # noqa: A002
    """``log(sigmoid(input))``, computed stably on both sides."""
    _check(input, "log_sigmoid")
    # -log1p(exp(-x)), a chain of one-argument ops as _softplus's (an inf cotangent stays inf); below
    # -_LOG1P_EXP_IS_Z it is x (-inf too: slope 1, as torch's)
    linear = input < -_LOG1P_EXP_IS_Z
    xm = _part(~linear, input)
    out = ops.where(linear, input, 0.0 - ops.log1p(ops.exp(-xm)))  # (+0.0 at inf, as torch)
    return guard(out, "LogSigmoidBackward0", input)


def tanhshrink(input):  # noqa: A002
    """``input - tanh(input)``."""
    _check(input, "tanhshrink")
    return input - ops.tanh(input)


def softshrink(input, lambd=0.5):  # noqa: A002
    """``input - lambd`` above ``lambd``, ``input + lambd`` below ``-lambd``, else 0."""
    _check(input, "softshrink")
    lambd = float(lambd)
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    # written so that NaN falls through to ``input - lambd`` (NaN, slope 1: torch's), not to the 0 between,
    # a constant (an inf cotangent there gives 0, as torch's) with the sign of ``input``, as torch's
    between = ops.clamp(input.detach(), -1.0, 1.0) * 0.0  # (clamped: inf * 0 would warn)
    return ops.where(input < -lambd, input + lambd, ops.where(input <= lambd, between, input - lambd))


def hardshrink(input, lambd=0.5):  # noqa: A002
    """``input`` where ``|input| > lambd``, else 0."""
    _check(input, "hardshrink")
    lambd = float(lambd)
    # NaN is not inside [-lambd, lambd]: it passes through (NaN, slope 1: torch's), not to 0
    return ops.where((input >= -lambd) & (input <= lambd), _const(input, 0.0), input)


def threshold(input, threshold, value, inplace=False):  # noqa: A002
    """``value`` where ``input <= threshold``, else ``input`` (NaN is not at or below it: it passes, value and
    gradient 1, as torch's)."""
    _check(input, "threshold")
    t = float(threshold)
    return _maybe_inplace(input, inplace, lambda x: ops.where(x <= t, _const(x, value), x))


def threshold_(input, threshold, value):  # noqa: A002
    return globals()["threshold"](input, threshold, value, inplace=True)


def prelu(input, weight):  # noqa: A002
    """``input`` where positive, else ``weight * input``; ``weight`` has 1 or C (``input.shape[1]``) elements."""
    _check(input, "prelu")
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu(): argument 'weight' (position 2) must be Tensor, not {type(weight).__name__}")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}")
    n = weight.numel()
    channels = input.shape[1] if input.ndim >= 2 else 1
    if n != 1 and (input.ndim == 0 or n != channels):
        raise RuntimeError(
            f"Mismatch of parameter numbers and input channel size. Found parameter numbers = {n} and channel "
            f"size = {channels}."
        )
    w = ops.reshape(weight, (n,) + (1,) * (input.ndim - 2)) if n != 1 and input.ndim >= 2 else ops.reshape(weight, ())
    return ops.where(input > 0, input, input * w)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):  # noqa: A002
    """Randomized leaky ReLU: slopes drawn from U(lower, upper) per negative element when ``training``,
    the mean slope ``(lower + upper) / 2`` otherwise. The draws come from ``ad.manual_seed``'s generator."""
    _check(input, "rrelu")
    if lower > upper:
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")
    if not training:
        return leaky_relu(input, (lower + upper) / 2.0, inplace)
    from ... import creation

    slopes = creation._rng.uniform(lower, upper, input.shape).astype(input.dtype)
    slopes = _cuda.index_tensor(slopes, input)  # (on a CUDA input's device: the same draw as on the CPU)
    return _maybe_inplace(input, inplace, lambda x: ops.where(x >= 0, x, x * slopes))


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):  # noqa: A002
    return rrelu(input, lower, upper, training, inplace=True)


def softmin(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """``softmax(-input, dim)``."""
    return composites.softmax(-input, dim, dtype)


def glu(input, dim=-1):  # noqa: A002
    """Gated linear unit: ``a * sigmoid(b)`` of the two halves of ``input`` along ``dim``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"glu(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.ndim if -input.ndim <= dim < input.ndim else None
    if d is None:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-input.ndim}, {input.ndim - 1}], but got {dim})"
        )
    size = input.shape[d]
    if size % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {size}")
    a, b = ops.split(input, size // 2, d)
    return a * ops.sigmoid(b)
