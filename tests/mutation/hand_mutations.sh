#!/usr/bin/env bash
# The four mutations of issue 16, applied one at a time to kernels/pointwise.py (and reverted): each must make
# tests/test_edge_points.py fail. Run from the repository root: bash tests/mutation/hand_mutations.sh
set -u
cd "$(dirname "$0")/../.."
f=kernels/pointwise.py
cp "$f" "$f.orig"
trap 'mv "$f.orig" "$f"' EXIT
status=0
mutate() {  # name, python expression replacing old with new in the file
    cp "$f.orig" "$f"
    python - "$f" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:]
s = open(path).read()
assert s.count(old) >= 1, f"mutation site not found: {old!r}"
open(path, "w").write(s.replace(old, new))
PY
    if python -m pytest -x -q -n 0 -p no:randomly tests/test_edge_points.py >/dev/null 2>&1; then
        echo "SURVIVED: $1"; status=1
    else
        echo "killed:   $1"
    fi
}
mutate "abs'(0) = 1" "        return 0.0  # at 0 and at NaN: torch's sgn" "        return 1.0"
mutate "x**0 guard removed (scalar exponent)" $'        if a0 == 0.0:\n            return 0.0\n' ''
mutate "pow tensor: x**0 guard removed" $'        if y == 0.0:\n            return 0.0\n' ''
mutate "maximum/minimum ties no longer 0.5" '(0.5 if x == y else' '(1.0 if x == y else'
mutate "relu' = 1 for negative inputs" 'return 1.0 if out > 0.0 else 0.0' 'return 1.0 if out >= 0.0 else 0.0'
exit $status
