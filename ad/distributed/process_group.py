"""The default process group over MPI, its timeout, and what happens when a rank fails.

State (``_state``, one per process): ``MPI`` (the ``mpi4py.MPI`` module, imported by ``init_process_group``:
``import ad`` never imports mpi4py), ``comm`` (a duplicate of ``COMM_WORLD`` that carries the collectives),
``alarm`` (a second duplicate for failure notices and liveness probes only, so they never match a collective),
``progress_comm`` (a third, probed by the ``Progress`` thread only), ``rank``, ``world_size`` and ``timeout``
(seconds).

Every collective is started non-blocking and completed by ``wait``, which polls the requests until they are
done, a failure notice arrives, or the timeout passes; a blocking MPI call could not be interrupted. Failure
protocol (``_excepthook``, installed by ``init_process_group``): a rank whose program dies of an uncaught
exception sends a notice naming itself and the exception to every other rank, waits (up to the timeout) until
each has answered, then calls ``MPI.Abort``, which ends the job. A rank waiting in ``wait`` receives the
notice and raises ``PeerFailure`` naming the failed rank; if that ends its program too, it answers the notice
after printing its traceback and waits for the abort. A rank that hangs or dies without a notice makes the
others time out instead: they then probe every rank (a rank answers while it polls in ``wait``), name the ones
that stay silent, raise, and abort the job when the error ends their program.
"""

import os
import sys
import threading
import time
from datetime import timedelta

__all__ = [
    "init_process_group",
    "destroy_process_group",
    "is_initialized",
    "is_available",
    "is_mpi_available",
    "get_rank",
    "get_world_size",
    "get_backend",
    "PeerFailure",
    "default_pg_timeout",
]

default_pg_timeout = timedelta(minutes=30)
_NOTICE = 1  # tag of failure notices on the alarm communicator
_ANSWER = 2  # tag of the answers to them
_PROBE = 3  # "are you alive?", sent by a rank whose wait timed out, to name the ranks that do not answer
_ALIVE = 4  # the answer: the rank is polling inside ad.distributed

_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


class PeerFailure(RuntimeError):
    """Another rank failed (``failed_rank``), or the timeout passed (``failed_rank`` is None), while this rank
    waited for a collective."""

    def __init__(self, message, failed_rank=None, noticed=False):
        super().__init__(message)
        self.failed_rank = failed_rank
        self.noticed = noticed  # the failed rank sent a notice and waits for an answer before it aborts


class _State:
    def __init__(self):
        self.MPI = None
        self.comm = None
        self.alarm = None
        self.progress_comm = None  # only entered by the progress thread (``Progress``)
        self.rank = -1
        self.world_size = -1
        self.timeout = default_pg_timeout.total_seconds()
        self.prev_excepthook = None


_state = _State()


def is_available():
    """Whether ``ad.distributed`` can run here: mpi4py is installed (it is not imported)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available():
    return is_available()


def is_initialized():
    """Whether ``init_process_group`` has been called (and not undone by ``destroy_process_group``)."""
    return _state.comm is not None


def _require():
    if _state.comm is None:
        raise ValueError(_NOT_INITIALIZED)
    return _state


def check_group(group):
    """Only the default group (``None`` or ``group.WORLD``) exists: return the state."""
    st = _require()
    if group is not None and group is not WORLD:
        raise ValueError(f"ad.distributed has only the default process group (group=None), got {group!r}")
    return st


def init_process_group(
    backend=None,
    init_method=None,
    timeout=None,
    world_size=-1,
    rank=-1,
    store=None,
    group_name="",
    pg_options=None,
    device_id=None,
):
    """Join the default process group: every process started by ``mpiexec`` (MPI's ``COMM_WORLD``).

    Args:
        backend: ``"mpi"`` (the default, and the only backend).
        init_method, store, group_name, pg_options, device_id: accepted for torch's signature; MPI's launcher
            already connected the processes (``init_method`` must be ``None`` or ``"env://"``).
        timeout: a ``datetime.timedelta``: how long a collective waits for the other ranks before it raises
            (torch's default, 30 minutes).
        world_size, rank: if given, must agree with MPI's.

    Raises:
        ValueError: called twice; an unknown backend; ``world_size``/``rank`` that disagree with MPI's.
        TypeError: ``timeout`` is not a ``timedelta``.
        RuntimeError: mpi4py is not installed (``pip install "ad[distributed]"``).

    Example:
        >>> import ad.distributed as dist    # run under: mpiexec -n 2 python script.py
        >>> dist.init_process_group("mpi", timeout=timedelta(seconds=60))
        >>> dist.get_rank(), dist.get_world_size()
        (0, 2)
    """
    if _state.comm is not None:
        raise ValueError("trying to initialize the default process group twice!")
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(f"ad.distributed supports the 'mpi' backend only, got backend={backend!r}")
    if init_method not in (None, "env://"):
        raise ValueError(f"ad.distributed's processes are connected by mpiexec; init_method={init_method!r} unused")
    if timeout is None:
        timeout = default_pg_timeout
    if not isinstance(timeout, timedelta):
        raise TypeError(f"Expected timeout argument to be of type datetime.timedelta, got {timeout}")
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(
            'ad.distributed needs mpi4py and an MPI library: pip install -e ".[distributed]" (mpi4py and the '
            "mpich wheel, which provides mpiexec)"
        ) from e
    world = MPI.COMM_WORLD
    if world_size not in (-1, None) and world_size != world.Get_size():
        raise ValueError(f"world_size={world_size} but mpiexec started {world.Get_size()} processes")
    if rank not in (-1, None) and rank != world.Get_rank():
        raise ValueError(f"rank={rank} but MPI gave this process rank {world.Get_rank()}")
    _state.MPI = MPI
    _state.comm = world.Dup()
    _state.alarm = world.Dup()
    _state.progress_comm = world.Dup()
    _state.rank = world.Get_rank()
    _state.world_size = world.Get_size()
    _state.timeout = timeout.total_seconds()
    _state.prev_excepthook = sys.excepthook
    sys.excepthook = _excepthook


def destroy_process_group(group=None):
    """Leave the default process group (MPI itself is finalized by mpi4py at exit)."""
    check_group(group)
    st = _state
    comm, alarm, progress_comm = st.comm, st.alarm, st.progress_comm
    st.comm = st.alarm = st.progress_comm = None
    st.rank = st.world_size = -1
    if sys.excepthook is _excepthook:
        sys.excepthook = st.prev_excepthook
    comm.Free()
    alarm.Free()
    progress_comm.Free()


def get_rank(group=None):
    """This process's rank in the group (0 .. world_size - 1)."""
    return check_group(group).rank


def get_world_size(group=None):
    """The number of processes in the group."""
    return check_group(group).world_size


def get_backend(group=None):
    check_group(group)
    return "mpi"


class _World:
    """``ad.distributed.group.WORLD``: the default group."""

    def __repr__(self):
        return "ad.distributed.group.WORLD"


WORLD = _World()


class group:  # noqa: N801 (torch's name: ``dist.group.WORLD``)
    WORLD = WORLD


# ---------------------------------------------------------------------------------------------------------
# waiting with a deadline


def wait(requests, what, timeout=None):
    """Complete MPI ``requests`` (a list), or raise ``PeerFailure`` when another rank reports a failure or the
    timeout (a ``timedelta``; the group's when None) passes. ``what`` names the collective in the message."""
    st = _require()
    MPI = st.MPI
    if MPI.Request.Testall(requests):
        return
    seconds = st.timeout if timeout is None else timeout.total_seconds()
    deadline = time.monotonic() + seconds
    polls = 0
    while True:
        _check_notices(st, what)
        if MPI.Request.Testall(requests):
            return
        polls += 1
        if polls > 200:  # short collectives finish while spinning; long waits should not burn a core
            if time.monotonic() > deadline:
                silent = _silent_ranks(st)
                who = (
                    f"rank{'s' if len(silent) > 1 else ''} {', '.join(map(str, silent))} did not answer"
                    if silent
                    else "every rank answers"
                )
                raise PeerFailure(
                    f"ad.distributed: rank {st.rank} timed out after {timedelta(seconds=seconds)} in {what}; "
                    f"{who} (a rank that hangs, died without notice, or calls a different collective)",
                    silent[0] if len(silent) == 1 else None,
                )
            time.sleep(min(1e-3, 1e-5 * (polls - 200)))


def poll(requests):
    """Let MPI progress ``requests`` (non-blocking collectives advance only inside MPI calls); return whether
    all are done."""
    return _state.MPI.Request.Testall(requests)


def _silent_ranks(st, window=1.0):
    """The ranks that do not answer a probe within ``window`` seconds (a rank answers while it polls in
    ``wait``)."""
    MPI = st.MPI
    others = [r for r in range(st.world_size) if r != st.rank]
    probes = [st.alarm.isend(None, dest=r, tag=_PROBE) for r in others]
    pending = set(others)
    status = MPI.Status()
    end = time.monotonic() + window
    while pending and time.monotonic() < end:
        _answer_probes(st)
        if st.alarm.Iprobe(source=MPI.ANY_SOURCE, tag=_ALIVE, status=status):
            st.alarm.recv(source=status.Get_source(), tag=_ALIVE)
            pending.discard(status.Get_source())
        else:
            time.sleep(1e-3)
    MPI.Request.Testall(probes)
    return sorted(pending)


def _answer_probes(st):
    status = st.MPI.Status()
    while st.alarm.Iprobe(source=st.MPI.ANY_SOURCE, tag=_PROBE, status=status):
        source = status.Get_source()
        st.alarm.recv(source=source, tag=_PROBE)
        st.alarm.isend(None, dest=source, tag=_ALIVE)


def _check_notices(st, what):
    _answer_probes(st)
    status = st.MPI.Status()
    if st.alarm.Iprobe(source=st.MPI.ANY_SOURCE, tag=_NOTICE, status=status):
        source = status.Get_source()
        message = st.alarm.recv(source=source, tag=_NOTICE)
        raise PeerFailure(
            f"ad.distributed: rank {source} failed ({message}); rank {st.rank} stopped in {what}", source, True
        )


def _excepthook(tp, value, tb):
    st = _state
    (st.prev_excepthook or sys.__excepthook__)(tp, value, tb)
    if st.comm is None or st.world_size == 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    MPI = st.MPI
    deadline = time.monotonic() + st.timeout
    if isinstance(value, PeerFailure):
        if value.noticed:
            # answer the failed rank, which aborts the job once every rank has reacted (this error is printed)
            st.alarm.isend(None, dest=value.failed_rank, tag=_ANSWER).Wait()
            while time.monotonic() < deadline:
                time.sleep(0.01)
    else:
        text = f"{tp.__name__}: {value}"
        notices = [st.alarm.isend(text, dest=r, tag=_NOTICE) for r in range(st.world_size) if r != st.rank]
        pending = {r for r in range(st.world_size) if r != st.rank}
        status = MPI.Status()
        while pending and time.monotonic() < deadline:
            # an answer, or a notice of another failed rank, means that rank has reacted
            if st.alarm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                st.alarm.recv(source=status.Get_source(), tag=status.Get_tag())
                pending.discard(status.Get_source())
            else:
                time.sleep(1e-3)
        MPI.Request.Testall(notices)
    MPI.COMM_WORLD.Abort(1)


class Progress:
    """A helper thread that enters MPI's progress engine every ``interval`` seconds between ``start()`` and
    ``stop()``. MPICH advances non-blocking collectives only inside MPI calls, and a backward sweep (compiled
    kernels and BLAS, which release the GIL) makes none for long stretches: without this, most of an
    all-reduce started in the sweep would still be left for the final wait. The thread only probes its own
    communicator (any MPI call progresses every request of the process); it never touches the requests, which
    stay with the thread that started them. Needs MPI_THREAD_MULTIPLE (mpi4py's default); else a no-op, as
    with ``AD_DISTRIBUTED_PROGRESS_THREAD=0``."""

    def __init__(self, interval=1e-3):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def usable():
        st = _state
        return (
            st.comm is not None
            and st.world_size > 1
            and os.environ.get("AD_DISTRIBUTED_PROGRESS_THREAD", "1") != "0"
            and st.MPI.Query_thread() == st.MPI.THREAD_MULTIPLE
        )

    def start(self):
        if self._thread is None and self.usable():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ad.distributed progress", daemon=True)
            self._thread.start()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self):
        st = _state
        comm, any_source = st.progress_comm, st.MPI.ANY_SOURCE
        while not self._stop.wait(self.interval):
            comm.Iprobe(source=any_source, tag=0)
