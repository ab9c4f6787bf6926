"""The CUDA ops that went through the host until session 20, now in device ops (no copy of a tensor back per
call): ``conv_transpose1d/2d/3d`` (``conv._device_conv_transpose``: the input spread into zeros by one
``scatter_strided``, then the device convolution with the weight flipped), max pooling with ``return_indices`` and
``adaptive_max_pool1d/2d/3d`` (``pooling._device_separable_max``: one pass per spatial dim carrying the picked
element's index), ``fractional_max_pool2d/3d`` (taps gathered by the host-known windows, the first maximum picked
on the device). Values, indices, gradients and tangents equal the CPU path's (exactly for the pools: ties, NaN,
+-inf, -0.0; to rounding for the convolutions, whose sums run in another order), in float64 and float32; a
forward and backward copies back only the sweep's state (``cuda_step_audit.SWEEP_D2H``). Under numba's simulator
(tiny sizes)."""

import numpy as np
import pytest
from cuda_scripts import load_script

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

audit = load_script("cuda_step_audit")
traffic_tool = audit.traffic_tool


def _pool_input(shape, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).round(0)  # (ties, and -0.0 beside 0.0)
    flat = x.reshape(-1)
    flat[1], flat[5], flat[-2], flat[7] = np.nan, -np.inf, np.inf, -0.0
    return x.astype(dtype)


def _with_float32(cases, float32_ids):
    """``cases`` (id first) in float64, and those of ``float32_ids`` in float32 too (simulator time)."""
    params = [pytest.param(*c[1:], np.float64, id=c[0]) for c in cases]
    return params + [pytest.param(*c[1:], np.float32, id=c[0] + "-float32") for c in cases if c[0] in float32_ids]


def _run(dev, fn, arrays, kwargs, tangent_of=None):
    """``fn(*tensors, **kwargs)`` on ``dev``: its outputs, each input's gradient of a fixed cotangent, the tangent
    of the first output (tangents ``cos``/``sin`` of the inputs), and the host traffic of forward and backward."""
    tensors = [ad.tensor(a, device=dev, requires_grad=True) for a in arrays]
    with traffic_tool.HostTraffic() as traffic:
        outs = fn(*tensors, **kwargs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        out = outs[0]
        g = np.linspace(-1.0, 1.0, out.numel()).reshape(tuple(out.shape)).astype(arrays[0].dtype)
        out.backward(ad.tensor(g, device=dev))
    with fwAD.dual_level():
        duals = [fwAD.make_dual(ad.tensor(a, device=dev), ad.tensor(np.cos(np.arange(a.size) + k).reshape(a.shape)
                                                                     .astype(a.dtype), device=dev))
                 for k, a in enumerate(arrays)]
        dual_out = fn(*duals, **kwargs)
        tangent = fwAD.unpack_dual(dual_out[0] if isinstance(dual_out, tuple) else dual_out).tangent
    results = [o.detach().cpu().numpy() for o in outs] + [t.grad.cpu().numpy() for t in tensors]
    return results + [tangent.cpu().numpy()], outs, traffic


CONV_TRANSPOSES = [
    ("1d_groups_stride_output_padding", F.conv_transpose1d, (2, 4, 3), (4, 3, 3),
     dict(stride=2, padding=1, output_padding=1, groups=2)),
    ("1d_padding_past_the_kernel", F.conv_transpose1d, (1, 2, 4), (2, 1, 2),
     dict(stride=3, padding=3, output_padding=2, dilation=2)),
    ("2d_dilation", F.conv_transpose2d, (1, 2, 3, 2), (2, 2, 2, 3),
     dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2))),
    ("3d", F.conv_transpose3d, (1, 1, 2, 2, 2), (1, 2, 2, 1, 2), dict(stride=2, padding=1, output_padding=(1, 0, 1))),
    ("1d_unbatched", F.conv_transpose1d, (3, 4), (3, 2, 3), dict(padding=2)),
]


@pytest.mark.parametrize("fn, x_shape, w_shape, kwargs, dtype", _with_float32(CONV_TRANSPOSES, ("2d_dilation",)))
def test_conv_transpose_on_cuda_as_on_the_cpu_without_a_copy_back(fn, x_shape, w_shape, kwargs, dtype):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
              rng.standard_normal(w_shape[1] * kwargs.get("groups", 1)).astype(dtype)]
    cpu, _, _ = _run("cpu", fn, arrays, kwargs)
    cuda, outs, traffic = _run("cuda", fn, arrays, kwargs)
    assert outs[0].device.type == "cuda" and outs[0].dtype == cpu[0].dtype
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()  # (was three copies back and a hand-over)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    for what, a, b in zip(("value", "x grad", "w grad", "bias grad", "tangent"), cpu, cuda):
        np.testing.assert_allclose(b, a, err_msg=what, **tol)


def test_conv_transpose_double_backward_on_cuda_as_on_the_cpu():
    rng = np.random.default_rng(1)
    x0, w0 = rng.standard_normal((1, 2, 3)), rng.standard_normal((2, 2, 2))
    results = []
    for dev in ("cpu", "cuda"):
        x, w = ad.tensor(x0, device=dev, requires_grad=True), ad.tensor(w0, device=dev, requires_grad=True)
        out = F.conv_transpose1d(x, w, stride=2, padding=1)
        gx, = ad.autograd.grad((out * out).sum(), x, create_graph=True)
        gw, = ad.autograd.grad((gx * gx).sum(), w)
        results.append([gx.detach().cpu().numpy(), gw.cpu().numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


POOLS = [
    ("max_pool2d_pad_stride", F.max_pool2d, (1, 1, 5, 6), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool1d_dilation_unbatched", F.max_pool1d, (2, 9), dict(kernel_size=3, stride=2, dilation=2, padding=1)),
    ("max_pool2d_ceil", F.max_pool2d, (1, 1, 5, 5), dict(kernel_size=2, ceil_mode=True)),
    ("max_pool3d", F.max_pool3d, (1, 1, 3, 2, 3), dict(kernel_size=2, stride=(1, 2, 2))),
    ("adaptive1d_uneven", F.adaptive_max_pool1d, (2, 3, 7), dict(output_size=3)),
    ("adaptive2d_uneven", F.adaptive_max_pool2d, (1, 1, 5, 6), dict(output_size=(3, 4))),
    ("adaptive2d_even_unbatched", F.adaptive_max_pool2d, (2, 6, 4), dict(output_size=(3, 2))),
    ("adaptive3d", F.adaptive_max_pool3d, (1, 1, 3, 2, 5), dict(output_size=(2, 1, 2))),
]


@pytest.mark.parametrize("fn, shape, kwargs, dtype",
                         _with_float32(POOLS, ("max_pool2d_pad_stride", "adaptive1d_uneven")))
def test_max_pool_indices_on_cuda_as_on_the_cpu_without_a_copy_back(fn, shape, kwargs, dtype):
    x0 = _pool_input(shape, dtype)
    kwargs = dict(kwargs, return_indices=True)
    cpu, _, _ = _run("cpu", fn, [x0], kwargs)
    cuda, outs, traffic = _run("cuda", fn, [x0], kwargs)
    assert outs[1].device.type == "cuda" and outs[1].dtype == ad.int64
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()  # (was a copy of the whole input)
    _assert_pools_equal(cpu, cuda, dtype)


def _assert_pools_equal(cpu, cuda, dtype):
    """Values, indices and tangents exactly (NaN equal to NaN, signed zeros); gradients too, but for the float32
    sums of an element picked by several windows (added in another order)."""
    for what, a, b in zip(("value", "indices", "gradient", "tangent"), cpu, cuda):
        if what == "gradient" and dtype == np.float32:
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=0, err_msg=what)
            continue
        np.testing.assert_array_equal(b, a, err_msg=what)
        np.testing.assert_array_equal(np.signbit(b), np.signbit(a), err_msg=what)


def test_adaptive_max_pool_without_indices_on_cuda():
    x0 = _pool_input((1, 2, 5, 7), np.float64)
    cpu, _, _ = _run("cpu", F.adaptive_max_pool2d, [x0], dict(output_size=(2, 3)))
    cuda, _, traffic = _run("cuda", F.adaptive_max_pool2d, [x0], dict(output_size=(2, 3)))
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()
    for a, b in zip(cpu, cuda):
        np.testing.assert_array_equal(b, a)


FRACTIONAL = [
    ("2d_given_samples", F.fractional_max_pool2d, (2, 1, 5, 6), dict(kernel_size=2, output_size=(3, 4)), "host"),
    ("2d_drawn_samples_unbatched", F.fractional_max_pool2d, (2, 5, 6), dict(kernel_size=(2, 3), output_ratio=0.5),
     None),
    ("3d_device_samples", F.fractional_max_pool3d, (1, 1, 4, 4, 4), dict(kernel_size=2, output_size=(2, 2, 2)),
     "cuda"),
]


@pytest.mark.parametrize("fn, shape, kwargs, samples, dtype",
                         _with_float32(FRACTIONAL, ("2d_drawn_samples_unbatched",)))
def test_fractional_max_pool_on_cuda_as_on_the_cpu(fn, shape, kwargs, samples, dtype):
    x0 = _pool_input(shape, dtype)
    nd = 2 if fn is F.fractional_max_pool2d else 3
    s0 = np.random.default_rng(3).uniform(size=(shape[0] if len(shape) == nd + 2 else 1, shape[-nd - 1], nd))
    s0 = s0.astype(dtype)
    runs = []
    for dev in ("cpu", "cuda"):
        kw = dict(kwargs, return_indices=True)
        if samples is not None:
            kw["_random_samples"] = s0 if samples == "host" else ad.tensor(s0, device=dev)
        ad.manual_seed(0)  # (drawn samples: the same draws for forward and tangent on both devices)
        state = ad.get_rng_state()

        def fn_seeded(x, state=state, **kw_):
            ad.set_rng_state(state)
            return fn(x, **kw_)

        runs.append(_run(dev, fn_seeded, [x0], kw))
    (cpu, _, _), (cuda, outs, traffic) = runs
    assert outs[1].device.type == "cuda" and outs[1].dtype == ad.int64
    # the samples are the windows' source (index maps are host data): device samples are read once
    assert traffic.count("d2h") == audit.SWEEP_D2H + (samples == "cuda"), traffic.summary()
    _assert_pools_equal(cpu, cuda, dtype)


UNPOOL_VALUES = np.random.default_rng(0).standard_normal((1, 2, 2, 3))
UNPOOL_INDICES = np.array([[[[0, 3, 5], [6, 6, 11]], [[1, 1, 4], [13, 14, 15]]]])  # (repeats: the last one wins)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_unpool_of_cuda_indices_as_on_the_cpu_without_a_copy_back(dtype):
    v0 = UNPOOL_VALUES.astype(dtype)
    runs = []
    for dev in ("cpu", "cuda"):
        index = ad.tensor(UNPOOL_INDICES, device=dev)
        runs.append(_run(dev, lambda v, index=index: F.max_unpool2d(v, index, 2), [v0], {}))
    (cpu, _, _), (cuda, outs, traffic) = runs
    assert outs[0].device.type == "cuda" and outs[0].dtype == cpu[0].dtype
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()  # (was a copy of the indices)
    for what, a, b in zip(("value", "gradient", "tangent"), cpu, cuda):
        np.testing.assert_array_equal(b, a, err_msg=what)


def test_max_unpool_double_backward_on_cuda_as_on_the_cpu():
    results = []
    for dev in ("cpu", "cuda"):
        v = ad.tensor(UNPOOL_VALUES, device=dev, requires_grad=True)
        out = F.max_unpool2d(v, ad.tensor(UNPOOL_INDICES, device=dev), 2)
        gv, = ad.autograd.grad((out * out).sum(), v, create_graph=True)
        gg, = ad.autograd.grad((gv * gv * gv).sum(), v)
        results.append([gv.detach().cpu().numpy(), gg.cpu().numpy()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("pool, unpool, shape", [(F.max_pool1d, F.max_unpool1d, (2, 3, 8)),
                                                 (F.max_pool3d, F.max_unpool3d, (1, 1, 4, 2, 4))],
                         ids=["1d", "3d"])
def test_max_pool_then_unpool_on_cuda_copies_back_only_the_sweep_state(pool, unpool, shape):
    x0 = _pool_input(shape, np.float64)

    def round_trip(x):
        out, index = pool(x, 2, return_indices=True)
        return unpool(out, index, 2)

    cpu, _, _ = _run("cpu", round_trip, [x0], {})
    cuda, _, traffic = _run("cuda", round_trip, [x0], {})
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()
    for what, a, b in zip(("value", "gradient", "tangent"), cpu, cuda):
        np.testing.assert_array_equal(b, a, err_msg=what)


def test_max_unpool_of_an_index_outside_its_plane_makes_the_plane_nan_on_cuda():
    # (the CPU raises torch's RuntimeError; torch's CUDA kernel asserts on the device; a host check would cost a
    # copy back per call)
    values = ad.tensor(np.ones((1, 2, 1, 2)), device="cuda")
    index = ad.tensor(np.array([[[[0, 3]], [[1, 99]]]]), device="cuda")
    out = F.max_unpool2d(values, index, 2).cpu().numpy()
    assert out[0, 0].tolist() == [[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    assert np.isnan(out[0, 1]).all()


def test_max_pool_double_backward_on_cuda_as_on_the_cpu():
    x0 = _pool_input((1, 1, 4, 5), np.float64)
    x0[np.isnan(x0) | np.isinf(x0)] = 0.5
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, device=dev, requires_grad=True)
        out = F.max_pool2d(x, 2, stride=1)
        gx, = ad.autograd.grad((out * out).sum(), x, create_graph=True)
        gg, = ad.autograd.grad((gx * gx * gx).sum(), x)
        results.append([gx.detach().cpu().numpy(), gg.cpu().numpy()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(b, a)


FALLBACKS = [
    ("max_pool_where_chain", F.max_pool2d, (1, 1, 5, 6), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool_indices_separable", F.max_pool1d, (2, 9),
     dict(kernel_size=3, stride=2, dilation=2, padding=1, return_indices=True)),
    ("adaptive_separable", F.adaptive_max_pool2d, (1, 1, 5, 6), dict(output_size=(3, 4), return_indices=True)),
    ("fractional_gathered", F.fractional_max_pool2d, (1, 1, 5, 6),
     dict(kernel_size=2, output_size=(3, 4), return_indices=True, _random_samples=np.array([[[0.3, 0.7]]]))),
]


@pytest.mark.parametrize("fn, shape, kwargs", [c[1:] for c in FALLBACKS], ids=[c[0] for c in FALLBACKS])
def test_pools_of_planes_too_big_for_indexed_gathers_as_on_the_cpu(fn, shape, kwargs, monkeypatch):
    """Planes whose indices the dtype cannot hold exactly (float32: over 2 ** 24 elements) take device ops
    without an indexed gather: still no copy back, still the CPU's picks."""
    from ad.nn.functional import pooling

    x0 = _pool_input(shape, np.float64)
    cpu, _, _ = _run("cpu", fn, [x0], kwargs)
    monkeypatch.setattr(pooling, "_fits_indexed", lambda x, *planes: False)
    cuda, _, traffic = _run("cuda", fn, [x0], kwargs)
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()
    _assert_pools_equal(cpu, cuda, np.float64)


def test_fits_indexed_holds_float32_planes_to_exact_integers():
    from ad.nn.functional import pooling

    x32 = ad.zeros(1, dtype=ad.float32, device="cuda")
    x64 = ad.zeros(1, dtype=ad.float64, device="cuda")
    assert pooling._fits_indexed(x32, (4096, 4096)) and not pooling._fits_indexed(x32, (4096, 4097))
    assert pooling._fits_indexed(x64, (4096, 4097))


@pytest.mark.parametrize("fn, x_shape, w_shape, kwargs", [
    (F.conv_transpose2d, (1, 2, 3, 2), (2, 2, 2, 3), dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2))),
    (F.conv2d, (1, 4, 3, 5), (4, 2, 2, 2), dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)),
], ids=["conv_transpose2d", "conv2d"])
def test_convs_of_samples_too_big_for_indexed_columns_as_on_the_cpu(fn, x_shape, w_shape, kwargs, monkeypatch):
    """A sample whose indices the dtype cannot hold exactly (float32: over 2 ** 24 elements) has its columns
    gathered by strided slices (and a transposed convolution's input spread by ``scatter_strided``) instead."""
    from ad.nn.functional import conv

    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    cpu, _, _ = _run("cpu", fn, arrays, kwargs)
    monkeypatch.setattr(conv, "_device_conv_indexed", lambda *args: None)
    cuda, _, traffic = _run("cuda", fn, arrays, kwargs)
    assert traffic.count("d2h") == audit.SWEEP_D2H, traffic.summary()
    for a, b in zip(cpu, cuda):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


def test_column_tables_are_kept_per_geometry_within_bounds(monkeypatch):
    from ad.nn.functional import conv

    monkeypatch.setattr(conv, "_COLUMN_TABLES", {})
    monkeypatch.setattr(conv, "_MAX_COLUMN_TABLES", 2)
    x0, w0 = np.arange(10.0).reshape(1, 2, 5), np.linspace(-1.0, 1.0, 8).reshape(2, 2, 2)
    x, w = ad.tensor(x0, device="cuda"), ad.tensor(w0, device="cuda")
    for padding in (0, 1, 2, 0):
        expected = F.conv1d(ad.tensor(x0), ad.tensor(w0), padding=padding).numpy()
        np.testing.assert_allclose(F.conv1d(x, w, padding=padding).cpu().numpy(), expected, rtol=1e-14)
        assert len(conv._COLUMN_TABLES) <= 2
    assert [key[2][2] for key in conv._COLUMN_TABLES] == [(2,), (0,)]  # (the oldest dropped first)
    monkeypatch.setattr(conv, "_MAX_COLUMN_TABLE_BYTES", 0)  # (a table over the bound: kept alone)
    F.conv1d(x, w, padding=1)
    assert len(conv._COLUMN_TABLES) == 1
