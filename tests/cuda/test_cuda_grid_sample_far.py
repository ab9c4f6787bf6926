"""``grid_sample`` on CUDA as on the CPU where taps fall outside an input holding inf and the grid is far
(1e300, 1e17): the outside taps selected away, the taps' coordinates rounded as torch's (tests/test_grid_sample_far.py
checks the CPU against torch). Under numba's simulator in CI."""

import numpy as np
import pytest

import ad
import ad.nn.functional as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.mark.parametrize("mode, padding_mode", [("bicubic", "zeros"), ("bicubic", "reflection")])
def test_far_grid_and_infinite_pixels_on_cuda_as_on_the_cpu(mode, padding_mode):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((1, 1, 3, 4))
    x0[0, 0, :, 0] = np.inf
    g0 = rng.uniform(-1.6, 1.6, (1, 2, 2, 2))
    g0[0, 0, 0] = [1e300, -1e17]
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, requires_grad=True, device=dev)
        g = ad.tensor(g0, requires_grad=True, device=dev)
        out = F.grid_sample(x, g, mode=mode, padding_mode=padding_mode, align_corners=False)
        out.backward(ad.ones_like(out))
        results.append([out.detach().cpu().numpy(), x.grad.cpu().numpy(), g.grad.cpu().numpy()])
    for ours, cpu in zip(*results[::-1]):
        np.testing.assert_allclose(ours, cpu, rtol=1e-12, equal_nan=True)
