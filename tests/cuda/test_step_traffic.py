"""Device-to-host copies of CUDA training steps (``scripts/cuda_step_audit.py`` lists them for whole models): each
step copies back the sweep's state (two small arrays) plus what it reads into Python on purpose (class indices,
an embedding's indices: index maps are host data); nothing else. Under numba's simulator (tiny sizes).

- ``clip_grad_norm_``: the norms reduced in device ops (``linalg.vector_norm`` took each gradient through the
  host: two copies per parameter), equal to the CPU's and torch's for every norm type (the CPU's p = -inf was the
  max, p = 0 divided by zero);
- ``cross_entropy`` with ``ignore_index`` or ``label_smoothing``: the class indices read once (were read two or
  three times);
- ``conv1d/2d/3d`` of CUDA operands: columns by strided slices on the device and the batched matmul (the numpy
  im2col took the operands through the host: three copies back per call and a Python hand-over in backward);
  values, gradients and tangents equal the CPU's;
- a whole MLP step (linear, relu, dropout, cross entropy, SGD with momentum): the sweep's two copies and the
  targets' read;
- a step through max pooling with indices, max unpooling, a transposed convolution, adaptive and fractional max
  pooling: the sweep's two copies (``test_cuda_host_ops20.py`` checks each op's values against the CPU).
"""

import numpy as np
import pytest
from cuda_scripts import load_script

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn as nn
import ad.nn.functional as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

audit = load_script("cuda_step_audit")
traffic_tool = audit.traffic_tool

# torch 2.13's clip_grad_norm_ of these gradients (the norm of the per-tensor norms), by norm type
GRADS = [np.arange(-6.0, 6.0).reshape(3, 4) / 3.0, np.array([0.5, -2.5, 1.0, 0.0, 3.0]), np.array([0.0, 2.0])]
TORCH_TOTAL = {2.0: 6.059886320899281, 1.0: 21.0, 3.0: 4.243550386466282, float("inf"): 3.0, float("-inf"): 0.0,
               0.0: 3.0, -2.0: 0.0}


@pytest.mark.parametrize("norm_type", list(TORCH_TOTAL))
def test_clip_grad_norm_on_cuda_copies_nothing_back(norm_type):
    results = []
    for dev in ("cpu", "cuda"):
        params = [ad.tensor(g, device=dev, requires_grad=True) for g in GRADS]
        for p, g in zip(params, GRADS):
            p.grad = ad.tensor(g, device=dev)
        with traffic_tool.HostTraffic() as traffic:
            total = nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
        if dev == "cuda":
            assert total.device.type == "cuda"
            assert traffic.count("d2h") == 0, traffic.summary()  # (was two per gradient)
        results.append((float(total.cpu().numpy()), [p.grad.cpu().numpy() for p in params]))
    (cpu_total, cpu_grads), (total, grads) = results
    np.testing.assert_allclose([cpu_total, total], TORCH_TOTAL[norm_type], rtol=1e-12)
    coef = min(1.0, 1.0 / (TORCH_TOTAL[norm_type] + 1e-6))
    for g, cg, g0 in zip(grads, cpu_grads, GRADS):
        np.testing.assert_allclose(g, g0 * coef, rtol=1e-12)
        np.testing.assert_allclose(cg, g0 * coef, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(ignore_index=1), dict(label_smoothing=0.2, ignore_index=1)],
                         ids=["ignore_index", "label_smoothing"])
def test_cross_entropy_reads_the_class_indices_once(kwargs):
    x0 = np.random.default_rng(0).standard_normal((4, 3))
    t0 = np.array([0, 1, 2, 2])
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, device=dev, requires_grad=True)
        t = ad.tensor(t0, device=dev)
        with traffic_tool.HostTraffic() as traffic:
            loss = F.cross_entropy(x, t, **kwargs)
        if dev == "cuda":
            assert traffic.count("d2h") == 1, traffic.summary()  # the class indices (index maps: host data)
        loss.backward()
        results.append((loss.detach().cpu().numpy(), x.grad.cpu().numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-13)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-13)


CONVS = [
    ("conv2d_groups_stride_dilation", F.conv2d, (1, 4, 3, 5), (4, 2, 2, 2), True,
     dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)),
    ("conv1d_same_unbatched", F.conv1d, (3, 7), (4, 3, 3), False, dict(padding="same")),
    ("conv3d_padded", F.conv3d, (1, 1, 2, 2, 3), (1, 1, 2, 2, 2), True, dict(padding=1)),
]


@pytest.mark.parametrize("fn, x_shape, w_shape, has_bias, kwargs", [c[1:] for c in CONVS], ids=[c[0] for c in CONVS])
def test_conv_on_cuda_stays_on_the_device(fn, x_shape, w_shape, has_bias, kwargs):
    rng = np.random.default_rng(0)
    x0, w0, b0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    results = []
    for dev in ("cpu", "cuda"):
        x, w = ad.tensor(x0, device=dev, requires_grad=True), ad.tensor(w0, device=dev, requires_grad=True)
        b = ad.tensor(b0, device=dev, requires_grad=True) if has_bias else None
        with traffic_tool.HostTraffic() as traffic:
            out = fn(x, w, b, **kwargs)
            g = ad.tensor(np.linspace(-1.0, 1.0, out.numel()).reshape(tuple(out.shape)), device=dev)
            out.backward(g)
        if dev == "cuda":  # the sweep's two copies back, one sweep (no hand-over to Python and back)
            assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()
        with fwAD.dual_level():
            xt = fwAD.make_dual(ad.tensor(x0, device=dev), ad.tensor(np.cos(x0), device=dev))
            wt = fwAD.make_dual(ad.tensor(w0, device=dev), ad.tensor(np.sin(w0), device=dev))
            tangent = fwAD.unpack_dual(fn(xt, wt, None, **kwargs)).tangent
        results.append([out.detach(), x.grad, w.grad, b.grad if has_bias else out.detach(), tangent])
    for cpu, cuda in zip(*results):
        np.testing.assert_allclose(cuda.cpu().numpy(), cpu.numpy(), rtol=1e-12, atol=1e-13)


def test_an_mlp_step_copies_back_the_sweep_state_and_the_targets():
    sites, traffic = audit.d2h_by_site("mlp", depth=2)
    assert sum(sites.values()) == audit.SWEEP_D2H + 1, traffic.summary()
    assert any("loss.py" in s for s in sites), sites  # (the targets' read)


def test_a_pooling_and_transposed_convolution_step_copies_back_only_the_sweep_state():
    # max_pool with indices, max_unpool, conv_transpose2d, adaptive and fractional max pooling: each copied the
    # input (or the indices) back before session 20
    sites, traffic = audit.d2h_by_site("pools_deconv", depth=2)
    assert sum(sites.values()) == audit.SWEEP_D2H, traffic.summary()
