"""``ad.nn``: ``Module``, ``Parameter``, layers, containers and ``init`` (as ``torch.nn``), over
``ad.nn.functional``. The layer code lives in ``ad/nn/modules/``."""

from . import functional, init, modules, parallel, utils
from .modules import *  # noqa: F403
from .parallel import DataParallel
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter

__all__ = [
    "functional",
    "init",
    "parallel",
    "utils",
    "Parameter",
    "Buffer",
    "UninitializedParameter",
    "UninitializedBuffer",
    "DataParallel",
    *modules.__all__,
]
