"""``linear`` (one compiled row when it can), ``bilinear`` and ``linear_cross_entropy`` (linear then
cross entropy, torch 2.13's reference path)."""

import math

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
    for name, x, n in (("input1", input1, n1), ("input2", input2, n2)):
        if x.shape[-1] != n:
            raise RuntimeError(
                f"bilinear(): {name} size does not match weight size: got {x.shape[-1]} but expected {n}"
            )
    if input1.ndim != input2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}")
    for d in range(input1.ndim - 1):
        if input1.shape[d] != input2.shape[d]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {d}: got {input1.shape[d]} "
                               f"and {input2.shape[d]}")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != out_f):
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got {bias.shape[0] if bias.ndim else 1} "
                           f"but expected {out_f}")
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


def linear_cross_entropy(
    input,  # noqa: A002
    linear_weight,
    target,
    *,
    linear_bias=None,
    weight=None,
    reduction="mean",
    ignore_index=None,
    label_smoothing=0.0,
    options=None,
):
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``, as torch 2.13.

    ``linear_weight`` is (C, *out_features, in_features): the logits are (N, C, *out_features), a K-dimensional
    loss. ``options`` (a ``LinearCrossEntropyOptions``) selects torch's chunked path, which computes the same
    values with less memory; here every call takes the reference path (the options are accepted and ignored).

    Raises:
        RuntimeError: input not 1-D or 2-D, ``linear_weight`` under 2-D, mismatched in_features or bias shape,
        out_features with an unbatched input, ``ignore_index`` with probability targets (torch's messages).

    Example:
        >>> F.linear_cross_entropy(ad.randn(4, 3), ad.randn(5, 3), ad.tensor([0, 4, 2, 1])).shape
        ()
    """
    from .loss import cross_entropy

    if input.ndim < 1 or input.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.ndim}")
    num_batches = tuple(input.shape[:-1])
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {input.shape[-1]} and {linear_weight.shape[-1]}, respectively"
        )
    num_classes = linear_weight.shape[0]
    out_features = tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(
            f"expected linear_bias shape {(num_classes, *out_features)}, got {tuple(linear_bias.shape)}"
        )
    if out_features and not num_batches:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires"
            f" batched input, (N, {in_features}), got unbatched input with shape {tuple(input.shape)}"
        )
    logits_shape = (*num_batches, num_classes, *out_features)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = ignore_index if ignore_index is not None else -100
    if out_features:
        rows = math.prod(out_features) * num_classes
        linear_weight = ops.reshape(linear_weight, (rows, in_features))
        if linear_bias is not None:
            linear_bias = ops.reshape(linear_bias, (rows,))
    logits = ops.reshape(linear(input, linear_weight, linear_bias), logits_shape)
    return cross_entropy(
        logits, target, weight=weight, reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing
    )
