"""Train a small MLP on two interleaved spirals with `ad`, exactly as one would with torch autograd.

    python examples/spirals.py [--epochs N] [--seed S] [--hidden H] [--lr LR] [--quiet]

The data set is generated here with numpy (fixed seed). Training is full batch with a hand-written Adam
step applied in place under `ad.no_grad()`. The script prints the final training loss, the held-out
accuracy and the wall time, and exits with status 1 if the held-out accuracy is below 95%.
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
import ad.nn.functional as F

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


def init_mlp(sizes, rng):
    """Weights (fan_in, fan_out) with Glorot-uniform init, zero biases; all leaves that require grad."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-bound, bound, (fan_in, fan_out))
        params.append(ad.tensor(w, requires_grad=True))
        params.append(ad.tensor(np.zeros(fan_out), requires_grad=True))
    return params


def forward(params, x):
    h = x
    for i in range(0, len(params) - 2, 2):
        h = ad.tanh(h @ params[i] + params[i + 1])
    return h @ params[-2] + params[-1]


class Adam:
    """Adam (Kingma and Ba), written with tensor arithmetic and in-place updates under no_grad."""

    def __init__(self, params, lr=0.01, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.eps = params, lr, eps
        self.b1, self.b2 = betas
        self.m = [0.0] * len(params)  # first and second moments; become tensors on the first step
        self.v = [0.0] * len(params)
        self.t = 0

    def step(self, lr=None):
        lr = self.lr if lr is None else lr
        self.t += 1
        bc1 = 1.0 - self.b1**self.t
        bc2 = 1.0 - self.b2**self.t
        with ad.no_grad():
            for i, p in enumerate(self.params):
                g = p.grad
                self.m[i] = self.b1 * self.m[i] + (1.0 - self.b1) * g
                self.v[i] = self.b2 * self.v[i] + (1.0 - self.b2) * (g * g)
                p -= (lr / bc1) * self.m[i] / ((self.v[i] / bc2) ** 0.5 + self.eps)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def accuracy(params, x, y):
    with ad.no_grad():
        logits = forward(params, x).numpy()
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

    params = init_mlp([2, args.hidden, args.hidden, 2], rng)
    opt = Adam(params, lr=args.lr)

    bar = tqdm(range(args.epochs), desc="spirals", disable=args.quiet, mininterval=0.25)
    loss_value = float("nan")
    for epoch in bar:
        loss = F.cross_entropy(forward(params, x_train), y_train)
        opt.zero_grad()
        loss.backward()
        # cosine decay to 5% of the peak rate: a fast start, a settled finish
        frac = epoch / max(args.epochs - 1, 1)
        opt.step(lr=args.lr * (0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * frac))))
        loss_value = loss.item()
        if epoch % 10 == 0 or epoch == args.epochs - 1:
            bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
    bar.close()

    with ad.no_grad():
        train_loss = F.cross_entropy(forward(params, x_train), y_train).item()
    test_acc = accuracy(params, x_test, y_test)
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
