"""``ad.nn.utils.stateless``: torch's deprecated home of ``functional_call`` (now ``ad.func.functional_call``)."""

import warnings

__all__ = ["functional_call"]


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """``torch.nn.utils.stateless.functional_call`` (deprecated, and warns as torch):
    ``ad.func.functional_call(module, parameters_and_buffers, args, kwargs, ...)``."""
    from ...func import functional_call as _functional_call

    warnings.warn(
        "`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be removed in a future "
        "version of PyTorch. Please use `torch.func.functional_call` instead which is a drop-in replacement.",
        FutureWarning,
        stacklevel=2,
    )
    return _functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)
