"""silu, gelu, mish, elu, selu and celu as one elementwise row each (ad/ops/activation_ops.py) against torch.

At ordinary points, at 0 and -0, at +-inf, NaN, and where the pieces underflow or saturate (-50, -30, 20, 1e10):
forward values, gradients (the compiled sweep and the differentiable rules of ``create_graph``), the gradient of
an infinite cotangent (torch's fused rules give +-inf where the composites these replace gave NaN), second
derivatives and forward-mode tangents, in float64 and float32; and ``ad.compile``'s replay against eager.
"""

import math
import sys
import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F
from kernels import opcodes as K

torch = pytest.importorskip("torch")
TF = torch.nn.functional

INF = math.inf
NAN = math.nan
POINTS = [-INF, -50.0, -30.0, -20.0, -2.5, -1e-300, -0.0, 0.0, 1e-300, 0.5, 2.0, 20.0, 21.0, 30.0, 1e10, INF, NAN]
# float32: no subnormal inputs, and not where both libraries' float32 values are rounding noise below 1e-40
POINTS32 = [p for p in POINTS if p == 0.0 or not abs(p) < 1e-30]

ACTIVATIONS = {  # name -> (ad's function, torch's, torch's node)
    "silu": (F.silu, TF.silu, "SiluBackward0"),
    "gelu": (F.gelu, TF.gelu, "GeluBackward0"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), "GeluBackward0"),
    "mish": (F.mish, TF.mish, "MishBackward0"),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7), "EluBackward0"),
    "selu": (F.selu, TF.selu, "EluBackward0"),
    "celu": (lambda x: F.celu(x, 0.5), lambda x: TF.celu(x, 0.5), "CeluBackward0"),
}
DTYPES = {"float64": (np.float64, torch.float64), "float32": (np.float32, torch.float32)}


def _same(got, want, dtype, what, points, skip=(), tiny=None):
    """Equal within a few units in the last place, NaN where torch's is NaN, infinities and signs exact; values
    below ``tiny`` in magnitude (default: the subnormals) count as equal, and the points in ``skip`` are not
    compared."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    tiny = tiny if tiny is not None else np.finfo(dtype).tiny
    ok = np.isclose(got, want, rtol=rtol, atol=0.0, equal_nan=True)
    ok |= (np.abs(want) < tiny) & (np.abs(got) < tiny)
    ok |= np.array([any(p is q or p == q for q in skip) for p in points])
    bad = [(points[i], got[i], want[i]) for i in np.nonzero(~ok)[0]]
    assert not bad, f"{what}: (x, ad, torch) {bad}"


def _pair(name, dtype_name):
    np_dt, t_dt = DTYPES[dtype_name]
    points = POINTS if np_dt == np.float64 else POINTS32
    x = ad.tensor(np.array(points, np_dt), requires_grad=True)
    tx = torch.tensor(points, dtype=t_dt, requires_grad=True)
    return points, x, tx


def _skips(name, dtype_name, points, tf):
    """Points where torch's answer is not one ad can follow: (``value``, ``gradient``) sets.

    - elu, selu, celu at NaN: torch's vectorized loop gives a NaN gradient, its scalar loop (the tail of an
      array) the positive slope; ad gives the slope (NaN is not <= 0), as the scalar loop.
    - float32: the compiled kernels compute partials in float64, so where the partial is below float32's
      smallest normal (gelu below about -13) an infinite cotangent gives +-inf, where torch's float32 partial
      underflowed to 0 and gives NaN; and torch's float32 gelu(inf) is NaN (its vectorized erf), ad's inf.
    """
    value, gradient = set(), set()
    if name in ("elu", "selu", "celu"):
        gradient.add(NAN)
    if dtype_name == "float32":
        x64 = torch.tensor(points, dtype=torch.float64, requires_grad=True)
        (g64,) = torch.autograd.grad(tf(x64).sum(), x64)
        g64 = g64.numpy()
        gradient.update(p for p, d in zip(points, g64) if 0.0 < abs(d) < np.finfo(np.float32).tiny)
        if name == "gelu":
            value.add(INF)
    return value, gradient


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy at inf and NaN
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_values_gradients_and_second_derivatives_match_torch(name, dtype_name):
    f, tf, node = ACTIVATIONS[name]
    points, x, tx = _pair(name, dtype_name)
    dt = DTYPES[dtype_name][0]
    skip_value, skip_grad = _skips(name, dtype_name, points, tf)
    y, ty = f(x), tf(tx)
    assert y.dtype == dt and y.grad_fn.name() == node == ty.grad_fn.name()
    _same(y.detach().numpy(), ty.detach().numpy(), dt, "value", points, skip_value)
    ones, inf = ad.ones_like(y), ad.full_like(y, INF)
    (tg,) = torch.autograd.grad(ty, tx, torch.ones_like(ty), create_graph=True)
    (tgi,) = torch.autograd.grad(ty, tx, torch.full_like(ty, INF), retain_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), tx)
    for create_graph in (False, True):  # the compiled sweep; the recorded rules
        (g,) = ad.autograd.grad(y, x, ones, retain_graph=True, create_graph=create_graph)
        _same(g.detach().numpy(), tg.detach().numpy(), dt, f"gradient ({create_graph=})", points, skip_grad)
        (gi,) = ad.autograd.grad(y, x, inf, retain_graph=True, create_graph=create_graph)
        _same(gi.detach().numpy(), tgi.numpy(), dt, f"inf cotangent ({create_graph=})", points, skip_grad)
    (g,) = ad.autograd.grad(y, x, ones, create_graph=True)
    (h,) = ad.autograd.grad(g.sum(), x)
    # (beyond |x| = 1e3 both are NaN or 0 by different roads; below 1e-250 torch's tanh form keeps a remainder)
    finite = [i for i, p in enumerate(points) if abs(p) < 1e3 and p not in skip_grad]
    tiny = 1e-250 if dt == np.float64 else None
    _same(h.numpy()[finite], th.numpy()[finite], dt, "second derivative", [points[i] for i in finite], (), tiny)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_forward_mode_tangents_match_torch(name):
    f, tf, _ = ACTIVATIONS[name]
    points, x, tx = _pair(name, "float64")
    for tangent in (1.0, INF):
        with fwAD.dual_level():
            out = f(fwAD.make_dual(x.detach(), ad.full_like(x, tangent)))
            got = fwAD.unpack_dual(out).tangent.numpy()
        with torch.autograd.forward_ad.dual_level():
            tout = tf(torch.autograd.forward_ad.make_dual(tx.detach(), torch.full_like(tx, tangent)))
            want = torch.autograd.forward_ad.unpack_dual(tout).tangent.numpy()
        _same(got, want, np.float64, f"tangent {tangent}", points, _skips(name, "float64", points, tf)[1])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_one_row_and_kernel_sweep_equals_rules_and_finite_differences(name):
    f = ACTIVATIONS[name][0]
    rng = np.random.default_rng(7)
    x = ad.tensor(rng.uniform(-3, 3, 40), requires_grad=True)
    y = f(x)
    assert y._tape.nrows - x.requires_grad == y._row + 1 - x.requires_grad  # the result is its tape's last row
    assert y._op.code in range(K.UNARY3_FIRST, K.UNARY3_LAST + 1) and y._in0 is x  # one row, reading x
    w = ad.tensor(rng.normal(size=40))
    (kernel,) = ad.autograd.grad((y * w).sum(), x)
    (rules,) = ad.autograd.grad((f(x) * w).sum(), x, create_graph=True)
    np.testing.assert_allclose(kernel.numpy(), rules.detach().numpy(), rtol=1e-13, atol=1e-15)
    assert ad.autograd.gradcheck(f, (x[:8].detach().requires_grad_(),))
    assert ad.autograd.gradgradcheck(f, (x[:8].detach().requires_grad_(),))


def test_inplace_variants_and_saved_input_check():
    x = ad.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    for fn, tfn in ((F.elu_, TF.elu_), (F.selu_, TF.selu_), (F.celu_, TF.celu_)):
        y = x * 1.0
        fn(y)
        tx = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
        ty = tx * 1.0
        tfn(ty)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-15)
        (g,) = ad.autograd.grad(y.sum(), x)
        (tg,) = torch.autograd.grad(ty.sum(), tx)
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-15)
    y = x * 1.0
    out = F.silu(y)
    y.add_(1.0)  # silu's node saves its input: torch's error when backward reads it
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def _mlp(x, w1, b1, w2, b2):
    h = F.gelu(F.linear(x, w1, b1))
    h = F.silu(h) + F.mish(h) * 0.5 + F.elu(h, 0.7) + F.celu(h, 1.3) + F.gelu(h, approximate="tanh") + F.selu(h)
    return (F.linear(h, w2, b2) ** 2).mean()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_replay_equals_eager(dtype):
    rng = np.random.default_rng(3)
    shapes = [(16, 8), (16,), (4, 16), (4,)]
    ps = [ad.tensor((rng.standard_normal(s) * 0.8).astype(dtype), requires_grad=True) for s in shapes]
    step = ad.compile(_mlp)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no eager fallback
        for _ in range(4):
            x = ad.tensor(rng.standard_normal((5, 8)).astype(dtype))
            loss = step(x, *ps)
            grads = ad.autograd.grad(loss, ps)
            ref = _mlp(x, *ps)
            ref_grads = ad.autograd.grad(ref, ps)
            np.testing.assert_allclose(loss.item(), ref.item(), rtol=tol)
            for a, b in zip(grads, ref_grads):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)
    assert isinstance(loss._tape, sys.modules["ad.compile_replay"]._ReplayTape)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_big_rows_numpy_partials_equal_the_kernels(name):
    """Rows of at least ``tape.BIG_ROW`` elements are swept with the partial's formula on numpy arrays
    (elementwise_table.ARRAY_PARTIALS), in chunks on several threads: the same gradients as the compiled sweep of
    small rows, at the special points too, first write and accumulation alike."""
    from ad.tape import BIG_ROW

    f = ACTIVATIONS[name][0]
    rng = np.random.default_rng(5)
    reps = BIG_ROW // len(POINTS) + 1
    values = np.concatenate([np.tile(POINTS, reps), rng.uniform(-6, 6, 1000)])
    cot = np.where(rng.random(values.size) < 0.2, INF, rng.normal(size=values.size))
    big = ad.tensor(values, requires_grad=True)
    (g_big,) = ad.autograd.grad([f(big), f(big * 1.0)], [big], [ad.tensor(cot), ad.tensor(cot * 0.5)])
    small = [ad.tensor(values[i : i + 500], requires_grad=True) for i in range(0, values.size, 500)]
    g_small = [
        ad.autograd.grad([f(s), f(s * 1.0)], [s], [ad.tensor(cot[k : k + 500]), ad.tensor(cot[k : k + 500] * 0.5)])[0]
        for s, k in zip(small, range(0, values.size, 500))
    ]
    want = np.concatenate([g.numpy() for g in g_small])
    np.testing.assert_allclose(g_big.numpy(), want, rtol=1e-12, atol=1e-13)  # (1 + erf cancels: two erfs' ulps)


def test_big_gelu_row_after_its_output_was_written_in_place():
    """The big row's gelu partial reads Phi(x) from its output while that is intact; written in place since (no
    error: torch's node saves x only), it recomputes Phi from x: the same gradient either way."""
    from ad.tape import BIG_ROW

    rng = np.random.default_rng(9)
    values = np.concatenate([rng.uniform(-9, 9, BIG_ROW), [0.0, -0.0, 1e-300, -40.0, -8.0, INF, -INF, NAN]])
    x = ad.tensor(values, requires_grad=True)
    y = F.gelu(x)
    (intact,) = ad.autograd.grad((y * 2.0).sum(), x, retain_graph=True)
    y.mul_(2.0)
    (written,) = ad.autograd.grad(y.sum(), x)
    tx = torch.tensor(values, requires_grad=True)
    (want,) = torch.autograd.grad((TF.gelu(tx) * 2.0).sum(), tx)
    for got in (intact, written):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-13)
