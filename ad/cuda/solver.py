"""LAPACK-backed linear algebra of CUDA tensors: cuSOLVER through CuPy on a GPU, the host round trip otherwise.

Two ways an ``ad.linalg`` function reaches CUDA operands:

- ``on_host``: a decorator for the public functions whose argument checks or results read values on the host
  (pivots, ``info`` codes, ranks: ``lstsq``, ``lu_factor``, ``lu_solve``, ``solve_ex``, ``logdet``, ...). With
  a CUDA operand the whole function runs through ``autograd.function.host_round_trip`` (operands copied to the
  host, recorded copies back), as ad's numpy-forward primitives do.
- ``lapack``: the forward of a primitive on device arrays through ``cupy.linalg`` (cuSOLVER): ``_Inv`` and
  ``_Solve`` of ``ad/ops/linalg.py`` (getrf + getri / getrs), whose ``_cuda_forward`` is ``available``: with
  CuPy on a real GPU (``backend``) they run on the device, forward and backward (their backward is matmuls,
  transposes and the primitive itself); without it, ``Function.apply`` takes the host round trip. CuPy arrays
  are zero-copy views of numba's device arrays (``__cuda_array_interface__``), and its results come back as
  device arrays the same way. Errors are raised, never NaN: cuSOLVER's ``info`` is checked
  (``cupyx.errstate(linalg="raise")``: numpy's LinAlgError, which the primitives turn into torch's).

matmul takes cuBLAS through CuPy the same way (``kernels/cuda/matmul.py``: ``cupy_module``, which ``backend``
is). Importing this module imports nothing of numba or CuPy.
"""

import contextlib
import functools


def backend():
    """CuPy when it imports and a real GPU is there (not the simulator), else None (tests replace it)."""
    from kernels.cuda.matmul import cupy_module

    return cupy_module()


def available():
    """Whether LAPACK primitives on CUDA operands run on the device through cuSOLVER (``Function.apply``)."""
    return backend() is not None


def _raising():
    try:
        import cupyx
    except ImportError:
        return contextlib.nullcontext()
    return cupyx.errstate(linalg="raise")


def lapack(name, *arrays):
    """``cupy.linalg.<name>(*arrays)`` on device arrays, zero-copy both ways: a device array of the kind CUDA
    tensors hold (a tuple of them for several results). Raises numpy's LinAlgError where cuSOLVER fails."""
    from .arrays import Exported, as_device_array

    cupy = backend()
    with _raising():  # (Exported: broadcast operands, e.g. an expanded right-hand side, keep their strides)
        res = getattr(cupy.linalg, name)(*(cupy.asarray(Exported(a)) for a in arrays))
    if isinstance(res, tuple):
        return tuple(as_device_array(r) for r in res)
    return as_device_array(res)


def on_host(fn):
    """``fn`` (an ``ad.linalg`` function) with CUDA operands: run through the recorded host round trip."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..tensor import Tensor

        for a in (*args, *kwargs.values()):
            if isinstance(a, Tensor) and a._dev is not None:
                from ..autograd.function import host_round_trip

                return host_round_trip(fn, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper
