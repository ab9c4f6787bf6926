"""Per-row cost of the small-row kernels: each kernel timed alone on the arguments a real call handed it.

Run from the repository root: ``python -m scripts.row_kernels_bench [repetitions]``. It records W1's chain
(2,000 elementwise ops on 16 float64, ``benchmarks/workloads.py``) and W6's many leaves, captures the arguments
of each kernel's first call (eager reverse sweep, replayed forward sweep, fused forward + backward, batched
sweep with B = 8), then times the kernel alone on fresh copies of those arguments and prints the median
nanoseconds per tape row. Used to A/B kernel edits (run it from two checkouts in the same minute).
"""

import sys
import time

import numpy as np

import ad
import ad.batched
import ad.engine
import kernels.fused_step
import kernels.replay
from benchmarks.workloads import CHAIN_SCALE_RANGE, elementwise_chain

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
captured = {}


def capture(module, name, label):
    """Replace ``module.name`` by a wrapper that records copies of the arguments of its first call."""
    kernel = getattr(module, name)

    def wrapper(*args):
        if label not in captured:
            captured[label] = (kernel, [a.copy() if isinstance(a, np.ndarray) else a for a in args])
        return kernel(*args)

    setattr(module, name, wrapper)
    return kernel


def restore(module, name, kernel):
    setattr(module, name, kernel)


def chain_inputs(size=16, requires_grad=True):
    rng = np.random.default_rng(1)
    x = ad.tensor(rng.uniform(0.0, 1.0, size), requires_grad=requires_grad)
    c = ad.from_numpy(rng.uniform(*CHAIN_SCALE_RANGE, size))
    return x, c


def record():
    # W1 eager backward: the reverse sweep
    k = capture(ad.engine, "reverse_sweep", "reverse W1 (16)")
    x, c = chain_inputs()
    elementwise_chain(ad, x, c, 2000).sum().backward()
    restore(ad.engine, "reverse_sweep", k)
    # W6 eager backward: 2,000 leaves of 8
    k = capture(ad.engine, "reverse_sweep", "reverse W6 (8)")
    rng = np.random.default_rng(2)
    leaves = [ad.tensor(rng.standard_normal(8), requires_grad=True) for _ in range(2000)]
    consts = [ad.from_numpy(rng.standard_normal(8)) for _ in range(2000)]
    ad.stack([ad.sum(ad.tanh(p * q)) for p, q in zip(leaves, consts)]).sum().backward()
    restore(ad.engine, "reverse_sweep", k)
    # replay forward (a non-scalar result: no fused step)
    k = capture(kernels.replay, "forward_sweep", "replay forward W1")
    step = ad.compile(lambda x, c: elementwise_chain(ad, x, c, 2000))
    for _ in range(3):
        step(*chain_inputs())
    restore(kernels.replay, "forward_sweep", k)
    # fused forward + backward (W1 under ad.compile)
    k = capture(kernels.fused_step, "forward_backward", "fused step W1")
    step = ad.compile(lambda x, c: elementwise_chain(ad, x, c, 2000).sum())
    for _ in range(4):
        x, c = chain_inputs()
        step(x, c).backward()
    restore(kernels.fused_step, "forward_backward", k)
    # batched reverse sweep, B = 8
    k = capture(ad.batched, "reverse_sweep_batched", "batched W1 B=8")
    x, c = chain_inputs()
    out = elementwise_chain(ad, x, c, 2000)
    ad.autograd.grad(out, x, grad_outputs=ad.ones(8, 16, dtype=ad.float64), is_grads_batched=True)
    restore(ad.batched, "reverse_sweep_batched", k)


def main():
    print("kernels from", kernels.replay.__file__)
    record()
    for label, (kernel, args) in captured.items():
        nrows = args[0].shape[0]
        kernel(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])  # (compiled or loaded: warm)
        times = []
        for _ in range(REPS):
            fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            t0 = time.perf_counter()
            kernel(*fresh)
            times.append(time.perf_counter() - t0)
        t = np.array(times)
        print(f"{label:20s} {np.median(t) / nrows * 1e9:7.1f} ns/row  (min {t.min() / nrows * 1e9:6.1f}, {nrows} rows)")


if __name__ == "__main__":
    main()
