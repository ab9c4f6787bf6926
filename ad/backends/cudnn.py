"""``ad.backends.cudnn``: torch's cuDNN switches (``enabled``, ``benchmark``, ``deterministic``, ``allow_tf32``,
``benchmark_limit``) as settable attributes with torch's defaults; ad does not use cuDNN, so they change nothing
and ``is_available()`` is False."""

from contextlib import contextmanager

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True
benchmark_limit = 10


def is_available():
    """False: ad does not use cuDNN."""
    return False


def version():
    """None: no cuDNN is loaded (torch's answer without cuDNN)."""
    return None


@contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True):
    """``torch.backends.cudnn.flags``: set the switches inside the block, restore them after."""
    module = globals()
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    saved = {name: module[name] for name in names}
    module.update(zip(names, (enabled, benchmark, benchmark_limit, deterministic, allow_tf32)))
    try:
        yield
    finally:
        module.update(saved)
