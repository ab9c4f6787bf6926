"""Compiled kernels of ``ad``: the opcode table, per-element partials, and the CPU (and CUDA) sweeps.

Importing this package compiles nothing: kernels are ``@njit(cache=True)`` and compile (or load from the
on-disk cache) on first call. The cache directory is keyed by a hash of the sources in this folder, because
numba does not notice when a function that a cached kernel calls changes in another file. A user's
``NUMBA_CACHE_DIR`` chooses where the cache lives, not whether it is keyed: our kernels go to the subfolder
``ad-<key>`` of it, so an edit to ``pointwise.py`` never brings back kernels compiled from the old source.
"""

import hashlib
import os
import tempfile
from pathlib import Path


def source_key(folder=None) -> str:
    """The hash of the kernel sources (every ``*.py`` of ``folder``, default this package) that keys the cache."""
    here = Path(folder) if folder is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False  # an unwritable cache location makes numba raise at decoration: try the next one
    return True


def _configure_cache_dir() -> None:
    import numba

    key = source_key()
    candidates = []
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        candidates.append(Path(user) / f"ad-{key}")  # the user's location, still keyed on our sources
    candidates += [
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ad-numba" / key,
        Path(tempfile.gettempdir()) / f"ad-numba-{os.getuid() if hasattr(os, 'getuid') else 0}" / key,
    ]
    for path in candidates:
        if _writable(path):
            numba.config.CACHE_DIR = str(path)
            return


_configure_cache_dir()
