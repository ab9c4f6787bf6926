"""``ad.nn.grad`` (also ``ad.nn.functional.grad``): the gradients of a convolution with respect to its input and to
its weight, as ``torch.nn.grad``: ``conv{1,2,3}d_input(input_size, weight, grad_output, ...)`` and
``conv{1,2,3}d_weight(input, weight_size, grad_output, ...)``.

Each is the vector-Jacobian product of the convolution at a zero tensor of the missing operand's size (the
convolution is linear in each operand, so the point does not matter), taken with ``autograd.grad`` and with
``create_graph`` when ``weight`` / ``input`` or ``grad_output`` require grad: the results differentiate like any
composite (in torch they are transposed convolutions).
"""

from .. import creation
from ..autograd import grad as _grad
from ..grad_mode import _grad_state, enable_grad
from ..tensor import Tensor
from .functional import conv1d, conv2d, conv3d

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]


def _check_grad_output(conv, x, w, grad_output, stride, padding, dilation, groups, dims):
    expected = conv(x.detach(), w.detach(), None, stride, padding, dilation, groups).shape
    if tuple(grad_output.shape) != tuple(expected):
        raise RuntimeError(
            f"Expected a tensor of dimension {dims + 2} and tensor.size{list(range(2, dims + 2))} == "
            f"{list(expected[2:])} but got: dimension {grad_output.ndim} and tensor.size = {list(grad_output.shape)}"
        )


def _vjp(conv, x, w, wrt, grad_output, stride, padding, dilation, groups):
    differentiable = _grad_state.enabled and any(
        isinstance(t, Tensor) and t.requires_grad for t in (x, w, grad_output)
    )
    with enable_grad():
        out = conv(x, w, None, stride, padding, dilation, groups)
        (g,) = _grad(out, wrt, grad_output, create_graph=differentiable)
    return g if differentiable else g.detach()


def _input_grad(conv, dims, input_size, weight, grad_output, stride, padding, dilation, groups):
    x = creation.zeros(tuple(input_size), dtype=weight.dtype, device=weight.device, requires_grad=True)
    _check_grad_output(conv, x, weight, grad_output, stride, padding, dilation, groups, dims)
    return _vjp(conv, x, weight, x, grad_output, stride, padding, dilation, groups)


def _weight_grad(conv, dims, input, weight_size, grad_output, stride, padding, dilation, groups):  # noqa: A002
    w = creation.zeros(tuple(weight_size), dtype=input.dtype, device=input.device, requires_grad=True)
    _check_grad_output(conv, input, w, grad_output, stride, padding, dilation, groups, dims)
    return _vjp(conv, input, w, w, grad_output, stride, padding, dilation, groups)


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv1d`` with respect to an input of ``input_size``.

    Raises:
        RuntimeError: ``grad_output`` is not the convolution's output shape.

    Example:
        >>> w, g = ad.randn(3, 2, 3), ad.randn(1, 3, 4)
        >>> ad.nn.grad.conv1d_input((1, 2, 6), w, g).shape
        (1, 2, 6)
    """
    return _input_grad(conv1d, 1, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """The gradient of ``conv1d`` with respect to a weight of ``weight_size`` (see ``conv1d_input``)."""
    return _weight_grad(conv1d, 1, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv2d`` with respect to an input of ``input_size`` (see ``conv1d_input``)."""
    return _input_grad(conv2d, 2, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """The gradient of ``conv2d`` with respect to a weight of ``weight_size`` (see ``conv1d_input``)."""
    return _weight_grad(conv2d, 2, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv3d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv3d`` with respect to an input of ``input_size`` (see ``conv1d_input``)."""
    return _input_grad(conv3d, 3, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv3d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """The gradient of ``conv3d`` with respect to a weight of ``weight_size`` (see ``conv1d_input``)."""
    return _weight_grad(conv3d, 3, input, weight_size, grad_output, stride, padding, dilation, groups)
