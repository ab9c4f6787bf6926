"""``ad.backends.cuda``: torch's CUDA switches: ``matmul`` (``allow_tf32``, the reduced-precision reduction
flags) and the scaled-dot-product-attention backends (``enable_flash_sdp`` / ``flash_sdp_enabled`` and the
``mem_efficient``, ``math`` and ``cudnn`` twins). ad's CUDA matmuls and attention compute in full precision with
one implementation, so the switches are recorded and change nothing; ``is_built()`` says whether ad's CUDA backend
(numba-cuda) is installed."""

import importlib.util


class _MatmulFlags:
    """``torch.backends.cuda.matmul``: settable flags with torch's defaults."""

    def __init__(self):
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __repr__(self):
        return (f"matmul(allow_tf32={self.allow_tf32}, allow_fp16_reduced_precision_reduction="
                f"{self.allow_fp16_reduced_precision_reduction}, allow_bf16_reduced_precision_reduction="
                f"{self.allow_bf16_reduced_precision_reduction})")


matmul = _MatmulFlags()
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built():
    """Whether ad's CUDA backend can run: numba's CUDA support is installed."""
    return importlib.util.find_spec("numba") is not None and importlib.util.find_spec("numba.cuda") is not None


def flash_sdp_enabled():
    return _sdp["flash"]


def enable_flash_sdp(enabled):
    _sdp["flash"] = bool(enabled)


def mem_efficient_sdp_enabled():
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled):
    _sdp["mem_efficient"] = bool(enabled)


def math_sdp_enabled():
    return _sdp["math"]


def enable_math_sdp(enabled):
    _sdp["math"] = bool(enabled)


def cudnn_sdp_enabled():
    return _sdp["cudnn"]


def enable_cudnn_sdp(enabled):
    _sdp["cudnn"] = bool(enabled)
