"""A data-parallel training step at 1 and 2 ranks, and the share of the gradient all-reduce that
``ad.distributed.DataParallel`` hides behind the backward sweep.

    python -m benchmarks.bench_distributed [--ranks 1 2] [--width 512] [--layers 4] [--batch 256] [--reps 20]

Launches itself under ``mpiexec -n R`` for each R. Each rank times, as the median over ``--reps`` steps (ranks
lined up by a barrier before each), on its own batch of ``--batch`` rows through an MLP of ``--layers`` tanh
layers of ``--width`` units (float64):

- compute: forward + backward, no communication;
- overlapped: forward + backward with DataParallel (buckets of ``--bucket-mb``; all-reduces start in the sweep),
  with and without the helper thread that keeps MPI's progress engine turning (process_group.Progress);
- blocking: forward + backward, then one blocking all-reduce per bucket-sized group of gradients;
- comm: those all-reduces alone.

hidden = 1 - (step - compute) / comm: the part of the communication that did not add to the step; and, less
sensitive to noise in the compute time, 1 - (time DataParallel's final callback waited) / comm.
(On a 2-core machine the ranks share the cores with MPI's progress; the point is the overlap, not a speed-up.)
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def _worker(args):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np

    import ad
    import ad.distributed as dist
    from ad import nn

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    ad.manual_seed(0)
    layers = []
    for _ in range(args.layers):
        layers += [nn.Linear(args.width, args.width), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(args.width, 1)).double()
    params = list(model.parameters())
    rng = np.random.default_rng(rank)
    x = ad.tensor(rng.standard_normal((args.batch, args.width)))
    y = ad.tensor(rng.standard_normal((args.batch, 1)))
    loss_fn = nn.MSELoss()

    def step():
        for p in params:
            p.grad = None
        loss_fn(model(x), y).backward()

    stats = []

    def timed(fn, ddp=None):
        times = []
        stats.clear()
        for k in range(args.reps + 2):
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            if k >= 2:  # two warm-up steps
                times.append(time.perf_counter() - t0)
                if ddp is not None:
                    stats.append((ddp.wait_s, ddp.reduced_in_sweep))
        return float(np.median(times))

    ddp = dist.DataParallel(params, bucket_cap_mb=args.bucket_mb)
    groups = [[params[i] for i in b.indices] for b in ddp.buckets]
    flats = [np.concatenate([p.detach().numpy().reshape(-1) for p in g]) for g in groups]

    def all_reduce_groups():
        for f in flats:
            dist.all_reduce(ad.from_numpy(f))

    overlapped = timed(step, ddp)
    waited = float(np.median([w for w, _ in stats]))
    reduced = float(np.mean([r for _, r in stats]))
    os.environ["AD_DISTRIBUTED_PROGRESS_THREAD"] = "0"
    unprogressed = timed(step, ddp)
    waited_np = float(np.median([w for w, _ in stats]))
    reduced_np = float(np.mean([r for _, r in stats]))
    del os.environ["AD_DISTRIBUTED_PROGRESS_THREAD"]
    buckets, in_sweep = len(ddp.buckets), ddp.launched_in_sweep
    ddp.remove()
    compute = timed(step)

    def blocking_step():
        step()
        for g, f in zip(groups, flats):
            np.concatenate([p.grad.numpy().reshape(-1) for p in g], out=f)
        all_reduce_groups()

    blocking = timed(blocking_step)
    comm = timed(all_reduce_groups)
    if rank == 0:
        nbytes = sum(f.nbytes for f in flats)

        def hidden(t):
            return f"{1.0 - (t - compute) / comm:.0%}" if world > 1 and comm > 0 else "n/a"

        def waited_share(w):
            return f"{1.0 - w / comm:.0%}" if world > 1 and comm > 0 else "n/a"

        print(
            f"ranks {world}: {nbytes / 2**20:.1f} MiB of gradients in {buckets} buckets ({in_sweep} started in the "
            f"sweep); all-reduce alone {comm * 1e3:.1f} ms\n"
            f"  step: compute only {compute * 1e3:.1f} ms | DataParallel {overlapped * 1e3:.1f} ms | without "
            f"progress thread {unprogressed * 1e3:.1f} ms | blocking all-reduce after backward {blocking * 1e3:.1f} ms"
            f"\n  hidden share from step times: DataParallel {hidden(overlapped)}, without progress thread "
            f"{hidden(unprogressed)}, blocking {hidden(blocking)}\n"
            f"  final wait after the sweep: {waited * 1e3:.1f} ms, {reduced:.1f} buckets already reduced "
            f"(hidden {waited_share(waited)}); without progress thread {waited_np * 1e3:.1f} ms, {reduced_np:.1f} "
            f"reduced (hidden {waited_share(waited_np)})",
            flush=True,
        )
    dist.destroy_process_group()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--bucket-mb", type=float, default=2.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    root = Path(__file__).resolve().parents[1]
    mpiexec = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else "mpiexec"
    passed = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--worker"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    for n in args.ranks:
        cmd = [mpiexec, "-n", str(n), sys.executable, "-m", "benchmarks.bench_distributed", "--worker", *passed]
        subprocess.run(cmd, cwd=root, env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
