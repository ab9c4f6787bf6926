"""``ad.nn.parallel.DataParallel`` (also ``ad.nn.DataParallel``): torch's single-process data parallelism,
here on the one device ``ad`` computes on. It wraps the module and passes calls through, so a PyTorch program
that wraps its model keeps working (``model.module``, ``module.``-prefixed state-dict keys). For training
across processes, see ``ad.distributed.DataParallel``."""

from .modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wraps ``module``; ``forward`` calls it unchanged (one device: nothing to scatter, replicate or gather).

    Args:
        module (Module): the wrapped module, kept as ``self.module``.
        device_ids, output_device: accepted for torch's signature; ``ad`` runs everything where ``module``'s
            parameters live, so they select nothing.
        dim (int): the batch dim torch would scatter along (kept as ``self.dim``).

    Example:
        >>> model = ad.nn.DataParallel(ad.nn.Linear(3, 2))
        >>> list(model.state_dict())
        ['module.weight', 'module.bias']
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device = output_device if output_device is not None else (self.device_ids or [None])[0]
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
