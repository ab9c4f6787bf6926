"""pytest hooks: name the seed of the randomized property-test profile (``tests/test_hypothesis.py``) at the top
of the run (verbose) and in the summary at its end (always, ``-q`` included), so a failure can be replayed."""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # read when numba is first imported: CUDA tests run simulated
import sys  # noqa: E402


def _seed_line():
    try:
        import test_hypothesis
    except Exception:  # hypothesis not installed: those tests are not collected either
        return None
    seed = test_hypothesis.RANDOM_SEED
    how = "from AD_HYPOTHESIS_SEED" if os.environ.get("AD_HYPOTHESIS_SEED") else "fresh"
    return (
        f"randomized property tests: seed {seed} ({how}), {test_hypothesis.RANDOM_EXAMPLES} examples each; "
        f"replay with AD_HYPOTHESIS_SEED={seed}"
    )


def pytest_report_header(config):
    return _seed_line()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if "test_hypothesis" in sys.modules:
        terminalreporter.write_line(_seed_line())
