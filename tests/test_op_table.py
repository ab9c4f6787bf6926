"""The generic check over the op table: every entry of ``ad.ops.OPS``, in float64.

For each op: reverse mode (compiled kernel sweep) against central finite differences (``gradcheck``), the
kernel sweep against the differentiable sweep (``create_graph=True``), second order (``gradgradcheck``),
and float32 end to end. ``EXAMPLES`` says how to call each op; the input domain comes from the op's
``sample`` in the table. A new op without an example fails ``test_every_op_has_an_example``.

Op families add their cases in ``tests/cases_<family>.py``: a dict ``CASES`` of
``name -> (function of the input tensors, input shapes[, options])``, where options may hold gradcheck
tolerances (``eps``, ``atol``, ``rtol``) and the input ``domain`` ``(lo, hi)`` (default: the op's ``sample``
in the table, else ``(-2, 2)``). A primitive's case is named as its entry in ``ad.ops.OPS``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import ad
from ad import ops
from ad.ops import OPS


def _ramp(like, *shape):
    """A constant 0, 1, 2, ... of ``shape`` in the dtype of ``like`` (so float32 graphs stay float32)."""
    n = int(np.prod(shape))
    return ad.tensor(np.arange(n, dtype=like.dtype).reshape(shape))


def _as_strided_views(x):
    """``as_strided`` views (ad/as_strided.py): overlapping windows of a transposed view, a view that reads storage
    outside its input (constants there), an input that overlaps itself (gradients split evenly), and a write
    through a view."""
    y = x * 1.0
    windows = y.t().as_strided((3, 2), (1, 2), 1)
    outside = y[1:].as_strided((4,), (1,), 1)
    spread = x[0].expand(2, 3).as_strided((2, 2), (1, 1), 0)
    y.as_strided((2,), (2,), 1).mul_(x[0, :2])
    return windows * _ramp(x, 3, 2) + (outside * _ramp(x, 4)).sum() + (spread * spread).sum() + y.sum()


def _segment_reductions(x):
    """``segment_reduce`` (ad/segments.py) over dim 1 of a (2, 6) input: each reduction of a padded gather."""
    lengths = ad.tensor([[2, 1, 3], [3, 1, 2]])
    total = ad.segment_reduce(x, "sum", lengths=lengths, axis=1) * _ramp(x, 2, 3)
    total = total + ad.segment_reduce(x, "amax", lengths=lengths, axis=1)
    total = total + ad.segment_reduce(x, "prod", lengths=lengths, axis=1)
    return total + ad.segment_reduce(x, "mean", lengths=lengths, axis=1, initial=0.5)


# name -> (function of the input tensors, input shapes[, gradcheck tolerances])
EXAMPLES = {
    "copy": (lambda x: ad.ops.clone(x), [(3, 2)]),
    "neg": (lambda x: -x, [(4,)]),
    "abs": (lambda x: x.abs() * (x - 3.0).abs(), [(5,)]),
    "exp": (lambda x: x.exp(), [(2, 3)]),
    "log": (lambda x: x.log(), [(4,)]),
    "log1p": (lambda x: x.log1p(), [(4,)]),
    "expm1": (lambda x: x.expm1(), [(4,)]),
    "sqrt": (lambda x: x.sqrt(), [(4,)]),
    "rsqrt": (lambda x: x.rsqrt(), [(4,)]),
    "sin": (lambda x: x.sin(), [(2, 2)]),
    "cos": (lambda x: x.cos(), [(5,)]),
    "tan": (lambda x: x.tan(), [(5,)]),
    "tanh": (lambda x: x.tanh(), [(5,)]),
    "sigmoid": (lambda x: x.sigmoid(), [(5,)]),
    "relu": (lambda x: (x - 1.0).relu() * x, [(6,)]),
    "erf": (lambda x: x.erf(), [(5,)]),
    "square": (lambda x: x.square(), [(5,)]),
    "clamp": (lambda x: x.clamp(-1.0, 1.3) * x + x.clamp(min=0.5) + x.clamp(max=-0.5), [(7,)]),
    "affine": (lambda x: 2.5 * x + 1.0 - x / 4.0 + (3.0 - x), [(3,)]),
    "pow_scalar": (lambda x: x**3 + x**0.5 + x**-1.5, [(4,)]),
    "rpow_scalar": (lambda x: 2.0**x, [(4,)]),
    "rdiv_scalar": (lambda x: 3.0 / x, [(4,)]),
    "add": (lambda x, y: x + y, [(2, 3), (2, 3)]),
    "sub": (lambda x, y: x - y, [(2, 3), (3,)]),
    "mul": (lambda x, y: x * y * x, [(2, 3), (1, 3)]),
    "div": (lambda x, y: x / y, [(3,), (2, 3)]),
    "pow": (lambda x, y: x**y, [(4,), (4,)]),
    "maximum": (lambda x, y: ad.maximum(x, y * 1.5), [(6,), (6,)]),
    "minimum": (lambda x, y: ad.minimum(x, y * 1.5), [(6,), (6,)]),
    "tanh_backward": (lambda x, y: ops.tanh_backward(x, y), [(6,), (6,)]),
    "where": (lambda x, y: ad.where(x > 0.3, x * y, y), [(6,), (6,)]),
    # float32 rounding inside: finite differences need a larger step and looser tolerances
    "cast": (lambda x: x.to(ad.float32).to(x.dtype) * x, [(3,)], {"eps": 1e-3, "atol": 1e-3, "rtol": 1e-3}),
    "gather_strided": (lambda x: ops.gather_strided(x, (2, 2), (1, 3), 1), [(2, 3)]),
    "scatter_strided": (lambda x: ops.scatter_strided(x, (3, 2), (2, 0), 0, 0.5) * 2.0, [(3, 4)]),
    "expand": (lambda x: x.expand(3, 2, 4) * _ramp(x, 3, 2, 4), [(2, 1)]),
    "permute": (lambda x: x.permute(2, 0, 1) * _ramp(x, 4, 2, 3), [(2, 3, 4)]),
    "transpose": (lambda x: x.transpose(0, 1) @ _ramp(x, 2, 3), [(2, 3)]),
    "getitem": (lambda x: x[1:, ::-2] * 2.0 + x[0, None, 1:3].sum() + x[..., -1].sum(), [(3, 4)]),
    "sum": (lambda x: x.sum(1) * x.sum((0, 2), keepdim=True).sum(), [(2, 3, 2)]),
    "sum_all": (lambda x: x.sum() * x, [(2, 3)]),
    "mean": (lambda x: x.mean(-1, keepdim=True) * x, [(2, 3)]),
    "mean_all": (lambda x: x.mean() * x, [(2, 3)]),
    "reshape": (lambda x: x.reshape(3, 2) @ _ramp(x, 2, 4), [(2, 3)]),
    "prod": (lambda x: x.prod(0) + x.prod(), [(3, 2)]),
    "amax": (lambda x: x.amax(1) + x.amax(), [(3, 4)]),
    "amin": (lambda x: x.amin(0) + x.amin(), [(3, 4)]),
    "max_all": (lambda x: x.max() * x, [(3, 4)]),
    "min_all": (lambda x: ad.min(x) + x.min(1).values, [(3, 4)]),
    "gather_map": (lambda x: x[[0, 2, 2, 1]] * 3.0 + x[ad.tensor([[1, 0]])].sum(), [(3, 2)]),
    "scatter_map": (lambda x: ops.scatter_map(x, (5,), np.array([4, 0, 4, 1])), [(4,)]),
    # two planes of 4 read by 3 outputs each (one without a source: 0), then one plane's indices shared by both
    "gather_indexed": (lambda x: ops.gather_indexed(x, (2, 3), np.array([0, 2, 2, 1, -1, 3]), 3, 4)
                       + ops.gather_indexed(x, (2, 3), np.array([3, 3, 0]), 3, 4, shared=True), [(2, 4)]),
    "gather": (lambda x: x.gather(1, ad.tensor([[0, 0], [1, 0]])), [(2, 3)]),
    "index_select": (lambda x: x.index_select(0, ad.tensor([2, 0, 2])), [(3, 2)]),
    # overlapping windows (storage positions read twice) of a transposed view: its storage is the root's
    "as_strided_copy": (lambda x: ad.as_strided_copy(x.t(), (3, 2), (1, 2), 1) * _ramp(x, 3, 2), [(2, 3)]),
    "as_strided": (_as_strided_views, [(2, 3)]),
    # src lands where the geometry lies (twice on one element: the last write), input keeps the rest
    "as_strided_scatter": (
        lambda x, s: ad.as_strided_scatter(x * 1.0, s, (2, 2), (1, 1), 1) * _ramp(x, 6) + x.as_strided_scatter(
            s[0], (2,), (2,), 0
        ),
        [(6,), (2, 2)],
    ),
    "segment_reduce": (_segment_reductions, [(2, 6)]),
    "max_dim": (lambda x: x.max(1)[0] + x.max(0, keepdim=True).values.sum(), [(3, 4)]),
    "min_dim": (lambda x: x.min(0).values, [(3, 4)]),
    "cat": (lambda x, y: ad.cat([x, y, x], 1) * _ramp(x, 2, 9), [(2, 3), (2, 3)]),
    "stack": (lambda x, y: ad.stack([x, y], 1) * _ramp(x, 3, 2, 2), [(3, 2), (3, 2)]),
    "matmul": (lambda x, y: x @ y, [(2, 3), (3, 4)]),
    "log_softmax": (lambda x: x.log_softmax(0) * _ramp(x, 3, 4) + x.log_softmax(-1), [(3, 4)]),
    "linear": (lambda x, w: ad.ops.linear(x, w) + ad.ops.linear(x[0], w), [(2, 3), (4, 3)]),
    "cross_entropy": (lambda x: ad.ops.cross_entropy_mean(x, np.array([1, 0, 3])) * x, [(3, 4)]),
    "linear_bias": (
        lambda x, w, b: ad.ops.linear_bias(x, w, b) * ad.ops.linear_bias(x[1], w, b),
        [(2, 3), (4, 3), (4,)],
    ),
    # the activations' rows (ad/ops/activation_ops.py), through ad.nn.functional
    "silu": (lambda x: ad.nn.functional.silu(x), [(6,)]),
    "gelu": (lambda x: ad.nn.functional.gelu(x) * ad.nn.functional.gelu(x, approximate="tanh"), [(6,)]),
    "mish": (lambda x: ad.nn.functional.mish(x), [(6,)]),
    "elu": (lambda x: ad.nn.functional.elu(x, 0.7) + ad.nn.functional.selu(x), [(6,)]),
    "celu": (lambda x: ad.nn.functional.celu(x, 1.3), [(6,)]),
    # binary_cross_entropy_with_logits' elementwise row (the target differentiable too), each reduction
    "binary_cross_entropy_with_logits": (
        lambda x, t: ad.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none") * _ramp(x, 6)
        + ad.nn.functional.binary_cross_entropy_with_logits(x, t * t, reduction="sum"),
        [(6,), (6,)],
    ),
}

# composite ops: covered by the same checks (no rules of their own)
COMPOSITES = {
    "matmul_batched": (lambda x, y: x @ y, [(2, 2, 3), (3, 2)]),
    "matmul_vec": (lambda x, y: (x @ y) * (y.T @ x.T).sum(), [(3,), (3, 2)]),
    "dot": (lambda x, y: ad.dot(x, y), [(4,), (4,)]),
    "var": (lambda x: x.var(1) + x.std(), [(2, 4)]),
    "logsumexp": (lambda x: x.logsumexp(1), [(2, 4)]),
    "softmax": (lambda x: x.softmax(-1) * _ramp(x, 2, 4), [(2, 4)]),
    "log_softmax_3d": (lambda x: x.log_softmax(1), [(2, 3, 2)]),
    "nn_cross_entropy": (lambda x: ad.nn.functional.cross_entropy(x, ad.tensor([1, 0, 3])), [(3, 4)]),
    "nn_cross_entropy_general": (
        lambda x: ad.nn.functional.cross_entropy(x, ad.tensor([1, 0, 3]), label_smoothing=0.1)
        + ad.nn.functional.cross_entropy(x, ad.tensor([1, 0, 3]), ignore_index=0),
        [(3, 4)],
    ),
    "mse_loss": (lambda x, y: ad.nn.functional.mse_loss(x, y), [(3, 2), (3, 2)]),
    "nn_linear": (lambda x, w, b: ad.nn.functional.linear(x, w, b), [(2, 3), (4, 3), (4,)]),
    "linear_batched": (lambda x, w: ad.nn.functional.linear(x, w), [(2, 2, 3), (4, 3)]),
    "split_chunk": (lambda x: x.split(1, 0)[1] * x.chunk(2, 1)[0].sum(), [(3, 4)]),
    "squeeze_unsqueeze_flatten": (lambda x: x.unsqueeze(1).squeeze().flatten() * 2.0, [(2, 3)]),
    "norm": (lambda x: ad.norm(x), [(4,)]),
}


def _family_cases():
    """The ``CASES`` of every ``tests/cases_*.py``, checked for names given twice."""
    cases = {}
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"_op_cases_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        twice = set(module.CASES) & (set(cases) | set(EXAMPLES) | set(COMPOSITES))
        if twice:
            raise ValueError(f"{path.name} repeats op cases {sorted(twice)}")
        cases.update(module.CASES)
    return cases


FAMILY_CASES = _family_cases()


def _case(name):
    fn, shapes, *rest = ALL_CASES[name]
    tol = {"eps": 1e-6, "atol": 1e-6, "rtol": 1e-5}
    tol.update(rest[0] if rest else {})
    tol.pop("domain", None)
    return fn, shapes, tol


def _domain(name):
    rest = ALL_CASES[name][2:]
    if rest and "domain" in rest[0]:
        return rest[0]["domain"]
    op = OPS.get(name)
    return op.sample if op is not None and op.sample is not None else (-2.0, 2.0)


def _inputs(name, shapes, seed=0, dtype=np.float64):
    lo, hi = _domain(name)
    rng = np.random.default_rng(seed)
    return [ad.tensor(rng.uniform(lo, hi, size=s).astype(dtype), requires_grad=True) for s in shapes]


def _scalarize(out):
    """A scalar function of ``out`` with non-uniform weights (so every output element matters)."""
    w = np.linspace(0.5, 1.5, out.numel()).reshape(out.shape).astype(out.dtype)
    return (out * ad.tensor(w)).sum()


ALL_CASES = {**EXAMPLES, **COMPOSITES, **FAMILY_CASES}


def test_every_op_has_an_example():
    missing = sorted(set(OPS) - set(EXAMPLES) - set(FAMILY_CASES))
    assert not missing, f"ops without an example in EXAMPLES: {missing}"


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_reverse_matches_finite_differences(name):
    fn, shapes, tol = _case(name)
    xs = _inputs(name, shapes)
    assert ad.autograd.gradcheck(fn, tuple(xs), **tol)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_kernel_sweep_matches_differentiable_sweep(name):
    fn, shapes, _ = _case(name)
    xs = _inputs(name, shapes, seed=1)
    kernel = ad.autograd.grad(_scalarize(fn(*xs)), xs)
    rules = ad.autograd.grad(_scalarize(fn(*xs)), xs, create_graph=True)
    for k, r in zip(kernel, rules):
        assert k.dtype == r.dtype
        np.testing.assert_allclose(k.numpy(), r.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_second_order_matches_finite_differences(name):
    fn, shapes, tol = _case(name)
    xs = _inputs(name, shapes, seed=2)
    tol = {"eps": tol["eps"], "atol": max(tol["atol"], 1e-5), "rtol": max(tol["rtol"], 1e-4)}
    assert ad.autograd.gradgradcheck(fn, tuple(xs), **tol)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_float32_end_to_end(name):
    fn, shapes, _ = _case(name)
    xs64 = _inputs(name, shapes, seed=3)
    xs32 = [ad.tensor(x.detach().numpy().astype(np.float32), requires_grad=True) for x in xs64]
    out32 = fn(*xs32)
    assert out32.dtype == ad.float32
    grads32 = ad.autograd.grad(_scalarize(out32), xs32)
    grads64 = ad.autograd.grad(_scalarize(fn(*xs64)), xs64)
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == ad.float32
        np.testing.assert_allclose(g32.numpy(), g64.numpy(), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_forward_matches_finite_differences(name):
    fn, shapes, tol = _case(name)
    xs = _inputs(name, shapes, seed=4)
    assert ad.autograd.gradcheck(fn, tuple(xs), check_forward_ad=True, check_backward_ad=False, **tol)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_forward_and_reverse_agree(name):
    """u . (J v) from one JVP equals (J^T u) . v from one VJP."""
    import ad.autograd.forward_ad as fwAD

    fn, shapes, tol = _case(name)
    xs = _inputs(name, shapes, seed=5)
    rng = np.random.default_rng(6)
    vs = [rng.standard_normal(x.shape) for x in xs]
    out = fn(*xs)
    u = rng.standard_normal(out.shape)
    vjps = ad.autograd.grad(out, xs, ad.tensor(u))
    reverse = sum(float(np.sum(g.numpy() * v)) for g, v in zip(vjps, vs))
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach(), ad.tensor(v)) for x, v in zip(xs, vs)]
        jv = fwAD.unpack_dual(fn(*duals)).tangent
    forward = float(np.sum(jv.numpy() * u))
    exact = tol["eps"] == 1e-6  # cases with float32 rounding inside carry looser tolerances
    np.testing.assert_allclose(forward, reverse, rtol=1e-10 if exact else tol["rtol"], atol=1e-10)
