"""``ad.func`` against ``torch.func``: values of every transform (argnums, has_aux, pytrees, nesting), finite
differences, per-example gradients, ``functional_call``, and the error classes and messages."""

import numpy as np
import pytest

import ad
from ad import func as F

torch = pytest.importorskip("torch")
TF = torch.func

RNG = np.random.default_rng(0)
X = RNG.standard_normal(3)
Y = RNG.standard_normal(3)
A = RNG.standard_normal((2, 3))


def at(a):
    return ad.tensor(np.array(a, dtype=np.float64))


def tt(a):
    return torch.tensor(np.array(a, dtype=np.float64))


def to_np(tree):
    """A tree of ad or torch tensors as numpy arrays (tuples and lists become lists)."""
    if isinstance(tree, (tuple, list)):
        return [to_np(t) for t in tree]
    if isinstance(tree, dict):
        return {k: to_np(v) for k, v in tree.items()}
    if isinstance(tree, ad.Tensor):
        return tree.detach().numpy()
    if isinstance(tree, torch.Tensor):
        return tree.detach().numpy()
    return tree


def assert_close(a, b, tol=1e-10):
    a, b = to_np(a), to_np(b)
    if isinstance(b, list) and not isinstance(a, list):
        b = np.array(b)
    if isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y, tol)
    elif isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b)
        for k in b:
            assert_close(a[k], b[k], tol)
    else:
        assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# the same functions written once for both libraries: `m` is ad or torch
def f_scalar(m, x, y):
    return (m.sin(x) * y).sum() + (x * x * y).sum() ** 2 / 7


def f_vec(m, x):
    return m.tanh(x) * x.sum() + x**3


def f_multi(m, x, y):
    return {"a": m.sin(x) * y, "b": (x * y).sum()}


def both(fn):
    return (lambda *a, **k: fn(ad, *a, **k)), (lambda *a, **k: fn(torch, *a, **k))


def central_jacobian(f, x, eps=1e-6):
    """d f / d x by central differences (f: numpy array in, numpy array out)."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    out = np.stack(cols, -1)
    return out.reshape(np.shape(f(x)) + x.shape)


# ---------------------------------------------------------------------------------------------------------
# grad / grad_and_value


@pytest.mark.parametrize("argnums", [0, 1, -1, (0, 1), (1, 0)])
def test_grad_argnums_matches_torch(argnums):
    fa, ft = both(f_scalar)
    assert_close(F.grad(fa, argnums)(at(X), at(Y)), TF.grad(ft, argnums)(tt(X), tt(Y)))
    ga, va = F.grad_and_value(fa, argnums)(at(X), at(Y))
    gt, vt = TF.grad_and_value(ft, argnums)(tt(X), tt(Y))
    assert_close(ga, gt)
    assert_close(va, vt)
    assert not va.requires_grad


def test_grad_has_aux_pytree_and_kwargs():
    def fa(p, x, scale=1.0):
        out = ((p["w"] @ x + p["b"][0]) ** 2).sum() * scale
        return out, {"out": out, "x": [x]}

    def ft(p, x, scale=1.0):
        out = ((p["w"] @ x + p["b"][0]) ** 2).sum() * scale
        return out, {"out": out, "x": [x]}

    pa = {"w": at(A), "b": [at([0.5, -0.25])]}
    pt = {"w": tt(A), "b": [tt([0.5, -0.25])]}
    ga, aux_a = F.grad(fa, has_aux=True)(pa, at(X), scale=2.0)
    gt, aux_t = TF.grad(ft, has_aux=True)(pt, tt(X), scale=2.0)
    assert isinstance(ga, dict) and isinstance(ga["b"], list)
    assert_close(ga, gt)
    assert_close(aux_a, aux_t)
    (g2a, v2a), aux2 = F.grad_and_value(fa, has_aux=True)(pa, at(X)), None
    assert_close(g2a, TF.grad(ft, has_aux=True)(pt, tt(X))[0])
    assert aux2 is None
    assert_close(v2a[1]["x"], [X])


def test_grad_unused_input_gives_zeros_and_no_grad_outside():
    fa = lambda x, y: (x**2).sum()  # noqa: E731
    ft = lambda x, y: (x**2).sum()  # noqa: E731
    with ad.no_grad():
        ga = F.grad(fa, (0, 1))(at(X), at(Y))
    with torch.no_grad():
        gt = TF.grad(ft, (0, 1))(tt(X), tt(Y))
    assert_close(ga, gt)
    assert_close(F.grad(lambda x: ad.tensor(2.0))(at(X)), np.zeros(3))


def test_grad_of_grad_and_closures():
    fa, ft = both(lambda m, x: m.sin(x) * x**3)
    ga = F.grad(F.grad(fa))(at(0.7))
    gt = TF.grad(TF.grad(ft))(tt(0.7))
    assert_close(ga, gt)
    assert_close(F.grad(F.grad(F.grad(fa)))(at(0.7)), TF.grad(TF.grad(TF.grad(ft)))(tt(0.7)))

    # the inner grad differentiates only its own argument; x is a constant to it (no perturbation confusion)
    def outer(m, g, x):
        return g(lambda y: (m.sin(x * y) * y).sum())(x * 2) .sum()

    assert_close(F.grad(lambda x: outer(ad, F.grad, x))(at(X)), TF.grad(lambda x: outer(torch, TF.grad, x))(tt(X)))


def test_grad_result_differentiable_for_inputs_that_require_grad():
    xa = ad.tensor(X, requires_grad=True)
    xt = torch.tensor(X, requires_grad=True)
    ga = F.grad(lambda x: (x.sin() * x).sum())(xa)
    gt = TF.grad(lambda x: (x.sin() * x).sum())(xt)
    (ga * ga).sum().backward()
    (gt * gt).sum().backward()
    assert_close(xa.grad, xt.grad)


# ---------------------------------------------------------------------------------------------------------
# vjp / jvp / linearize


def test_vjp_pytree_outputs_has_aux_and_reuse():
    fa, ft = both(f_multi)
    outa, vjp_a = F.vjp(fa, at(X), at(Y))
    outt, vjp_t = TF.vjp(ft, tt(X), tt(Y))
    assert_close(outa, outt)
    for u, s in [(Y, 2.0), (X, 0.0)]:
        ra, rt = vjp_a({"a": at(u), "b": at(s)}), vjp_t({"a": tt(u), "b": tt(s)})
        assert isinstance(ra, tuple) and len(ra) == 2
        assert_close(ra, rt)

    def ha(x):
        return x.exp(), x.sum()

    _, vjp_h, aux = F.vjp(ha, at(X), has_aux=True)
    assert_close(aux, np.sum(X))
    assert_close(vjp_h(at(Y)), (np.exp(X) * Y,))


def test_vjp_unused_primal_gives_zeros():
    _, fn = F.vjp(lambda x, y: x.sum(), at(X), at([1.0, 2.0]))
    _, ft = TF.vjp(lambda x, y: x.sum(), tt(X), tt([1.0, 2.0]))
    assert_close(fn(at(1.0)), ft(tt(1.0)))


def test_jvp_and_nested_jvp():
    fa, ft = both(f_multi)
    oa, ja = F.jvp(fa, (at(X), at(Y)), (at(Y), at(X)))
    ot, jt = TF.jvp(ft, (tt(X), tt(Y)), (tt(Y), tt(X)))
    assert_close(oa, ot)
    assert_close(ja, jt)
    # pytree primals and has_aux
    oa, ja, aux = F.jvp(lambda p: (p["x"].sin() * p["y"], p["x"] * 2), ({"x": at(X), "y": at(Y)},),
                        ({"x": at(Y), "y": at(X)},), has_aux=True)
    assert_close(ja, np.cos(X) * Y * Y + np.sin(X) * X)
    assert_close(aux, 2 * X)
    assert not aux.requires_grad
    # jvp of jvp: the second derivative along (v, w), levels kept apart
    sa = lambda x: F.jvp(ad.sin, (x,), (at(Y),))[1]  # noqa: E731
    st = lambda x: TF.jvp(torch.sin, (x,), (tt(Y),))[1]  # noqa: E731
    assert_close(F.jvp(sa, (at(X),), (at(X),))[1], TF.jvp(st, (tt(X),), (tt(X),))[1])


def test_linearize():
    fa, ft = both(f_vec)
    oa, fn_a = F.linearize(fa, at(X))
    ot, fn_t = TF.linearize(ft, tt(X))
    assert_close(oa, ot)
    assert_close(fn_a(at(Y)), fn_t(tt(Y)))
    with pytest.raises(RuntimeError, match="tangent:0 with shape"):
        fn_a(at([1.0, 2.0]))


# ---------------------------------------------------------------------------------------------------------
# jacrev / jacfwd / hessian


@pytest.mark.parametrize("jac", ["jacrev", "jacfwd"])
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacobians_match_torch(jac, argnums):
    fa, ft = both(f_multi)
    ja = getattr(F, jac)(fa, argnums)(at(X), at(Y))
    jt = getattr(TF, jac)(ft, argnums)(tt(X), tt(Y))
    assert_close(ja, jt)


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 5])
def test_jacrev_chunks_and_aux(chunk_size):
    fa, ft = both(lambda m, x: (f_vec(m, x), x.sum()))
    ja, aux_a = F.jacrev(fa, has_aux=True, chunk_size=chunk_size)(at(X))
    jt, aux_t = TF.jacrev(ft, has_aux=True, chunk_size=chunk_size)(tt(X))
    assert_close(ja, jt)
    assert_close(aux_a, aux_t)
    ja, aux_a = F.jacfwd(fa, has_aux=True)(at(X))
    assert_close(ja, jt)
    assert_close(aux_a, aux_t)


def test_jacobians_against_finite_differences():
    def fn(x):  # numpy
        return np.tanh(x) * x.sum() + x**3

    fd = central_jacobian(fn, X)
    fa = lambda x: f_vec(ad, x)  # noqa: E731
    assert_close(F.jacrev(fa)(at(X)), fd, 1e-7)
    assert_close(F.jacfwd(fa)(at(X)), fd, 1e-7)
    # the Hessian of a scalar function: finite differences of its (analytic) gradient
    gradf = lambda x: F.grad(lambda t: f_scalar(ad, t, at(Y)))(at(x)).numpy()  # noqa: E731
    assert_close(F.hessian(lambda t: f_scalar(ad, t, at(Y)))(at(X)), central_jacobian(gradf, X), 1e-6)


@pytest.mark.parametrize("combo", ["hessian", "rev_fwd", "fwd_fwd", "rev_rev", "rev_grad"])
def test_nested_jacobians_match_torch(combo):
    fa, ft = both(f_vec)
    if combo == "hessian":
        ja, jt = F.hessian(fa)(at(X)), TF.hessian(ft)(tt(X))
    elif combo == "rev_fwd":
        ja, jt = F.jacrev(F.jacfwd(fa))(at(X)), TF.jacrev(TF.jacfwd(ft))(tt(X))
    elif combo == "fwd_fwd":
        ja, jt = F.jacfwd(F.jacfwd(fa))(at(X)), TF.jacfwd(TF.jacfwd(ft))(tt(X))
    elif combo == "rev_rev":
        ja, jt = F.jacrev(F.jacrev(fa))(at(X)), TF.jacrev(TF.jacrev(ft))(tt(X))
    else:
        ga = lambda x: (fa(x) ** 2).sum()  # noqa: E731
        gt = lambda x: (ft(x) ** 2).sum()  # noqa: E731
        ja, jt = F.jacrev(F.grad(ga))(at(X)), TF.jacrev(TF.grad(gt))(tt(X))
    assert_close(ja, jt)
    assert not ja.requires_grad


def _fm(m):
    return lambda x: m.tanh(x) * x.sum()


def _fs(m):
    return lambda x: (m.tanh(x) * x.sum()).sum()


V = RNG.standard_normal(3)
BX = RNG.standard_normal((4, 3))

# (ad result, torch result) makers: every pair of transforms that users compose
COMPOSITIONS = {
    "vmap(jacrev)": lambda m, f, a: f.vmap(f.jacrev(_fm(m)))(a(BX)),
    "vmap(jacfwd)": lambda m, f, a: f.vmap(f.jacfwd(_fm(m)))(a(BX)),
    "vmap(hessian)": lambda m, f, a: f.vmap(f.hessian(_fs(m)))(a(BX)),
    "jacrev(vmap)": lambda m, f, a: f.jacrev(f.vmap(_fm(m)))(a(BX)),
    "jacfwd(vmap)": lambda m, f, a: f.jacfwd(f.vmap(_fm(m)))(a(BX)),
    "grad(jvp)": lambda m, f, a: f.grad(lambda x: f.jvp(_fm(m), (x,), (a(V),))[1].sum())(a(X)),
    "jvp(grad)": lambda m, f, a: f.jvp(f.grad(_fs(m)), (a(X),), (a(V),))[1],
    "jacfwd(grad)": lambda m, f, a: f.jacfwd(f.grad(_fs(m)))(a(X)),
    "vmap(vmap(grad))": lambda m, f, a: f.vmap(f.vmap(f.grad(_fs(m))))(a(np.stack([BX, -BX]))),
    "jacrev(jacrev) chunks": lambda m, f, a: f.jacrev(f.jacrev(_fm(m), chunk_size=2), chunk_size=1)(a(X)),
    "vmap(vjp)": lambda m, f, a: f.vmap(lambda x, v: f.vjp(_fm(m), x)[1](v)[0])(a(BX), a(BX)),
    "vmap(jvp)": lambda m, f, a: f.vmap(lambda x, v: f.jvp(_fm(m), (x,), (v,))[1])(a(BX), a(BX)),
    "hessian(hessian)": lambda m, f, a: f.hessian(f.hessian(lambda x: (x**4).sum()))(a(X)),
    "jacrev matrix": lambda m, f, a: f.jacrev(lambda x: x @ x.T)(a(BX)),
    "jacfwd matrix": lambda m, f, a: f.jacfwd(lambda x: x @ x.T)(a(BX)),
    "jacfwd 0-d input": lambda m, f, a: f.jacfwd(lambda x: x * a(X))(a(0.5)),
}


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_compositions_match_torch(name):
    make = COMPOSITIONS[name]
    ra = make(ad, F, at)
    assert not ra.requires_grad
    assert_close(ra, make(torch, TF, tt))


def test_vjp_fn_differentiable_through_outer_autograd():
    xa, xt = ad.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    ga = F.vjp(_fm(ad), xa)[1](at(V))[0]
    gt = TF.vjp(_fm(torch), xt)[1](tt(V))[0]
    (ga * ga).sum().backward()
    (gt * gt).sum().backward()
    assert_close(xa.grad, xt.grad)


@pytest.mark.parametrize("transform", ["grad", "jvp", "jacrev", "jacfwd", "hessian"])
def test_results_differentiable_wrt_closed_over_tensors(transform):
    """A gradient penalty: the transform's result depends on a tensor f closes over (w), and backward reaches w."""
    wa, wt = ad.tensor(V, requires_grad=True), torch.tensor(V, requires_grad=True)

    def run(m, f, w, a):
        g = lambda x: m.sin(x * w) * x.sum()  # noqa: E731
        if transform == "grad":
            return f.grad(lambda x: g(x).sum())(a(X))
        if transform == "jvp":
            return f.jvp(g, (a(X),), (a(Y),))[1]
        if transform == "hessian":
            return f.hessian(lambda x: g(x).sum())(a(X))
        return getattr(f, transform)(g)(a(X))

    ra, rt = run(ad, F, wa, at), run(torch, TF, wt, tt)
    assert ra.requires_grad and rt.requires_grad
    (ra**2).sum().backward()
    (rt**2).sum().backward()
    assert_close(wa.grad, wt.grad)


def test_functionalize_and_debug_unwrap():
    fa = lambda x: x.clone().mul_(x).add_(1).sum()  # noqa: E731
    assert_close(F.grad(F.functionalize(fa))(at(X)), TF.grad(TF.functionalize(fa))(tt(X)))
    x = at(X)
    assert F.debug_unwrap(x) is x


def test_float32_stays_float32():
    x = ad.ones(2, dtype=ad.float32)
    assert F.grad(lambda x: x.sin().sum())(x).dtype == ad.float32
    assert F.jacrev(ad.sin)(x).dtype == ad.float32
    assert F.jacfwd(ad.sin)(x).dtype == ad.float32


def test_hessian_argnums_tuple():
    fa, ft = both(f_scalar)
    assert_close(F.hessian(fa, (0, 1))(at(X), at(Y)), TF.hessian(ft, (0, 1))(tt(X), tt(Y)))


# ---------------------------------------------------------------------------------------------------------
# vmap


def test_vmap_in_dims_out_dims_and_nesting():
    B = RNG.standard_normal((4, 3))
    C = RNG.standard_normal((3, 4))
    fa, ft = both(lambda m, x, y, s: (m.sin(x) * y).sum() * s)
    assert_close(
        F.vmap(fa, in_dims=(0, 1, None))(at(B), at(C), 2.0), TF.vmap(ft, in_dims=(0, 1, None))(tt(B), tt(C), 2.0)
    )
    # nested pytree in_dims, negative in_dim, tuple out_dims with None, kwargs unmapped
    def ga(p, x, *, k):
        return {"u": p["a"] * x + k, "v": p["b"].sum()}, x.sum()

    def gt(p, x, *, k):
        return {"u": p["a"] * x + k, "v": p["b"].sum()}, x.sum()

    pa, pt = {"a": at(C), "b": at(Y)}, {"a": tt(C), "b": tt(Y)}
    ra = F.vmap(ga, in_dims=({"a": -1, "b": None}, 0), out_dims=({"u": 1, "v": None}, 0))(pa, at(B), k=1.5)
    rt = TF.vmap(gt, in_dims=({"a": -1, "b": None}, 0), out_dims=({"u": 1, "v": None}, 0))(pt, tt(B), k=1.5)
    assert_close(ra, rt)
    # vmap of vmap, and chunk_size
    D = RNG.standard_normal((2, 4, 3))
    ha, ht = both(lambda m, x: m.tanh(x).sum(-1))
    assert_close(F.vmap(F.vmap(ha), in_dims=1, out_dims=-1)(at(D)), TF.vmap(TF.vmap(ht), in_dims=1, out_dims=-1)(tt(D)))
    assert_close(F.vmap(ha, chunk_size=3)(at(B)), TF.vmap(ht, chunk_size=3)(tt(B)))
    assert F.vmap(lambda x: x * 2)(ad.zeros(0, 3)).shape == (0, 3)


def test_vmap_randomness():
    with pytest.raises(RuntimeError, match="called random operation while in randomness error mode"):
        F.vmap(lambda x: x + ad.rand(3))(ad.zeros(4, 3))
    same = F.vmap(lambda x: x + ad.rand(3), randomness="same")(ad.zeros(4, 3)).numpy()
    assert np.all(same == same[0])
    diff = F.vmap(lambda x: x + ad.rand(3), randomness="different")(ad.zeros(4, 3)).numpy()
    assert len({tuple(r) for r in diff}) == 4
    with pytest.raises(RuntimeError, match="Only allowed values for randomness are 'error', 'different', or 'same'"):
        F.vmap(ad.sin, randomness="other")


def test_vmap_grad_per_example_mlp():
    """Per-example gradients of a small MLP: vmap(grad) against a loop of ad.autograd.grad and torch.func."""
    ad.manual_seed(0)
    model = ad.nn.Sequential(ad.nn.Linear(3, 5), ad.nn.Tanh(), ad.nn.Linear(5, 2)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs, ys = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))

    def loss(p, x, y):
        return ((F.functional_call(model, p, (x.unsqueeze(0),)) - y) ** 2).sum()

    per = F.vmap(F.grad(loss), in_dims=(None, 0, 0))(params, at(xs), at(ys))
    for i in range(6):
        out = ((model(at(xs[i : i + 1])) - at(ys[i])) ** 2).sum()
        loop = ad.autograd.grad(out, list(model.parameters()))
        for (name, _), g in zip(model.named_parameters(), loop):
            assert_close(per[name][i], g)
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    tparams = {k: torch.tensor(v.numpy()) for k, v in params.items()}

    def tloss(p, x, y):
        return ((torch.func.functional_call(tmodel, p, (x.unsqueeze(0),)) - y) ** 2).sum()

    assert_close(per, TF.vmap(TF.grad(tloss), in_dims=(None, 0, 0))(tparams, tt(xs), tt(ys)))
    # grad of vmap: the gradient of the summed per-example losses
    tot_a = F.grad(lambda p: F.vmap(loss, in_dims=(None, 0, 0))(p, at(xs), at(ys)).sum())(params)
    tot_t = TF.grad(lambda p: TF.vmap(tloss, in_dims=(None, 0, 0))(p, tt(xs), tt(ys)).sum())(tparams)
    assert_close(tot_a, tot_t)


# ---------------------------------------------------------------------------------------------------------
# functional_call


def test_functional_call_restores_and_ties():
    lin = ad.nn.Linear(2, 1).double()
    w0 = lin.weight
    params = {"weight": at([[1.0, 2.0]]), "bias": at([0.5])}
    assert_close(F.functional_call(lin, params, at([[1.0, 1.0]])), [[3.5]])
    assert lin.weight is w0
    # restored on an exception too
    with pytest.raises(RuntimeError):
        F.functional_call(lin, params, (at([[1.0, 1.0, 1.0]]),))
    assert lin.weight is w0 and lin.bias is not params["bias"]
    # buffers, list of dicts, kwargs
    bn = ad.nn.BatchNorm1d(2).double().eval()
    dicts = [{"running_mean": at([1.0, 2.0])}, {"running_var": at([4.0, 1.0])}]
    out = F.functional_call(bn, dicts, (at([[3.0, 3.0]]),))
    assert_close(out, (np.array([[3.0, 3.0]]) - [1.0, 2.0]) / np.sqrt(np.array([4.0, 1.0]) + 1e-5))
    assert_close(bn.running_mean, [0.0, 0.0])

    class Tied(ad.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ad.nn.Linear(2, 2, bias=False).double()
            self.b = ad.nn.Linear(2, 2, bias=False).double()
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    m = Tied()
    w = at(np.eye(2) * 2)
    assert_close(F.functional_call(m, {"a.weight": w}, (at([[1.0, 1.0]]),)), [[4.0, 4.0]])
    assert_close(F.functional_call(m, {"a.weight": w}, (at([[1.0, 1.0]]),), tie_weights=False),
                 (np.array([[1.0, 1.0]]) @ (2 * np.eye(2))) @ m.b.weight.detach().numpy().T)


def test_functional_call_errors_match_torch():
    lin, tlin = ad.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    cases = [
        ({"weight": ad.ones(1, 2), "junk": ad.ones(1)}, {"weight": torch.ones(1, 2), "junk": torch.ones(1)}, True),
        ([{"weight": ad.ones(1, 2)}, {"weight": ad.ones(1, 2)}], [{"weight": torch.ones(1, 2)}] * 2, False),
        ([{"weight": ad.ones(1, 2)}, 3], [{"weight": torch.ones(1, 2)}, 3], False),
        (3, 3, False),
    ]
    for pa, pt, strict in cases:
        with pytest.raises(Exception) as ea:
            F.functional_call(lin, pa, (ad.ones(1, 2),), strict=strict)
        with pytest.raises(Exception) as et:
            torch.func.functional_call(tlin, pt, (torch.ones(1, 2),), strict=strict)
        assert type(ea.value) is type(et.value)
        assert str(ea.value).split(":")[0].split("<")[0] == str(et.value).split(":")[0].split("<")[0]


def test_stack_module_state_ensemble():
    ad.manual_seed(1)
    models = [ad.nn.Linear(3, 2).double() for _ in range(4)]
    params, buffers = F.stack_module_state(models)
    assert params["weight"].shape == (4, 2, 3) and params["weight"].is_leaf and params["weight"].requires_grad
    assert buffers == {}
    xs = at(RNG.standard_normal((5, 3)))
    out = F.vmap(lambda p, x: F.functional_call(models[0], p, (x,)), in_dims=(0, None))(params, xs)
    for i, m in enumerate(models):
        assert_close(out[i], m(xs))
    with pytest.raises(RuntimeError, match="Expected at least one model, got 0"):
        F.stack_module_state([])
    models[1].eval()
    with pytest.raises(RuntimeError, match="same training/eval mode"):
        F.stack_module_state(models)


# ---------------------------------------------------------------------------------------------------------
# errors: torch's classes and messages


def _errors(call_ad, call_torch):
    with pytest.raises(Exception) as ea:
        call_ad()
    with pytest.raises(Exception) as et:
        call_torch()
    return ea.value, et.value


ERROR_CASES = {
    "grad non-scalar": (lambda m, f: f.grad(lambda x: x)(m.ones(3)), "Expected f(*args) to return a scalar Tensor"),
    "grad non-tensor": (lambda m, f: f.grad(lambda x: 1.0)(m.ones(3)), "Expected f(*args) to return a Tensor, got"),
    "argnums type": (lambda m, f: f.grad(lambda x: x.sum(), 1.0)(m.ones(3)), "argnums must be int or Tuple"),
    "argnums range": (lambda m, f: f.grad(lambda x: x.sum(), 2)(m.ones(3)), "Got argnum=2, but only 1 positional"),
    "argnums dup": (lambda m, f: f.grad(lambda x: x.sum(), (0, 0))(m.ones(3)), "argnums elements must be unique"),
    "argnums empty": (lambda m, f: f.grad(lambda x: x.sum(), ())(m.ones(3)), "argnums must be non-empty"),
    "argnum elt": (lambda m, f: f.grad(lambda x: x.sum(), (0, "a"))(m.ones(3)), "argnum must be int, got"),
    "non-tensor arg": (lambda m, f: f.grad(lambda x: x)(3.0), "Thing passed to transform API must be Tensor"),
    "has_aux": (lambda m, f: f.grad(lambda x: x.sum(), has_aux=True)(m.ones(3)), "should be a tuple: (output, aux)"),
    "vjp output": (lambda m, f: f.vjp(lambda x: 2, m.ones(3)), "expected f(*primals) to return only tensors"),
    "vjp None output": (lambda m, f: f.vjp(lambda x: None, m.ones(3)), "non-empty output (got output = [None])"),
    "int input": (lambda m, f: f.grad(lambda x: x.sum())(m.ones(3).long()), "only Tensors of floating point dtype"),
    "jvp tangent shape": (lambda m, f: f.jvp(m.sin, (m.ones(3),), (m.ones(2),)), "Tensor is of size [3] while"),
    "aux non-tensor": (lambda m, f: f.grad(lambda x: (x.sum(), 3), has_aux=True)(m.ones(3)), "got unsupported type"),
    "jacfwd randomness": (lambda m, f: f.jacfwd(m.sin, randomness="x")(m.ones(3)), "Only allowed values for"),
    "vjp int output": (lambda m, f: f.vjp(lambda x: (x > 0).long(), m.ones(3)), "All outputs of f must be floating"),
    "vjp cotangents": (lambda m, f: f.vjp(lambda x: x, m.ones(3))[1]((m.ones(3),)), "Expected pytree structure of"),
    "jvp primals": (lambda m, f: f.jvp(m.sin, m.ones(3), m.ones(3)), "Expected primals to be a tuple"),
    "jvp structure": (lambda m, f: f.jvp(m.sin, (m.ones(3),), [m.ones(3)]), "Expected primals and tangents to have"),
    "jvp strict": (lambda m, f: f.jvp(lambda x: m.ones(3), (m.ones(3),), (m.ones(3),), strict=True), "independent"),
    "jvp output": (lambda m, f: f.jvp(lambda x: 1.0, (m.ones(3),), (m.ones(3),)), "return only tensors"),
    "jacrev chunk": (lambda m, f: f.jacrev(m.sin, chunk_size=0), "jacrev: `chunk_size` should be greater than 0."),
    "vmap sizes": (lambda m, f: f.vmap(m.add)(m.ones(3), m.ones(4)), "got sizes [3, 4] for the mapped dimension"),
    "vmap in_dim range": (lambda m, f: f.vmap(lambda x: x, in_dims=1)(m.ones(3)), "so expected in_dim to satisfy -1"),
    "vmap in_dims type": (lambda m, f: f.vmap(m.sin, in_dims=None)(m.ones(3)), "expected `in_dims` to be int or a"),
    "vmap in_dims struct": (lambda m, f: f.vmap(m.sin, in_dims=(0, 0))(m.ones(3)), "in_dims is not compatible"),
    "vmap in_dim value": (lambda m, f: f.vmap(m.sin, in_dims=("a",))(m.ones(3)), "in_dim must be either an integer"),
    "vmap non-tensor in": (lambda m, f: f.vmap(lambda x: x)(3.0), "We cannot vmap over non-Tensor arguments"),
    "vmap nothing": (lambda m, f: f.vmap(lambda x: x, in_dims=(None,))(m.ones(3)), "Expected at least one Tensor"),
    "vmap no inputs": (lambda m, f: f.vmap(lambda: 1)(), "got no inputs"),
    "vmap out non-tensor": (lambda m, f: f.vmap(lambda x: 1.0)(m.ones(3)), "must only return Tensors, got type"),
    "vmap out_dims struct": (lambda m, f: f.vmap(lambda x: (x, x), out_dims=(0, 0, 0))(m.ones(3)), "out_dims is not"),
    "vmap out_dims type": (lambda m, f: f.vmap(lambda x: x, out_dims="a")(m.ones(3)), "`out_dims` must be an int"),
    "vmap out None": (lambda m, f: f.vmap(lambda x: (x, x), out_dims=(0, None))(m.eye(2)), "when out_dim is None"),
    "vmap chunk": (lambda m, f: f.vmap(m.sin, chunk_size=0), "chunk_size should be None or greater than 0"),
    "functionalize remove": (lambda m, f: f.functionalize(m.sin, remove="x"), "received invalid argument for remove"),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_errors_match_torch(name):
    call, gist = ERROR_CASES[name]
    ea, et = _errors(lambda: call(ad, F), lambda: call(torch, TF))
    assert type(ea) is type(et), (ea, et)
    assert gist in str(et), str(et)
    assert gist in str(ea), str(ea)
