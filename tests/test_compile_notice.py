"""The first run explains itself: with a cold numba cache, the first kernel compile prints one line on
stderr; with a warm cache, or with AD_NO_COMPILE_NOTICE=1, nothing. Runs small fresh processes, each with
its own cache directory, calling one small kernel."""

import os
import subprocess
import sys
from pathlib import Path

from kernels.notice import MESSAGE

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = (
    "import numpy as np, ad, kernels.cpu as k\n"
    "assert k.class_targets_ok(np.zeros(2, np.int64), 3, -100)\n"
    "assert k.class_targets_ok(np.zeros(3, np.int64), 3, -100)\n"
)


def _run(cache_dir, **env):
    full_env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT), **env}
    full_env.pop("AD_NO_COMPILE_NOTICE", None) if "AD_NO_COMPILE_NOTICE" not in env else None
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_notice_once_on_cold_cache_and_never_on_warm(tmp_path):
    cold = _run(tmp_path)
    assert cold.count(MESSAGE) == 1
    assert _run(tmp_path).count(MESSAGE) == 0  # warm: loaded from the cache


def test_notice_silenced_by_environment(tmp_path):
    assert MESSAGE not in _run(tmp_path, AD_NO_COMPILE_NOTICE="1")
