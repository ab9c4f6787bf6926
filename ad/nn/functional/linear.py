"""``linear`` (one compiled row when it can) and ``bilinear``."""

from ... import ops
from ...tensor import Tensor


def linear(input, weight, bias=None):  # noqa: A002 - torch's names
    """``input @ weight.T + bias``."""
    if (
        isinstance(bias, Tensor)
        and weight.ndim == 2
        and bias.ndim == 1
        and input.ndim >= 1
        and bias.shape[0] == weight.shape[0]
        and input.shape[-1] == weight.shape[1]
        and input.dtype == weight.dtype == bias.dtype
    ):
        return ops.linear_bias(input, weight, bias)  # one row (anything unusual: the general path and its errors)
    out = ops.linear(input, weight) if weight.ndim == 2 else ops.matmul(input, weight)
    return out + bias if bias is not None else out


def bilinear(input1, input2, weight, bias=None):
    """``y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]``; ``weight`` is (O, I1, I2)."""
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-dimensional, but got {weight.ndim}")
    out_f, n1, n2 = weight.shape
    if input1.shape[-1] != n1 or input2.shape[-1] != n2:
        raise RuntimeError(
            f"bilinear(): input sizes do not match weight: input1 {list(input1.shape)}, input2 "
            f"{list(input2.shape)}, weight {list(weight.shape)}"
        )
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(
            f"bilinear(): input batch dimensions do not match: got {list(input1.shape[:-1])} and "
            f"{list(input2.shape[:-1])}"
        )
    lead = input1.shape[:-1]
    x1 = ops.reshape(input1, (-1, n1))
    x2 = ops.reshape(input2, (-1, n2))
    # (B, I1) @ (I1, O * I2) -> (B, O, I2), times x2 summed over I2
    w = ops.reshape(ops.permute(weight, 1, 0, 2), (n1, out_f * n2))
    t = ops.reshape(ops.matmul(x1, w), (-1, out_f, n2))
    out = ops.sum(t * ops.unsqueeze(x2, 1), 2)
    if bias is not None:
        out = out + bias
    return ops.reshape(out, lead + (out_f,))
