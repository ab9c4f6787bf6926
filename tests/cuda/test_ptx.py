"""Every CUDA kernel compiles to PTX for a Hopper GPU (sm_90) without one: ``python -m kernels.cuda --ptx sm_90``
in a subprocess with the simulator off (the simulator runs Python that a GPU compile may reject)."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_kernel_compiles_to_ptx_for_sm90():
    pytest.importorskip("numba.cuda")
    from kernels.cuda import MODULES
    from kernels.cuda.__main__ import NO_NVVM

    expected = sum(
        len(signatures)
        for name in MODULES
        for _, signatures in importlib.import_module(f"kernels.cuda.{name}").PTX_KERNELS
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=path)
    run = subprocess.run(
        [sys.executable, "-m", "kernels.cuda", "--ptx", "sm_90"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if run.returncode == NO_NVVM:
        pytest.skip(f"numba-cuda has no NVVM here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(r"(\d+) kernels compiled to PTX for sm_90", run.stdout)
    assert found, run.stdout
    assert int(found.group(1)) == expected


def test_importing_the_package_imports_no_numba_cuda():
    """``kernels.cuda`` (MODULES) can be read without numba.cuda; each kernel module imports it when used."""
    code = "import sys, kernels.cuda; assert 'numba.cuda' not in sys.modules, 'numba.cuda imported'"
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=path),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
