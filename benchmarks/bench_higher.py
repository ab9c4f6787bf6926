"""asv suites for second-order derivatives (W4 and W7 of `workloads.py`).

- W4: f(x) = sum(tanh(A x)), A n x n: Hessian-vector product by double backward (`create_graph=True`), by
  forward over reverse (skipped while `ad` has no `ad.autograd.forward_ad`), and the full Hessian (skipped
  while it has no `ad.autograd.functional.hessian`).
- W7: second derivative of an n-step scalar iteration, by double backward.
"""

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
