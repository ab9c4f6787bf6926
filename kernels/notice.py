"""The first-run notice: one line on stderr when a kernel of this package compiles (a cold numba cache).

numba fires its ``"numba:compile"`` event only when a dispatcher compiles a signature it could not load from
the on-disk cache, so a listener on that event sees exactly the cold-cache compiles. The first one whose
Python function lives in ``kernels`` prints the notice (once per process); later compiles, and every run with
a warm cache, print nothing. ``AD_NO_COMPILE_NOTICE=1`` silences it.
"""

import os
import sys

from numba.core import event

MESSAGE = (
    "ad: compiling numba kernels, once per install: about 20 s (cached on disk afterwards; "
    "set AD_NO_COMPILE_NOTICE=1 to silence this line)"
)


class _FirstCompile(event.Listener):
    """Prints ``MESSAGE`` at the start of the first cold-cache compile of a kernel of this package."""

    def __init__(self):
        self.shown = False

    def on_start(self, ev):
        if self.shown:
            return
        dispatcher = (ev.data or {}).get("dispatcher")
        func = getattr(dispatcher, "py_func", None)
        if func is None or not str(getattr(func, "__module__", "")).startswith("kernels"):
            return
        self.shown = True
        if not os.environ.get("AD_NO_COMPILE_NOTICE"):
            print(MESSAGE, file=sys.stderr, flush=True)

    def on_end(self, ev):
        pass


_listener = None


def install():
    """Register the listener (idempotent)."""
    global _listener
    if _listener is None:
        _listener = _FirstCompile()
        event.register("numba:compile", _listener)
