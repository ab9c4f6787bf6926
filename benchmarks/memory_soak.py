"""Memory over a long training run: resident set size after N steps of the demo's model (issue 5's check).

    python -m benchmarks.memory_soak [--steps 10000]

Trains the two-spirals MLP of ``examples/spirals.py`` (full batch, Adam) and prints the resident set size
after the first 100 steps and at the end, and their ratio: freed graphs, tapes, arenas and recycled buffers
must keep it flat.
"""

import argparse
import importlib.util
import resource
import sys
import time
from pathlib import Path


def rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location(
        "spirals", Path(__file__).resolve().parents[1] / "examples" / "spirals.py"
    )
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    import numpy as np

    import ad
    import ad.nn.functional as F

    rng = np.random.default_rng(0)
    x, y = demo.make_spirals(1000, rng)
    xt, yt = ad.tensor(x), ad.tensor(y)
    params = demo.init_mlp([2, 32, 32, 2], rng)
    opt = demo.Adam(params, lr=0.01)
    t0 = time.perf_counter()
    first = None
    for step in range(1, args.steps + 1):
        loss = F.cross_entropy(demo.forward(params, xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 100:
            first = rss_mb()
    last = rss_mb()
    print(f"steps: {args.steps}, {time.perf_counter() - t0:.1f} s, final loss {loss.item():.4f}")
    print(f"RSS after 100 steps: {first:.1f} MiB; after {args.steps}: {last:.1f} MiB; ratio {last / first:.3f}")
    return 0 if last <= 1.05 * first else 1


if __name__ == "__main__":
    sys.exit(main())
