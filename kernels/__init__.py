"""Compiled kernels of ``ad``: the opcode table, per-element partials, and the CPU (and CUDA) sweeps.

Importing this package compiles nothing: kernels are ``@njit(cache=True)`` and compile (or load from the
on-disk cache) on first call. The cache directory is keyed by a hash of the sources in this folder, because
numba does not notice when a function that a cached kernel calls changes in another file.
"""

import hashlib
import os
import tempfile
from pathlib import Path


def _configure_cache_dir() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # the user chose a location; respect it
    import numba

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    key = digest.hexdigest()[:16]
    candidates = [
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ad-numba" / key,
        Path(tempfile.gettempdir()) / f"ad-numba-{os.getuid() if hasattr(os, 'getuid') else 0}" / key,
    ]
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            continue  # an unwritable cache location makes numba raise at decoration: try the next one
        numba.config.CACHE_DIR = str(path)
        return


_configure_cache_dir()
