"""``ad.nn``: the functional layer (``ad.nn.functional``), as ``torch.nn.functional``."""

from . import functional

__all__ = ["functional"]
