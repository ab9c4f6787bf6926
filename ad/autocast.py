"""``ad.autocast``: torch's mixed-precision context manager and decorator, for the dtypes ad has.

torch's autocast runs chosen ops (matmuls, convolutions) in float16 or bfloat16. ad has no bfloat16 dtype and does
not differentiate float16 tensors, so enabling autocast with either (the defaults: bfloat16 on the CPU, float16
on CUDA) raises, naming the dtype; ``enabled=False`` is a no-op, as in torch. Any other dtype is one torch's
autocast does not support either: as torch, it warns and disables autocast. While an ``autocast`` block is
active-but-disabled nothing changes, so code written for torch runs unchanged in full precision.
"""

import functools
import warnings

import numpy as np

__all__ = ["autocast", "is_autocast_enabled"]

_DEVICE_TYPES = (
    "cpu cuda ipu xpu mkldnn opengl opencl ideep hip ve fpga maia xla lazy vulkan mps meta hpu mtia privateuseone"
).split()


def _is_low_precision(dtype):
    if isinstance(dtype, str):
        return dtype in ("float16", "bfloat16", "half")
    try:
        return np.dtype(dtype) == np.float16
    except TypeError:
        return "bfloat16" in str(dtype)


class autocast:  # noqa: N801 - torch's name
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``.

    Args:
        device_type (str): ``"cpu"`` or ``"cuda"`` (any device type torch names is accepted).
        dtype: the lower precision; default bfloat16 on the CPU and float16 on CUDA.
        enabled (bool): False makes the block a no-op.
        cache_enabled: accepted (torch's weight-cast cache).

    Raises:
        ValueError: ``device_type`` is not a string. RuntimeError: an unknown device type (torch's messages).
        NotImplementedError: autocast enabled with float16 or bfloat16, which ad cannot compute in.

    Example:
        >>> with ad.autocast("cpu", enabled=False):
        ...     y = ad.ones(2) @ ad.ones(2)
    """

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type.split(":")[0] not in _DEVICE_TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of device string: {device_type}"
            )
        self.device = device_type
        self.fast_dtype = dtype if dtype is not None else ("float16" if device_type == "cuda" else "bfloat16")
        self._enabled = bool(enabled)
        self._prev = None
        if self._enabled and not _is_low_precision(self.fast_dtype):
            kind = "CPU" if device_type == "cpu" else device_type.upper()
            warnings.warn(
                f"In {kind} autocast, but the target dtype is not supported. Disabling autocast.\n"
                f"{kind} Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.",
                UserWarning,
                stacklevel=2,
            )
            self._enabled = False
        if self._enabled:
            name = self.fast_dtype if isinstance(self.fast_dtype, str) else getattr(
                self.fast_dtype, "name", str(self.fast_dtype))
            raise NotImplementedError(
                f"ad.autocast: ad cannot compute in {name} (it has no bfloat16 dtype and does not differentiate "
                "float16 tensors); run in float32 (ad.autocast(..., enabled=False) keeps torch code unchanged)"
            )

    def __enter__(self):
        self._prev = _enabled.get(self.device, False)
        _enabled[self.device] = self._enabled
        return self

    def __exit__(self, *exc):
        _enabled[self.device] = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)

        return wrapper


_enabled = {}


def is_autocast_enabled(device_type=None):
    """``torch.is_autocast_enabled(device_type=None)``: whether autocast is on for the device type (default
    ``"cuda"``, as torch); always False in ad, where autocast cannot be enabled (see ``autocast``)."""
    return _enabled.get("cuda" if device_type is None else device_type, False)
