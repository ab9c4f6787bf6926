"""``python -m kernels.cuda.bench``: bandwidth of the main CUDA kernels next to the device-to-device copy's, on a
real GPU (the simulator is refused). Prints one line per kernel: milliseconds per call (median of timed calls,
CUDA events) and the bytes it must move per second.

Sizes: ``--n`` elements (default 64M, float32) for the memory-bound kernels; matmul is (4096, 4096) @ (4096,
4096). Issue 10's target: the backward of an elementwise chain at >= 60% of the copy's bandwidth.
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kernels.cuda.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64 * 2**20, help="elements (default 64M)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--reps", type=int, default=20)
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
    rows = [
        ("device-to-device copy", lambda: gx.copy_to_device(x), 2 * n * size),
        ("unary_forward tanh", lambda: E.unary_forward(K.TANH, x, y), 2 * n * size),
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
    for name, fn, nbytes in rows:
        ms = _time(fn, args.reps)
        rate = nbytes / ms / 1e6
        copy_rate = copy_rate or rate
        print(f"{name:28s} {ms:9.3f} ms  {rate:8.1f} GB/s  ({100 * rate / copy_rate:5.1f}% of copy)")
    backend = "cuBLAS (CuPy)" if MM.cupy_module() is not None else "tiled kernel"
    ms = _time(lambda: MM.matmul(a, b, c), max(3, args.reps // 4))
    print(f"{'matmul 4096^3 ' + backend:28s} {ms:9.3f} ms  {flops / ms / 1e9:8.1f} TFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
