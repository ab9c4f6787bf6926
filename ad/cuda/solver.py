"""LAPACK-backed linear algebra of CUDA tensors: cuSOLVER through CuPy on a GPU, the host round trip otherwise.

Two ways an ``ad.linalg`` function reaches CUDA operands:

- ``on_host``: a decorator for the public functions whose argument checks or results read values on the host
  (pivots, ``info`` codes, ranks: ``lstsq``, ``lu_factor``, ``lu_solve``, ``solve_ex``, ``logdet``, ...). With
  a CUDA operand the whole function runs through ``autograd.function.host_round_trip`` (operands copied to the
  host, recorded copies back), as ad's numpy-forward primitives do.
- ``lapack``: the forward of a primitive (``ad/ops/linalg.py``'s ``_Inv`` and ``_Solve``: getrf/getri/getrs)
  on device arrays through ``cupy.linalg`` (cuSOLVER). CuPy arrays are zero-copy views of numba's device arrays
  (``__cuda_array_interface__``) and its results come back as numba device arrays the same way. ``routed``
  says whether a primitive takes this path: only when CuPy imports on a real GPU (``backend``); without it
  the primitive runs through the host round trip (``Function.apply``).

Importing this module imports nothing of numba or CuPy.
"""

import functools

# the primitives whose forward runs on the device through cupy.linalg (their backward is ad ops: matmuls,
# transposes and the primitive itself, which all run on the device), by their node's name
ROUTED = ("LinalgInvExBackward0", "LinalgSolveExBackward0")


def backend():
    """CuPy when it imports and a real GPU is there (not the simulator), else None (tests replace it)."""
    from kernels.cuda.matmul import cupy_module

    return cupy_module()


def routed(cls):
    """Whether the Function ``cls`` runs its forward on the device through cuSOLVER (``Function.apply``)."""
    return getattr(cls, "_grad_fn_name", None) in ROUTED and backend() is not None


def lapack(name, *arrays):
    """``cupy.linalg.<name>(*arrays)`` on device arrays (zero-copy both ways); a device array, or a tuple of
    them for a function with several results."""
    from kernels.cuda.launch import device_array

    cupy = backend()
    res = getattr(cupy.linalg, name)(*(cupy.asarray(a) for a in arrays))
    if isinstance(res, tuple):
        return tuple(device_array(r) for r in res)
    return device_array(res)


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
