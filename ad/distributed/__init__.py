"""``ad.distributed``: torch.distributed's API over MPI (mpi4py), for data-parallel training across processes
and machines. Run a script under MPI's launcher: ``mpiexec -n 2 python train.py``.

Where to read: ``process_group.py`` (the default group, the timeout, failure notices between ranks),
``collectives.py`` (in-place collectives on tensors, ``Work`` handles), ``data_parallel.py`` (gradient
averaging that overlaps the backward sweep), ``nn/`` (differentiable collectives). Importing this package does
not import mpi4py: ``init_process_group`` does.
"""

from . import nn
from .collectives import (
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    gather,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
)
from .data_parallel import DataParallel
from .process_group import (
    PeerFailure,
    default_pg_timeout,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
)
