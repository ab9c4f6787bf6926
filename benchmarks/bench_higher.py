"""asv suites for second-order derivatives (W4 and W7 of `workloads.py`).

- W4: f(x) = sum(tanh(A x)), A n x n: Hessian-vector product by double backward (`create_graph=True`), by
  forward over reverse (skipped while `ad` has no `ad.autograd.forward_ad`), and the full Hessian (skipped
  while it has no `ad.autograd.functional.hessian`).
- W7: second derivative of an n-step scalar iteration, by double backward.
- Batched sweeps: `functional.jacobian` of a 64 -> 64 tanh MLP (two hidden layers of 128, float64), and
  `grad(..., is_grads_batched=True)` with 1, 8 and 64 cotangents through the W1 chain.
"""

import numpy as np

from .asv_support import LIBS, Suite, W


class HVP(Suite):
    params = (LIBS, list(W.HVP_MODES), [64, 256])
    param_names = ("lib", "mode", "n")

    def build(self, backend, mode, n):
        return W.hvp(backend, mode, n)

    def time_hvp(self, lib, mode, n):
        self.wl.run_steps(self.wl.steps)


class ScalarSecondDerivative(Suite):
    params = (LIBS, [50, 200])
    param_names = ("lib", "n_steps")

    def build(self, backend, n_steps):
        return W.scalar_second_derivative(backend, n_steps)

    def time_second_derivative(self, lib, n_steps):
        self.wl.run_steps(self.wl.steps)


# ---- batched sweeps (issue 12): Jacobians and B vector-Jacobian products in one pass ---------------------


class _MLPJacobian(W.Workload):
    """`functional.jacobian` of a 64 -> 128 -> 128 -> 64 tanh MLP (float64) at one input."""

    steps = timed = ("total",)

    def __init__(self, backend, vectorize, sizes=(64, 128, 128, 64), strategy="reverse-mode"):
        super().__init__(backend)
        self.strategy = strategy
        if backend.functional:
            raise W.Unavailable("jax: not measured here")
        rng = np.random.default_rng(12)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.params.append(backend.const(rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)))
            self.params.append(backend.const(rng.standard_normal(fan_out) / 10.0))
        self.x = backend.const(rng.standard_normal(sizes[0]))
        self.vectorize = vectorize
        self.j = None

    def prepare(self):
        self.j = None

    def f(self, x):
        lib, p = self.lib, self.params
        linear = lib.nn.functional.linear
        h = lib.tanh(linear(x, p[0], p[1]))
        h = lib.tanh(linear(h, p[2], p[3]))
        return linear(h, p[4], p[5])

    def total(self):
        self.j = self.lib.autograd.functional.jacobian(self.f, self.x, vectorize=self.vectorize, strategy=self.strategy)


class _BatchedGrad(W.Workload):
    """`grad(out, x, G, is_grads_batched=True)` with `batch` cotangents through the W1 chain (2,000 elementwise
    ops on 16 float64 elements); the graph is recorded once, untimed, and retained."""

    steps = timed = ("total",)

    def __init__(self, backend, batch):
        super().__init__(backend)
        if backend.functional:
            raise W.Unavailable("jax: not measured here")
        x, c = W._chain_inputs(16, "float64")
        self.x = backend.leaf(x)
        self.out = W.elementwise_chain(self.lib, self.x, backend.const(c), 2000)
        self.g = backend.const(np.random.default_rng(13).standard_normal((batch, 16)))

    def total(self):
        self.lib.autograd.grad(self.out, self.x, self.g, is_grads_batched=True, retain_graph=True)


class Jacobian(Suite):
    params = (LIBS, [False, True])
    param_names = ("lib", "vectorize")

    def build(self, backend, vectorize):
        return _MLPJacobian(backend, vectorize)

    def time_mlp_jacobian(self, lib, vectorize):
        self.wl.run_steps(self.wl.steps)


class BatchedGrad(Suite):
    params = (LIBS, [1, 8, 64])
    param_names = ("lib", "batch")

    def build(self, backend, batch):
        return _BatchedGrad(backend, batch)

    def time_is_grads_batched(self, lib, batch):
        self.wl.run_steps(self.wl.steps)
