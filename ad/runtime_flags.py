"""torch's process-wide switches that ad records and reports (``set_float32_matmul_precision``,
``set_num_interop_threads``, ``set_warn_always``, ``set_deterministic_debug_mode``) and torch's per-tensor
predicates for states ad's tensors never have (``is_conj``, ``is_neg``, ``is_inference``).

What each switch changes in ad is said in its docstring; where ad has no such machinery (an inter-op thread pool,
TensorFloat32 matmuls), the value is validated as torch validates it, kept, and returned by the getter.
"""

import os
import warnings

from . import conveniences
from .tensor import Tensor

__all__ = [
    "get_deterministic_debug_mode", "get_device", "get_float32_matmul_precision", "get_num_interop_threads",
    "is_conj", "is_inference", "is_neg", "is_warn_always_enabled", "set_deterministic_debug_mode",
    "set_float32_matmul_precision", "set_num_interop_threads", "set_warn_always",
]

_state = {"matmul_precision": "highest", "interop_threads": None, "interop_set": False, "warn_always": False}


def set_float32_matmul_precision(precision):
    """``torch.set_float32_matmul_precision(precision)``: ``"highest"``, ``"high"`` or ``"medium"``.

    ad's float32 matrix products run in BLAS (OpenBLAS / MKL through numpy on the CPU, cuBLAS on CUDA) at BLAS's
    float32 precision whatever the setting: the value is recorded for ``get_float32_matmul_precision`` only. An
    unknown value warns and changes nothing, as torch.
    """
    if precision not in ("highest", "high", "medium"):
        warnings.warn(
            f"{precision} is not one of 'highest', 'high', or 'medium'; the current"
            "setFloat32MatmulPrecision call has no effect.",
            UserWarning,
            stacklevel=2,
        )
        return
    _state["matmul_precision"] = precision


def get_float32_matmul_precision():
    """``torch.get_float32_matmul_precision()``: the value last set (``"highest"`` by default); see
    ``set_float32_matmul_precision`` for what ad does with it."""
    return _state["matmul_precision"]


def set_num_interop_threads(num):
    """``torch.set_num_interop_threads(num)``: ad has no inter-op thread pool (its parallel work is the intra-op
    split of ``ad.set_num_threads``), so the value is validated and recorded only. As torch, it may be set once.

    Raises:
        RuntimeError: ``num`` is not positive, or it was set before (torch's messages).
    """
    if not isinstance(num, int) or num <= 0:
        raise RuntimeError("set_num_interop_threads expects a positive integer")
    if _state["interop_set"]:
        raise RuntimeError(
            "Error: cannot set number of interop threads after parallel work has started or "
            "set_num_interop_threads called"
        )
    _state["interop_threads"] = num
    _state["interop_set"] = True


def get_num_interop_threads():
    """``torch.get_num_interop_threads()``: the recorded value, else the number of CPU cores (torch's default)."""
    return _state["interop_threads"] or os.cpu_count() or 1


def set_warn_always(b, /):
    """``torch.set_warn_always(b)``: record torch's "warn every time" flag. ad's warnings go through Python's
    ``warnings`` module, whose filters decide repetition; the flag is reported by ``is_warn_always_enabled``."""
    _state["warn_always"] = bool(b)


def is_warn_always_enabled():
    """``torch.is_warn_always_enabled()``: the flag of ``set_warn_always`` (False by default)."""
    return _state["warn_always"]


def set_deterministic_debug_mode(debug_mode):
    """``torch.set_deterministic_debug_mode``: ``"default"``/0, ``"warn"``/1 or ``"error"``/2, the same switch as
    ``ad.use_deterministic_algorithms(mode, warn_only=...)``.

    Raises:
        TypeError: ``debug_mode`` is neither a str nor an int.
        RuntimeError: an unknown value (torch's messages).
    """
    if not isinstance(debug_mode, (int, str)):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if isinstance(debug_mode, str):
        modes = {"default": 0, "warn": 1, "error": 2}
        if debug_mode not in modes:
            raise RuntimeError(
                "invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got " + debug_mode
            )
        debug_mode = modes[debug_mode]
    if debug_mode == 0:
        conveniences.use_deterministic_algorithms(False)
    elif debug_mode == 1:
        conveniences.use_deterministic_algorithms(True, warn_only=True)
    elif debug_mode == 2:
        conveniences.use_deterministic_algorithms(True)
    else:
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")


def get_deterministic_debug_mode():
    """``torch.get_deterministic_debug_mode()``: 0, 1 or 2 (see ``set_deterministic_debug_mode``)."""
    if conveniences.are_deterministic_algorithms_enabled():
        return 1 if conveniences.is_deterministic_algorithms_warn_only_enabled() else 2
    return 0


def _check(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")


def get_device(input):
    """``torch.get_device(input)``: -1 for a CPU tensor, else its CUDA device index."""
    _check("get_device", input)
    return input.get_device()


def is_conj(input):
    """``torch.is_conj(input)``: False (ad has no complex tensors, so no lazy conjugation bit)."""
    _check("is_conj", input)
    return False


def is_neg(input):
    """``torch.is_neg(input)``: False (ad has no lazy negation bit)."""
    _check("is_neg", input)
    return False


def is_inference(input):
    """``torch.is_inference(input)``: False. ad's ``inference_mode`` runs as ``no_grad`` and does not mark the
    tensors it makes as inference tensors (they may be used in autograd later, which torch forbids)."""
    _check("is_inference", input)
    return False
