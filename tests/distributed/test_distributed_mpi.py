"""Run ``mpi_checks.py`` under ``mpiexec -n 2`` and ``-n 3`` (3 catches code that assumes two ranks or that
rank 0 is special): the collectives against numpy, the differentiable collectives, DataParallel against
single-process full-batch gradients, and the two failure paths (a rank that raises, a rank that hangs).

Skipped, with the reason, where mpi4py or mpiexec is missing (``pip install -e ".[distributed]"``)."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "mpi_checks.py")


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")  # the mpich wheel's, in this environment
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason='mpi4py missing: pip install -e ".[test]"'),
    pytest.mark.skipif(_mpiexec() is None, reason="no mpiexec on PATH (the mpich wheel provides one)"),
]


def _launch(n, mode, timeout_s, limit_s=90):
    """Run the script on ``n`` ranks; return (return code, combined output). Kills the job past ``limit_s``."""
    env = dict(os.environ, AD_TEST_TIMEOUT=str(timeout_s), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [_mpiexec(), "-n", str(n), sys.executable, SCRIPT, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"mpiexec -n {n} {mode} still running after {limit_s} s:\n{out[-4000:]}")
    return proc.returncode, out


@pytest.mark.parametrize("n", [2, 3])
def test_collectives_and_data_parallel(n):
    rc, out = _launch(n, "checks", timeout_s=60)
    assert rc == 0, out[-4000:]
    for r in range(n):
        assert f"ALL OK rank {r}" in out, out[-4000:]


def test_a_rank_that_raises_stops_the_others_naming_it():
    # the group's timeout is far longer than the launch limit: the others must stop on the failure notice
    rc, out = _launch(3, "raise", timeout_s=600, limit_s=60)
    assert rc != 0
    assert "ValueError: deliberate failure on rank 1" in out
    for r in (0, 2):
        assert f"rank 1 failed (ValueError: deliberate failure on rank 1); rank {r} stopped in all_reduce" in out, out


def test_a_rank_that_hangs_makes_the_others_time_out_naming_it():
    rc, out = _launch(2, "hang", timeout_s=2, limit_s=60)
    assert rc != 0
    assert "rank 0 timed out after 0:00:02 in all_reduce; rank 1 did not answer" in out, out[-4000:]
