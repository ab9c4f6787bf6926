#!/usr/bin/env bash
# Mutation testing with cosmic-ray (pip install cosmic-ray; not in the test extra: CI does not run it).
# Usage, from the repository root: bash tests/mutation/run.sh [session ...]   (default: all of them; a session is a
# .toml of this folder: pointwise cpu rules so_kernels so_sweep double_backward compile_backward compile_dual)
# It works on a copy of the tracked files (cosmic-ray edits the mutated file in place), in $MUT_DIR
# (default /tmp/ad-mutation), and prints cosmic-ray's report and survival rate per session.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${MUT_DIR:-/tmp/ad-mutation}"
rm -rf "$work" && mkdir -p "$work"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work")
cd "$work"
# the numba cache of the unmutated kernels, for so_kernels' fixed_numba_cache plugin (see that file)
AD_MUTATION_NUMBA_CACHE="$(python -c 'import kernels, numba; print(numba.config.CACHE_DIR)')"
export AD_MUTATION_NUMBA_CACHE
for name in "${@:-pointwise cpu rules so_kernels so_sweep double_backward compile_backward compile_dual}"; do
    for session in $name; do
        cfg="tests/mutation/$session.toml"
        cosmic-ray init "$cfg" "$session.sqlite" --force
        cr-filter-operators "$session.sqlite" "$cfg"
        cr-filter-lines --config "$cfg" "$session.sqlite"
        cosmic-ray exec "$cfg" "$session.sqlite"
        cr-report --show-pending "$session.sqlite" | grep -v "SKIPPED\|Filtered" > "$session.report.txt" || true
        echo "== $session"; cr-rate "$session.sqlite"; cr-report "$session.sqlite" | tail -3
    done
done
