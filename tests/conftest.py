"""pytest hooks: name the seed of the randomized property-test profile (``tests/test_hypothesis.py``) at the top
of the run (verbose) and in the summary at its end (always, ``-q`` included), so a failure can be replayed."""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # read when numba is first imported: CUDA tests run simulated
import sys  # noqa: E402


def pytest_configure(config):
    # one fresh seed for the whole run, drawn before pytest-xdist starts its workers (they inherit the
    # environment), so that every worker runs the same randomized profile and the summary names it
    if not os.environ.get("AD_HYPOTHESIS_SEED"):
        import numpy as np

        os.environ["AD_HYPOTHESIS_SEED"] = str(np.random.SeedSequence().entropy % 2**32)
        os.environ["AD_HYPOTHESIS_SEED_FRESH"] = "1"


def _seed_line():
    try:
        import test_hypothesis
    except Exception:  # hypothesis not installed: those tests are not collected either
        return None
    seed = test_hypothesis.RANDOM_SEED
    how = "fresh" if os.environ.get("AD_HYPOTHESIS_SEED_FRESH") else "from AD_HYPOTHESIS_SEED"
    return (
        f"randomized property tests: seed {seed} ({how}), {test_hypothesis.RANDOM_EXAMPLES} examples each; "
        f"replay with AD_HYPOTHESIS_SEED={seed}"
    )


def pytest_report_header(config):
    return _seed_line()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # under pytest-xdist the controller collects nothing: the seed is the environment's, shared by the workers
    if "test_hypothesis" in sys.modules or os.environ.get("AD_HYPOTHESIS_SEED_FRESH"):
        line = _seed_line()
        if line:
            terminalreporter.write_line(line)
