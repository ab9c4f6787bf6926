"""torch.autograd's older and smaller names: ``Variable`` (deprecated: a tensor is a Variable since torch 0.4)
and the switch for multithreaded backward (``set_multithreading_enabled``; ad's sweep runs on the calling thread,
so the flag is recorded and reported only).
"""

import threading

from ..tensor import Tensor

__all__ = ["Variable", "is_multithreading_enabled", "set_multithreading_enabled"]


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """``torch.autograd.Variable(data, requires_grad=False)`` (deprecated): a new leaf tensor sharing ``data``'s
    memory, outside any graph, that requires grad when told to. ``isinstance(t, Variable)`` holds for every tensor.

    Raises:
        TypeError: ``data`` is not a tensor (torch's message).
    """

    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        out = data.detach()
        if requires_grad:
            out.requires_grad_(True)
        return out


_state = threading.local()


def is_multithreading_enabled():
    """``torch.autograd.is_multithreading_enabled()``: the flag of ``set_multithreading_enabled`` (True by
    default; per thread, as torch's)."""
    return getattr(_state, "enabled", True)


class set_multithreading_enabled:  # noqa: N801 - torch's name
    """``torch.autograd.set_multithreading_enabled(mode)``: sets the flag at once (usable as a function) and, as
    a context manager, restores the previous value on exit. ad's backward sweeps run on the calling thread either
    way (torch's multithreading is its per-device worker threads)."""

    def __init__(self, mode):
        self.prev = is_multithreading_enabled()
        _state.enabled = bool(mode)
        self.mode = mode

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _state.enabled = self.prev
        return False

    def clone(self):
        return self.__class__(self.mode)
