"""Max pooling on CUDA without a host copy of the values (``pooling_device._device_picks``: the first maximum
of each window found by a kernel and gathered by ``gather_indexed``; for planes too big for float32 indices
``_device_max_pool``: strided slices of the
input padded with -inf, their maximum, and a chain of ``where`` that picks each window's first valid tap equal to
it or NaN; the host path copied the whole input back for the index map). Values (signed zeros included: the
CUDA ``cat`` used to add its pieces into zeros, which turned -0.0 into +0.0), gradients and tangents equal the
CPU's exactly, with ties, NaN, +-inf and all -inf windows; the forward copies nothing back. ``return_indices``
and the fallbacks: ``test_cuda_host_ops20.py``. Under numba's simulator (tiny sizes)."""

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
    x = np.random.default_rng(seed).standard_normal(shape).round(0)  # (ties, and -0.0 beside 0.0)
    flat = x.reshape(-1)
    flat[1], flat[5], flat[-2], flat[7] = np.nan, -np.inf, np.inf, -0.0
    return x


CASES = [
    ("2d_pad_stride", F.max_pool2d, (1, 1, 5, 6), dict(kernel_size=3, stride=2, padding=1)),
    ("2d_ceil", F.max_pool2d, (1, 1, 5, 5), dict(kernel_size=2, ceil_mode=True)),
    ("1d_dilation_pad", F.max_pool1d, (2, 9), dict(kernel_size=3, stride=2, dilation=2, padding=1)),
    ("3d", F.max_pool3d, (1, 1, 3, 2, 3), dict(kernel_size=2, stride=1)),
]


def _run(dev, fn, x0, kwargs):
    x = ad.tensor(x0, device=dev, requires_grad=True)
    with traffic_tool.HostTraffic() as traffic:
        out = fn(x, **kwargs)
    out.backward(ad.tensor(np.linspace(-1.0, 1.0, out.numel()).reshape(tuple(out.shape)), device=dev))
    with fwAD.dual_level():
        tangent = ad.tensor(np.cos(np.arange(x0.size)).reshape(x0.shape), device=dev)
        tan = fwAD.unpack_dual(fn(fwAD.make_dual(ad.tensor(x0, device=dev), tangent), **kwargs)).tangent
    return [out.detach().cpu().numpy(), x.grad.cpu().numpy(), tan.cpu().numpy()], traffic


@pytest.mark.parametrize("fn, shape, kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_max_pool_on_cuda_as_on_the_cpu_without_a_copy_back(fn, shape, kwargs):
    x0 = _input(shape)
    cpu, _ = _run("cpu", fn, x0, kwargs)
    cuda, traffic = _run("cuda", fn, x0, kwargs)
    assert traffic.count("d2h") == 0, traffic.summary()  # (was one copy of the whole input)
    for what, a, b in zip(("value", "gradient", "tangent"), cpu, cuda):
        np.testing.assert_array_equal(b, a, err_msg=what)  # (NaN equal to NaN)
        np.testing.assert_array_equal(np.signbit(b), np.signbit(a), err_msg=what)


def test_an_all_neg_inf_window_picks_its_first_element_not_the_padding():
    x0 = np.array([[[-np.inf, -np.inf, 1.0, -np.inf, -np.inf]]])
    cpu, _ = _run("cpu", F.max_pool1d, x0, dict(kernel_size=3, stride=2, padding=1))
    cuda, _ = _run("cuda", F.max_pool1d, x0, dict(kernel_size=3, stride=2, padding=1))
    assert cpu[1][0, 0, 0] != 0  # (the first window is [pad, -inf, -inf]: its gradient reaches the input)
    for a, b in zip(cpu, cuda):
        np.testing.assert_array_equal(b, a)


def test_cat_and_stack_keep_negative_zero_on_cuda():
    a = ad.tensor(np.array([-0.0, 1.0]), device="cuda")
    b = ad.tensor(np.array([-0.0], dtype=np.float32), device="cuda")
    assert np.signbit(ad.cat([a, b]).cpu().numpy()).tolist() == [True, False, True]
    assert np.signbit(ad.stack([a, a]).cpu().numpy()).tolist() == [[True, False], [True, False]]
