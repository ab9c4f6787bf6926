"""CUDA kernels of ``ad`` (``@cuda.jit``), imported only on CUDA paths: importing ``ad`` never imports numba.cuda.

``MODULES`` lists the kernel modules of this package whose kernels the PTX check compiles; each exposes
``PTX_KERNELS``, a list of ``(python_function, [signature strings])``.
"""

MODULES = ["sweep"]
