"""Train the spirals demo's MLP data-parallel across MPI processes with `ad.distributed`.

    mpiexec -n 2 python examples/spirals_ddp.py [--epochs N] [--seed S] [--hidden H] [--lr LR] [--verify N]

The data, model, optimizer and schedule are those of examples/spirals.py (imported from it). Each rank takes
an equal-as-possible shard of the 1500 training points; `ad.distributed.DataParallel` averages the gradients
across ranks during `backward()` (its all-reduces overlap the rest of the sweep), so every rank takes the
same full-batch step. For that, a rank's loss is the sum over its shard divided by the whole batch size and
multiplied by the number of ranks: the mean over ranks is then the full batch's mean loss, for any shard sizes.

`--verify N` (default 20): rank 0 also trains a copy of the model in-process on the whole batch for the first N
steps and prints the largest difference between the two sets of parameters (float64: round-off only).
Rank 0 prints the final training loss, the held-out accuracy and the wall time, and the script exits with
status 1 if the accuracy is below the single-process target (95%) or the parameters differ by more than 1e-9.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as spirals.py: small products, busy cores
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spirals import TARGET_ACCURACY, accuracy, make_mlp, make_spirals  # noqa: E402

import ad  # noqa: E402
import ad.distributed as dist  # noqa: E402
from ad import nn  # noqa: E402

VERIFY_TOLERANCE = 1e-9


def train_step(model, opt, sched, loss_fn, x, y, scale):
    loss = loss_fn(model(x), y) * scale
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss


def make_training(model, args):
    opt = ad.optim.Adam(model.parameters(), lr=args.lr)
    sched = ad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.epochs - 1, 1), eta_min=0.05 * args.lr)
    return opt, sched


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000, help="full-batch training steps (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the data and the init (default 0)")
    parser.add_argument("--hidden", type=int, default=32, help="width of the two hidden layers (default 32)")
    parser.add_argument("--lr", type=float, default=0.03, help="peak Adam learning rate (default 0.03)")
    parser.add_argument("--verify", type=int, default=20, help="steps checked against one process (default 20)")
    args = parser.parse_args(argv)

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    x, y = make_spirals(1000, rng)
    n_train = 1500
    lo, hi = rank * n_train // world, (rank + 1) * n_train // world  # this rank's shard
    x_shard, y_shard = ad.from_numpy(x[lo:hi]), ad.from_numpy(y[lo:hi])
    x_test, y_test = ad.from_numpy(x[n_train:]), y[n_train:]

    ad.manual_seed(args.seed)
    model = make_mlp(args.hidden)
    dist.DataParallel(model.parameters())  # broadcasts rank 0's parameters; averages gradients in backward
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    opt, sched = make_training(model, args)
    scale = world / n_train  # the mean over ranks of the scaled shard sums is the full batch's mean loss

    verify = rank == 0 and args.verify > 0
    if verify:  # the same model, trained in this process on the whole batch
        single = make_mlp(args.hidden)
        with ad.no_grad():
            for a, b in zip(single.parameters(), model.parameters()):
                a.copy_(b)
        single_opt, single_sched = make_training(single, args)
        x_train, y_train = ad.from_numpy(x[:n_train]), ad.from_numpy(y[:n_train])

    for epoch in range(args.epochs):
        train_step(model, opt, sched, loss_fn, x_shard, y_shard, scale)
        if verify and epoch < args.verify:
            train_step(single, single_opt, single_sched, loss_fn, x_train, y_train, 1.0 / n_train)
            if epoch == args.verify - 1 or epoch == args.epochs - 1:
                diff = max(float(np.max(np.abs(a.detach().numpy() - b.detach().numpy())))
                           for a, b in zip(model.parameters(), single.parameters()))  # fmt: skip
                print(f"parameters after {epoch + 1} steps: max |data-parallel - single process| = {diff:.2e}")

    # every rank holds the same parameters: rank 0 evaluates
    status = 0
    if rank == 0:
        with ad.no_grad():
            train_loss = nn.CrossEntropyLoss()(model(ad.from_numpy(x[:n_train])), ad.from_numpy(y[:n_train])).item()
        test_acc = accuracy(model, x_test, y_test)
        print(f"ranks {world}, final train loss {train_loss:.4f}")
        print(f"held-out accuracy {test_acc:.2%} on {len(y_test)} points (target {TARGET_ACCURACY:.0%})")
        print(f"wall time {time.perf_counter() - start:.1f} s")
        if test_acc < TARGET_ACCURACY:
            print("FAILED: held-out accuracy below target", file=sys.stderr)
            status = 1
        if verify and diff > VERIFY_TOLERANCE:
            print(f"FAILED: parameters differ from the single process by {diff:.2e}", file=sys.stderr)
            status = 1
    dist.destroy_process_group()
    return status


if __name__ == "__main__":
    sys.exit(main())
