"""Recurrent layers, ad against torch, each library in its own process: `python -m benchmarks.rnn_compare [case ...]`.

A training step's forward and backward (loss = sum of the output sequence, `.grad` reset to None between
steps) of `nn.LSTM`, `nn.GRU` and `nn.RNN` (tanh): input 32, hidden 64, 2 layers, 50 steps, batch 16, in float32
and float64 (`lstm32`, `lstm64`, `gru32`, `gru64`, `rnn32`, `rnn64`). Both libraries get the same weights and
input (numpy, fixed seed). Each (library, case) runs in a fresh `python -c` process with gc on: one warming
step, then steps for `--seconds` (at least 5); medians of the whole step, of the forward and of the backward are
printed in ms, with the process CPU time of a step. `--threads N` sets every thread count to N (on a shared
machine, 1). `--root DIR` imports `ad` from another checkout (A/B against main: `--root /work/main`).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CASES = ("lstm32", "lstm64", "gru32", "gru64", "rnn32", "rnn64")

_CHILD = r"""
import gc, json, sys, time
import numpy as np

lib_name, case, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if lib_name == "torch":
    import torch as lib
    if len(sys.argv) > 4 and int(sys.argv[4]):
        lib.set_num_threads(int(sys.argv[4]))
else:
    import ad as lib
gc.enable()
kind, bits = case[:-2], case[-2:]
dtype = {"32": lib.float32, "64": lib.float64}[bits]
npdtype = {"32": np.float32, "64": np.float64}[bits]
cls = {"lstm": lib.nn.LSTM, "gru": lib.nn.GRU, "rnn": lib.nn.RNN}[kind]
m = cls(32, 64, num_layers=2, dtype=dtype)
rng = np.random.default_rng(0)
state = {k: lib.tensor(rng.uniform(-0.125, 0.125, tuple(v.shape)).astype(npdtype)) for k, v in m.state_dict().items()}
m.load_state_dict(state)
x = lib.tensor(rng.standard_normal((50, 16, 32)).astype(npdtype))
params = list(m.parameters())


def step():
    for p in params:
        p.grad = None
    t0 = time.perf_counter()
    out, _ = m(x)
    loss = out.sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


step()
fwd, bwd, cpu = [], [], []
end = time.perf_counter() + seconds
while time.perf_counter() < end or len(fwd) < 5:
    c0 = time.process_time()
    f, b = step()
    cpu.append(time.process_time() - c0)
    fwd.append(f)
    bwd.append(b)
total = [f + b for f, b in zip(fwd, bwd)]
grad = float(sum(np.abs(np.asarray(p.grad.numpy(), dtype=np.float64)).sum() for p in params))
ms = lambda v: float(np.median(v)) * 1e3
print(json.dumps({"total": ms(total), "fwd": ms(fwd), "bwd": ms(bwd), "cpu": ms(cpu), "n": len(fwd), "grad": grad}))
"""


def measure(lib, case, seconds, root, threads):
    """The medians of ``case`` for ``lib`` in a fresh process with ``root`` first on the path, or the error's
    last line."""
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, lib, case, str(seconds), str(threads)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return "error: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), help=f"any of {', '.join(CASES)}")
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent repeating each case")
    parser.add_argument("--threads", type=int, default=0, help="N threads for torch, BLAS, OpenMP and numba")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent), help="checkout of ad")
    parser.add_argument("--libs", default="ad,torch", help="comma-separated: ad, torch")
    args = parser.parse_args(argv)
    if args.threads:
        from .compare import THREAD_VARS

        os.environ.update({v: str(args.threads) for v in THREAD_VARS})
    for case in args.cases:
        res = {lib: measure(lib, case, args.seconds, args.root, args.threads) for lib in args.libs.split(",")}
        parts = []
        for lib, r in res.items():
            if isinstance(r, str):
                parts.append(f"{lib} {r}")
            else:
                parts.append(
                    f"{lib} {r['total']:8.2f} ms (fwd {r['fwd']:7.2f}, bwd {r['bwd']:7.2f}, cpu {r['cpu']:7.2f})"
                )
        a, t = res.get("ad"), res.get("torch")
        ratio = f"   ad/torch {a['total'] / t['total']:5.2f}" if isinstance(a, dict) and isinstance(t, dict) else ""
        load = os.getloadavg()[0]
        print(f"{case:7s} " + "   ".join(parts) + ratio + f"   (load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
