"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled`` (thread-local, as torch).

Each works as a context manager and as a decorator. The flag lives in a ``threading.local`` so a thread's
``no_grad`` never changes what another thread records.
"""

import functools
import inspect
import sys
import threading
import warnings

from . import tape as _tape


class _GradState(threading.local):
    """``enabled``: the grad mode. Each change is also handed to ``tape.set_recording``: the forward fast paths
    test a tape's ``is_current`` against this thread's ident, which is its owner's ident only while the tape is
    the owner's current one *and* the owner's grad mode is on (one C call, where this thread-local's attribute
    read cost a small op ~7%; see ad/tape.py)."""

    enabled = True

    def set(self, mode):
        self.enabled = mode
        _tape.set_recording(mode)


_grad_state = _GradState()


def is_grad_enabled():
    """Return True if operations are currently recorded for reverse mode."""
    return _grad_state.enabled


class _GradModeContext:
    _mode = True

    def __new__(cls, orig_func=None):
        # ``@no_grad`` without parentheses, as torch allows
        self = super().__new__(cls)
        if orig_func is not None and cls is not set_grad_enabled:
            return self(orig_func)
        return self

    def __init__(self, orig_func=None):
        pass

    def __enter__(self):
        self._prev = _grad_state.enabled
        _grad_state.set(self._mode)
        return None

    def __exit__(self, *exc):
        _grad_state.set(self._prev)
        return False

    def __call__(self, fn):
        return _decorate(self.clone, fn)

    def clone(self):
        return self.__class__()


class no_grad(_GradModeContext):
    """Context manager and decorator that disables recording.

    Example:
        >>> with ad.no_grad():
        ...     p -= 0.1 * p.grad
    """

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager and decorator that enables recording (inside ``no_grad``)."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode on or off. Takes effect immediately when called, and is undone on exit when used with
    ``with``, as torch's ``set_grad_enabled``."""

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(): argument 'mode' must be bool, not {type(mode).__name__}")
        self._prev = _grad_state.enabled
        self._mode = mode
        _grad_state.set(mode)

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _grad_state.set(self._prev)
        return False

    def __call__(self, fn):
        # used as a decorator: the call in __init__ must not leak into the caller's state
        _grad_state.set(self._prev)
        mode = self._mode
        return _decorate(lambda: set_grad_enabled(mode), fn)

    def clone(self):
        return set_grad_enabled(self._mode)


def _decorate(make_ctx, fn):
    """Wrap ``fn`` so that it runs inside ``make_ctx()``, as torch's context decorators: a generator function
    runs each step of its body inside the context (and the caller's mode between steps); decorating a class
    warns and wraps its construction."""
    if inspect.isclass(fn):
        warnings.warn(
            "Decorating classes is deprecated and will be disabled in future versions. You should only decorate "
            "functions or methods. To preserve the current behavior of class decoration, you can directly decorate "
            "the `__init__` method and nothing else.",
            FutureWarning,
            stacklevel=3,
        )
        cls = fn

        def fn(*args, **kwargs):
            return cls(*args, **kwargs)

    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(make_ctx, fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with make_ctx():
            return fn(*args, **kwargs)

    return wrapper


def _wrap_generator(make_ctx, fn):
    @functools.wraps(fn)
    def generator_context(*args, **kwargs):
        gen = fn(*args, **kwargs)
        try:
            with make_ctx():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make_ctx():
                        gen.close()
                    raise
                except BaseException:
                    with make_ctx():
                        response = gen.throw(*sys.exc_info())
                else:
                    with make_ctx():
                        response = gen.send(request)
        except StopIteration as e:
            return e.value

    return generator_context
