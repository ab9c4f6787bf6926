"""``convert_conv2d_weight_memory_format`` / ``convert_conv3d_weight_memory_format``, as ``torch.nn.utils``.

ad keeps every tensor in its own (C-order) layout and takes ``memory_format`` as a layout hint
(``ad/constants.py``): the values are the same, only torch's physical order would differ. So the conversion
checks the format as torch does (its rank, ``preserve_format`` refused) and leaves each weight's ``Parameter``
in place with C-contiguous data, as ``Tensor.contiguous(memory_format=...)`` does elsewhere in ad.
"""

from ... import constants
from ..modules.conv import Conv2d, Conv3d, ConvTranspose2d, ConvTranspose3d

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]

_RANK = {constants.channels_last: 4, constants.channels_last_3d: 5}


def _convert(module, memory_format, kinds):
    if isinstance(module, kinds):
        weight = module.weight
        if memory_format is constants.preserve_format:
            raise RuntimeError("Unsupported memory formatPreserve")  # (torch's wording)
        if not isinstance(memory_format, constants.memory_format):
            raise TypeError(
                f"clone(): argument 'memory_format' must be torch.memory_format, not {type(memory_format).__name__}"
            )
        rank = _RANK.get(memory_format)
        if rank is not None and weight.dim() != rank:
            raise RuntimeError(f"required rank {rank} tensor to use {memory_format._name} format")
        if not weight.is_contiguous():
            weight.data = weight.detach().clone()  # (the same Parameter object, as torch's ``weight.data = ...``)
    for child in module.children():
        _convert(child, memory_format, kinds)
    return module


def convert_conv2d_weight_memory_format(module, memory_format):
    """Give the weights of every ``Conv2d`` / ``ConvTranspose2d`` in ``module`` (itself included) the memory
    format ``memory_format``, in place. In ad that is a layout hint (module header): the weights stay the same
    ``Parameter`` objects with the same values, C-contiguous.

    Args:
        module: an ``ad.nn.Module``.
        memory_format: ``ad.channels_last`` (or ``ad.contiguous_format``, ``ad.channels_last_3d``).

    Returns:
        ``module``.

    Raises:
        RuntimeError: ``ad.preserve_format``, or ``channels_last_3d`` for a 4-d weight (torch's messages).
        TypeError: ``memory_format`` is not a memory format.

    Example:
        >>> net = ad.nn.Sequential(ad.nn.Conv2d(3, 8, 3), ad.nn.ReLU())
        >>> ad.nn.utils.convert_conv2d_weight_memory_format(net, ad.channels_last) is net
        True
    """
    return _convert(module, memory_format, (Conv2d, ConvTranspose2d))


def convert_conv3d_weight_memory_format(module, memory_format):
    """``convert_conv2d_weight_memory_format`` for every ``Conv3d`` / ``ConvTranspose3d`` in ``module``
    (usually with ``ad.channels_last_3d``).

    Returns:
        ``module``.

    Raises:
        RuntimeError: ``ad.preserve_format``, or ``channels_last`` for a 5-d weight (torch's messages).
        TypeError: ``memory_format`` is not a memory format.

    Example:
        >>> conv = ad.nn.Conv3d(2, 4, 3)
        >>> ad.nn.utils.convert_conv3d_weight_memory_format(conv, ad.channels_last_3d) is conv
        True
    """
    return _convert(module, memory_format, (Conv3d, ConvTranspose3d))
