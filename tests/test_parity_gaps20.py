"""Session 20's known differences from torch 2.13, closed: each compared with torch at edge points (0, -0.0,
+-inf, NaN, huge, tiny) in float64 and float32, on the paths that apply (the compiled sweep, big rows, the
differentiable sweep of ``create_graph``, forward mode, batched cotangents, ``ad.compile``'s replay, second order).

- binary_cross_entropy_with_logits: one row (opcode BCE_LOGITS) as torch's fused node, so an infinite cotangent
  gives torch's +-inf where a chain of rows met ``0 * inf``.
- var / std (var_mean, std_mean, correction, dims) with an infinite member: torch's NaN at the inf and +-inf at the
  other members (was NaN everywhere), while groups without one keep the exact centered form.
- norm(p=0) / vector_norm(ord=0): no gradient at all, as torch (grad() of it alone raises; tangent 0).
- logcumsumexp under create_graph at -inf: no numpy warning (the differentiable sweep's rules compute as the
  kernel sweep does), torch's values.
- div's second derivative in the divisor at y = +-0.0: torch's +-inf (the recorded rule -(x / y) / y; it was
  -x / (y * y), whose derivative there is 0 * inf), equal to the compiled forward-over-reverse sweep's.
"""

import math
import warnings

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD
import ad.nn.functional as F
from ad.tape import BIG_ROW
from kernels import opcodes as K

torch = pytest.importorskip("torch")
TF = torch.nn.functional
tfwAD = torch.autograd.forward_ad

INF = math.inf
NAN = math.nan
DTYPES = {"float64": (np.float64, torch.float64), "float32": (np.float32, torch.float32)}


def _same(got, want, dtype, what, rtol=None, atol=0.0):
    """Equal within rounding (relative, or ``atol``), NaN where torch's is NaN, infinities and their signs exact;
    magnitudes below the dtype's smallest normal count as equal."""
    got = np.asarray(got, np.float64).reshape(-1)
    want = np.asarray(want, np.float64).reshape(-1)
    rtol = rtol if rtol is not None else (2e-5 if dtype == np.float32 else 1e-12)
    tiny = np.finfo(dtype).tiny
    ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    ok |= (np.abs(want) < tiny) & (np.abs(got) < tiny)
    bad = [(i, got[i], want[i]) for i in np.nonzero(~ok)[0]]
    assert not bad, f"{what}: (index, ad, torch) {bad[:8]}"


# --- binary_cross_entropy_with_logits --------------------------------------------------------------------

LOGITS = [-INF, -1e4, -800.0, -40.0, -1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0, 40.0, 800.0, 1e4, INF, NAN]
TARGETS = [0.0, 0.3, 1.0]


def _bce_points(dtype):
    logits = [v for v in LOGITS if dtype == np.float64 or v == 0.0 or not abs(v) < 1e-30]
    x, t = np.meshgrid(np.array(logits), np.array(TARGETS), indexing="ij")
    return x.reshape(-1).astype(dtype), t.reshape(-1).astype(dtype)


def _bce_pair(dtype_name, x_np, t_np):
    np_dt, t_dt = DTYPES[dtype_name]
    x = ad.tensor(x_np.astype(np_dt), requires_grad=True)
    t = ad.tensor(t_np.astype(np_dt), requires_grad=True)
    tx = torch.tensor(x_np.astype(np_dt), requires_grad=True)
    tt = torch.tensor(t_np.astype(np_dt), requires_grad=True)
    return x, t, tx, tt


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy at inf and NaN
@pytest.mark.parametrize("dtype_name", DTYPES)
def test_bce_with_logits_values_gradients_and_inf_cotangents(dtype_name):
    dt = DTYPES[dtype_name][0]
    x, t, tx, tt = _bce_pair(dtype_name, *_bce_points(dt))
    y = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    ty = TF.binary_cross_entropy_with_logits(tx, tt, reduction="none")
    assert y.grad_fn.name() == ty.grad_fn.name() == "BinaryCrossEntropyWithLogitsBackward0"
    assert y._op.code == K.BCE_LOGITS and y._in0 is x and y._in1 is t  # one row
    _same(y.detach().numpy(), ty.detach().numpy(), dt, "value")
    for seed in (1.0, INF, -INF, 0.0):
        want = torch.autograd.grad(ty, (tx, tt), torch.full_like(ty, seed), retain_graph=True)
        for create_graph in (False, True):
            got = ad.autograd.grad(y, (x, t), ad.full_like(y, seed), retain_graph=True, create_graph=create_graph)
            for name, g, w in zip("xt", got, want):
                _same(g.detach().numpy(), w.numpy(), dt, f"d{name} at cotangent {seed} ({create_graph=})")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype_name", DTYPES)
def test_bce_with_logits_weight_pos_weight_and_reductions(dtype_name, reduction):
    """weight and pos_weight (broadcast along the last dim), every reduction: values and the input's gradient
    at finite and infinite cotangents; the target's gradient where the logits are finite (at infinite logits the
    pos_weight form w * row(x, t') gives NaN where torch gives +-inf: README's known differences)."""
    dt = DTYPES[dtype_name][0]
    xs, ts = _bce_points(dt)
    xs, ts = xs.reshape(-1, 3), ts.reshape(-1, 3)
    x, t, tx, tt = _bce_pair(dtype_name, xs, ts)
    weights = np.array([[0.5, 2.0, 1.0]], dt), np.array([3.0, 0.25, 0.0], dt)
    w, pw = (ad.tensor(v) for v in weights)
    tw, tpw = (torch.tensor(v) for v in weights)
    for kw, tkw in (({"weight": w}, {"weight": tw}), ({"pos_weight": pw}, {"pos_weight": tpw}),
                    ({"weight": w, "pos_weight": pw}, {"weight": tw, "pos_weight": tpw})):  # fmt: skip
        y = F.binary_cross_entropy_with_logits(x, t, reduction=reduction, **kw)
        ty = TF.binary_cross_entropy_with_logits(tx, tt, reduction=reduction, **tkw)
        _same(
            y.detach().numpy(), ty.detach().numpy(), dt, f"value {list(kw)}", rtol=1e-4 if dt == np.float32 else 1e-10
        )
        finite = np.isfinite(xs).reshape(-1)
        for seed in (1.0, INF) if reduction == "none" else (1.0,):
            gx, gt = ad.autograd.grad(y, (x, t), ad.full_like(y, seed), retain_graph=True)
            tgx, tgt = torch.autograd.grad(ty, (tx, tt), torch.full_like(ty, seed), retain_graph=True)
            tol = 1e-4 if dt == np.float32 else 1e-10
            _same(gx.numpy(), tgx.numpy(), dt, f"dx {list(kw)} at {seed}", rtol=tol)
            if seed == 1.0:
                # (atol: -x - (pos_weight - 1) log sigmoid(x) cancels to rounding noise at x = -800, t = 1)
                _same(gt.numpy().reshape(-1)[finite], tgt.numpy().reshape(-1)[finite], dt, f"dt {list(kw)}", tol, 1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_bce_with_logits_second_derivatives_forward_mode_and_batched():
    x, t, tx, tt = _bce_pair("float64", *_bce_points(np.float64))
    y = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    ty = TF.binary_cross_entropy_with_logits(tx, tt, reduction="none")
    gx, gt = ad.autograd.grad(y, (x, t), ad.ones_like(y), create_graph=True)
    tgx, tgt = torch.autograd.grad(ty, (tx, tt), torch.ones_like(ty), create_graph=True)
    for name, g, tg in (("x", gx, tgx), ("t", gt, tgt)):
        got = ad.autograd.grad(g.sum(), (x, t), allow_unused=True, materialize_grads=True)
        want = torch.autograd.grad(tg.sum(), (tx, tt), allow_unused=True, materialize_grads=True)
        for a, b, wrt in zip(got, want, "xt"):
            _same(a.numpy(), b.numpy(), np.float64, f"d(d{name})/d{wrt}")
    for tangent in (1.0, INF):
        with fwAD.dual_level():
            dual = F.binary_cross_entropy_with_logits(
                fwAD.make_dual(x.detach(), ad.full_like(x, tangent)),
                fwAD.make_dual(t.detach(), ad.full_like(t, 0.5)),
                reduction="none",
            )
            got = fwAD.unpack_dual(dual).tangent.numpy()
        with tfwAD.dual_level():
            dual = TF.binary_cross_entropy_with_logits(
                tfwAD.make_dual(tx.detach(), torch.full_like(tx, tangent)),
                tfwAD.make_dual(tt.detach(), torch.full_like(tt, 0.5)),
                reduction="none",
            )
            want = tfwAD.unpack_dual(dual).tangent.numpy()
        _same(got, want, np.float64, f"tangent {tangent}")
    seeds = np.stack([np.ones(x.shape[0]), np.full(x.shape[0], INF), np.arange(x.shape[0]) - 10.0])
    got = ad.autograd.grad(y, (x, t), ad.tensor(seeds), is_grads_batched=True)
    want = torch.autograd.grad(ty, (tx, tt), torch.tensor(seeds), is_grads_batched=True)
    for a, b, wrt in zip(got, want, "xt"):
        _same(a.numpy(), b.numpy(), np.float64, f"batched d{wrt}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_bce_with_logits_big_rows_and_compiled_second_order():
    rng = np.random.default_rng(20)
    xs = rng.standard_normal(BIG_ROW + 10) * 30.0
    xs[:4] = [1e4, -1e4, 800.0, -800.0]
    ts = rng.random(BIG_ROW + 10)
    x, t, tx, tt = _bce_pair("float64", xs, ts)
    for seed in (1.0, INF):
        got = ad.autograd.grad(
            F.binary_cross_entropy_with_logits(x, t, reduction="none"), (x, t), ad.full_like(x, seed)
        )
        want = torch.autograd.grad(
            TF.binary_cross_entropy_with_logits(tx, tt, reduction="none"), (tx, tt), torch.full_like(tx, seed)
        )
        for a, b, wrt in zip(got, want, "xt"):
            _same(a.numpy(), b.numpy(), np.float64, f"big row d{wrt} at {seed}")
    # the compiled forward-over-reverse sweep (hvp) and hessian against torch's
    x, t, tx, tt = _bce_pair("float64", xs[:12], ts[:12])
    v = (ad.tensor(rng.standard_normal(12)), ad.tensor(rng.standard_normal(12)))
    hv = ad.autograd.functional.hvp(lambda a, b: F.binary_cross_entropy_with_logits(a, b), (x.detach(), t.detach()), v)
    thv = torch.autograd.functional.hvp(
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b),
        (tx.detach(), tt.detach()),
        tuple(torch.tensor(u.numpy()) for u in v),
    )
    for a, b in zip(hv[1], thv[1]):
        _same(a.numpy(), b.numpy(), np.float64, "hvp")


def _bce_step(x, t, w):
    # (pos_weight is left out: its weights are computed from constants, which replay does not record: eager)
    return F.binary_cross_entropy_with_logits(x * 1.0, t, weight=w) + F.binary_cross_entropy_with_logits(
        x, t, reduction="sum"
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_compiled_replay_equals_eager(dtype):
    rng = np.random.default_rng(5)
    step = ad.compile(_bce_step)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    x = ad.tensor((rng.standard_normal((4, 3)) * 5).astype(dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no eager fallback
        for _ in range(3):
            t = ad.tensor(rng.random((4, 3)).astype(dtype))
            w = ad.tensor(rng.uniform(0.5, 2.0, 3).astype(dtype))
            loss = step(x, t, w)
            (g,) = ad.autograd.grad(loss, x)
            ref = _bce_step(x, t, w)
            (ref_g,) = ad.autograd.grad(ref, x)
            np.testing.assert_allclose(loss.item(), ref.item(), rtol=tol)
            np.testing.assert_allclose(g.numpy(), ref_g.numpy(), rtol=tol, atol=tol)
    assert type(loss._tape).__name__ == "_ReplayTape"


# --- var / std with an infinite member ---------------------------------------------------------------------

VAR_X = [[1e4 + 1.0, 1e4 + 2.0, 1e4 + 4.0, 1e4], [1.0, INF, 2.0, 0.5], [3.0, -INF, INF, 1.0], [INF, INF, 0.0, 1.0]]
VAR_FNS = {
    "var dim": lambda L, x: x.var(1),
    "var dim0 keepdim": lambda L, x: x.var(0, keepdim=True),
    "var all": lambda L, x: x.var(),
    "var correction 0": lambda L, x: x.var(1, correction=0),
    "var dims": lambda L, x: x.reshape(2, 2, 4).var((0, 2)),
    "std dim": lambda L, x: x.std(1),
    "std unbiased False": lambda L, x: x.std(1, unbiased=False),
    "var_mean": lambda L, x: L.var_mean(x, 1)[0] + L.var_mean(x, 1)[1],
    "std_mean": lambda L, x: L.std_mean(x, 1)[0] * 2.0,
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", VAR_FNS)
def test_var_std_with_infinite_members_as_torch(name, dtype_name):
    fn = VAR_FNS[name]
    np_dt, t_dt = DTYPES[dtype_name]
    xs = np.array(VAR_X, np_dt)
    x = ad.tensor(xs, requires_grad=True)
    tx = torch.tensor(xs, requires_grad=True)
    y, ty = fn(ad, x), fn(torch, tx)
    _same(y.detach().numpy(), ty.detach().numpy(), np_dt, "value", rtol=1e-5 if np_dt == np.float32 else 1e-9)
    for create_graph in (False, True):
        (g,) = ad.autograd.grad(y, x, ad.ones_like(y), retain_graph=True, create_graph=create_graph)
        (tg,) = torch.autograd.grad(ty, tx, torch.ones_like(ty), retain_graph=True)
        _same(
            g.detach().numpy(),
            tg.numpy(),
            np_dt,
            f"gradient ({create_graph=})",
            rtol=1e-4 if np_dt == np.float32 else 1e-9,
        )
    t = np.arange(1.0, 1.0 + xs.size).reshape(xs.shape).astype(np_dt)
    with fwAD.dual_level():
        got = fwAD.unpack_dual(fn(ad, fwAD.make_dual(ad.tensor(xs), ad.tensor(t)))).tangent.numpy()
    with tfwAD.dual_level():
        want = tfwAD.unpack_dual(fn(torch, tfwAD.make_dual(torch.tensor(xs), torch.tensor(t)))).tangent.numpy()
    _same(got, want, np_dt, "tangent", rtol=1e-4 if np_dt == np.float32 else 1e-9)


def test_var_finite_groups_keep_second_derivatives():
    """Beside an infinite row, a finite row's Hessian is the centered form's, 2 (I - 1/n) / (n - 1)."""
    x = ad.tensor([[1.0, 2.0, 4.0], [INF, 1.0, 0.0]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (g,) = ad.autograd.grad(x.var(1)[0], x, create_graph=True)
        (h,) = ad.autograd.grad(g[0, 0], x)
    np.testing.assert_allclose(h.numpy()[0], [2.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0], rtol=1e-14)
    np.testing.assert_array_equal(h.numpy()[1], 0.0)


# --- norm(p=0) ------------------------------------------------------------------------------------------------

NORM0 = {
    "Tensor.norm": lambda L, x: x.norm(p=0),
    "norm dim": lambda L, x: L.norm(x, p=0, dim=1),
    "vector_norm": lambda L, x: L.linalg.vector_norm(x, ord=0),
    "vector_norm keepdim": lambda L, x: L.linalg.vector_norm(x, ord=0, dim=0, keepdim=True),
}


@pytest.mark.parametrize("name", NORM0)
def test_norm_p0_has_no_gradient_as_torch(name):
    fn = NORM0[name]
    xs = np.array([[1.0, 0.0, -2.0], [0.0, 0.0, INF]])
    for L in (ad, torch):
        x = L.tensor(xs, requires_grad=True)
        y = fn(L, x)
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            L.autograd.grad(y.sum(), x, retain_graph=True)
        assert L.autograd.grad(y.sum(), x, allow_unused=True, retain_graph=True) == (None,)
        (z,) = L.autograd.grad(y.sum(), x, allow_unused=True, materialize_grads=True, retain_graph=True)
        np.testing.assert_array_equal(np.asarray(z.tolist()), 0.0)
        # beside another use of x: that use's gradient only, also under an infinite cotangent (nothing from the count)
        (g,) = L.autograd.grad((y.sum() * x.sum()), x, L.tensor(INF, dtype=x.dtype), retain_graph=True)
        np.testing.assert_array_equal(np.asarray(g.tolist()), INF)
        y.sum().backward()
        assert x.grad is None
        fw = fwAD if L is ad else tfwAD
        with fw.dual_level():
            dual = fw.make_dual(L.tensor(xs), L.tensor(np.array([[INF, NAN, 1.0], [1.0, 2.0, 3.0]])))
            tangent = fw.unpack_dual(fn(L, dual)).tangent
            np.testing.assert_array_equal(np.asarray(tangent.tolist()), 0.0)


# --- logcumsumexp under create_graph ------------------------------------------------------------------------

LCSE_X = [[-INF, -INF, 1.0], [-INF, 0.0, -INF], [1.0, -INF, 2.0], [-INF, -INF, -INF], [NAN, -INF, 1.0]]


@pytest.mark.parametrize("row", range(len(LCSE_X)))
def test_logcumsumexp_create_graph_at_minus_inf_is_silent_and_as_torch(row):
    xs = np.array(LCSE_X[row])
    seed = np.array([1.0, 2.0, 3.0])
    x = ad.tensor(xs, requires_grad=True)
    tx = torch.tensor(xs, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning, in the first or the second derivative
        y = ad.logcumsumexp(x, 0)
        (g,) = ad.autograd.grad(y, x, ad.tensor(seed), create_graph=True)
        (h,) = ad.autograd.grad(g.sum(), x)
    ty = torch.logcumsumexp(tx, 0)
    (tg,) = torch.autograd.grad(ty, tx, torch.tensor(seed), create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), tx)
    _same(g.detach().numpy(), tg.detach().numpy(), np.float64, "gradient")
    _same(h.numpy(), th.numpy(), np.float64, "second derivative", atol=1e-15)


def test_differentiable_sweep_keeps_the_users_numpy_settings_in_hooks():
    x = ad.tensor([0.0, 1.0], requires_grad=True)
    y = ad.log(x * 1.0)
    seen = []
    y.register_hook(lambda g: seen.append(np.geterr()["divide"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ad.autograd.grad(y.sum(), x, create_graph=True)
    assert seen == [np.geterr()["divide"]] and np.geterr()["divide"] != "ignore"


# --- div at a zero divisor ------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("point", [(1.0, -0.0), (2.0, 0.0), (-1.0, -0.0), (0.0, -1.5), (1.0, 3.0)])
def test_div_second_derivatives_as_torch(point):
    got, want = [], []
    for L, res in ((ad, got), (torch, want)):
        x = L.tensor(point[0], dtype=L.float64, requires_grad=True)
        y = L.tensor(point[1], dtype=L.float64, requires_grad=True)
        gx, gy = L.autograd.grad(x / y, (x, y), create_graph=True)
        res += [gx.item(), gy.item()]
        for g in (gx, gy):
            d = L.autograd.grad(g, (x, y), retain_graph=True, allow_unused=True, materialize_grads=True)
            res += [v.item() for v in d]
    _same(got, want, np.float64, f"div at {point}")
    # the compiled forward-over-reverse sweep (hvp) gives the same d2/dy2
    hv = ad.autograd.functional.hvp(
        lambda a, b: a / b, (ad.tensor(point[0]), ad.tensor(point[1])), (ad.tensor(0.0), ad.tensor(1.0))
    )[1]
    _same([hv[1].item()], [want[-1]], np.float64, f"hvp d2/dy2 at {point}")
