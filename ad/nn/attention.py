"""``ad.nn.attention``: torch's switch of scaled-dot-product-attention backends (``SDPBackend``, ``sdpa_kernel``).

ad has one implementation of ``F.scaled_dot_product_attention`` (the math of torch's ``MATH`` backend, differentiable
in every mode), whose values every torch backend computes too, up to rounding. So ``sdpa_kernel`` checks its
argument as torch does, records the selection while its block runs (``current_backends``) and changes nothing
else: a fused backend is a speed choice, not a different result. torch raises "No available kernel" where the
selected fused kernels cannot take the inputs; ad always can.
"""

import contextlib
import enum

__all__ = ["SDPBackend", "WARN_FOR_UNFUSED_KERNELS", "sdpa_kernel"]

WARN_FOR_UNFUSED_KERNELS = False


class SDPBackend(enum.IntEnum):
    """torch's backends of ``scaled_dot_product_attention`` (same names and values)."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4

    def __str__(self):
        return f"SDPBackend.{self.name}"


_ALL = [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
_selected = list(_ALL)


def current_backends():
    """The backends the innermost ``sdpa_kernel`` block selected (all of them outside any)."""
    return list(_selected)


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority=False):
    """``torch.nn.attention.sdpa_kernel``: select the attention backends for the block (see the module header:
    ad's single implementation serves all of them).

    Args:
        backends: an ``SDPBackend`` or a list of them.
        set_priority: whether the list's order is a priority order (accepted, as torch's).

    Raises:
        AssertionError: ``backends`` is neither (torch's message).

    Example:
        >>> with sdpa_kernel(SDPBackend.MATH):
        ...     out = ad.nn.functional.scaled_dot_product_attention(q, k, v)
    """
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError(
            "Backend must be an instance of SDPBackend or a list of SDPBackend instances, got "
            f"{type(backends).__name__}"
        )
    global _selected
    previous = _selected
    _selected = [backends] if isinstance(backends, SDPBackend) else list(backends)
    try:
        yield
    finally:
        _selected = previous
