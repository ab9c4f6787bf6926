"""``ad.utils``: ``checkpoint`` (activation checkpointing), as ``torch.utils``."""

from . import checkpoint

__all__ = ["checkpoint"]
