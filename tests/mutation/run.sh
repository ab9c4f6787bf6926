#!/usr/bin/env bash
# Mutation testing with cosmic-ray (pip install cosmic-ray; not in the test extra: CI does not run it).
# Usage, from the repository root: bash tests/mutation/run.sh [pointwise|cpu|rules ...]   (default: all three)
# It works on a copy of the tracked files (cosmic-ray edits the mutated file in place), in $MUT_DIR
# (default /tmp/ad-mutation), and prints cosmic-ray's report and survival rate per session.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${MUT_DIR:-/tmp/ad-mutation}"
rm -rf "$work" && mkdir -p "$work"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work")
cd "$work"
for name in "${@:-pointwise cpu rules}"; do
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
