"""CUDA tensors (issue 10), under numba's simulator in CI (``NUMBA_ENABLE_CUDASIM=1``, set by tests/conftest.py)
and unchanged on a GPU.

- The issue's graph (tanh, matmul, exp, sin, broadcasting add, mean, log_softmax, cross entropy) on
  ``device="cuda"`` against the same graph on the CPU, in float64 to 1e-10: first order, second order
  (``create_graph``) and forward mode.
- The op table (``tests/test_op_table.py``'s cases) on CUDA against the CPU, values and gradients, for every
  case whose ops have a CUDA path; the others must raise ``NotImplementedError`` naming the op (never a
  silent host round trip: under the simulator, a device array refuses implicit numpy conversion).
- Device API semantics and errors, as torch's.

Sizes stay tiny: the simulator costs about 75 us per simulated thread.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ad
import ad.nn.functional as F

TESTS = Path(__file__).resolve().parent.parent

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)


def _issue_graph(dev, x0, w0, b0, target):
    """The issue's graph: tanh, matmul, exp, sin, broadcasting add, mean, log_softmax, cross entropy."""
    x = ad.tensor(x0, device=dev, requires_grad=True)
    w = ad.tensor(w0, device=dev, requires_grad=True)
    b = ad.tensor(b0, device=dev, requires_grad=True)
    return (x, w, b), lambda x, w, b: _loss(x, w, b, ad.tensor(target, device=dev))


def _loss(x, w, b, target):
    h = ad.tanh(x @ w)
    h = ad.exp(h) * 0.5 + ad.sin(h) + b  # b: (3,) broadcast over rows
    logp = F.log_softmax(h - h.mean(), dim=1)
    return F.cross_entropy(logp, target)


@pytest.fixture(scope="module")
def issue_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3), np.array([0, 2, 1])


def _both(issue_inputs):
    return [_issue_graph(dev, *issue_inputs) for dev in ("cpu", "cuda")]


def _host(t):
    return t.detach().cpu().numpy()


def test_issue_graph_first_order(issue_inputs):
    results = []
    for leaves, f in _both(issue_inputs):
        loss = f(*leaves)
        loss.backward()
        results.append((loss, [leaf.grad for leaf in leaves]))
    (lc, gc), (lg, gg) = results
    assert lg.device == ad.device("cuda:0") and all(g.is_cuda for g in gg)
    np.testing.assert_allclose(_host(lg), _host(lc), rtol=0, atol=1e-10)
    for a, b in zip(gc, gg):
        np.testing.assert_allclose(_host(b), _host(a), rtol=0, atol=1e-10)


def test_issue_graph_second_order(issue_inputs):
    results = []
    for leaves, f in _both(issue_inputs):
        grads = ad.autograd.grad(f(*leaves), leaves, create_graph=True)
        total = sum((g * g).sum() for g in grads)
        results.append(ad.autograd.grad(total, leaves))
    for a, b in zip(*results):
        assert b.is_cuda
        np.testing.assert_allclose(_host(b), _host(a), rtol=0, atol=1e-10)


def test_issue_graph_forward_mode(issue_inputs):
    import ad.autograd.forward_ad as fwAD

    rng = np.random.default_rng(1)
    tangents = [rng.standard_normal(s) for s in ((3, 4), (4, 3), (3,))]
    results = []
    for dev in ("cpu", "cuda"):
        leaves, f = _issue_graph(dev, *issue_inputs)
        with fwAD.dual_level():
            duals = [fwAD.make_dual(leaf.detach(), ad.tensor(t, device=dev)) for leaf, t in zip(leaves, tangents)]
            results.append(fwAD.unpack_dual(f(*duals)).tangent)
    assert results[1].is_cuda
    np.testing.assert_allclose(_host(results[1]), _host(results[0]), rtol=0, atol=1e-10)


# --- the op table on CUDA -------------------------------------------------------------------------------------


def _op_table():
    spec = importlib.util.spec_from_file_location("_op_table_for_cuda", TESTS / "test_op_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(TESTS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(TESTS))
    return module


OP_TABLE = _op_table()
_FACTORIES = ("tensor", "as_tensor", "zeros", "ones", "full", "arange", "linspace", "eye", "rand", "randn")


_DEFAULT_DEVICE = [None]


@pytest.fixture
def cuda_by_default(monkeypatch):
    """While ``_DEFAULT_DEVICE[0]`` is set, the factories the cases call put their constants there (the cases
    are written for the CPU); ``device=`` given explicitly still wins."""
    for name in _FACTORIES:
        fn = getattr(ad, name)

        def on_default(*args, _fn=fn, **kwargs):
            if _DEFAULT_DEVICE[0] is not None:
                kwargs.setdefault("device", _DEFAULT_DEVICE[0])
            return _fn(*args, **kwargs)

        monkeypatch.setattr(ad, name, on_default)


def _run_case(name, dev):
    fn, shapes, _ = OP_TABLE._case(name)
    lo, hi = OP_TABLE._domain(name)
    rng = np.random.default_rng(0)
    xs = [ad.tensor(rng.uniform(lo, hi, size=s), device=dev, requires_grad=True) for s in shapes]
    out = fn(*xs)
    w = ad.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(out.shape), device=dev)
    loss = (out * w).sum()
    grads = ad.autograd.grad(loss, xs, allow_unused=True)
    return out, grads


# the cases whose ops all have a CUDA path (checked against the CPU below); cases of other ops are not yet run on
# CUDA: most of them make CPU constants inside and raise the cross-device error rather than NotImplementedError
CUDA_CASES = (
    "amax",
    "amin",
    "max_all",
    "min_all",
    "aminmax",
    "max_dim",
    "erfinv",
    "logit",
    "round",
    "abs",
    "acos",
    "acosh",
    "add",
    "addbmm",
    "addcmul_addcdiv",
    "addmm",
    "addmv",
    "affine",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "baddbmm",
    "bmm",
    "broadcast_tensors",
    "cast",
    "cat",
    "cdist",
    "ceil",
    "chain_like_multi_dot",
    "clamp",
    "clone_function",
    "copy",
    "copysign",
    "cos",
    "cosh",
    "cross",
    "cross_entropy",
    "deg2rad_rad2deg",
    "diag",
    "diag_embed",
    "diag_vector",
    "diagonal",
    "div",
    "dot",
    "einsum_batch_ellipsis",
    "einsum_broadcast_one",
    "einsum_hadamard_sum",
    "einsum_matmul",
    "einsum_repeated_across",
    "einsum_sublist",
    "einsum_three",
    "einsum_trace_diag",
    "erf",
    "erfc",
    "exp",
    "exp2",
    "expand",
    "expm1",
    "floor",
    "fmod",
    "frac",
    "gather",
    "gather_map",
    "gather_strided",
    "getitem",
    "hypot",
    "index_add",
    "index_select",
    "inner",
    "kron",
    "kthvalue",
    "linear",
    "linear_batched",
    "linear_bias",
    "log",
    "log10",
    "log1p",
    "log2",
    "log_softmax",
    "log_softmax_3d",
    "logaddexp",
    "masked_select",
    "matmul",
    "matmul_batched",
    "matmul_vec",
    "max_dim",
    "maximum",
    "mean",
    "mean_all",
    "meshgrid",
    "min_dim",
    "minimum",
    "mse_loss",
    "msort",
    "mul",
    "multi_dot",
    "mv",
    "nan_to_num",
    "neg",
    "nn_adaptive_max_pool2d",
    "nn_batch_norm_eval",
    "nn_batch_norm_train",
    "nn_bilinear",
    "nn_cross_entropy",
    "nn_cross_entropy_kdim",
    "nn_cross_entropy_probs",
    "nn_embedding",
    "nn_gelu",
    "nn_glu",
    "nn_group_norm",
    "nn_hardshrink",
    "nn_hardswish",
    "nn_huber_loss",
    "nn_instance_norm",
    "nn_kl_div",
    "nn_l1_loss",
    "nn_layer_norm",
    "nn_leaky_relu",
    "nn_linear",
    "nn_margin_ranking_loss",
    "nn_max_pool1d",
    "nn_max_pool2d",
    "nn_normalize",
    "nn_pairwise_distance",
    "nn_pixel_shuffle",
    "nn_poisson_nll_loss",
    "nn_prelu",
    "nn_rrelu_eval",
    "nn_silu",
    "nn_smooth_l1_loss",
    "nn_softmin",
    "nn_softshrink",
    "nn_softsign",
    "nn_tanhshrink",
    "nn_threshold",
    "nn_triplet_margin_loss",
    "norm",
    "permute",
    "pow",
    "pow_scalar",
    "rdiv_scalar",
    "relu",
    "remainder",
    "repeat",
    "repeat_interleave",
    "reshape",
    "roll",
    "rpow_scalar",
    "rsqrt",
    "scatter_add",
    "scatter_map",
    "scatter_strided",
    "select",
    "sigmoid",
    "sign",
    "sin",
    "sinc",
    "sinh",
    "softmax",
    "sort",
    "split_chunk",
    "sqrt",
    "square",
    "squeeze_unsqueeze_flatten",
    "stack",
    "stacks",
    "sub",
    "sum",
    "sum_all",
    "take",
    "take_along_dim",
    "tan",
    "tanh",
    "tanh_backward",
    "tensordot",
    "tensordot_int",
    "tile",
    "topk",
    "trace",
    "transpose",
    "trunc",
    "unbind",
    "vander",
    "var",
    "vdot",
    "vecdot",
    "view_chain",
    "view_ops_composed",
    "where",
    "xlogy",
)
# cases that run on CUDA since session 5: ad's numpy-forward primitives (scans, special functions, linear algebra,
# conv) through the documented host round trip (autograd/function.py ``_host_round_trip``), host masks copied to
# the device (``where``), flip/rot90 as device gathers, composites whose primitives now run there
CUDA_CASES += (
    "cholesky_solve", "cumprod", "cumprod_with_zero", "cumsum", "digamma", "dist", "flip", "fliplr_flipud",
    "index_copy", "index_fill", "index_put", "lgamma", "linalg_cholesky", "linalg_cond", "linalg_det",
    "linalg_diagonal", "linalg_eigh", "linalg_eigh_upper_batched", "linalg_householder_product",
    "linalg_householder_product_batched", "linalg_inv", "linalg_lu", "linalg_lu_tall", "linalg_lu_wide",
    "linalg_matrix_exp", "linalg_matrix_norm", "linalg_matrix_norm_spectral", "linalg_matrix_power", "linalg_norm",
    "linalg_pinv", "linalg_pinv_wide", "linalg_qr", "linalg_qr_square_batched", "linalg_qr_wide", "linalg_solve",
    "linalg_solve_triangular", "linalg_solve_triangular_right", "linalg_solve_vector_left_false", "linalg_svd",
    "linalg_svd_wide_full", "linalg_svdvals", "linalg_tensorinv", "linalg_tensorsolve", "linalg_vector_norm",
    "linalg_vector_norm_inf", "linalg_vector_norm_small_ord", "masked_scatter", "nn_bce_with_logits", "nn_celu",
    "nn_conv1d", "nn_conv2d", "nn_conv3d", "nn_conv_transpose1d", "nn_conv_transpose2d",
    "nn_cosine_embedding_loss", "nn_elu", "nn_hardtanh", "nn_hinge_embedding_loss", "nn_logsigmoid", "nn_mish",
    "nn_relu6", "nn_selu", "nn_softplus", "nn_unfold_fold", "norm_p", "polygamma", "rot90", "scatter_src",
    "scatter_value_method", "tril_triu", "logsumexp", "fmax_fmin", "lerp", "nn_hardsigmoid",
    "nn_binary_cross_entropy", "nn_gaussian_nll_loss", "nn_cosine_similarity", "masked_fill", "nn_pad",
    "nn_avg_pool1d", "nn_avg_pool2d", "nn_adaptive_avg_pool", "nn_sdpa", "nn_interpolate", "nn_interpolate_linear",
    "nn_interpolate_cubic_antialias_area",
    "nn_local_response_norm", "nn_conv2d_same", "nn_cross_entropy_combined", "nn_cross_entropy_general",
    "nn_nll_loss",
)  # fmt: skip
# runs on CUDA (equal to the CPU) since cuda-ops was merged onto the device tape (session 5)
CUDA_CASES += ("linalg_slogdet",)
# issue 13 leftovers (session 6): the normalizations' parameter layouts (the composite of ad ops on CUDA), the
# in-place view ops
CUDA_CASES += ("nn_norm_layouts", "inplace_views")
# runs on CUDA since session 6 (cuda-ops): prod (device reduction), nansum (NaN mask on the device),
# logcumsumexp (device maxima and scan), cummax/cummin, median and the scatter reductions (index maps from host
# copies, values gathered on the device), the LAPACK composites through the host round trip (``@on_host``)
CUDA_CASES += (
    "prod", "cummax_cummin", "linalg_lstsq", "linalg_lu_factor", "linalg_lu_solve", "linalg_solve_ex",
    "logcumsumexp", "logdet", "lu_unpack", "median", "nanmedian", "nansum_nanmean", "scatter_multiply",
    "scatter_reduce_amax_amin", "scatter_reduce_prod", "scatter_reduce_sum_mean",
)  # fmt: skip
# writes through views and reads of views after a write: CUDA views share their base's device memory (cuda-views)
CUDA_CASES += ("as_strided_view", "view_write_base", "view_write_constant")
# session 15 (nnfunc): the functionals added then, composites of ops that run on CUDA (index maps from host copies)
CUDA_CASES += (
    "nn_grid_sample", "nn_affine_grid_sample_3d", "nn_ctc_loss", "nn_embedding_bag", "nn_pdist_lp_pool",
    "nn_max_unpool_fractional", "nn_multilabel_losses", "nn_channel_shuffle",
)  # fmt: skip
# torch's wider surface (session 8): compositions of ops that run on CUDA
CUDA_CASES += (
    "tensor_split_hsplit", "unfold_windows", "diagflat_block_diag", "cartesian_combinations", "scatters_into_copy",
    "sum_to_size_diff", "fill_diagonal_inplace", "logic_composites", "quantile_nanquantile", "cov_corrcoef",
    "mode_trapezoid_renorm",
)  # fmt: skip

# torch.special (session 11): Python-swept Functions through the host round trip, composites, index_reduce
CUDA_CASES += (
    "special_i0_i1", "special_ndtr", "special_ndtri_entr", "special_xlog1py", "special_zeta_igamma", "index_reduce",
)  # fmt: skip
# session 17: as_strided_copy, a gather of storage positions (an index map from host copies)
CUDA_CASES += ("as_strided_copy",)
# session 20: the gather by device indices that max pooling, max unpooling and the convolutions' columns use
CUDA_CASES += ("gather_indexed",)
# session 18: as_strided views (device arrays over the base's memory) and as_strided_scatter (index maps)
CUDA_CASES += ("as_strided", "as_strided_scatter", "segment_reduce")
# session 19: the activations as one row each (the device kernels' pointwise formulas)
CUDA_CASES += ("silu", "gelu", "mish", "elu", "celu")
# session 20: binary_cross_entropy_with_logits' row
CUDA_CASES += ("binary_cross_entropy_with_logits",)


def test_every_op_table_case_runs_on_cuda():
    assert sorted(set(OP_TABLE.ALL_CASES) - set(CUDA_CASES)) == []


@pytest.mark.parametrize("name", CUDA_CASES)
def test_op_table_case_on_cuda(name, cuda_by_default):
    _DEFAULT_DEVICE[0] = "cuda"
    try:
        out_g, grads_g = _run_case(name, "cuda")
    finally:
        _DEFAULT_DEVICE[0] = None
    out_c, grads_c = _run_case(name, "cpu")
    assert out_g.is_cuda
    np.testing.assert_allclose(_host(out_g), _host(out_c), rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_c, grads_g):
        assert (a is None) == (b is None)
        if a is not None:
            assert b.is_cuda
            np.testing.assert_allclose(_host(b), _host(a), rtol=1e-12, atol=1e-12)


# second order (double backward) and forward mode on a representative subset: device kernels (sort, max over a
# dim, flip), the host round trip (cumsum, det, solve, conv2d), composites with host masks or shifts
HIGHER_ORDER_CASES = (
    "cumsum", "linalg_det", "linalg_solve", "nn_conv2d", "sort", "max_dim", "flip", "logsumexp", "nn_elu",
    "tril_triu", "nn_layer_norm", "log_softmax",
)  # fmt: skip
HIGHER_ORDER_CASES += ("as_strided_view", "view_write_base")  # writes through views sharing device memory
HIGHER_ORDER_CASES += ("as_strided",)
HIGHER_ORDER_CASES += ("gelu", "elu")  # the activations' rows: their rules run on device tensors


def _inputs(name, dev):
    fn, shapes, _ = OP_TABLE._case(name)
    lo, hi = OP_TABLE._domain(name)
    rng = np.random.default_rng(0)
    return fn, [ad.tensor(rng.uniform(lo, hi, size=s), device=dev, requires_grad=True) for s in shapes]


def _second_order(name, dev):
    fn, xs = _inputs(name, dev)
    out = fn(*xs)
    w = ad.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(out.shape), device=dev)
    grads = ad.autograd.grad((out * out * w).sum(), xs, create_graph=True)  # (squared: linear ops too)
    total = sum((g * g).sum() for g in grads)
    return ad.autograd.grad(total, xs, allow_unused=True)


def _forward_mode(name, dev):
    import ad.autograd.forward_ad as fwAD

    fn, xs = _inputs(name, dev)
    rng = np.random.default_rng(1)
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach(), ad.tensor(rng.standard_normal(x.shape), device=dev)) for x in xs]
        return [fwAD.unpack_dual(fn(*duals)).tangent]


@pytest.mark.parametrize("order", [_second_order, _forward_mode], ids=["second_order", "forward_mode"])
@pytest.mark.parametrize("name", HIGHER_ORDER_CASES)
def test_op_table_case_on_cuda_higher_order(name, order, cuda_by_default):
    _DEFAULT_DEVICE[0] = "cuda"
    try:
        on_cuda = order(name, "cuda")
    finally:
        _DEFAULT_DEVICE[0] = None
    on_cpu = order(name, "cpu")
    for a, b in zip(on_cpu, on_cuda):
        assert (a is None) == (b is None)
        if a is not None:
            assert b.is_cuda
            np.testing.assert_allclose(_host(b), _host(a), rtol=1e-10, atol=1e-10)


# --- device API semantics -------------------------------------------------------------------------------------


def test_device_objects():
    assert ad.device("cuda") == ad.device("cuda") and ad.device("cuda:0") != ad.device("cuda")
    assert ad.device("cuda", 0) == ad.device("cuda:0") and str(ad.device("cuda:0")) == "cuda:0"
    assert ad.cuda.is_available() and ad.cuda.device_count() >= 1 and ad.cuda.current_device() == 0
    ad.cuda.synchronize()


def test_factories_take_device():
    made = [
        ad.tensor([1.0, 2.0], device="cuda"),
        ad.zeros(2, 3, device="cuda"),
        ad.ones(2, device="cuda:0"),
        ad.full((2,), 7.0, device=ad.device("cuda")),
        ad.empty(3, device="cuda"),
        ad.arange(4, device="cuda"),
        ad.linspace(0.0, 1.0, 5, device="cuda"),
        ad.eye(2, device="cuda"),
        ad.rand(2, device="cuda"),
        ad.randn(2, device="cuda"),
    ]
    for t in made:
        assert t.is_cuda and t.device == ad.device("cuda:0") and t.is_leaf
    np.testing.assert_array_equal(made[3].cpu().numpy(), [7.0, 7.0])
    np.testing.assert_array_equal(made[5].cpu().numpy(), np.arange(4))
    like = [ad.zeros_like(made[1]), ad.ones_like(made[1]), ad.full_like(made[1], 2.0), ad.randn_like(made[1])]
    assert all(t.is_cuda and t.shape == (2, 3) for t in like)
    assert not ad.zeros_like(made[1], device="cpu").is_cuda
    x = ad.tensor([1.0], device="cuda", requires_grad=True)
    assert x.requires_grad and x.is_leaf


def test_to_cuda_cpu_are_differentiable_copies():
    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.cuda()
    assert y.is_cuda and y.grad_fn.name() == "ToCopyBackward0"
    assert x.to("cpu") is x and y.to("cuda:0") is y and y.cuda() is y
    z = (y * y).sum()
    z.backward()
    assert not x.grad.is_cuda
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    back = y.cpu()
    assert not back.is_cuda and back.grad_fn.name() == "ToCopyBackward0"
    g = ad.autograd.grad((back * 3.0).sum(), x, create_graph=True)[0]
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 3.0, 3.0])
    f32 = y.to(ad.float32)
    assert f32.is_cuda and f32.dtype == np.float32
    both = x.to("cuda", ad.float32)
    assert both.is_cuda and both.dtype == np.float32


def test_cross_device_ops_raise_torchs_error():
    a = ad.ones(3, device="cuda")
    b = ad.ones(3)
    message = r"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    mixed = (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: ad.cat([a, b]), lambda: ad.where(a > 0, a, b))
    for f in mixed:
        with pytest.raises(RuntimeError, match=message):
            f()
    # as torch, a 0-d CPU tensor is a scalar usable with CUDA tensors
    np.testing.assert_allclose((a + ad.tensor(2.0)).cpu().numpy(), [3.0, 3.0, 3.0])


def test_numpy_of_cuda_tensor_raises_as_torch():
    t = ad.ones(2, device="cuda")
    message = r"can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu\(\) to copy the tensor to host"
    with pytest.raises(TypeError, match=message):
        t.numpy()
    with pytest.raises(TypeError, match=message):
        np.asarray(t)
    assert t.item() if t.numel() == 1 else t.tolist() == [1.0, 1.0]
    assert ad.tensor(3.5, device="cuda").item() == 3.5
    assert "device='cuda:0'" in repr(t)


def test_cuda_array_interface_both_ways():
    t = ad.arange(6, dtype=ad.float64, device="cuda").reshape(2, 3)
    cai = t.__cuda_array_interface__
    assert tuple(cai["shape"]) == (2, 3) and cai["typestr"] == "<f8" and cai["version"] >= 2
    assert not hasattr(ad.ones(2), "__cuda_array_interface__")
    with pytest.raises(RuntimeError, match="requires grad"):
        ad.ones(2, device="cuda", requires_grad=True).__cuda_array_interface__  # noqa: B018
    shared = ad.as_tensor(t)
    assert shared is t
    from ad.cuda.arrays import to_device

    darr = to_device(np.array([1.0, 2.0, 3.0]))
    u = ad.as_tensor(darr)
    v = ad.asarray(darr)
    assert u.is_cuda and v.is_cuda
    assert u.__cuda_array_interface__["data"][0] == darr_pointer(darr) == v.__cuda_array_interface__["data"][0]
    # an object that only has the interface (as CuPy's or torch's CUDA tensors): viewed, not copied
    w = ad.as_tensor(_CAIOnly(t.detach()))
    assert w.is_cuda and w.__cuda_array_interface__["data"][0] == cai["data"][0]
    np.testing.assert_array_equal(w.cpu().numpy(), np.arange(6.0).reshape(2, 3))


class _CAIOnly:
    def __init__(self, t):
        self.__cuda_array_interface__ = t.__cuda_array_interface__


def darr_pointer(darr):
    from ad.cuda.arrays import cuda_array_interface

    return cuda_array_interface(darr)["data"][0]


def test_prod_with_zeros_on_cuda_as_on_the_cpu():
    """prod's gradient at zeros (torch's rule: one zero in a group gets the product of the others, two give 0)
    by the device sweep, and in second order (create_graph: the graph sweep) and forward mode."""
    import ad.autograd.forward_ad as fwAD

    x0 = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, 2.0, 3.0]])
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, device=dev, requires_grad=True)
        (g,) = ad.autograd.grad((x.prod(1) * ad.tensor([1.0, 2.0, 3.0], device=dev)).sum(), x, create_graph=True)
        (gg,) = ad.autograd.grad((g * g).sum(), x)
        with fwAD.dual_level():
            dual = fwAD.make_dual(x.detach(), ad.tensor(np.ones((3, 3)), device=dev))
            tangent = fwAD.unpack_dual(dual.prod(0)).tangent
        results.append([_host(t) for t in (g, gg, tangent, x.prod())])
    np.testing.assert_allclose(results[0][0], [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0], [18.0, 13.5, 9.0]])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_nonfinite_pooling_masked_attention_integer_pooling_on_cuda_as_on_the_cpu():
    """avg pooling of input holding NaN / inf (the gathered path: the NaN stays in its windows), attention with a
    query whose every key is masked out (zero output and gradient) and int64 average pooling: CUDA equals CPU."""
    x0 = np.array([[[np.nan, 1.0, 2.0, 3.0, np.inf, 5.0]]])
    q0 = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    keep = np.array([[False, False, False], [True, False, True], [True, True, True]])
    results = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(x0, device=dev, requires_grad=True)
        pooled = F.avg_pool1d(x, 2)
        (gx,) = ad.autograd.grad((pooled * ad.tensor([[[1.0, 2.0, 3.0]]], device=dev)).sum(), x)
        q = ad.tensor(q0, device=dev, requires_grad=True)
        att = F.scaled_dot_product_attention(q, q, q, attn_mask=ad.tensor(keep, device=dev))
        (gq,) = ad.autograd.grad(att.sum(), q)
        ints = F.avg_pool1d(ad.tensor([[[-1, -2, 3, 4, -5, 7]]], device=dev), 2)
        results.append([_host(t) for t in (pooled, gx, att, gq, ints)])
    np.testing.assert_array_equal(results[0][0], [[[np.nan, 2.5, np.inf]]])
    np.testing.assert_array_equal(results[0][2][0], 0.0)
    np.testing.assert_array_equal(results[0][4], [[[-1, 3, 1]]])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_grad_accumulates_on_the_device():
    x = ad.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    assert x.grad.is_cuda
    np.testing.assert_allclose(x.grad.cpu().numpy(), [5.0, 7.0])


def test_import_ad_does_not_import_numba_cuda():
    code = "import sys, ad; assert 'numba.cuda' not in sys.modules; ad.ones(2); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=TESTS.parent, check=True)
    assert out.stdout.strip() == "ok"


def test_backward_from_a_cpu_output_through_cpu_copy_of_a_cuda_graph():
    x = ad.tensor([0.5, 1.0, 2.0], device="cuda", requires_grad=True)
    h = ad.sin(x) * x
    loss = (h.cpu() ** 2).sum()  # a CPU graph on top of a CUDA one
    loss.backward()
    expected = (
        2
        * (np.sin([0.5, 1.0, 2.0]) * [0.5, 1.0, 2.0])
        * (np.cos([0.5, 1.0, 2.0]) * [0.5, 1.0, 2.0] + np.sin([0.5, 1.0, 2.0]))
    )
    assert x.grad.is_cuda
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected, rtol=1e-12)


def test_hooks_and_retain_grad_on_cuda_tensors():
    x = ad.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.device) or g * 2.0)
    (y * y).sum().backward()
    assert seen == [ad.device("cuda:0")] and y.grad.is_cuda
    np.testing.assert_allclose(y.grad.cpu().numpy(), [12.0, 24.0])  # (as torch: retain_grad sees the hooked value)
    np.testing.assert_allclose(x.grad.cpu().numpy(), [36.0, 72.0])
    z = (x.exp() * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        z.backward()


@pytest.mark.parametrize(
    "make",
    [
        lambda c, x: ad.where(c, 1, 0),
        lambda c, x: ad.where(c, 1.0, 0),
        lambda c, x: ad.where(c, x, 0.0),
        lambda c, x: ad.where(c, 2, x),
        lambda c, x: ad.where(c, x, ad.tensor(0.5, dtype=ad.float64, device=x.device)),
    ],
)
def test_where_number_operands_dtype_as_on_the_cpu(make):
    # Python numbers are torch's weak scalars on the device too: a float32 tensor stays float32, two
    # integers give int64 (the device path used to make every number float64)
    xh = ad.tensor([1.0, -2.0, 3.0], dtype=ad.float32)
    ch = xh > 0
    want = make(ch, xh)
    got = make(ch.cuda(), xh.cuda())
    assert got.device.type == "cuda" and got.dtype == want.dtype
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


def test_deepcopy_of_a_cuda_leaf_and_of_a_module_on_cuda():
    import copy

    x = ad.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    (x * x).sum().backward()
    y = copy.deepcopy(x)
    assert y.is_cuda and y.requires_grad and y.is_leaf and y.dtype == x.dtype
    np.testing.assert_array_equal(y.detach().cpu().numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(y.grad.cpu().numpy(), [2.0, 4.0, 6.0])
    with ad.no_grad():
        y.mul_(10.0)
    np.testing.assert_array_equal(x.detach().cpu().numpy(), [1.0, 2.0, 3.0])  # its own storage
    model = ad.nn.Linear(3, 2).cuda()
    twin = copy.deepcopy(model)
    assert all(p.is_cuda for p in twin.parameters())
    for a, b in zip(model.parameters(), twin.parameters()):
        assert a is not b
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())


def test_parameter_of_a_cuda_tensor_is_a_cuda_leaf():
    p = ad.nn.Parameter(ad.tensor([1.0, -2.0], device="cuda"))
    assert p.is_cuda and p.requires_grad and p.is_leaf
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.cpu().numpy(), [2.0, -4.0])


def test_module_cuda_and_cpu_move_parameters_with_their_device():
    m = ad.nn.Linear(3, 2)
    w0 = m.weight.detach().numpy().copy()
    m.cuda()
    assert all(p.is_cuda and p.device.type == "cuda" for p in m.parameters())
    x = np.arange(12.0).reshape(4, 3)
    out = m(ad.tensor(x, device="cuda"))
    assert out.is_cuda
    out.sum().backward()
    assert m.weight.grad.is_cuda
    np.testing.assert_allclose(m.weight.grad.cpu().numpy(), np.tile(x.sum(0), (2, 1)))
    m.cpu()
    assert not any(p.is_cuda for p in m.parameters()) and not m.weight.grad.is_cuda
    np.testing.assert_array_equal(m.weight.detach().numpy(), w0)


def test_numpy_without_row_stack_and_old_numba_cuda_is_refused_by_name(monkeypatch):
    """numba-cuda <= 0.30.4 cannot compile kernels with numpy 2.5 (no np.row_stack): ad says so, before a kernel."""
    import importlib.metadata

    from ad.cuda import arrays

    monkeypatch.delattr(np, "row_stack", raising=False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.30.4")
    with pytest.raises(RuntimeError, match=r"numba-cuda 0\.30\.4 cannot compile CUDA kernels with numpy .*numpy<2\.5"):
        arrays._refuse_numpy_without_row_stack()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.31.0")
    arrays._refuse_numpy_without_row_stack()  # a release after the bug: no refusal
    monkeypatch.setattr(np, "row_stack", np.vstack, raising=False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.30.4")
    arrays._refuse_numpy_without_row_stack()  # numpy < 2.5 (or the alias restored): nothing to refuse


# batched tangents (make_dual(is_batched=True)) on CUDA, and is_grads_batched (one differentiable sweep carrying the
# batch as batched tangents): every case of CUDA_CASES matched the CPU's when this was written (319 cases, 187 s
# and several minutes under the simulator: too slow for CI); these run in CI: the
# higher-order subset, and the cases whose rules once made a tangent or a constant on the host (zero tangents
# of joins, CPU 0-d operands beside CUDA duals)
BATCHED_TANGENT_CASES = HIGHER_ORDER_CASES + (
    "vander", "lerp", "scatter_multiply", "scatter_reduce_prod", "diagflat_block_diag", "index_reduce",
    "split_chunk",  # (a device op expands a split output inside a tangent rule, under no_grad: ad/views.py alias)
)  # fmt: skip


def _batched_tangents(name, dev, nb=3):
    import ad.autograd.forward_ad as fwAD

    fn, xs = _inputs(name, dev)
    rng = np.random.default_rng(1)
    with fwAD.dual_level():
        duals = [
            fwAD.make_dual(x.detach(), ad.tensor(rng.standard_normal((nb, *x.shape)), device=dev), is_batched=True)
            for x in xs
        ]
        out = fwAD.unpack_dual(fn(*duals))
        assert out.tangent.shape == (nb, *out.primal.shape)
        return out.tangent


@pytest.mark.parametrize("name", BATCHED_TANGENT_CASES)
def test_batched_tangents_on_cuda_match_the_cpu(name, cuda_by_default):
    _DEFAULT_DEVICE[0] = "cuda"
    try:
        on_cuda = _batched_tangents(name, "cuda")
    finally:
        _DEFAULT_DEVICE[0] = None
    assert on_cuda.is_cuda
    np.testing.assert_allclose(_host(on_cuda), _host(_batched_tangents(name, "cpu")), rtol=1e-10, atol=1e-10)


def _batched_grads(name, dev, nb=3):
    """``grad(..., is_grads_batched=True)`` of the case with nb cotangents: on CUDA one differentiable sweep whose
    device ops carry the batch as batched tangents (or a loop where the graph has Python-swept rows)."""
    fn, xs = _inputs(name, dev)
    out = fn(*xs)
    cots = ad.tensor(np.random.default_rng(2).standard_normal((nb, *out.shape)), device=dev)
    grads = ad.autograd.grad(out, xs, cots, is_grads_batched=True, allow_unused=True)
    for g, x in zip(grads, xs):
        assert g is None or (g.shape == (nb, *x.shape) and g.device == x.device)
    return grads


@pytest.mark.parametrize("name", BATCHED_TANGENT_CASES)
def test_batched_grads_on_cuda_match_the_cpu(name, cuda_by_default):
    _DEFAULT_DEVICE[0] = "cuda"
    try:
        on_cuda = _batched_grads(name, "cuda")
    finally:
        _DEFAULT_DEVICE[0] = None
    for gc, gg in zip(_batched_grads(name, "cpu"), on_cuda):
        assert (gc is None) == (gg is None)
        if gc is not None:
            np.testing.assert_allclose(_host(gg), _host(gc), rtol=1e-10, atol=1e-10)


def test_cpu_scalar_tensor_beside_a_cuda_dual():
    """torch's CPU 0-d tensors combine with CUDA tensors; in forward mode too (a dual on either side)."""
    import ad.autograd.forward_ad as fwAD

    x = ad.tensor([0.2, 0.4], device="cuda")
    with fwAD.dual_level():
        w = fwAD.make_dual(ad.tensor(0.5), ad.tensor(2.0))  # d(w x) = 2 x
        out = fwAD.unpack_dual(w * x)
        assert out.tangent.is_cuda
        np.testing.assert_allclose(_host(out.tangent), [0.4, 0.8])
        dx = fwAD.make_dual(x, ad.tensor([1.0, 1.0], device="cuda"))  # d(w x) = 2 x + w
        np.testing.assert_allclose(_host(fwAD.unpack_dual(w * dx).tangent), [0.9, 1.3])
        y = ad.tensor([0.8, 0.8], device="cuda")
        np.testing.assert_allclose(_host(fwAD.unpack_dual(ad.lerp(dx, y, 0.75)).tangent), [0.25, 0.25])


def test_bool_reductions_and_integer_casts_of_cuda_tensors():
    """all / any / count_nonzero (reduced on a host copy, the result back on the device) and the integer and bool
    casts (.long(), .int(), .bool(): on the device, no graph) of CUDA tensors, against the CPU's."""
    a = np.array([[1.5, 0.0, -2.0], [0.0, 0.0, 3.0]])
    got = {}
    for dev in ("cpu", "cuda"):
        x = ad.tensor(a, device=dev, requires_grad=True)
        res = [x.all(), x.any(), (x != 0).all(-1), x.any(0, keepdim=True), ad.count_nonzero(x, 1), ad.count_nonzero(x),
               x.long(), x.int(), x.bool(), ad.tensor([1, 0], dtype=ad.uint8, device=dev).all()]
        assert all(r.device == x.device and not r.requires_grad for r in res)
        got[dev] = [(_host(r), r.dtype) for r in res]
    for (c, cd), (g, gd) in zip(got["cpu"], got["cuda"]):
        assert cd == gd
        np.testing.assert_array_equal(g, c)
