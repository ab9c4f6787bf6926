"""The garbage collector's share of an eager training step (issue 11, item 4), per generation.

Run from the repository root: ``python -m scripts.gc_share [W1|W6 ...] [--steps N]``. For each workload of
``benchmarks/workloads.py`` (W1: the 2,000-op chain; W6: 2,000 leaves, forward + backward) it runs ``N`` steps
with the collector on, as ``benchmarks.compare`` and a training loop do, and prints:

- the median step (wall clock) and the median CPU time of the step's thread (``time.thread_time``: on a
  shared machine it moves less than the wall clock, but other processes' load still changes it);
- per generation: the automatic collections per step, the median CPU time of one, and their CPU time per step
  (gen0 and gen1 collections fall inside most steps and move the median; a full collection, gen2, every few
  dozen steps costs tens of milliseconds, which the mean shows and the median does not);
- the tracked objects one recorded graph keeps alive until the next step (what every gen0 and gen1 collection
  traverses, and what makes full collections come: each survivor of a gen1 collection counts towards the next
  one), and the tracked objects of the whole process (what a full collection traverses: mostly numba's).

Why: a recorded result keeps its operands alive (``Tensor._in0``, ``_in1``: the Python graph serves
``grad_fn``, ``create_graph`` and the Python rules), so every tensor of a graph lives until the graph is dropped,
where torch keeps its graph in C++ and drops each intermediate Python object at once. Used to A/B changes to
what a recorded op leaves behind (run it from two checkouts in the same minute).
"""

import gc
import statistics
import sys
import time

from benchmarks import workloads as W

WORKLOADS = {
    "W1": lambda backend: W.chain_small(backend),
    "W6": lambda backend: W.many_leaves(backend, timed=("forward", "backward")),
}


def live_objects_of_a_graph(workload):
    """Tracked objects that one recorded step (forward and backward) leaves alive until the next."""
    workload.prepare()
    gc.collect()
    before = len(gc.get_objects())
    workload.forward()
    workload.backward()
    return len(gc.get_objects()) - before


def measure(name, steps):
    backend = W.load_backend("ad")
    workload = WORKLOADS[name](backend)
    for _ in range(5):  # kernels loaded, arenas pooled
        workload.repetition()
    kept = live_objects_of_a_graph(workload)
    gc.collect()
    seconds = {0: [], 1: [], 2: []}
    started = [0.0]

    def on_collection(phase, info):
        if phase == "start":
            started[0] = time.thread_time()
        else:
            seconds[info["generation"]].append(time.thread_time() - started[0])

    gc.callbacks.append(on_collection)
    try:
        wall, cpu = [], []
        for _ in range(steps):
            c0 = time.thread_time()
            phases = workload.repetition()
            cpu.append(time.thread_time() - c0)
            wall.append(phases["total"])
    finally:
        gc.callbacks.remove(on_collection)
    print(
        f"{name}: step median {statistics.median(wall) * 1e3:.3f} ms (thread CPU {statistics.median(cpu) * 1e3:.3f} "
        f"ms, mean {statistics.mean(cpu) * 1e3:.3f} ms); a graph keeps {kept} tracked objects alive; the process "
        f"tracks {len(gc.get_objects())}"
    )
    for gen, times in seconds.items():
        if times:
            print(
                f"  gen{gen}: {len(times) / steps:.2f} collections per step, {statistics.median(times) * 1e3:.3f} ms "
                f"each (median), {sum(times) / steps * 1e3:.3f} ms CPU per step"
            )
        else:
            print(f"  gen{gen}: no collection in {steps} steps")


def main(argv):
    steps = 100
    if "--steps" in argv:
        k = argv.index("--steps")
        steps = int(argv[k + 1])
        argv = argv[:k] + argv[k + 2 :]
    for name in argv or list(WORKLOADS):
        measure(name, steps)


if __name__ == "__main__":
    main(sys.argv[1:])
