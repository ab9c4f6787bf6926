"""torch's version checks on the tensors an op saves (issue 17): composites (var, std, norm, logsumexp, softmax,
log_softmax) check the input and result torch's single node saves, in the kernel sweep and the create_graph
sweep; ``c / x`` is ``reciprocal(x) * c`` (writing into x or the quotient computes), ``reciprocal`` saves its
result. Each case runs in ad and in torch: the same exception class and message, or the same gradient."""

import numpy as np
import pytest

import ad
import ad.nn.functional as F

torch = pytest.importorskip("torch")

X0 = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
MESSAGE = "one of the variables needed for gradient computation has been modified by an inplace operation"


def _ops(lib):
    nf = torch.nn.functional if lib is torch else F
    return {
        "var": lambda x: x.var(),
        "var_dim": lambda x: x.var(1),
        "var_keepdim": lambda x: x.var(1, keepdim=True, correction=0),
        "std": lambda x: x.std(),
        "std_dim": lambda x: x.std(0),
        "std_zero": lambda x: (x * 0.0).std(1),
        "norm": lambda x: x.norm(),
        "norm_dim": lambda x: x.norm(dim=1),
        "norm_1": lambda x: x.norm(p=1),
        "norm_3": lambda x: x.norm(p=3, dim=0),
        "norm_inf": lambda x: x.norm(p=float("inf")),
        "logsumexp": lambda x: lib.logsumexp(x, 1),
        "logsumexp_keepdim": lambda x: lib.logsumexp(x, 1, keepdim=True),
        "logsumexp_all": lambda x: lib.logsumexp(x, (0, 1)),
        "softmax": lambda x: nf.softmax(x, 1),
        "log_softmax": lambda x: nf.log_softmax(x, 1),
        "reciprocal": lambda x: x.reciprocal(),
        "rdiv_1": lambda x: 1.0 / x,
        "rdiv_2": lambda x: 2.0 / x,
    }


def _run(lib, name, write, create_graph=False):
    """Gradient of ``sum(op(x * 1))`` after ``write`` ('input': into x * 1, 'result': into the op's result,
    'none') as numpy, or the exception (class, message)."""
    a = lib.tensor(X0, requires_grad=True)
    b = a * 1
    out = _ops(lib)[name](b)
    loss = (out * lib.tensor(np.arange(1.0, 1.0 + out.numel()).reshape(out.shape))).sum()
    if write == "input":
        b.add_(0.5)
    elif write == "result":
        out.mul_(2.0)
    try:
        (g,) = lib.autograd.grad(loss, a, create_graph=create_graph)
    except Exception as e:  # noqa: BLE001 - compared with torch's below
        return type(e), str(e)
    return g.detach().numpy()


@pytest.mark.parametrize("create_graph", [False, True], ids=["kernel", "create_graph"])
@pytest.mark.parametrize("write", ["none", "input", "result"])
@pytest.mark.parametrize("name", sorted(_ops(torch)))
def test_write_into_saved_tensor_matches_torch(name, write, create_graph):
    expected = _run(torch, name, write)
    got = _run(ad, name, write, create_graph)
    if isinstance(expected, tuple):
        assert isinstance(got, tuple), f"{name}: torch raises {expected[0].__name__}, ad computes {got}"
        assert got[0] is expected[0] is RuntimeError
        assert MESSAGE in got[1] and MESSAGE in expected[1]
    else:
        assert not isinstance(got, tuple), f"{name}: torch computes, ad raises {got}"
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_error_names_the_composite():
    x = ad.tensor(X0, requires_grad=True) * 1
    v = x.var(1)
    x.mul_(2.0)
    with pytest.raises(RuntimeError, match="saved by VarBackward0"):
        v.sum().backward()
    y = ad.logsumexp(ad.tensor(X0, requires_grad=True) * 1, 1)
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="saved by LogsumexpBackward0"):
        y.sum().backward()


@pytest.mark.parametrize("lib", [ad, torch], ids=["ad", "torch"])
def test_write_into_leaf_under_no_grad_after_var_raises(lib):
    a = lib.tensor(X0, requires_grad=True)
    v = a.var()
    with lib.no_grad():
        a.mul_(2.0)
    with pytest.raises(RuntimeError, match=MESSAGE):
        v.backward()


@pytest.mark.parametrize("lib", [ad, torch], ids=["ad", "torch"])
def test_write_through_a_view_of_the_saved_input_raises(lib):
    a = lib.tensor(X0, requires_grad=True)
    b = a * 1
    s = b.std(1)
    b[0].add_(1.0)  # the view shares b's version counter
    with pytest.raises(RuntimeError, match=MESSAGE):
        s.sum().backward()


@pytest.mark.parametrize("create_graph", [False, True], ids=["kernel", "create_graph"])
def test_guard_checks_only_when_the_composite_runs(create_graph):
    """A backward that does not reach the composite's node raises nothing (torch checks a node when it runs),
    and its gradient is the analytic one."""
    a = ad.tensor(X0, requires_grad=True)
    c = a * 1
    unused = [c.var(), ad.logsumexp(c, 1), c.norm(p=1)]  # noqa: F841 - recorded, never differentiated
    used = (c * 3.0).sum()  # a product by a number saves nothing
    c.add_(1.0)
    (g,) = ad.autograd.grad(used, a, create_graph=create_graph)
    np.testing.assert_array_equal(g.detach().numpy(), np.full(X0.shape, 3.0))


def test_guarded_composites_keep_their_gradients():
    """The guard rows compute nothing: var, logsumexp and norm give the analytic gradients, in both sweeps
    and in forward mode."""
    x0 = X0
    n = x0.size
    analytic = {
        "var": (lambda x: x.var(), 2.0 * (x0 - x0.mean()) / (n - 1)),
        "logsumexp": (lambda x: ad.logsumexp(x, (0, 1)), np.exp(x0) / np.exp(x0).sum()),
        "norm": (lambda x: x.norm(), x0 / np.sqrt((x0 * x0).sum())),
        "norm_1": (lambda x: x.norm(p=1), np.sign(x0)),
    }
    for name, (fn, expected) in analytic.items():
        for create_graph in (False, True):
            a = ad.tensor(x0, requires_grad=True)
            (g,) = ad.autograd.grad(fn(a), a, create_graph=create_graph)
            np.testing.assert_allclose(g.detach().numpy(), expected, rtol=1e-12, atol=1e-14, err_msg=name)
        with ad.autograd.forward_ad.dual_level():
            t = np.linspace(-1.0, 1.0, n).reshape(x0.shape)
            dual = ad.autograd.forward_ad.make_dual(ad.tensor(x0), ad.tensor(t))
            tangent = ad.autograd.forward_ad.unpack_dual(fn(dual)).tangent
            np.testing.assert_allclose(float(tangent), float((expected * t).sum()), rtol=1e-12, err_msg=name)


def test_var_backward_twice_raises_freed_as_torch():
    for lib in (ad, torch):
        a = lib.tensor(X0, requires_grad=True)
        v = a.var()
        v.backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            v.backward()


@pytest.mark.parametrize("c", [1.0, 2.0, -0.5, 0.0])
def test_rdiv_is_reciprocal_times_scalar(c):
    """``c / x``: torch's ``reciprocal(x) * c`` (values bit for bit, grad_fn names, the gradient -c / x^2 in
    both sweeps, second derivative 2c / x^3), with writes into x or the quotient allowed."""
    x0 = np.array([0.25, -1.5, 3.0, 7.0])
    a, ta = ad.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    y, ty = c / a, c / ta
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    assert y.grad_fn.name() == ty.grad_fn.name() == "MulBackward0"
    assert y.grad_fn.next_functions[0][0].name() == "ReciprocalBackward0"
    assert len(y.grad_fn.next_functions) == len(ty.grad_fn.next_functions)
    (g,) = ad.autograd.grad(y.sum(), a, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), -c / x0**2, rtol=1e-14, atol=0)
    (h,) = ad.autograd.grad(g.sum(), a)
    np.testing.assert_allclose(h.numpy(), 2.0 * c / x0**3, rtol=1e-13, atol=0)
    r = a.reciprocal()
    assert r.grad_fn.name() == torch.reciprocal(ta).grad_fn.name() == "ReciprocalBackward0"
    assert len(r.grad_fn.next_functions) == len(torch.reciprocal(ta).grad_fn.next_functions) == 1


def test_rdiv_at_zero_matches_torch():
    """0 / x and c / 0: torch's values and gradients (NaN and inf where torch has them)."""
    x0 = np.array([0.0, 2.0, -np.inf, np.nan])
    for c in (0.0, 3.0):
        a, ta = ad.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
        (c / a).sum().backward()
        (c / ta).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())


# --- ad/saved.py TORCH_SAVES: every op ad builds differently from torch's one node checks what that node saves

_M = np.array([[2.0, 0.3, -0.2], [0.1, 1.5, 0.4], [-0.3, 0.2, 1.8]])
_SPD = _M @ _M.T + np.eye(3)
_B = np.array([[0.5, -0.2], [0.3, 0.8], [-0.1, 0.4]])
_V = np.array([0.7, -0.4, 1.2])
_W = np.array([0.2, 0.9, -0.5])
_R = np.array([[0.31, -0.52, 0.77], [0.4, 0.9, -0.3]])
_LU = np.array([[2.0, 0.3, -0.2], [0.05, 1.485, 0.41], [-0.15, 0.165, 1.7]])  # a packed LU (no row swaps)
_PIVOTS = np.array([1, 2, 3], np.int32)
_SAVED_CASES = {  # name: (input values, fn(lib, *inputs))
    "det": ([_M], lambda L, a: L.linalg.det(a)),
    "inv": ([_M], lambda L, a: L.linalg.inv(a)),
    "solve": ([_M, _B], lambda L, a, b: L.linalg.solve(a, b)),
    "solve_triangular": ([np.triu(_M), _B], lambda L, a, b: L.linalg.solve_triangular(a, b, upper=True)),
    "cholesky": ([_SPD], lambda L, a: L.linalg.cholesky(a)),
    "cholesky_solve": ([_B, np.linalg.cholesky(_SPD)], lambda L, b, c: L.cholesky_solve(b, c)),
    "lu_solve": ([_LU, _B], lambda L, lu, b: L.linalg.lu_solve(lu, L.tensor(_PIVOTS), b)),
    "lu": ([_M], lambda L, a: L.linalg.lu(a).U),
    "householder_product": ([_R.T.copy(), _V[:2] * 0.5], lambda L, a, t: L.linalg.householder_product(a, t)),
    "eigh": ([_SPD], lambda L, a: L.linalg.eigh(a).eigenvalues),
    "svdvals": ([_R], lambda L, a: L.linalg.svdvals(a)),
    "pinv": ([_R], lambda L, a: L.linalg.pinv(a)),
    "lstsq": ([_M, _B], lambda L, a, b: L.linalg.lstsq(a, b).solution),
    "matrix_norm": ([_R], lambda L, a: L.linalg.matrix_norm(a)),
    "vector_norm": ([_R], lambda L, a: L.linalg.vector_norm(a, ord=3, dim=-1)),
    "qr": ([_M], lambda L, a: L.linalg.qr(a).R),
    "cumprod": ([_R], lambda L, a: a.cumprod(1)),
    "logcumsumexp": ([_R], lambda L, a: a.logcumsumexp(1)),
    "cummax": ([_R], lambda L, a: a.cummax(1).values),
    "cummin": ([_R], lambda L, a: a.cummin(1).values),
    "dist": ([_V, _W], lambda L, a, b: L.dist(a, b)),
    "fmax": ([_V, _W], lambda L, a, b: L.fmax(a, b)),
    "fmin": ([_V, _W], lambda L, a, b: L.fmin(a, b)),
    "logaddexp": ([_V, _W], lambda L, a, b: L.logaddexp(a, b)),
    "erfinv": ([_V * 0.5], lambda L, a: a.erfinv()),
    "nan_to_num": ([_V], lambda L, a: a.nan_to_num()),
    "nansum": ([_R], lambda L, a: a.nansum(1)),
    "nanmean": ([_R], lambda L, a: a.nanmean(1)),
    "logsigmoid": ([_V], lambda L, a: L.nn.functional.logsigmoid(a)),
    "softplus": ([_V], lambda L, a: L.nn.functional.softplus(a, beta=2.0)),
    "elu": ([_V], lambda L, a: L.nn.functional.elu(a)),
    "selu": ([_V], lambda L, a: L.nn.functional.selu(a)),
    "gelu_tanh": ([_V], lambda L, a: L.nn.functional.gelu(a, approximate="tanh")),
    "hardtanh": ([_V], lambda L, a: L.nn.functional.hardtanh(a)),
    "leaky_relu": ([_V], lambda L, a: L.nn.functional.leaky_relu(a)),
    "hardswish": ([_V], lambda L, a: L.nn.functional.hardswish(a)),
    "mse_loss": ([_V, _W], lambda L, a, b: L.nn.functional.mse_loss(a, b)),
    "huber_loss": ([_V, _W], lambda L, a, b: L.nn.functional.huber_loss(a, b)),
    "smooth_l1_loss": ([_V, _W], lambda L, a, b: L.nn.functional.smooth_l1_loss(a, b)),
    "bce": ([_V * 0.3 + 0.5, _W * 0.3 + 0.5], lambda L, a, b: L.nn.functional.binary_cross_entropy(a, b)),
    "layer_norm": ([_R], lambda L, a: L.nn.functional.layer_norm(a, (3,))),
    "group_norm": ([_R], lambda L, a: L.nn.functional.group_norm(a, 1)),
    "pairwise_distance": ([_R, _R[::-1].copy()], lambda L, a, b: L.nn.functional.pairwise_distance(a, b)),
    "cdist": ([_R, _R[::-1].copy()], lambda L, a, b: L.cdist(a, b)),
    "addcmul": ([_V, _W, _V + 1], lambda L, a, b, c: L.addcmul(a, b, c, value=0.5)),
    "addcdiv": ([_V, _W, _V + 2], lambda L, a, b, c: L.addcdiv(a, b, c, value=0.5)),
}
_SAVED_TARGETS = [(name, t) for name, (vals, _) in _SAVED_CASES.items() for t in [*range(len(vals)), "result"]]


def _saved_run(lib, name, target):
    """Gradients after a write under no_grad into input ``target`` (an index) or the result, or the exception's
    class (torch raises when its node saved the written tensor)."""
    vals, fn = _SAVED_CASES[name]
    leaves = [lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in vals]
    ins = [t.clone() for t in leaves]
    out = fn(lib, *ins)
    with lib.no_grad():
        (out if target == "result" else ins[target]).mul_(1.5)
    try:
        return [g.numpy() for g in lib.autograd.grad(out.sum(), leaves)]
    except RuntimeError as e:
        assert MESSAGE in str(e)
        return RuntimeError


@pytest.mark.parametrize("name,target", _SAVED_TARGETS, ids=[f"{n}-{t}" for n, t in _SAVED_TARGETS])
def test_saved_tensors_checked_as_torch_node(name, target):
    got, expected = _saved_run(ad, name, target), _saved_run(torch, name, target)
    if expected is RuntimeError:
        assert got is RuntimeError, f"{name}: torch raises after a write into {target}, ad computes"
    else:
        assert got is not RuntimeError, f"{name}: torch computes after a write into {target}, ad raises"
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_erfinv_partial_from_its_input_matches_torch():
    """erfinv's partial recomputes erfinv(x) (kernels/pointwise.erfinv) instead of reading the result, which torch
    does not save: it must be exact to the last bits, tails included."""
    import scipy.special

    from kernels.pointwise import erfinv

    v = np.concatenate([np.linspace(-0.999999, 0.999999, 2001), [1 - 2.0**-52, -1 + 1e-15, 1e-300, 0.0, 0.5]])
    got = np.array([erfinv(float(t)) for t in v])
    np.testing.assert_allclose(got, scipy.special.erfinv(v), rtol=4e-15, atol=0)
    assert erfinv(1.0) == np.inf and erfinv(-1.0) == -np.inf and np.isnan(erfinv(1.5))
    x = np.array([-0.999999, -0.5, 0.0, 0.3, 0.99, 0.9999999])
    for create_graph in (False, True):
        a = ad.tensor(x, requires_grad=True)
        (ga,) = ad.autograd.grad(a.erfinv().sum(), a, create_graph=create_graph)
        t = torch.tensor(x, requires_grad=True)
        (gt,) = torch.autograd.grad(t.erfinv().sum(), t)
        np.testing.assert_allclose(ga.detach().numpy(), gt.numpy(), rtol=1e-12)


def test_constant_imported_by_many_tapes_is_still_checked():
    """A leaf and a constant used by step after step (each step a new tape, copies of both in its arena) keep a
    bounded list of their arena copies (the copies on dead tapes are dropped), and writing into either after
    the forward still makes a backward that reads it raise torch's error, as the first step's would."""
    p = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    c = ad.tensor([1.5, 2.0, -0.5])
    pn, cn = p.detach().numpy().copy(), c.numpy()
    for _ in range(40):
        p.grad = None
        (ad.tanh(p * c) + ad.sin(p)).sum().backward()  # (mul saves c, sin saves p)
        assert p._imports is None or len(p._imports) < 20
        assert c._imports is None or len(c._imports) < 20
    np.testing.assert_allclose(p.grad.numpy(), cn * (1 - np.tanh(pn * cn) ** 2) + np.cos(pn), rtol=1e-14)
    for written in (c, p):
        loss = (ad.tanh(p * c) + ad.sin(p)).sum()
        with ad.no_grad():
            written.mul_(1.0)
        with pytest.raises(RuntimeError, match=MESSAGE):
            loss.backward()


# inputs ad's Python-swept factorisations and solvers keep beside what torch's node saves (the result), to recompute
# the result in forward over reverse (and, for eigh/svd/qr, under create_graph)
_KEPT_TO_RECOMPUTE = [("inv", 0), ("cholesky", 0), ("eigh", 0), ("svdvals", 0), ("qr", 0), ("solve", 1), ("lu", 0)]


@pytest.mark.parametrize("name,target", _KEPT_TO_RECOMPUTE, ids=[f"{n}-{t}" for n, t in _KEPT_TO_RECOMPUTE])
def test_input_kept_to_recompute_raises_only_where_read(name, target):
    """A write into such an input is no error for a plain backward (torch's node does not save it; ad does not
    read it there: test_saved_tensors_checked_as_torch_node); forward over reverse recomputes the result from it,
    so there it raises (a recomputation from the written values would be silently wrong)."""
    import ad.autograd.forward_ad as fwAD

    vals, fn = _SAVED_CASES[name]
    leaves = [ad.tensor(v, dtype=ad.float64, requires_grad=True) for v in vals]
    with fwAD.dual_level():
        ins = [fwAD.make_dual(t.clone(), ad.tensor(np.ones_like(v))) for t, v in zip(leaves, vals)]
        out = fn(ad, *ins)
        with ad.no_grad():
            ins[target].mul_(1.5)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            ad.autograd.grad(out.sum(), leaves)
