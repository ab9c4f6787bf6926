"""``ad.func`` on CUDA tensors (simulated in CI): the transforms' results stay on the device and equal the CPU's
(the identity seeds of jacrev / jacfwd are moved to the outputs' / inputs' device)."""

import numpy as np
import pytest

import ad
from ad import func as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

X = np.array([0.3, -0.5, 0.9])
CASES = {
    "grad": lambda x: F.grad(lambda t: (t.sin() * t).sum())(x),
    "jacrev": lambda x: F.jacrev(lambda t: t.sin() * t.sum())(x),
    "jacrev unused": lambda x: F.jacrev(lambda t, u: t.sin(), (0, 1))(x, x)[1],
    "jacfwd": lambda x: F.jacfwd(lambda t: t.sin() * t.sum())(x),
    "hessian": lambda x: F.hessian(lambda t: (t.sin() * t).sum())(x),
    "jvp": lambda x: F.jvp(ad.sin, (x,), (x * 2,))[1],
    "vmap(grad)": lambda x: F.vmap(F.grad(lambda t: (t.exp() * t).sum()))(ad.stack([x, x * 2])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_func_on_cuda_matches_cpu(name):
    on_gpu = CASES[name](ad.tensor(X, device="cuda"))
    on_cpu = CASES[name](ad.tensor(X))
    assert on_gpu.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.cpu().detach().numpy(), on_cpu.detach().numpy(), rtol=1e-12, atol=1e-12)
