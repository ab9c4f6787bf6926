"""``ad.nn``: ``Module``, ``Parameter``, layers, containers and ``init`` (as ``torch.nn``), over
``ad.nn.functional``. The layer code lives in ``ad/nn/modules/``."""

from . import attention, functional, grad, init, modules, parallel, utils
from .modules import *  # noqa: F403
from .parallel import DataParallel
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter

__all__ = [
    "attention",
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

functional.grad = grad  # torch.nn.functional.grad is torch.nn.grad
