"""Derivatives at the special points of ops (kinks, ties, bounds, zeros), on every path.

Finite differences cannot see these points (the derivative there is a convention, not a limit), so each case
states torch's value analytically and every path must reproduce it:

- reverse mode, compiled kernel sweep (``grad``) and differentiable rule sweep (``create_graph=True``);
- forward mode, compiled JVP path (inputs that do not require grad) and the rule path (inputs that do);
- second order: reverse over reverse and forward over reverse, against each other and against torch.

A case is ``(id, fn, inputs, expected[, forward_expected])``: ``fn(M, *xs)`` is written once for ``M = ad``
and ``M = torch``; ``expected[j]`` is the gradient of ``fn(...).sum()`` with respect to input ``j`` (the sum of
the Jacobian's rows). Where every derivative is finite, full Jacobians (one basis vector at a time) of every
path must agree. When torch is installed, the table itself, the full Jacobians (NaN and infinity included)
and the finite second derivatives are compared with torch's.
"""

import math

import numpy as np
import pytest

import ad
import ad.autograd.forward_ad as fwAD

# the points are singular on purpose: numpy's divide-by-zero and invalid-value warnings are expected here
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

NAN = math.nan
INF = math.inf


def _a(*v):
    return np.array(v, dtype=np.float64)


_SINC_D = (-0.3 * math.pi * math.cos(-0.3 * math.pi) - math.sin(-0.3 * math.pi)) / (0.09 * math.pi)  # sinc'(-0.3)

# (id, fn(M, *xs), inputs, expected gradient of fn(...).sum() per input[, the same by forward mode if it differs])
CASES = [
    # abs'(0) = 0 (torch's sgn convention), not 1
    ("abs", lambda M, x: x.abs(), [_a(-1.5, 0.0, 2.0)], [_a(-1.0, 0.0, 1.0)]),
    # ... and 0 at NaN too (torch's sgn(NaN) = 0): the value is NaN, its slope is not
    ("abs_nan", lambda M, x: x.abs(), [_a(NAN, 0.0, -1.0)], [_a(0.0, 0.0, -1.0)]),
    ("abs_scaled", lambda M, x: (x * 3.0).abs(), [_a(-0.5, 0.0, 0.25)], [_a(-3.0, 0.0, 3.0)]),
    # relu'(x) = 0 for x <= 0, 1 for x > 0
    ("relu", lambda M, x: x.relu(), [_a(-2.0, -0.5, 0.0, 0.5, 3.0)], [_a(0.0, 0.0, 0.0, 1.0, 1.0)]),
    # clamp passes the gradient at its bounds (inclusive), blocks it outside
    (
        "clamp_both",
        lambda M, x: x.clamp(-1.0, 1.0),
        [_a(-2.0, -1.0, 0.0, 1.0, 2.0)],
        [_a(0.0, 1.0, 1.0, 1.0, 0.0)],
    ),
    ("clamp_min", lambda M, x: x.clamp(min=0.5), [_a(0.0, 0.5, 1.0)], [_a(0.0, 1.0, 1.0)]),
    ("clamp_max", lambda M, x: x.clamp(max=-0.5), [_a(-1.0, -0.5, 0.0)], [_a(1.0, 1.0, 0.0)]),
    # maximum/minimum split a tie 0.5/0.5
    (
        "maximum_ties",
        lambda M, x, y: M.maximum(x, y),
        [_a(1.0, 2.0, 3.0, -1.0), _a(1.0, 0.0, 3.0, 4.0)],
        [_a(0.5, 1.0, 0.5, 0.0), _a(0.5, 0.0, 0.5, 1.0)],
    ),
    (
        "minimum_ties",
        lambda M, x, y: M.minimum(x, y),
        [_a(1.0, 2.0, 3.0, -1.0), _a(1.0, 0.0, 3.0, 4.0)],
        [_a(0.5, 0.0, 0.5, 1.0), _a(0.5, 1.0, 0.5, 0.0)],
    ),
    (
        "maximum_broadcast_ties",
        lambda M, x, y: M.maximum(x, y),
        [_a(1.0, 2.0, 1.0), _a(1.0)],
        [_a(0.5, 1.0, 0.5), _a(1.0)],
    ),
    # amax/amin (and max/min without dim) spread the gradient evenly over ties
    (
        "amax_dim_ties",
        lambda M, x: x.amax(1),
        [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])],
        [np.array([[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])],
    ),
    (
        "amin_dim_ties",
        lambda M, x: x.amin(0),
        [np.array([[1.0, 0.0], [1.0, 2.0]])],
        [np.array([[0.5, 1.0], [0.5, 0.0]])],
    ),
    ("amax_all_ties", lambda M, x: x.amax(), [_a(4.0, -1.0, 4.0, 4.0)], [_a(1 / 3, 0.0, 1 / 3, 1 / 3)]),
    ("amin_all_ties", lambda M, x: x.amin(), [_a(0.0, 0.0, 1.0)], [_a(0.5, 0.5, 0.0)]),
    ("max_all_ties", lambda M, x: x.max(), [_a(2.0, 2.0, 1.0)], [_a(0.5, 0.5, 0.0)]),
    ("min_all_ties", lambda M, x: x.min(), [_a(2.0, -1.0, -1.0, -1.0)], [_a(0.0, 1 / 3, 1 / 3, 1 / 3)]),
    # a NaN member makes the result NaN: the NaN members are the selected ones (ties among them), as torch's max
    # (torch's forward rule of max() / min() over all elements: the mean tangent of the members equal to the
    # result, of which a NaN result has none: NaN)
    ("max_all_nan", lambda M, x: x.max(), [_a(1.0, NAN, 2.0, NAN)], [_a(0.0, 0.5, 0.0, 0.5)], [_a(*[NAN] * 4)]),
    ("min_all_nan", lambda M, x: x.min(), [_a(NAN, -1.0, 0.0)], [_a(1.0, 0.0, 0.0)], [_a(NAN, NAN, NAN)]),
    # max/min over a dim return indices: the gradient goes to the first extreme element only
    (
        "max_dim_ties",
        lambda M, x: x.max(1).values,
        [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])],
        [np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])],
    ),
    (
        "min_dim_ties",
        lambda M, x: x.min(0).values,
        [np.array([[1.0, 0.0], [1.0, 0.0]])],
        [np.array([[1.0, 1.0], [0.0, 0.0]])],
    ),
    # powers at 0: d/dx x**0 = 0 everywhere (not NaN at x = 0), x**1 has slope 1, x**2 slope 0
    ("pow_scalar_zero_exponent", lambda M, x: x**0.0, [_a(0.0, 1.5, -2.0)], [_a(0.0, 0.0, 0.0)]),
    ("pow_scalar_one_at_zero", lambda M, x: x**1.0, [_a(0.0, 2.0)], [_a(1.0, 1.0)]),
    ("pow_scalar_two_at_zero", lambda M, x: x**2.0, [_a(0.0, -1.0)], [_a(0.0, -2.0)]),
    ("pow_scalar_three_at_zero", lambda M, x: x**3.0, [_a(0.0, 1.0)], [_a(0.0, 3.0)]),
    ("pow_scalar_half_at_zero", lambda M, x: x**0.5, [_a(0.0, 4.0)], [_a(INF, 0.25)]),
    ("pow_scalar_negative_at_zero", lambda M, x: x**-1.0, [_a(0.0, 2.0)], [_a(-INF, -0.25)]),
    (
        "pow_tensor_at_zero",
        lambda M, x, y: x**y,
        [_a(0.0, 0.0, 0.0, 2.0, 0.0), _a(0.0, 1.0, 2.0, 0.0, 0.5)],
        # d/dy at x = 0, y >= 0 is 0 (torch masks 0 * log 0)
        [_a(0.0, 1.0, 0.0, 0.0, INF), _a(0.0, 0.0, 0.0, math.log(2.0), 0.0)],
    ),
    # 0 ** y and c ** y: d/dy = c**y * log(c), 0 where c = 0 and y >= 0
    ("rpow_zero_base", lambda M, y: 0.0**y, [_a(0.0, 1.0, 2.5)], [_a(0.0, 0.0, 0.0)]),
    ("rpow_base", lambda M, y: 2.0**y, [_a(0.0, 1.0)], [_a(math.log(2.0), 2.0 * math.log(2.0))]),
    # sqrt and log at 0: infinite slope, no NaN
    ("sqrt_at_zero", lambda M, x: x.sqrt(), [_a(0.0, 1.0)], [_a(INF, 0.5)]),
    ("log_at_zero", lambda M, x: x.log(), [_a(0.0, 2.0)], [_a(INF, 0.5)]),
    ("rsqrt_at_zero", lambda M, x: x.rsqrt(), [_a(0.0, 1.0)], [_a(-INF, -0.5)]),
    # logit'(x) = 1 / (x (1 - x)) is +inf at both zeros (its domain's edge), as torch's backward (torch's forward
    # mode gives -inf at -0.0: not compared here)
    ("logit_zeros", lambda M, x: x.logit(), [_a(-0.0, 0.0, 0.25, 1.0)], [_a(INF, INF, 1 / 0.1875, INF)]),
    # sinc near 0, where the quotient's numerator cancels (0 / 0 once pi x * x underflows): its Taylor series
    (
        "sinc_near_zero",
        lambda M, x: x.sinc(),
        [_a(0.0, -0.0, 1e-300, -0.3)],
        [_a(0.0, 0.0, -(math.pi**2) / 3 * 1e-300, _SINC_D)],
    ),
    # where: the branch not taken gets exactly 0, even where it holds NaN or infinity
    (
        "where_nan_branch",
        lambda M, x, y: M.where(x > 0, x, y),
        [_a(1.0, -1.0, 2.0), _a(NAN, 3.0, INF)],
        [_a(1.0, 0.0, 1.0), _a(0.0, 1.0, 0.0)],
    ),
    # ... but a NaN partial of the untaken branch still reaches the input in reverse mode (0 * NaN, as torch),
    # while forward mode selects the taken branch's tangent: its own expected values (fifth entry)
    (
        "where_nan_product",
        lambda M, x, y: M.where(x > 0, x * y, x),
        [_a(1.0, -1.0), _a(4.0, NAN)],
        [_a(4.0, NAN), _a(1.0, 0.0)],
        [_a(4.0, 1.0), _a(1.0, 0.0)],
    ),
    # division by zero: infinite slopes, 0/0 gives NaN
    (
        "div_by_zero",
        lambda M, x, y: x / y,
        [_a(1.0, 0.0, -2.0), _a(0.0, 0.0, 4.0)],
        [_a(INF, INF, 0.25), _a(-INF, NAN, 0.125)],
    ),
    ("rdiv_by_zero", lambda M, x: 3.0 / x, [_a(0.0, 1.0)], [_a(-INF, -3.0)]),
    # zero variance: var's and std's gradient is 0 (torch masks std's 0/0)
    ("var_zero_variance", lambda M, x: x.var(), [_a(2.0, 2.0, 2.0)], [_a(0.0, 0.0, 0.0)]),
    ("std_zero_variance", lambda M, x: x.std(), [_a(2.0, 2.0, 2.0)], [_a(0.0, 0.0, 0.0)]),
    (
        "std_dim_zero_variance",
        lambda M, x: x.std(1),
        [np.array([[1.0, 1.0], [1.0, 3.0]])],
        [np.array([[0.0, 0.0], [-math.sqrt(0.5), math.sqrt(0.5)]])],
    ),
    # prod with exact zeros: the slope at the zero is the product of the others; two zeros give 0
    ("prod_one_zero", lambda M, x: x.prod(), [_a(2.0, 0.0, 3.0)], [_a(0.0, 6.0, 0.0)]),
    ("prod_two_zeros", lambda M, x: x.prod(), [_a(0.0, 5.0, 0.0)], [_a(0.0, 0.0, 0.0)]),
    ("prod_all_zeros", lambda M, x: x.prod(), [_a(0.0, 0.0)], [_a(0.0, 0.0)]),
    ("prod_single_zero", lambda M, x: x.prod(), [_a(0.0)], [_a(1.0)]),
    (
        "prod_dim_zero",
        lambda M, x: x.prod(0),
        [np.array([[0.0, 2.0], [3.0, 0.0], [4.0, 5.0]])],
        [np.array([[12.0, 0.0], [0.0, 10.0], [0.0, 0.0]])],
    ),
]

IDS = [c[0] for c in CASES]
BY_ID = {c[0]: c for c in CASES}


def _leaves(arrays, requires_grad):
    return [ad.tensor(a.copy(), requires_grad=requires_grad) for a in arrays]


def _reverse_jacobians(fn, arrays, create_graph):
    """Per input: the (out numel, in numel) Jacobian, one VJP per output element."""
    xs = _leaves(arrays, True)
    out = fn(ad, *xs)
    jac = [np.zeros((out.numel(), x.numel())) for x in xs]
    for e in range(out.numel()):
        seed = np.zeros(out.numel())
        seed[e] = 1.0
        gs = ad.autograd.grad(out, xs, ad.tensor(seed.reshape(out.shape)), retain_graph=True, create_graph=create_graph)
        for j, g in enumerate(gs):
            jac[j][e] = g.detach().numpy().reshape(-1)
    return jac


def _forward_jacobians(fn, arrays, requires_grad):
    """Per input: the Jacobian, one JVP per input element. Inputs that do not require grad take the compiled
    JVP path for elementwise ops; inputs that do go through the JVP rules."""
    jac = []
    for j, a in enumerate(arrays):
        cols = []
        for e in range(a.size):
            tangent = np.zeros(a.size)
            tangent[e] = 1.0
            xs = _leaves(arrays, requires_grad)
            with fwAD.dual_level():
                xs[j] = fwAD.make_dual(xs[j], ad.tensor(tangent.reshape(a.shape)))
                t = fwAD.unpack_dual(fn(ad, *xs)).tangent
                cols.append(t.detach().numpy().reshape(-1).copy())
        jac.append(np.stack(cols, axis=1))
    return jac


def _hessian_blocks(fn, arrays, mode):
    """``H[j][k]``: d/dx_k of (d fn(...).sum() / d x_j), by reverse over reverse or forward over reverse."""
    blocks = [[None] * len(arrays) for _ in arrays]
    if mode == "rev_over_rev":
        xs = _leaves(arrays, True)
        gs = ad.autograd.grad(fn(ad, *xs).sum(), xs, create_graph=True)
        for j, g in enumerate(gs):
            rows = []
            for e in range(g.numel()):
                seed = np.zeros(g.numel())
                seed[e] = 1.0
                if not g.requires_grad:  # a constant first derivative: the second is 0
                    rows.append([np.zeros(x.numel()) for x in xs])
                    continue
                hs = ad.autograd.grad(g, xs, ad.tensor(seed.reshape(g.shape)), retain_graph=True, allow_unused=True)
                rows.append([np.zeros(x.numel()) if h is None else h.numpy().reshape(-1) for h, x in zip(hs, xs)])
            for k in range(len(xs)):
                blocks[j][k] = np.stack([r[k] for r in rows])
        return blocks
    for k, a in enumerate(arrays):
        cols = []
        for e in range(a.size):
            tangent = np.zeros(a.size)
            tangent[e] = 1.0
            xs = _leaves(arrays, True)
            with fwAD.dual_level():
                xs[k] = fwAD.make_dual(xs[k], ad.tensor(tangent.reshape(a.shape)))
                gs = ad.autograd.grad(fn(ad, *xs).sum(), xs, create_graph=True, allow_unused=True)
                col = []
                for g, x in zip(gs, xs):
                    t = None if g is None else fwAD.unpack_dual(g).tangent
                    col.append(np.zeros(x.numel()) if t is None else t.detach().numpy().reshape(-1).copy())
            cols.append(col)
        for j in range(len(arrays)):
            blocks[j][k] = np.stack([c[j] for c in cols], axis=1)
    return blocks


def _assert_same(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=what)


def _finite(name):
    return all(np.isfinite(e).all() for e in BY_ID[name][3])


def _reverse_gradient(fn, arrays, create_graph):
    xs = _leaves(arrays, True)
    gs = ad.autograd.grad(fn(ad, *xs).sum(), xs, create_graph=create_graph)
    return [g.detach().numpy() for g in gs]


def _forward_gradient(fn, arrays, requires_grad):
    """Per input ``j``: the sum of the Jacobian's rows, by forward mode. Where the derivatives are finite, the
    full Jacobian is built (one basis tangent per element); where they are not (elementwise cases), one tangent
    of ones on input ``j`` alone gives the diagonal, without the ``0 * inf`` of the other elements' columns."""
    jacobians = _forward_jacobians(fn, arrays, requires_grad)
    elementwise = tuple(fn(ad, *_leaves(arrays, False)).shape) == tuple(arrays[0].shape)
    if not elementwise or all(np.isfinite(j.sum(0)).all() for j in jacobians):  # (a reduction: its rows, summed)
        return [j.sum(0).reshape(a.shape) for j, a in zip(jacobians, arrays)]
    result = []
    for j, a in enumerate(arrays):
        xs = _leaves(arrays, requires_grad)
        with fwAD.dual_level():
            xs[j] = fwAD.make_dual(xs[j], ad.tensor(np.ones_like(a)))
            out = fn(ad, *xs)
            assert out.shape == a.shape, "a case with infinite derivatives must be elementwise"
            result.append(fwAD.unpack_dual(out).tangent.detach().numpy().copy())
    return result


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("create_graph", [False, True], ids=["kernel", "rules"])
def test_reverse_at_edge_point(name, create_graph):
    _, fn, arrays, expected, *_ = BY_ID[name]
    for j, (g, exp) in enumerate(zip(_reverse_gradient(fn, arrays, create_graph), expected)):
        _assert_same(g, exp, f"{name}: d/d input {j}")


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("requires_grad", [False, True], ids=["compiled", "rules"])
def test_forward_at_edge_point(name, requires_grad):
    _, fn, arrays, expected, *forward = BY_ID[name]
    expected = forward[0] if forward else expected
    for j, (g, exp) in enumerate(zip(_forward_gradient(fn, arrays, requires_grad), expected)):
        _assert_same(g, exp, f"{name}: d/d input {j}")


# Full Jacobians are compared only where every derivative is finite: with an infinite partial, a basis vector's
# zeros give ``0 * inf = NaN`` in a column (reverse) or a row (forward), in torch as here.
FINITE_IDS = [name for name in IDS if _finite(name) and len(BY_ID[name]) == 4]


@pytest.mark.parametrize("name", FINITE_IDS)
def test_forward_and_reverse_jacobians_agree(name):
    _, fn, arrays, *_ = BY_ID[name]
    for create_graph in (False, True):
        reverse = _reverse_jacobians(fn, arrays, create_graph)
        for path in (False, True):
            for j, (f, r) in enumerate(zip(_forward_jacobians(fn, arrays, path), reverse)):
                _assert_same(f, r, f"{name}: forward ({'rules' if path else 'compiled'}) vs reverse, input {j}")


@pytest.mark.parametrize("name", FINITE_IDS)
def test_second_order_paths_agree(name):
    _, fn, arrays, *_ = BY_ID[name]
    rr = _hessian_blocks(fn, arrays, "rev_over_rev")
    fr = _hessian_blocks(fn, arrays, "fwd_over_rev")
    for j in range(len(arrays)):
        for k in range(len(arrays)):
            _assert_same(fr[j][k], rr[j][k], f"{name}: d2/d input {j} d input {k}")


# --- torch parity: the analytic table above and the full first and second derivatives are torch's


def _torch_jacobians(torch, fn, arrays):
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(torch, *xs)
    jac = [np.zeros((out.numel(), x.numel())) for x in xs]
    for e in range(out.numel()):
        seed = torch.zeros(out.numel(), dtype=torch.float64)
        seed[e] = 1.0
        gs = torch.autograd.grad(out, xs, seed.reshape(out.shape), retain_graph=True, allow_unused=True)
        for j, g in enumerate(gs):
            if g is not None:
                jac[j][e] = g.numpy().reshape(-1)
    return jac


def _torch_hessian(torch, fn, arrays):
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    gs = torch.autograd.grad(fn(torch, *xs).sum(), xs, create_graph=True)
    blocks = [[None] * len(xs) for _ in xs]
    for j, g in enumerate(gs):
        rows = []
        for e in range(g.numel()):
            seed = torch.zeros(g.numel(), dtype=torch.float64)
            seed[e] = 1.0
            if not g.requires_grad:
                rows.append([np.zeros(x.numel()) for x in xs])
                continue
            hs = torch.autograd.grad(g, xs, seed.reshape(g.shape), retain_graph=True, allow_unused=True)
            rows.append([np.zeros(x.numel()) if h is None else h.numpy(force=True).reshape(-1) for h, x in zip(hs, xs)])
        for k in range(len(xs)):
            blocks[j][k] = np.stack([r[k] for r in rows])
    return blocks


@pytest.mark.parametrize("name", IDS)
def test_edge_table_is_torch(name):
    torch = pytest.importorskip("torch")
    _, fn, arrays, expected, *_ = BY_ID[name]
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    for j, (g, exp) in enumerate(zip(torch.autograd.grad(fn(torch, *xs).sum(), xs), expected)):
        _assert_same(g.numpy(), exp, f"{name}: torch's d/d input {j}")


@pytest.mark.parametrize("name", IDS)
def test_jacobians_match_torch(name):
    torch = pytest.importorskip("torch")
    _, fn, arrays, *_ = BY_ID[name]
    theirs = _torch_jacobians(torch, fn, arrays)
    for j, (ours, t) in enumerate(zip(_reverse_jacobians(fn, arrays, True), theirs)):
        _assert_same(ours, t, f"{name}: Jacobian of input {j}")


@pytest.mark.parametrize("name", IDS)
def test_second_order_matches_torch(name):
    """Reverse over reverse against torch's double backward, wherever torch's value is finite."""
    torch = pytest.importorskip("torch")
    _, fn, arrays, *_ = BY_ID[name]
    ours = _hessian_blocks(fn, arrays, "rev_over_rev")
    theirs = _torch_hessian(torch, fn, arrays)
    for j in range(len(arrays)):
        for k in range(len(arrays)):
            # at a singular point torch's second derivative may be NaN or infinite depending on how its
            # formula is arranged (0 * inf in one place or another): only its finite values are a contract
            finite = np.isfinite(theirs[j][k])
            _assert_same(ours[j][k][finite], theirs[j][k][finite], f"{name}: d2/d input {j} d input {k}")


@pytest.mark.parametrize("path", ["kernel", "create_graph", "forward", "batched"])
def test_amax_nan_group_gradient_as_torch(path):
    """amax/amin with a dim: a group holding a NaN returns NaN, and every member of it gets NaN (torch's
    AmaxBackward0: the cotangent over the members equal to the result, none, times their mask: 0 / 0), in reverse
    and forward mode (max() / min() over all elements give it to the NaN members: the table above); the other
    groups as usual. Every sweep gives the same (kernel, differentiable rules, forward mode, batched)."""
    x_np = np.array([[1.0, NAN, 2.0, NAN], [0.0, 3.0, 3.0, -1.0], [NAN, -2.0, -1.0, -3.0]])
    want_max = np.array([[NAN] * 4, [0.0, 0.5, 0.5, 0.0], [NAN] * 4])
    want_min = np.array([[NAN] * 4, [0.0, 0.0, 0.0, 1.0], [NAN] * 4])
    for reduce, want in (("amax", want_max), ("amin", want_min)):
        if path == "forward":  # the JVP along basis vectors: the Jacobian's entries (each row's own output)
            got = np.zeros_like(x_np)
            for k in range(x_np.size):
                t = np.zeros(x_np.size)
                t[k] = 1.0
                with fwAD.dual_level():
                    d = fwAD.make_dual(ad.tensor(x_np), ad.tensor(t.reshape(x_np.shape)))
                    got.flat[k] = fwAD.unpack_dual(getattr(d, reduce)(1)).tangent[k // x_np.shape[1]].item()
        else:
            x = ad.tensor(x_np, requires_grad=True)
            y = getattr(x, reduce)(1)
            if path == "batched":
                (g,) = ad.autograd.grad(y, x, ad.ones((2, 3)) * ad.tensor([[1.0], [2.0]]), is_grads_batched=True)
                np.testing.assert_array_equal(g.numpy()[1], 2 * g.numpy()[0])
                got = g.numpy()[0]
            else:
                (got,) = ad.autograd.grad(y.sum(), x, create_graph=path == "create_graph")
                got = got.numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"{reduce} by {path}")


def _sinc_second(x):
    """sinc''(x) in float64: the Taylor series near 0, the closed form elsewhere."""
    u = math.pi * x
    if abs(x) < 1e-2:
        u2 = u * u
        return math.pi**2 * (-1 / 3 + u2 / 10 - u2 * u2 / 168 + u2**3 / 6480)
    return math.pi**2 * (-math.sin(u) / u - 2 * math.cos(u) / u**2 + 2 * math.sin(u) / u**3)


def _chain(x, fn):
    """``fn(x)`` followed by 30 affine rows: long enough for the fused double backward (ad/double_backward.py)."""
    y = fn(x)
    for _ in range(30):
        y = y * 1.0
    return y


def _second_derivatives(fn, x_np, path):
    """The diagonal of the Hessian of ``fn(x).sum()`` (an elementwise ``fn``) along a tangent of ones, by
    ``path``: "rules" (grad of grad, recorded), "fused" (grad of grad through ``_chain``: the compiled double
    backward), "fwd_rules" and "fwd_compiled" (forward over reverse with and without ``create_graph``)."""
    v = np.ones_like(x_np)
    x = ad.tensor(x_np.copy(), requires_grad=True)
    if path in ("rules", "fused"):
        f = (lambda t: _chain(t, fn)) if path == "fused" else fn
        (g,) = ad.autograd.grad(f(x).sum(), x, create_graph=True)
        (h,) = ad.autograd.grad((g * ad.tensor(v)).sum(), x)
        return h.numpy()
    with fwAD.dual_level():
        d = fwAD.make_dual(x, ad.tensor(v))
        (g,) = ad.autograd.grad(fn(d).sum(), x, create_graph=path == "fwd_rules")
        return fwAD.unpack_dual(g).tangent.detach().numpy()


SECOND_PATHS = ("rules", "fused", "fwd_rules", "fwd_compiled")


@pytest.mark.parametrize("path", SECOND_PATHS)
def test_sinc_second_derivative_near_zero(path):
    """sinc''(0) = -pi^2 / 3 on every path (torch 2.13: NaN by double backward, 0 by forward over reverse; the
    recorded rule once differentiated a masked quotient to 0), and the series meets the closed form at 1e-3."""
    x = _a(0.0, -0.0, 1e-300, 5e-4, -9.99e-4, 1.001e-3, 0.3, -1.7)
    want = np.array([_sinc_second(v) for v in x])
    np.testing.assert_allclose(_second_derivatives(lambda t: t.sinc(), x, path), want, rtol=1e-9, atol=0)


@pytest.mark.parametrize("path", SECOND_PATHS)
def test_logit_second_derivative(path):
    """logit'' = (2x - 1) / (x (1 - x))^2 inside (0, 1); NaN outside [0, 1], where the first derivative is NaN
    (torch 2.13: 0 there, the derivative of its NaN mask)."""
    x = _a(0.25, 0.5, 0.9, -0.5, 2.0, NAN)
    want = _a(-0.5 / 0.1875**2, 0.0, 0.8 / 0.09**2, NAN, NAN, NAN)
    np.testing.assert_allclose(_second_derivatives(lambda t: t.logit(), x, path), want, rtol=1e-12, equal_nan=True)


# an infinite first derivative makes an infinite tangent: the rows after it whose first partial is a constant
# (x * 1.0) add nothing to the second derivative (torch forms no product there), not 0 * inf = NaN
INFINITE_TANGENT = [
    ("log", lambda t: t.log(), _a(0.0, 2.0), _a(-INF, -0.25)),
    ("sqrt", lambda t: t.sqrt(), _a(0.0, 4.0), _a(-INF, -1 / 32)),
    ("reciprocal", lambda t: t.reciprocal(), _a(0.0, -0.0, 2.0), _a(INF, -INF, 0.25)),
    ("exp", lambda t: t.exp(), _a(INF, 0.0), _a(INF, 1.0)),
    ("square", lambda t: t * t, _a(INF, -INF, 3.0), _a(2.0, 2.0, 2.0)),
]


@pytest.mark.parametrize("case", INFINITE_TANGENT, ids=[c[0] for c in INFINITE_TANGENT])
@pytest.mark.parametrize("path", SECOND_PATHS)
def test_infinite_tangent_through_linear_rows(case, path):
    _, fn, x, want = case
    chained = lambda t: _chain(t, fn)  # noqa: E731
    got = _second_derivatives(fn if path == "fused" else chained, x, path)
    np.testing.assert_array_equal(got, want)
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(chained(xt).sum(), xt, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), xt)
    np.testing.assert_array_equal(h.numpy(), want)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@pytest.mark.parametrize("size", [4, 20000], ids=["small_rows", "big_rows"])
def test_extreme_second_derivative_at_nan(op, size):
    """``maximum(x, 2) ** 2`` with x NaN: double backward (recorded, and fused: small rows in the kernel, big
    rows from Python) follows the reverse rule, which gives the NaN side the gradient (2, torch's double
    backward); forward over reverse follows torch's forward rule, which gives it the other side's tangent (0,
    torch's forward over reverse). The fused big rows once took the forward rule."""
    x = np.linspace(-3.0, 3.0, size)
    x[:3] = [NAN, 2.0, 3.0 if op == "maximum" else 1.0]
    fn = lambda t: getattr(t, op)(ad.full((size,), 2.0, dtype=t.dtype)) ** 2  # noqa: E731
    got = {path: _second_derivatives(fn, x, path) for path in SECOND_PATHS}
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    tfn = lambda t: getattr(t, op)(torch.full((size,), 2.0, dtype=t.dtype)) ** 2  # noqa: E731
    (g,) = torch.autograd.grad(tfn(xt).sum(), xt, create_graph=True)
    (double,) = torch.autograd.grad(g.sum(), xt)
    assert double[:3].tolist() == [2.0, 0.5, 2.0]
    for path in ("rules", "fused"):
        np.testing.assert_array_equal(got[path], double.numpy(), err_msg=path)
    for path in ("fwd_rules", "fwd_compiled"):
        np.testing.assert_array_equal(got[path][:3], [0.0, 0.5, 2.0], err_msg=path)
        np.testing.assert_array_equal(got[path][3:], double.numpy()[3:], err_msg=path)


def _binary_second(name, X, Y, path):
    """``(H v)`` rows of ``name(x, y).sum()`` along ``v = (1.5, 0.5)`` by ``path`` (as ``_second_derivatives``;
    the "rules" and "fused" paths give ``H^T v``, which differs where a masked first partial is differentiated)."""
    x = ad.tensor(X.copy(), requires_grad=True)
    y = ad.tensor(Y.copy(), requires_grad=True)
    f = lambda a, b: getattr(ad, name)(a, b)  # noqa: E731
    if path in ("rules", "fused"):
        g = (lambda a, b: _chain(f(a, b), lambda t: t)) if path == "fused" else f
        gx, gy = ad.autograd.grad(g(x, y).sum(), (x, y), create_graph=True)
        return np.stack([h.numpy() for h in ad.autograd.grad((gx * 1.5 + gy * 0.5).sum(), (x, y))])
    with fwAD.dual_level():
        dx = fwAD.make_dual(x, ad.full(X.shape, 1.5))
        dy = fwAD.make_dual(y, ad.full(X.shape, 0.5))
        gs = ad.autograd.grad(f(dx, dy).sum(), (x, y), create_graph=path == "fwd_rules")
        return np.stack([fwAD.unpack_dual(g).tangent.detach().numpy() for g in gs])


# at (0, 0) atan2's partials are masked to 0 (y / rs, rs = 1 there): the mixed second partials of the masked
# formulas are 1 and -1; xlogy's dx is masked to 0 on x = 0, y <= 0, so along y it is m / y there (NaN at (0, 0))
# while dy = x / y moves along x by 1 / y. The compiled paths (the kernels' second partials) once gave NaN (atan2)
# and 1 / y (xlogy) there, the recorded rules these.
BINARY_MASKS = {
    "atan2": (
        [[-0.5, -0.5, -0.5, 0.5, -0.5, -0.5], [1.5, 1.5, 1.5, 1.5, -1.5, -1.5]],
        [[0.5, 0.5, 0.5, 0.5, -0.5, -0.5], [-1.5, -1.5, -1.5, 1.5, -1.5, -1.5]],
    ),
    "xlogy": (
        [[INF, -INF, INF, INF, 0.5, -0.5], [NAN, NAN, NAN, NAN, 1.5, 0.0]],
        [[NAN, NAN, NAN, INF, 0.5, 0.0], [NAN, NAN, NAN, NAN, 1.5, -1.5]],
    ),
}


@pytest.mark.parametrize("name", list(BINARY_MASKS))
def test_masked_binary_second_derivatives_agree_across_paths(name):
    X = _a(0.0, 0.0, -0.0, 1.0, 0.0, 0.0, 2.0)
    Y = _a(0.0, -0.0, 0.0, 0.0, 1.0, -1.0, 3.0)
    reverse, forward = BINARY_MASKS[name]
    got = {path: _binary_second(name, X, Y, path) for path in SECOND_PATHS}
    for path, want in (("rules", reverse), ("fused", reverse), ("fwd_rules", forward), ("fwd_compiled", forward)):
        np.testing.assert_array_equal(got[path][:, :6], want, err_msg=path)
    torch = pytest.importorskip("torch")  # a smooth point: torch's double backward, and all paths alike
    xt, yt = torch.tensor(X[6:], requires_grad=True), torch.tensor(Y[6:], requires_grad=True)
    gx, gy = torch.autograd.grad(getattr(torch, name)(xt, yt).sum(), (xt, yt), create_graph=True)
    want = np.stack([h.numpy() for h in torch.autograd.grad((gx * 1.5 + gy * 0.5).sum(), (xt, yt))])
    for path in SECOND_PATHS:
        np.testing.assert_allclose(got[path][:, 6:], want, rtol=1e-13, err_msg=path)


def test_cumprod_forward_over_reverse_at_zeros():
    """cumprod's gradient at zeros: its tangent (forward over reverse, without create_graph: the backward runs on
    dual tensors) is the exact one, as double backward's (the masked formula of the first-order gradient holds
    the zero pattern constant and once gave 0 where a later zero's gradient moves with an earlier entry)."""
    z = np.array([[0.5, 0.0, 2.0], [0.0, 0.0, 1.5], [0.0, 3.0, 0.0]])
    w = np.cos(np.arange(9) * 0.7 + 0.3).reshape(3, 3)
    v = np.cos(np.arange(9) * 0.7 + 1.0).reshape(3, 3)
    x = ad.tensor(z.copy(), requires_grad=True)
    (g,) = ad.autograd.grad((x.cumprod(1) * ad.tensor(w)).sum(), x, create_graph=True)
    (want,) = ad.autograd.grad((g * ad.tensor(v)).sum(), x)
    with fwAD.dual_level():
        x = ad.tensor(z.copy(), requires_grad=True)
        (g,) = ad.autograd.grad((fwAD.make_dual(x, ad.tensor(v)).cumprod(1) * ad.tensor(w)).sum(), x)
        got = fwAD.unpack_dual(g).tangent.numpy()
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
    # the gradient is a polynomial: its central difference along v is exact up to rounding
    h = 1e-4

    def grad_at(a):
        t = ad.tensor(a, requires_grad=True)
        return ad.autograd.grad((t.cumprod(1) * ad.tensor(w)).sum(), t)[0].numpy()

    np.testing.assert_allclose(got, (grad_at(z + h * v) - grad_at(z - h * v)) / (2 * h), rtol=1e-6, atol=1e-8)
