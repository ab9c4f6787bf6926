"""asv suite for linear algebra (see `asv_support.py` for the setup): forward and backward of one LAPACK-backed
op on an n x n float64 matrix, by op and n, in `ad` and torch.

Each loss is a scalar that reads every output (weighted by fixed constants, so that eigen- and singular vectors
get a gradient); inputs are well conditioned: `I + noise` for the general solvers and determinants, an SPD
matrix for cholesky and eigh (its symmetric part is what eigh reads).
"""

import numpy as np

from .asv_support import LIBS, Suite, W

OPS = ["solve", "det", "slogdet", "cholesky", "qr", "eigh", "svd", "inv"]
SIZES = [64, 256]


def _weighted(lib, outs, consts):
    return sum((o * c).sum() for o, c in zip(outs, consts))


LOSSES = {
    "solve": lambda lib, a, cs: _weighted(lib, [lib.linalg.solve(a, cs[0])], cs[1:]),
    "det": lambda lib, a, cs: lib.linalg.det(a),
    "slogdet": lambda lib, a, cs: lib.linalg.slogdet(a)[1],
    "cholesky": lambda lib, a, cs: _weighted(lib, [lib.linalg.cholesky(a)], cs),
    "qr": lambda lib, a, cs: _weighted(lib, lib.linalg.qr(a), cs),
    "eigh": lambda lib, a, cs: (lambda w, v: _weighted(lib, [w, v * v], cs))(*lib.linalg.eigh(a)),
    "svd": lambda lib, a, cs: (lambda u, s, vh: _weighted(lib, [u * u, s, vh * vh], cs))(
        *lib.linalg.svd(a, full_matrices=False)
    ),
    "inv": lambda lib, a, cs: _weighted(lib, [lib.linalg.inv(a)], cs),
}

N_CONSTS = {"solve": 2, "det": 0, "slogdet": 0, "cholesky": 1, "qr": 2, "eigh": 2, "svd": 3, "inv": 1}


def linalg_step(backend, op, n, dtype="float64"):
    """The workload: a Reverse over `LOSSES[op]` on one n x n leaf."""
    W.require(backend, "linalg." + op)
    rng = np.random.default_rng([W.SEED, 20, n])
    noise = rng.standard_normal((n, n)) / np.sqrt(n)
    if op in ("cholesky", "eigh"):
        a = noise @ noise.T + np.eye(n)
    else:
        a = np.eye(n) + 0.3 * noise
    consts = []
    for i in range(N_CONSTS[op]):
        shape = (n,) if (op, i) in (("eigh", 0), ("svd", 1)) else (n, n)
        consts.append(rng.standard_normal(shape).astype(dtype))
    fn = lambda lib, leaves, cs: LOSSES[op](lib, leaves[0], cs)
    return W.Reverse(backend, fn, [a.astype(dtype)], consts)


class _Linalg(Suite):
    params = (LIBS, OPS, SIZES)
    param_names = ("lib", "op", "n")

    def build(self, backend, op, n):
        return linalg_step(backend, op, n)


class LinalgForward(_Linalg):
    def time_forward(self, lib, op, n):
        self.wl.forward()


class LinalgBackward(_Linalg):
    before = ("forward",)

    def time_backward(self, lib, op, n):
        self.wl.backward()


class LinalgStep(_Linalg):
    def time_step(self, lib, op, n):
        self.wl.forward()
        self.wl.backward()
