"""Average pooling on CUDA without a host round trip: regular windows (avg_pool1d/2d/3d, lp_pool, adaptive pooling
whose windows share one width and spacing) are summed by a reshaped ``sum`` or shifted strided slices
(``pooling._shifted_means``), so a NaN or inf input stays in the windows that hold it without the values being
checked on the host (the matrix path did one device reduction read back per call). Values, gradients and
forward-mode tangents against the CPU's, inf and NaN included; the forward copies nothing back to the host.
Under numba's simulator in CI (tiny sizes)."""

import numpy as np
import pytest
from cuda_scripts import load_script

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

traffic_tool = load_script("cuda_host_traffic")


def _input(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    flat = x.reshape(-1)
    flat[1], flat[flat.size // 2], flat[-3] = np.inf, np.nan, -np.inf
    return x


CASES = [
    ("avg2d_pad", F.avg_pool2d, (1, 2, 5, 6), dict(kernel_size=3, stride=2, padding=1)),
    ("avg2d_ceil_no_pad_count", F.avg_pool2d, (1, 2, 5, 6),
     dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg3d_stride_is_kernel", F.avg_pool3d, (1, 2, 2, 4, 4), dict(kernel_size=2)),
    ("avg2d_stride_over_kernel_ceil", F.avg_pool2d, (1, 2, 7, 8), dict(kernel_size=2, stride=3, ceil_mode=True)),
    ("adaptive_global", F.adaptive_avg_pool2d, (1, 2, 5, 6), dict(output_size=1)),
    ("adaptive_even", F.adaptive_avg_pool2d, (1, 2, 4, 6), dict(output_size=(2, 3))),
    ("adaptive_uneven2d", F.adaptive_avg_pool2d, (1, 1, 5, 7), dict(output_size=(3, 4))),  # 5 -> 3: widths 2, 3, 2
    ("adaptive_uneven1d", F.adaptive_avg_pool1d, (2, 10), dict(output_size=4)),  # two sets of two windows
    ("adaptive_uneven3d", F.adaptive_avg_pool3d, (1, 1, 3, 2, 5), dict(output_size=(2, 2, 3))),
]


@pytest.mark.parametrize("fn, shape, kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_avg_pool_on_cuda_as_on_the_cpu_with_nan_and_inf(fn, shape, kwargs):
    x0 = _input(shape)
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, requires_grad=True, device=dev)
        out = fn(x, **kwargs)
        g = np.linspace(-1.0, 1.0, out.numel()).reshape(tuple(out.shape))
        out.backward(ad.tensor(g, device=dev))
        with fwAD.dual_level():  # a tangent holding inf and NaN too
            primal = ad.tensor(np.random.default_rng(1).standard_normal(shape), device=dev)
            tangent = fwAD.unpack_dual(fn(fwAD.make_dual(primal, ad.tensor(x0, device=dev)), **kwargs)).tangent
        results.append([out.detach().cpu().numpy(), x.grad.cpu().numpy(), tangent.cpu().numpy()])
    (cpu_out, cpu_grad, cpu_tangent), (out, grad, tangent) = results
    assert not np.isfinite(cpu_out).all()  # (the case means something)
    np.testing.assert_allclose(out, cpu_out, rtol=1e-13, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(grad, cpu_grad, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tangent, cpu_tangent, rtol=1e-13, atol=1e-15, equal_nan=True)


POOLS = {
    "overlapping": lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
    "stride_is_kernel": lambda x: F.avg_pool2d(x, 2),
    "adaptive_global": lambda x: F.adaptive_avg_pool2d(x, 1),
    "adaptive_uneven": lambda x: F.adaptive_avg_pool2d(x, (3, 2)),  # 5 -> 3 and 4 -> 2: interleaved sets
}


@pytest.mark.parametrize("pool, requires_grad", [("overlapping", False), ("stride_is_kernel", True),
                                                  ("adaptive_global", True), ("adaptive_uneven", True)])
def test_avg_pool_forward_copies_nothing_back(pool, requires_grad):
    """No device-to-host copy (the finite check's read-back was one per call), and host traffic that does not grow
    with the batch."""
    profiles = []
    for n in (1, 2):
        x = ad.tensor(_input((n, 1, 5 if pool == "adaptive_uneven" else 4, 4)), device="cuda",
                      requires_grad=requires_grad)
        traffic = traffic_tool.measure(lambda x=x: POOLS[pool](x))
        assert traffic.count("d2h") == 0, traffic.summary()
        profiles.append({k: (traffic.count(k), traffic.total(k)) for k in ("h2d", "host_arg")})
    assert profiles[0] == profiles[1]


def test_uneven_adaptive_pool_backward_copies_only_the_sweeps_state():
    """The backward of uneven adaptive pooling (slices, sums, a stack: no index map, no finite check) copies back
    only the sweep's two small arrays (``tests/cuda/test_host_traffic.py``), and its host copies do not grow with
    the batch (a fresh tape each: rows left on a shared one would count)."""
    from ad.cuda import tape

    profiles = []
    for n in (1, 2):
        tape.reset_current()
        x = ad.tensor(_input((n, 1, 5, 3)), device="cuda", requires_grad=True)
        out = F.adaptive_avg_pool2d(x, (3, 2))
        seed = ad.ones_like(out)
        traffic = traffic_tool.measure(lambda out=out, seed=seed: out.backward(seed, retain_graph=True))
        assert traffic.count("d2h") == 2 and traffic.total("d2h") < 1024, traffic.summary()
        profiles.append({k: (traffic.count(k), traffic.total(k)) for k in ("d2h", "h2d", "host_arg")})
        np.testing.assert_allclose(x.grad.cpu().numpy().sum(), 2 * n * 3 * 2)  # (two backwards: every mean's)
    assert profiles[0] == profiles[1]


def test_lp_pool_of_a_negative_window_on_cuda_as_on_the_cpu():
    """A negative window sum has a NaN root (torch's too): its cotangent stays in its window on CUDA as on the CPU
    (which checks for negative sums on the host; CUDA's shifted sums need no check)."""
    x0 = np.array([[[1.0, 2.0, -3.0, -4.0, 0.5, 1.5]]])
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, requires_grad=True, device=dev)
        out = F.lp_pool1d(x, 3, 2)
        out.backward(ad.ones_like(out))
        results.append((out.detach().cpu().numpy(), x.grad.cpu().numpy()))
    (cpu_out, cpu_grad), (out, grad) = results
    assert np.isnan(cpu_out).sum() == 1 and np.isfinite(cpu_grad[..., :2]).all()
    np.testing.assert_allclose(out, cpu_out, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(grad, cpu_grad, rtol=1e-13, equal_nan=True)
