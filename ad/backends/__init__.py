"""``ad.backends``: torch's backend switches, so that a training script's setup lines
(``torch.backends.cudnn.benchmark = True``, ``torch.backends.cuda.matmul.allow_tf32 = True``,
``torch.backends.mps.is_available()``) run unchanged.

ad uses none of these libraries (its CPU kernels are numba and numpy/BLAS, its CUDA kernels numba-cuda with
cuBLAS/cuSOLVER bindings, always in full float32/float64 precision), so the flags are plain settable attributes
with torch's defaults that change no result, and the availability queries answer for ad: ``cudnn``, ``mps`` and
``mkldnn`` are not available.

Submodules: ``cudnn``, ``cuda`` (``matmul`` flags and the scaled-dot-product-attention backend switches), ``mps``,
``mkldnn``.
"""

from . import cuda, cudnn, mkldnn, mps

__all__ = ["cuda", "cudnn", "mkldnn", "mps"]
