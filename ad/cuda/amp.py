"""``ad.cuda.amp``: torch's deprecated ``torch.cuda.amp.GradScaler`` and ``autocast`` (``ad.amp``'s with
``device="cuda"``), which warn as torch's do; kept because older training scripts import them."""

import warnings

import numpy as np

from ..amp import GradScaler as _GradScaler
from ..autocast import autocast as _autocast

__all__ = ["GradScaler", "autocast"]


class GradScaler(_GradScaler):
    """``torch.cuda.amp.GradScaler`` (deprecated): ``ad.amp.GradScaler("cuda", ...)``."""

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        warnings.warn(
            "`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use `torch.amp.GradScaler('cuda', args...)` "
            "instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


class autocast(_autocast):  # noqa: N801 - torch's name
    """``torch.cuda.amp.autocast`` (deprecated): ``ad.autocast("cuda", ...)``."""

    def __init__(self, enabled=True, dtype=np.float16, cache_enabled=True):
        warnings.warn(
            "`torch.cuda.amp.autocast(args...)` is deprecated. Please use `torch.amp.autocast('cuda', args...)` "
            "instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)
