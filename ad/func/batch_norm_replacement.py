"""``ad.func.replace_all_batch_norm_modules_``: batch norm without running statistics, for transforms (``vmap``
over a model) under which updating a module's buffers in place would mix the examples' statistics."""

from ..nn.modules.normalization import _BatchNorm

__all__ = ["replace_all_batch_norm_modules_"]


def replace_all_batch_norm_modules_(root):
    """Stop every batch norm module in ``root`` (``root`` itself included) from tracking running statistics, in
    place: ``running_mean``, ``running_var`` and ``num_batches_tracked`` become ``None`` and
    ``track_running_stats`` False, so the module normalizes with the batch's own statistics in training and in
    eval mode, as torch.func's.

    Args:
        root: an ``ad.nn.Module``.

    Returns:
        ``root``.

    Raises:
        AttributeError: ``root`` is not a module (it has no ``modules()``), as torch.

    Example:
        >>> model = ad.nn.Sequential(ad.nn.Linear(3, 4), ad.nn.BatchNorm1d(4))
        >>> ad.func.replace_all_batch_norm_modules_(model)[1].running_mean is None
        True
    """
    for module in root.modules():
        if isinstance(module, _BatchNorm):
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root
