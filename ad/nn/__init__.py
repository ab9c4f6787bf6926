"""``ad.nn``: ``Module``, ``Parameter``, layers, containers and ``init`` (as ``torch.nn``), over
``ad.nn.functional``. The layer code lives in ``ad/nn/modules/``."""

from . import functional, init, modules, utils
from .modules import *  # noqa: F403
from .parameter import Buffer, Parameter

__all__ = ["functional", "init", "utils", "Parameter", "Buffer", *modules.__all__]
