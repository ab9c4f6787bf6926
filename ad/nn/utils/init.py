"""``torch.nn.utils.skip_init``: a module whose parameters and buffers are left uninitialized."""

import inspect

from ... import creation
from ...grad_mode import no_grad

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    """``torch.nn.utils.skip_init(module_cls, *args, **kwargs)``: ``module_cls(*args, **kwargs)`` with every
    parameter and buffer replaced by uninitialized memory of its shape and dtype (fill them yourself). torch builds
    the module on the meta device to skip the initializers' cost; ad has no meta device, so the initializers run
    and their values are then discarded: the contract (uninitialized values) is torch's, the saving is not.

    Raises:
        RuntimeError: ``module_cls`` takes no ``device`` argument (torch's message).
    """
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    module = module_cls(*args, **kwargs)
    with no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            tensor.copy_(creation.empty_like(tensor))
    return module
