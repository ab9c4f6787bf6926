"""Train a small MLP on two interleaved spirals with `ad`, exactly as one would with torch autograd.

    python examples/spirals.py [--epochs N] [--seed S] [--hidden H] [--lr LR] [--quiet]

The data set is generated here with numpy (fixed seed). The model, loss, optimizer and schedule are written
as a torch user writes them (`ad.nn.Sequential`, `ad.nn.CrossEntropyLoss`, `ad.optim.Adam`, a cosine
learning-rate schedule), full batch. The script prints the final training loss, the held-out accuracy and
the wall time, and exits with status 1 if the held-out accuracy is below 95%.
"""

import argparse
import os
import sys
import time

# The products here are small (1500 x 32): BLAS threads only add synchronisation, and on a busy 2-core machine
# they made each step about ten times slower. Set before numpy loads BLAS; a value set by the caller wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
from tqdm import tqdm

import ad
from ad import nn

TARGET_ACCURACY = 0.95


def make_spirals(n_per_class, rng, turns=1.75, noise=0.04, radius=2.5):
    """Two interleaved spirals of `turns` turns, with Gaussian noise, scaled to a disc of `radius` (inputs of
    order one suit tanh units). Returns float64 points (2 n_per_class, 2) and int64 labels 0 and 1, shuffled."""
    xs, ys = [], []
    for label in (0, 1):
        s = np.sqrt(rng.uniform(0.0, 1.0, n_per_class))  # roughly uniform density along the arm
        angle = s * turns * 2.0 * np.pi + label * np.pi
        pts = np.stack([s * np.cos(angle), s * np.sin(angle)], axis=1)
        xs.append(pts + noise * rng.standard_normal(pts.shape))
        ys.append(np.full(n_per_class, label, dtype=np.int64))
    x, y = radius * np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    return x[order], y[order]


def make_mlp(hidden):
    """2 -> hidden -> hidden -> 2 with tanh units; Glorot-uniform weights and zero biases."""
    model = nn.Sequential(
        nn.Linear(2, hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.Tanh(),
        nn.Linear(hidden, 2),
    )

    def glorot(module):
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    return model.apply(glorot)


def accuracy(model, x, y):
    with ad.no_grad():
        logits = model(x).numpy()
    return float(np.mean(np.argmax(logits, axis=1) == y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000, help="full-batch training steps (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the data and the init (default 0)")
    parser.add_argument("--hidden", type=int, default=32, help="width of the two hidden layers (default 32)")
    parser.add_argument("--lr", type=float, default=0.03, help="peak Adam learning rate (default 0.03)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    x, y = make_spirals(1000, rng)
    n_train = 1500
    x_train, y_train = ad.from_numpy(x[:n_train]), ad.from_numpy(y[:n_train])
    x_test, y_test = ad.from_numpy(x[n_train:]), y[n_train:]

    ad.manual_seed(args.seed)
    model = make_mlp(args.hidden)
    loss_fn = nn.CrossEntropyLoss()
    opt = ad.optim.Adam(model.parameters(), lr=args.lr)
    # cosine decay to 5% of the peak rate: a fast start, a settled finish
    sched = ad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.epochs - 1, 1), eta_min=0.05 * args.lr)

    bar = tqdm(range(args.epochs), desc="spirals", disable=args.quiet, mininterval=0.25)
    loss_value = float("nan")
    for epoch in bar:
        loss = loss_fn(model(x_train), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_value = loss.item()
        if epoch % 10 == 0 or epoch == args.epochs - 1:
            bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
    bar.close()

    with ad.no_grad():
        train_loss = loss_fn(model(x_train), y_train).item()
    test_acc = accuracy(model, x_test, y_test)
    elapsed = time.perf_counter() - start
    print(f"final train loss {train_loss:.4f}")
    print(f"held-out accuracy {test_acc:.2%} on {len(y_test)} points (target {TARGET_ACCURACY:.0%})")
    print(f"wall time {elapsed:.1f} s")
    if test_acc < TARGET_ACCURACY:
        print("FAILED: held-out accuracy below target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
