"""The numba cache stays keyed on the kernel sources, also when the user sets ``NUMBA_CACHE_DIR`` (issue 16).

Each check runs in a fresh interpreter, since the cache directory is chosen once, when ``kernels`` is imported.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kernels

ROOT = Path(__file__).resolve().parent.parent

# import kernels, compile one small cached kernel, report where numba put the cache
PROBE = """
import numpy as np, numba, kernels
from kernels import cpu
cpu.class_targets_ok(np.zeros(2, np.int64), 3, -100)
print(numba.config.CACHE_DIR)
"""


def _run(env_updates):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(env_updates)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=300
    )
    return Path(done.stdout.strip().splitlines()[-1])


def test_user_cache_dir_is_keyed_on_the_sources(tmp_path):
    user = tmp_path / "user-cache"
    used = _run({"NUMBA_CACHE_DIR": str(user), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert used == user / f"ad-{kernels.source_key()}"
    assert any(used.rglob("*.nbi")), "the compiled kernel was not cached under the user's directory"
    assert not (tmp_path / "xdg").exists()


def test_unwritable_user_cache_dir_falls_back(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    used = _run({"NUMBA_CACHE_DIR": str(blocker), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert used == tmp_path / "xdg" / "ad-numba" / kernels.source_key()


def test_source_key_changes_with_any_kernel_source(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(Path(kernels.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert kernels.source_key(copy) == kernels.source_key()
    pointwise = copy / "pointwise.py"
    pointwise.write_text(pointwise.read_text().replace("return 0.5 / out", "return 0.25 / out"))
    edited = kernels.source_key(copy)
    assert edited != kernels.source_key()
    (copy / "extra.py").write_text("X = 1\n")
    assert kernels.source_key(copy) not in (edited, kernels.source_key())
    assert edited.isalnum(), "the key names a directory"
