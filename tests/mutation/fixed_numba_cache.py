"""pytest plugin for the mutation session of ``kernels/second_order.py`` (``-p fixed_numba_cache``, with
``tests/mutation`` on ``PYTHONPATH``): the numba cache of the unmutated sources, instead of one keyed on the
mutated folder (``kernels/__init__.py``), so that a mutant recompiles only the kernels of ``second_order.py``
(numba's own check of each function's source file stamp sees that file changed) and loads the others.

Sound only for a file that no other kernel module imports: ``kernels/second_order.py`` is one (its kernels call
``cpu.py``'s and ``pointwise.py``'s, never the other way round). A mutant of ``cpu.py`` or ``pointwise.py`` needs
the keyed cache (a full recompile): their sessions do not load this plugin.
"""

import os

import numba

import kernels  # (sets numba.config.CACHE_DIR from the mutated sources; no kernel module is imported yet)

_fixed = os.environ.get("AD_MUTATION_NUMBA_CACHE")
if _fixed:
    numba.config.CACHE_DIR = _fixed  # before kernels.cpu & co. are decorated: their cache locators read it
del kernels
