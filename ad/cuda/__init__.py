"""``ad.cuda``: torch.cuda's device queries, and where ``ad`` keeps its CUDA side.

Importing this package imports nothing of numba: ``numba.cuda`` is imported when a CUDA tensor is first made
(``arrays.py``) or a query below runs. A CUDA tensor is a ``Tensor`` whose ``_data`` is a numba device array
(``numba.cuda.cudadrv.devicearray.DeviceNDArray``; under numba's simulator, ``NUMBA_ENABLE_CUDASIM=1``, its
``FakeCUDAArray``) and whose ``_dev`` is its ``ad.device`` (CPU tensors carry the class default ``None``, so a
CPU op tests one attribute to know it has no CUDA work to do).

Modules: ``arrays.py`` (device arrays: making, copying, ``__cuda_array_interface__``), ``ops.py`` (the
forward of each op on CUDA tensors, through ``kernels/cuda``, recorded on the device tape; in-place writes and
their version checks), ``tape.py`` (the device tape: the CPU tape's rows with values in a device arena),
``backward.py`` (its sweep on the device, ``kernels/cuda/sweep.py``, inside ``engine.kernel_sweep``) and
``optim.py`` (``ad.optim``'s SGD and Adam steps of CUDA parameters).
"""

import sys

import numpy as np

__all__ = ["is_available", "device_count", "current_device", "synchronize", "set_device"]


def needs_graph_sweep(outputs):
    """Whether a backward from ``outputs`` must take ``differentiable_sweep.graph_sweep`` because of a CUDA graph the
    device sweep cannot run (``backward.needs_graph_sweep``); False at once while no CUDA node was recorded."""
    if sys.modules.get(__name__ + ".tape") is None:
        return False
    from .backward import needs_graph_sweep as check

    return check(outputs)


def reaches_device_tape(outputs):
    """Whether the graph of ``outputs`` has a node recorded on a device tape (False at once while no CUDA node
    was recorded)."""
    if sys.modules.get(__name__ + ".tape") is None:
        return False
    from .backward import graph_reaches

    return graph_reaches(outputs, lambda t: getattr(t._tape, "on_device", False))


def host_copy(data):
    """``data`` as a numpy array: itself on the host, a host copy of a device array.

    The documented host round trip of CUDA tensors (issue 10): ops whose *index map* is computed from values
    (argmax/argmin, and those of max/min over a dim, argsort of sort/topk/kthvalue/msort, max pooling's window
    maxima, embedding's indices, nan_to_num's finite mask, nonzero, unique, searchsorted, one_hot) copy the
    values to the host for it, as torch's CUDA ops with
    data-dependent output shapes synchronize; the values they return are gathered on the device from the
    operand, so they are exact, and the gradient runs on the device."""
    return data if isinstance(data, np.ndarray) else data.copy_to_host()


def index_tensor(arr, like):
    """Host array ``arr`` (an op's index output) as a tensor on ``like``'s device."""
    from ..tensor import wrap_array

    if like._dev is None:
        return wrap_array(arr)
    from .arrays import to_device, wrap

    arr = np.asarray(arr)
    return wrap(to_device(arr.reshape(arr.size)).reshape(arr.shape), like._dev)


def is_available():
    """Whether a CUDA device can be used (numba's simulator counts as one: ``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        from numba import cuda
    except ImportError:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a driver that fails to initialise: no device to use
        return False


def device_count():
    """How many CUDA devices there are (0 without a usable driver)."""
    if not is_available():
        return 0
    from numba import cuda

    return len(cuda.gpus)


def current_device():
    """The index of the current CUDA device."""
    from .arrays import current_index

    return current_index()


def set_device(device):
    """Make ``device`` (an index, ``"cuda:N"`` or ``ad.device``) the current CUDA device."""
    from .arrays import device_index, require_cuda

    require_cuda().select_device(device_index(device))


def synchronize(device=None):
    """Wait until every kernel launched on the device has finished."""
    from .arrays import require_cuda

    require_cuda().synchronize()


def __getattr__(name):
    """``ad.cuda.amp`` loads on first use (it imports ``ad.amp``, which needs the rest of ``ad``)."""
    if name == "amp":
        import importlib

        return importlib.import_module(".amp", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
