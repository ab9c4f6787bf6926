"""Session 18's parity checks against torch (CPU, float64 and float32, rows of 5 and of 20 elements) for three
corners: which tied element the index-returning reductions pick, logcumsumexp's tangent at -inf inputs, and the
gradient of 1- and inf-norms over a row holding a NaN.

Ties. The index decides which tied element gets the gradient. Where torch documents its choice (max / min with
``dim``, argmax / argmin: the first; sort / argsort with ``stable=True``: input order) ad's indices are torch's.
Where torch leaves it open, ad keeps its own (stable) choice and the tests check what does not depend on it: the
values, that each index points at an element equal to its value, and the gradient summed over each set of tied
elements. Those are: topk ("the indices of tied elements are not guaranteed to be stable"), kthvalue (torch's CPU
pick comes from its selection algorithm, neither the first nor the last: ``kthvalue([0, 0, 0, 0, 2], 1)`` is index
3, ``k=3`` index 0; its docs call the CUDA pick nondeterministic), sort with ``stable=False`` ("not guaranteed"),
median / nanmedian ("not necessarily the first occurrence"; ad's happen to be torch's on the CPU) and mode's index
in rows longer than 16 (from torch's unstable sort; up to 16 both take the last occurrence). torch's mode of a row
holding a NaN is not the most frequent value (its sort does not order NaN: ``mode([nan, 1, 2])`` is NaN), so mode
is compared on rows without NaN.
"""

import math

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as afw

torch = pytest.importorskip("torch")
tfw = torch.autograd.forward_ad

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (numpy's log(0) while computing -inf)

DTYPES = ["float64", "float32"]
NAN, INF = math.nan, math.inf


def _tied(shape, seed, nan=False):
    """Values drawn from {0, 1, 2} (many ties), with one NaN if asked."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64)
    if nan:
        x.flat[rng.integers(0, x.size)] = NAN
    return x


def _pair(x, dtype, grad=False):
    return (
        torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=grad),
        ad.tensor(x.astype(dtype), requires_grad=grad),
    )


def _same(a, b, **tol):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, equal_nan=True, **tol)


def _np(t):
    return t.detach().numpy()


# ---------------------------------------------------------------------------------------------------- ties
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (20,), (4, 17)])
def test_documented_tie_picks_are_torchs(dtype, shape):
    """max / min with dim and argmax / argmin: the first extreme (NaN counts as the extreme); stable sorts: input
    order, descending too."""
    for seed in range(6):
        x = _tied(shape, seed, nan=seed % 3 == 0)
        xt, xa = _pair(x, dtype)
        for dim in range(len(shape)):
            for name in ("max", "min"):
                rt, ra = getattr(torch, name)(xt, dim), getattr(ad, name)(xa, dim)
                _same(_np(ra.indices), _np(rt.indices))
                _same(_np(ra.values), _np(rt.values))
            for name in ("argmax", "argmin"):
                _same(_np(getattr(ad, name)(xa, dim)), _np(getattr(torch, name)(xt, dim)))
            for descending in (False, True):
                rt = torch.sort(xt, dim=dim, descending=descending, stable=True)
                ra = ad.sort(xa, dim=dim, descending=descending, stable=True)
                _same(_np(ra.indices), _np(rt.indices))
                _same(_np(ra.values), _np(rt.values))
                at = torch.argsort(xt, dim=dim, descending=descending, stable=True)
                _same(_np(ad.argsort(xa, dim=dim, descending=descending, stable=True)), _np(at))


def _class_sums(x, grad):
    """The gradient summed over each set of equal elements of the row (NaNs as one set): what every tie pick
    agrees on."""
    keys = np.where(np.isnan(x), np.inf, x)  # (no +inf in these rows)
    return {k: grad[keys == k].sum() for k in np.unique(keys)}


def _check_open_pick(x, xt, xa, ft, fa, dtype, sort_values=False):
    """``ft`` / ``fa`` return (values, indices) along the last dim of a 1-D row: the values agree, each index
    points at an element equal to its value, and a weighted gradient lands on each tied set alike."""
    rt, ra = ft(xt), fa(xa)
    vt, va = _np(rt[0]), _np(ra[0])
    if sort_values:
        vt, va = np.sort(vt, axis=-1), np.sort(va, axis=-1)
    _same(va, vt)
    _same(x.astype(dtype)[_np(ra[1])], _np(ra[0]))
    if sort_values:
        return
    w = np.arange(1.0, 1.0 + np.size(va)).reshape(np.shape(va))
    (rt[0] * torch.tensor(w, dtype=rt[0].dtype)).sum().backward()
    (ra[0] * ad.tensor(w.astype(dtype))).sum().backward()
    want, got = _class_sums(x, _np(xt.grad)), _class_sums(x, _np(xa.grad))
    assert want.keys() == got.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 20])
def test_unspecified_tie_picks_agree_on_what_does_not_depend_on_them(dtype, n):
    for seed in range(4):
        x = _tied((n,), 10 + seed, nan=seed == 1)
        cases = []
        for k in (1, 2, n // 2):
            for largest in (True, False):
                for srt in (True, False):
                    cases.append(
                        (
                            lambda L, t, k=k, la=largest, s=srt: L.topk(t, k, largest=la, sorted=s),
                            not srt,
                        )
                    )
            cases.append((lambda L, t, k=k: L.kthvalue(t, k), False))
        for descending in (False, True):
            cases.append((lambda L, t, d=descending: L.sort(t, descending=d), False))
        cases.append((lambda L, t: L.median(t, 0), False))
        cases.append((lambda L, t: L.nanmedian(t, 0), False))
        for f, unsorted in cases:
            xt, xa = _pair(x, dtype, grad=True)
            _check_open_pick(x, xt, xa, lambda t, f=f: f(torch, t), lambda t, f=f: f(ad, t), dtype, unsorted)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 16, 20])
def test_mode_of_rows_without_nan(dtype, n):
    for seed in range(8):
        x = _tied((n,), 40 + seed)
        xt, xa = _pair(x, dtype, grad=True)
        rt, ra = torch.mode(xt), ad.mode(xa)
        assert ra.values.item() == rt.values.item()
        assert x[ra.indices.item()] == ra.values.item()
        if n <= 16:  # (longer rows: torch's index comes from an unstable sort)
            assert ra.indices.item() == rt.indices.item() == np.flatnonzero(x == ra.values.item())[-1]
        rt.values.backward()
        ra.values.backward()
        assert _class_sums(x, _np(xa.grad)) == pytest.approx(_class_sums(x, _np(xt.grad)))


# ---------------------------------------------------------------------------------------------------- logcumsumexp
def _lcse_tangents(x, t, dtype, dim):
    with tfw.dual_level():
        d = tfw.make_dual(torch.tensor(x, dtype=getattr(torch, dtype)), torch.tensor(t, dtype=getattr(torch, dtype)))
        want = _np(tfw.unpack_dual(torch.logcumsumexp(d, dim)).tangent)
    with afw.dual_level():
        d = afw.make_dual(ad.tensor(x.astype(dtype)), ad.tensor(t.astype(dtype)))
        got = _np(afw.unpack_dual(ad.logcumsumexp(d, dim)).tangent)
    return want, got


LCSE_ROWS = [
    [-INF, 0.5, -INF, 1.0],
    [-INF, -INF, 2.0],
    [-INF, -INF, -1000.0],  # (exp underflows: still a number)
    [-INF, INF],  # the -inf output before +inf: 0, as torch
    [2.0, -INF],
    [-INF],  # only -inf (or a NaN in the line): NaN, as torch and as logsumexp
    [-INF, -INF, -INF],
    [-INF, NAN],
    [-INF] * 3 + list(np.linspace(-1.0, 1.0, 15)) + [-INF],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", LCSE_ROWS, ids=range(len(LCSE_ROWS)))
def test_logcumsumexp_tangent_at_neg_inf_is_torchs(dtype, row):
    x = np.array(row)
    t = np.linspace(0.5, 2.0, x.size)
    want, got = _lcse_tangents(x, t, dtype, 0)
    _same(got, want, rtol=1e-5 if dtype == "float32" else 1e-10)
    finite = np.isfinite(x)
    if finite.any() and not np.isnan(x).any():  # the -inf outputs of a line with a number do not move
        assert (got[np.cumsum(finite) == 0] == 0).all()
    # reverse mode is unchanged: NaN for the inputs of the -inf outputs, as torch's
    xt, xa = _pair(x, dtype, grad=True)
    torch.logcumsumexp(xt, 0).sum().backward()
    ad.logcumsumexp(xa, 0).sum().backward()
    _same(_np(xa.grad), _np(xt.grad), rtol=1e-5 if dtype == "float32" else 1e-10)


def test_logcumsumexp_tangent_lines_and_batched_tangents():
    x = np.array([[-INF, -INF, 2.0, 0.5], [-INF, 1.0, -INF, 3.0], [-INF, -INF, -INF, -INF]])
    t = np.arange(1.0, 13.0).reshape(3, 4)
    for dim in (0, 1):
        want, got = _lcse_tangents(x, t, "float64", dim)
        _same(got, want, rtol=1e-10)

    # the Jacobian from batched tangents (one forward pass) against torch's
    def f(L):
        return lambda a: L.logcumsumexp(a, 1)

    ja = ad.autograd.functional.jacobian(f(ad), ad.tensor(x[:2]), vectorize=True, strategy="forward-mode")
    jt = torch.autograd.functional.jacobian(f(torch), torch.tensor(x[:2]), vectorize=True, strategy="forward-mode")
    _same(_np(ja), _np(jt), rtol=1e-10, atol=1e-12)
    # analytic: d out_i / d x_j = exp(x_j - out_i) for j <= i along the line, 0 from a -inf input
    row = x[1]
    out = np.logaddexp.accumulate(row)
    for i in range(1, 4):
        want = np.where(np.arange(4) <= i, np.exp(row - out[i]), 0.0)
        _same(_np(ja)[1, i, 1], want, rtol=1e-12, atol=1e-15)


def test_logcumsumexp_tangent_before_pos_inf_keeps_the_identity():
    """Where ad differs on purpose: out[0] = x[0] (finite) has tangent t[0]; torch gives 0 once the line holds
    +inf (its shift by the line's maximum); the reverse gradient of out[0] is 1 in both."""
    x = np.array([0.3, -INF, INF, 1.0])
    t = np.array([0.5, 1.0, 1.5, 2.0])
    _, got = _lcse_tangents(x, t, "float64", 0)
    assert got[0] == got[1] == 0.5
    assert np.isnan(got[2:]).all()


# ---------------------------------------------------------------------------------------------------- norms with NaN
NORM_ROWS = np.array(
    [
        [1.0, NAN, -2.0, 0.0, 3.0],
        [NAN, NAN, 3.0, -3.0, 0.0],
        [0.0, 0.0, NAN, 0.0, 0.0],
        [INF, NAN, 1.0, -2.0, -INF],
        [3.0, -3.0, 1.0, 2.0, -1.0],  # (no NaN: ties share the inf-norm's gradient)
    ]
)

NORMS = {
    "vector_norm dim": lambda L, t, p: L.linalg.vector_norm(t, p, dim=1),
    "vector_norm all": lambda L, t, p: L.linalg.vector_norm(t, p),
    "linalg.norm dim": lambda L, t, p: L.linalg.norm(t, p, dim=1),
    "norm dim": lambda L, t, p: L.norm(t, p, dim=1),
    "norm all": lambda L, t, p: L.norm(t, p),
    "Tensor.norm": lambda L, t, p: t.norm(p, 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1, INF, -INF, 2, 3])
@pytest.mark.parametrize("name", list(NORMS))
def test_norm_gradient_with_nan_is_torchs(dtype, p, name):
    """1-norm: a NaN member gets 0 (sign(NaN) = 0, as abs's gradient), the others their sign; inf-norms: the NaN
    line's norm is NaN, which no member equals, so none gets a gradient. Other p: NaN, as torch."""
    for x in (NORM_ROWS, np.tile(NORM_ROWS, (1, 4))):  # rows of 5 and of 20
        xt, xa = _pair(x, dtype, grad=True)
        yt, ya = NORMS[name](torch, xt, p), NORMS[name](ad, xa, p)
        _same(_np(ya), _np(yt), rtol=1e-6)
        yt.sum().backward()
        ya.sum().backward()
        got, want = _np(xa.grad), _np(xt.grad)
        _same(got, want, rtol=1e-6)
        assert (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all()
        if p in (1, INF, -INF):
            assert not np.isnan(got).any()


@pytest.mark.parametrize("p", [1, INF, -INF])
def test_norm_tangent_with_nan_is_torchs(p):
    x = np.tile(NORM_ROWS, (1, 4))
    t = np.linspace(-1.0, 2.0, x.size).reshape(x.shape)
    with tfw.dual_level():
        d = tfw.make_dual(torch.tensor(x), torch.tensor(t))
        want = _np(tfw.unpack_dual(torch.linalg.vector_norm(d, p, dim=1)).tangent)
    with afw.dual_level():
        d = afw.make_dual(ad.tensor(x), ad.tensor(t))
        got = _np(afw.unpack_dual(ad.linalg.vector_norm(d, p, dim=1)).tangent)
    _same(got, want, rtol=1e-12)
    # the 1-norm's tangent is sum(sign(x) * t) over the members that are numbers
    if p == 1:
        _same(got, np.sum(np.nan_to_num(np.sign(x)) * t, axis=1), rtol=1e-12)
    # and the batched reverse sweep gives the same rows as one backward per cotangent
    xa = ad.tensor(x, requires_grad=True)
    y = ad.linalg.vector_norm(xa, p, dim=1)
    eye = ad.eye(x.shape[0], dtype=ad.float64)
    (batched,) = ad.autograd.grad(y, xa, eye, retain_graph=True, is_grads_batched=True)
    for r in range(x.shape[0]):
        (one,) = ad.autograd.grad(y, xa, eye[r], retain_graph=True)
        _same(_np(batched)[r], _np(one))
