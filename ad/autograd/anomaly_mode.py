"""Anomaly mode: ``detect_anomaly`` and ``set_detect_anomaly``, as ``torch.autograd.anomaly_mode``.

While the mode is on:

- every op recorded keeps the stack of the forward call that made it: the tapes' row tracer
  (``tape.set_row_tracer``) stores ``(stack, parent)`` in ``Tape.traces[row]``, where ``parent`` is the
  ``(name, trace)`` of the node whose backward was running when the op was recorded (ops recorded by a
  ``create_graph`` backward), else None;
- ``backward`` and ``grad`` take the per-node differentiable sweep (``differentiable_sweep.graph_sweep``), which calls
  ``run_node`` for each node: an error raised by the node's backward, or (``check_nan``) NaN in a cotangent
  it returns, first warns with the traceback of the forward call that created the node, as torch does.

The mode is process-wide, as torch's (``AnomalyMode`` is a global, not thread-local like grad mode): a thread
that turns it on turns it on for all threads. When it is off, the forward pass pays nothing (each tape's
``pack`` is the plain one) and backward runs the compiled sweep.
"""

import functools
import os
import threading
import traceback
import warnings

import numpy as np

from .. import tape as _tape

__all__ = ["detect_anomaly", "set_detect_anomaly"]

_enabled = False
_check_nan = True
_lock = threading.Lock()
_AD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class _Local(threading.local):
    parent = None  # (name, trace) of the node whose backward this thread runs (see run_node)


_local = _Local()


def is_anomaly_enabled():
    """Return True if anomaly detection is on."""
    return _enabled


def is_anomaly_check_nan_enabled():
    """Return True if anomaly detection also checks backward results for NaN."""
    return _check_nan


def set_anomaly_enabled(enabled, check_nan=True):
    """Turn anomaly detection on or off (``torch.set_anomaly_enabled``); prefer ``detect_anomaly``."""
    global _enabled, _check_nan
    if not isinstance(enabled, bool):
        raise TypeError(
            f"set_anomaly_enabled(): argument 'enabled' (position 1) must be bool, not {type(enabled).__name__}"
        )
    if not isinstance(check_nan, bool):
        raise TypeError(
            f"set_anomaly_enabled(): argument 'check_nan' (position 2) must be bool, not {type(check_nan).__name__}"
        )
    with _lock:  # the flag and the tapes' tracer change together
        if enabled != _enabled:
            _tape.set_row_tracer(_creation_trace if enabled else None)
        _enabled = enabled
        _check_nan = check_nan


class detect_anomaly:
    """Context manager that turns anomaly detection on for the autograd engine.

    Ops recorded inside keep the traceback of their forward call; a backward that fails, or (with
    ``check_nan``) returns NaN, warns with that traceback, and NaN raises ``RuntimeError``. Slow: for
    debugging only. Also usable as a decorator (an ``ad`` extension: torch's is a context manager only).

    Args:
        check_nan: raise when a backward function returns NaN. Default True.

    Example:
        >>> x = ad.tensor([0.0, 1.0], requires_grad=True)
        >>> with ad.autograd.detect_anomaly():
        ...     (x.sqrt() * 0).sum().backward()
        RuntimeError: Function 'SqrtBackward0' returned nan values in its 0th output.
    """

    def __init__(self, check_nan=True):
        # the state to restore is the one at construction, as torch's
        self.prev = _enabled
        self.check_nan = check_nan
        self.prev_check_nan = _check_nan
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and should only be enabled "
            "for debugging.",
            stacklevel=2,
        )

    def __enter__(self):
        set_anomaly_enabled(True, self.check_nan)

    def __exit__(self, *exc):
        set_anomaly_enabled(self.prev, self.prev_check_nan)

    def __call__(self, fn):
        check_nan = self.check_nan

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_detect_anomaly(True, check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:
    """Turn anomaly detection on or off, at once; used with ``with``, the previous state comes back on exit.
    Also usable as a decorator (an ``ad`` extension), where it applies to each call only.

    Args:
        mode: True to turn detection on, False to turn it off.
        check_nan: raise when a backward function returns NaN. Default True.

    Raises:
        TypeError: ``mode`` or ``check_nan`` is not a bool.
    """

    def __init__(self, mode, check_nan=True):
        self.prev = _enabled
        self.prev_check_nan = _check_nan
        self.mode = mode
        self.check_nan = check_nan
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        set_anomaly_enabled(self.prev, self.prev_check_nan)

    def __call__(self, fn):
        set_anomaly_enabled(self.prev, self.prev_check_nan)  # as a decorator, the call in __init__ must not last
        mode, check_nan = self.mode, self.check_nan

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_detect_anomaly(mode, check_nan):
                return fn(*args, **kwargs)

        return wrapper


def _creation_trace():
    """``(stack, parent)`` for the row being recorded. ``ad``'s own frames at the end are dropped: the last
    frame is the user's line that made the op. Source lines are read only if the stack is ever shown."""
    frames = traceback.StackSummary.extract(traceback.walk_stack(None), lookup_lines=False)
    frames.reverse()
    end = len(frames)
    while end and frames[end - 1].filename.startswith(_AD_DIR):
        end -= 1
    return frames[:end], _local.parent


def _trace_of(t):
    tape = t._tape
    return tape.traces.get(t._row) if tape is not None else None


def run_node(t, inputs, step, args):
    """Call ``step(*args)``, the reverse step of node ``t`` (operands ``inputs``), which returns one cotangent
    per operand, as torch's anomaly mode does: an error it raises, or NaN in a cotangent it returns
    (``check_nan``), first warns with the forward traceback of ``t`` (and of the nodes whose backward
    recorded ``t``)."""
    name = t.grad_fn.name()
    trace = _trace_of(t)
    prev = _local.parent
    _local.parent = (name, trace)  # ops this backward records (create_graph) remember who made them
    try:
        with np.errstate(all="ignore"):  # NaN and inf are reported below, as torch does, not by numpy
            in_grads = step(*args)
        if _check_nan:
            for i, (inp, g) in enumerate(zip(inputs, in_grads)):
                # only the cotangents the graph uses: torch computes no others
                if g is not None and inp is not None and inp._rg and np.isnan(getattr(g, "_data", g)).any():
                    raise RuntimeError(f"Function '{name}' returned nan values in its {i}th output.")
    except Exception:
        _warn_trace(name, trace)
        raise
    finally:
        _local.parent = prev
    return in_grads


def _warn_trace(name, trace):
    if trace is None:
        warnings.warn(
            f"Error detected in {name}. No forward pass information available. Enable detect anomaly during "
            "forward pass for more information.",
            stacklevel=2,
        )
        return
    stack, parent = trace
    warnings.warn(
        f"Error detected in {name}. Traceback of forward call that caused the error:\n"
        + "".join(traceback.format_list(stack)),
        stacklevel=2,
    )
    while parent is not None and parent[1] is not None:
        name, (stack, parent) = parent[0], parent[1]
        warnings.warn(
            f"\n\nPrevious calculation was induced by {name}. Traceback of forward call that induced the previous "
            "calculation:\n" + "".join(traceback.format_list(stack)),
            stacklevel=2,
        )
