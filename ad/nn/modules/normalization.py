"""Normalisation layers: ``BatchNorm1d/2d/3d``, ``InstanceNorm1d/2d/3d``, ``LayerNorm``, ``GroupNorm``.

Batch norm keeps buffers ``running_mean``, ``running_var`` and ``num_batches_tracked`` (int64), which
``F.batch_norm`` updates in place in training mode (torch's contract); ``momentum=None`` means a cumulative
average (the factor is ``1 / num_batches_tracked``).
"""

import numbers
import warnings

import numpy as np

from ... import ops
from ...creation import ones, tensor, zeros
from ...grad_mode import no_grad
from ...tensor import wrap_array
from .. import functional as F
from .. import init
from ..parameter import Parameter, UninitializedBuffer, UninitializedParameter
from .lazy import LazyModuleMixin
from .module import Module
from .utils import _factory


def _affine_parameters(module, affine, bias, shape, dtype, device):
    """The learnable per-element ``weight`` (and ``bias``) of a normalization layer, or ``None`` entries."""
    if affine:
        module.weight = Parameter(_factory(shape, dtype, device))
        if bias:
            module.bias = Parameter(_factory(shape, dtype, device))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module):
    """torch's initialisation of the affine map: weight 1, bias 0."""
    if module.weight is not None:
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)


__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "LocalResponseNorm",
    "CrossMapLRN2d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "SyncBatchNorm",
]


class _NormBase(Module):
    _version = 2  # (torch's: the state dict's metadata records it; version 2 added num_batches_tracked)

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=True,
        track_running_stats=True,
        device=None,
        dtype=None,
        *,
        bias=True,
    ):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, affine, bias, (num_features,), dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=np.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input):  # noqa: A002
        raise NotImplementedError

    def _upgrade_state_dict(self, state_dict, prefix, version, errors):
        # a checkpoint from before version 2 (or a plain dict, with no version) may lack num_batches_tracked: the
        # module keeps its own count, as torch's migration does (called by load_state_dict)
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            count = self.num_batches_tracked
            state_dict[key] = count if count is not None else tensor(0, dtype=np.int64)

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    def forward(self, input):  # noqa: A002
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            if self.num_batches_tracked._dev is not None and self.momentum is not None:
                with no_grad():  # (counted on the device: only momentum=None needs the count on the host)
                    self.num_batches_tracked.add_(1)
            else:
                init.constant_(self.num_batches_tracked, int(self.num_batches_tracked.item()) + 1)
                factor = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
        bn_training = True if self.training else (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            bn_training,
            factor,
            self.eps,
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` inputs."""

    def _check_input_dim(self, input):  # noqa: A002
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` inputs."""

    def _check_input_dim(self, input):  # noqa: A002
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")


class BatchNorm3d(_BatchNorm):
    def _check_input_dim(self, input):  # noqa: A002
        if input.ndim != 5:
            raise ValueError(f"expected 5D input (got {input.ndim}D input)")


class SyncBatchNorm(_BatchNorm):
    """Batch norm whose statistics, in training, cover the whole global batch: every rank of the
    ``ad.distributed`` process group contributes its part (N may differ between ranks). Without an initialised
    group of more than one rank it is ``BatchNorm`` over any (N, C, *) input. Unlike torch it runs on the CPU.

    The global mean and (biased) variance come from two differentiable all-reduces (SUM) of per-channel sums,
    so the gradient of each rank's input is that of the sum of every rank's loss (torch's backward); the
    running variance takes the unbiased correction with the global count.

    Example:
        >>> model = ad.nn.SyncBatchNorm.convert_sync_batchnorm(ad.nn.Sequential(ad.nn.BatchNorm1d(3)))
        >>> type(model[0]).__name__
        'SyncBatchNorm'
    """

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=True,
        track_running_stats=True,
        process_group=None,
        device=None,
        dtype=None,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):  # noqa: A002
        if input.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")

    def forward(self, input):  # noqa: A002
        self._check_input_dim(input)
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")
        group = self._sync_group() if self.training else None
        if group is None:
            return super().forward(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            init.constant_(self.num_batches_tracked, int(self.num_batches_tracked.item()) + 1)
            factor = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
        return self._global_batch_norm(input, factor, group)

    def _sync_group(self):
        """The process group to sync over in this training call, or ``None`` (no group, or only one rank)."""
        from ... import distributed as dist

        if self.running_mean is None and self.running_var is None and not self.training:
            return None
        if not dist.is_initialized():
            return None
        group = self.process_group or dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def _global_batch_norm(self, x, factor, group):
        from ...distributed import all_reduce
        from ...distributed import nn as dist_nn

        c = x.shape[1]
        dims = (0, *range(2, x.ndim))
        view = (1, c) + (1,) * (x.ndim - 2)
        count = tensor(float(x.numel() // c))
        all_reduce(count, group=group)  # the global number of values per channel (a constant)
        n = float(count.item())
        mean = dist_nn.all_reduce(ops.sum(x, dims), group=group) / n
        centered = x - ops.reshape(mean, view)
        var = dist_nn.all_reduce(ops.sum(centered * centered, dims), group=group) / n
        out = centered * ops.reshape(ops.rsqrt(var + self.eps), view)
        if self.weight is not None:
            out = out * ops.reshape(self.weight, view)
        if self.bias is not None:
            out = out + ops.reshape(self.bias, view)
        if self.track_running_stats and self.running_mean is not None:
            with no_grad():
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1.0 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1.0 - factor).add_(unbiased * factor)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every ``BatchNorm*d`` inside it replaced by a ``SyncBatchNorm`` holding the same
        parameters and buffers (``module`` itself when it is a batch norm)."""
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = SyncBatchNorm(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
            )
            if module.affine:
                with no_grad():
                    converted.weight = module.weight
                    converted.bias = module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.training = module.training
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return converted


class _InstanceNorm(_NormBase):
    _ndim = 2

    def _upgrade_state_dict(self, state_dict, prefix, version, errors):
        super()._upgrade_state_dict(state_dict, prefix, version, errors)
        # a checkpoint from before instance norm stopped tracking running stats by default: torch's error
        found = [n for n in ("running_mean", "running_var") if prefix + n in state_dict]
        if version is None and not self.track_running_stats and found:
            name = type(self).__name__
            buffers = " and ".join(f'"{n}"' for n in found)
            errors.append(
                f"Unexpected running stats buffer(s) {buffers} for "
                f"{name} with track_running_stats=False. If state_dict is a checkpoint saved before 0.4.0, this may "
                f"be expected because {name} does not track running stats by default since 0.4.0. Please remove "
                f"these keys from state_dict. If the running stats are actually needed, instead set "
                f"track_running_stats=True in {name} to enable them. See the documentation of {name} for details."
            )
            for n in found:
                state_dict.pop(prefix + n)

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=False,
        track_running_stats=False,
        device=None,
        dtype=None,
        *,
        bias=True,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):  # noqa: A002
        if input.ndim not in (self._ndim + 1, self._ndim + 2):
            raise ValueError(f"expected {self._ndim + 1}D or {self._ndim + 2}D input (got {input.ndim}D input)")
        unbatched = input.ndim == self._ndim + 1
        channel_dim = input.ndim - self._ndim - 1
        if input.shape[channel_dim] != self.num_features:
            if self.affine:  # the weight and bias need the channels; without them num_features is unused
                raise ValueError(
                    f"expected input's size at dim={channel_dim} to match num_features ({self.num_features}), but "
                    f"got: {input.shape[channel_dim]}."
                )
            warnings.warn(
                f"input's size at dim={channel_dim} does not match num_features. You can silence this warning by "
                "not passing in num_features, which is not used because affine=False",
                stacklevel=2,
            )
        if unbatched:
            input = input.unsqueeze(0)
        out = F.instance_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    _ndim = 1


class InstanceNorm2d(_InstanceNorm):
    _ndim = 2


class InstanceNorm3d(_InstanceNorm):
    _ndim = 3


class LayerNorm(Module):
    """Normalises over the last ``len(normalized_shape)`` dimensions, with an elementwise affine map."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, elementwise_affine, bias, self.normalized_shape, dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):  # noqa: A002
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalises each of ``num_groups`` groups of channels, with a per-channel affine map."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, affine, bias, (num_channels,), dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):  # noqa: A002
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """``x / sqrt(mean(x ** 2) + eps) * weight`` over the last ``len(normalized_shape)`` dims; ``eps=None``
    means the input dtype's machine epsilon (as torch)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_factory(self.normalized_shape, dtype, device))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class LocalResponseNorm(Module):
    """Divides each channel by ``(k + alpha * mean of squares over size neighbouring channels) ** beta``."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):  # noqa: A002
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def _cross_map_window(channels, size):
    """The 0/1 matrix ``W`` (channels, channels) with ``scale[c] = sum_j W[c, j] * x[j] ** 2`` as torch's legacy
    ``CrossMapLRN2d`` computes it: a running window sum that adds channel ``c + pre_pad - 1`` and drops channel
    ``c - pre_pad`` only while ``c > pre_pad``, so channel 0 stays in every later window (torch's quirk, kept so
    that values match). Replaying the recurrence on the identity gives the matrix."""
    pre_pad = int((size - 1) / 2 + 1)
    eye = np.eye(channels)
    window = np.zeros((channels, channels))
    window[0] = eye[: min(pre_pad, channels)].sum(0)
    for c in range(1, channels):
        window[c] = window[c - 1]
        if c < channels - pre_pad + 1:
            window[c] += eye[c + pre_pad - 1]
        if c > pre_pad:
            window[c] -= eye[c - pre_pad]
    return window


class CrossMapLRN2d(Module):
    """torch's legacy (Lua torch) local response norm over the channels of a 4D input:
    ``x / (k + alpha / size * window sum of x ** 2) ** beta`` with torch's window (see ``_cross_map_window``)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):  # noqa: A002
        if input.ndim != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead.")
        window = wrap_array(_cross_map_window(input.shape[1], self.size).T.astype(input.dtype))
        squares = ops.permute(input * input, (0, 2, 3, 1))  # channels last, for the matmul
        scale = ops.permute(ops.matmul(squares, window), (0, 3, 1, 2)) * (self.alpha / self.size) + self.k
        return input * scale ** (-self.beta)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class _LazyNormBase(LazyModuleMixin, _NormBase):
    """``num_features`` from the first input's dim 1. The defaults are ``_NormBase``'s (``affine=True``,
    ``track_running_stats=True``) for the instance norms too, as torch."""

    def __init__(
        self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *, bias=True
    ):
        super().__init__(0, eps, momentum, False, False, device, dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = tensor(0, dtype=np.int64)

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input):  # noqa: A002
        if self.has_uninitialized_params():
            self.num_features = input.shape[1]
            if self.affine:
                self.weight.materialize((self.num_features,))
                if self.bias is not None:
                    self.bias.materialize((self.num_features,))
            if self.track_running_stats:
                self.running_mean.materialize((self.num_features,))
                self.running_var.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """A ``BatchNorm1d`` whose ``num_features`` comes from its first input; it then becomes a ``BatchNorm1d``."""

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    cls_to_become = InstanceNorm3d
