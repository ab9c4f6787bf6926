"""``python -m kernels.cuda.bench``: bandwidth of the main CUDA kernels next to a copy kernel's, on a real GPU
(the simulator is refused). Prints one line per kernel: milliseconds per call (median of timed calls, CUDA
events), the bytes it must move per second, and that rate as a share of the copy kernel's (a grid-stride
``out[i] = x[i]``, the best an elementwise kernel can do; cudaMemcpy's device-to-device copy is shown too).

Sizes: ``--n`` elements (default 64M, float32) for the memory-bound kernels; matmul is (4096, 4096) @ (4096,
4096). Then through ``ad``: the backward of a chain of 8 elementwise ops on ``--n`` elements (the device sweep:
each row reads x, out and g and writes gx, the sum's row writes g: 33 n elements moved), issue 10's target
being >= 60% of the copy's bandwidth; and an MLP step (forward and backward, batch 1024, 4096-4096-4096-10,
float32, cross entropy) next to torch's on CUDA when torch has CUDA.
"""

import argparse
import statistics
import sys

import numpy as np


def _time(fn, reps):
    from numba import cuda

    fn()  # compile and warm up
    cuda.synchronize()
    samples = []
    for _ in range(reps):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(cuda.event_elapsed_time(start, stop))
    return statistics.median(samples)


def _copy_kernel():
    from numba import cuda

    @cuda.jit
    def copy(x, out):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.shape[0], step):
            out[i] = x[i]

    return copy


def mlp_step(lib, ps, xb, tb):
    """One training step of an MLP (linear + relu layers, cross entropy) of ``lib`` (ad or torch), without the
    optimizer: forward, backward, gradients dropped."""

    def step():
        h = xb
        for k, w in enumerate(ps):
            h = lib.nn.functional.linear(h, w)
            if k < len(ps) - 1:
                h = h.relu()
        lib.nn.functional.cross_entropy(h, tb).backward()
        for w in ps:
            w.grad = None

    return step


def _ad_rows(n, dt, reps, batch=1024, width=4096, classes=10):
    """(name, ms per call, bytes moved or None) of the ``ad`` workloads."""
    import ad

    rng = np.random.default_rng(0)
    x = ad.tensor(rng.uniform(-1, 1, n).astype(dt), device="cuda", requires_grad=True)
    y = x
    for op in ("tanh", "sin", "exp", "sigmoid", "cos", "tanh", "sin", "exp"):
        y = getattr(y, op)()
    loss = y.sum()
    rows = [("ad backward, 8-op chain", _time(lambda: loss.backward(retain_graph=True), reps), 33 * n * dt.itemsize)]
    data = rng.normal(size=(batch, width)).astype(dt)
    target = rng.integers(0, classes, batch)
    shapes = [(width, width), (width, width), (classes, width)]
    params = [rng.normal(scale=width**-0.5, size=s).astype(dt) for s in shapes]

    ps = [ad.tensor(p, device="cuda", requires_grad=True) for p in params]
    xb, tb = ad.tensor(data, device="cuda"), ad.tensor(target)
    rows.append(("ad MLP step (fwd+bwd)", _time(mlp_step(ad, ps, xb, tb), max(3, reps // 4)), None))
    try:
        import torch

        if torch.cuda.is_available():
            tps = [torch.tensor(p, device="cuda", requires_grad=True) for p in params]
            txb, ttb = torch.tensor(data, device="cuda"), torch.tensor(target, device="cuda")
            ms = _time(mlp_step(torch, tps, txb, ttb), max(3, reps // 4))
            rows.append(("torch MLP step (fwd+bwd)", ms, None))
        else:
            rows.append(("torch MLP step: torch has no CUDA", None, None))
    except ImportError:
        rows.append(("torch MLP step: no torch", None, None))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kernels.cuda.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64 * 2**20, help="elements (default 64M)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--kernels-only", action="store_true", help="skip the ad workloads")
    args = parser.parse_args(argv)
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        print("kernels.cuda.bench needs a GPU (NUMBA_ENABLE_CUDASIM=0 and a driver)", file=sys.stderr)
        return 2
    from .. import opcodes as K
    from . import elementwise as E
    from . import matmul as MM
    from . import reduce as R

    n, dt = args.n, np.dtype(args.dtype)
    size = dt.itemsize
    rng = np.random.default_rng(0)
    x = cuda.to_device(rng.uniform(-1, 1, n).astype(dt))
    y, g, gx = (cuda.device_array(n, dt) for _ in range(3))
    E.unary_forward(K.TANH, x, y)
    E.fill(g, 1.0)
    E.fill(gx, 0.0)
    out1 = cuda.device_array(1, dt)
    copy = _copy_kernel()
    grid = (min(65535, -(-n // 256)), 256)
    rows = [
        ("copy kernel", lambda: copy[grid](x, gx), 2 * n * size),
        ("device-to-device memcpy", lambda: gx.copy_to_device(x), 2 * n * size),
        ("unary_forward tanh", lambda: E.unary_forward(K.TANH, x, y), 2 * n * size),
        ("  (one kernel for all codes)", lambda: E._unary_forward[grid](K.TANH, x, y, 0.0, 0.0), 2 * n * size),
        ("unary_backward tanh (+=)", lambda: E.unary_backward(K.TANH, x, y, g, gx), 4 * n * size),
        ("binary_forward mul", lambda: E.binary_forward(K.MUL, x, g, y), 3 * n * size),
        ("reduce sum (all)", lambda: R.reduce("sum", x, out1), n * size),
    ]
    m = 4096
    a, b, c = (cuda.to_device(rng.normal(size=(m, m)).astype(dt)) for _ in range(3))
    flops = 2 * m**3
    name = cuda.get_current_device().name
    print(f"{name.decode() if isinstance(name, bytes) else name}: n = {n:,} {dt}")
    copy_rate = None

    def show(name, ms, nbytes):
        if ms is None:
            print(name)
        elif nbytes is None:
            print(f"{name:30s} {ms:9.3f} ms")
        else:
            rate = nbytes / ms / 1e6
            print(f"{name:30s} {ms:9.3f} ms  {rate:8.1f} GB/s  ({100 * rate / copy_rate:5.1f}% of the copy kernel)")

    for name, fn, nbytes in rows:
        ms = _time(fn, args.reps)
        copy_rate = copy_rate or nbytes / ms / 1e6
        show(name, ms, nbytes)
    backend = "cuBLAS (CuPy)" if MM.cupy_module() is not None else "tiled kernel"
    ms = _time(lambda: MM.matmul(a, b, c), max(3, args.reps // 4))
    print(f"{'matmul 4096^3 ' + backend:30s} {ms:9.3f} ms  {flops / ms / 1e9:8.1f} TFLOP/s")
    if not args.kernels_only:
        for name, ms, nbytes in _ad_rows(n, dt, args.reps):
            show(name, ms, nbytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
