"""``ad.distributed.nn``: collectives that are differentiable (torch.distributed.nn)."""

from . import functional
from .functional import all_gather, all_reduce, broadcast
