"""Benchmarks for `ad`.

- `workloads.py`: every workload, written once against the API that `ad` and `torch` share (and a thin shim
  for jax), plus the first-call (import to first backward) measurement.
- `compare.py`: side-by-side comparison of `ad` against PyTorch (and jax when importable); run it from the
  repository root with `python -m benchmarks.compare` (`--help` for the options).
- `bench_*.py`: airspeed velocity (asv) suites built from the same workloads; `asv_support.py` holds their
  shared setup logic. Run them with `asv run --quick --python=same` (configuration in `asv.conf.json` at the
  root).
"""
