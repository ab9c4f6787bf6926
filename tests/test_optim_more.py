"""ad.optim's Adamax, NAdam, RAdam, Adadelta, ASGD, Rprop and LBFGS against torch.optim: parameter
trajectories (float64) for several settings, state dicts that continue a run, torch's errors."""

import copy

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)


X = RNG.standard_normal((6, 3))
W0 = RNG.standard_normal((3, 4))
B0 = RNG.standard_normal(4)


@pytest.fixture(autouse=True)
def _torch_float64_scalars():
    """torch keeps scalar state (NAdam's mu_product, ASGD's eta and mu) in its default dtype; ``ad``'s default
    is float64, so compare against torch with float64 as its default."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


CONFIGS = [
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.05, momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adadelta", dict(maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=5, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=3, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(lr=0.05, maximize=True)),
]


def _loss(lib, w, b):
    x = lib.tensor(X, dtype=lib.float64)
    return (lib.tanh(x @ w + b) ** 2).sum() + (w * w).sum() * 0.01 - (b * 0.3).sum()


def _run(lib, opt, w, b, steps):
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(lib, w, b).backward()
        opt.step()
        out.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return out


def _make(lib, name, kwargs):
    w = lib.tensor(W0, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(B0, dtype=lib.float64, requires_grad=True)
    return w, b, getattr(lib.optim, name)([w, b], **kwargs)


def _assert_same(ours, theirs, atol=1e-12):
    for (w, b), (tw, tb) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(w, tw, rtol=0, atol=atol)
        np.testing.assert_allclose(b, tb, rtol=0, atol=atol)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_trajectory_matches_torch(name, kwargs):
    w, b, opt = _make(ad, name, kwargs)
    tw, tb, topt = _make(torch, name, kwargs)
    _assert_same(_run(ad, opt, w, b, 20), _run(torch, topt, tw, tb, 20))
    for p, tp in zip(opt.param_groups[0]["params"], topt.param_groups[0]["params"]):
        state, tstate = opt.state[p], topt.state[tp]
        assert sorted(state) == sorted(tstate)
        for key in state:
            np.testing.assert_allclose(np.asarray(state[key]), tstate[key].detach().numpy(), rtol=0, atol=1e-12)
    assert opt.param_groups[0].keys() == topt.param_groups[0].keys()
    for key, value in topt.param_groups[0].items():
        if key != "params":
            assert opt.param_groups[0][key] == value, key


@pytest.mark.parametrize("name", sorted({n for n, _ in CONFIGS}))
def test_state_dict_round_trip_continues_the_trajectory(name):
    kwargs = dict(lr=0.05) if name != "Adadelta" else {}
    w, b, opt = _make(ad, name, kwargs)
    _run(ad, opt, w, b, 5)
    saved = copy.deepcopy(opt.state_dict())
    expected = _run(ad, opt, w, b, 5)
    # a fresh optimizer over fresh parameters at the saved point
    w2 = ad.tensor(W0, requires_grad=True)
    b2 = ad.tensor(B0, requires_grad=True)
    w3, b3, opt3 = _make(ad, name, kwargs)
    _run(ad, opt3, w3, b3, 5)
    w2._data[...] = w3._data
    b2._data[...] = b3._data
    opt2 = getattr(ad.optim, name)([w2, b2], lr=1.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    _assert_same(_run(ad, opt2, w2, b2, 5), expected, atol=0)
    # the loaded buffers are copies: running opt2 did not touch the saved dict
    assert all(saved["state"][0][k] is not opt2.state[w2][k] for k in saved["state"][0])


def test_param_groups_take_their_own_hyperparameters():
    def make(lib):
        w = lib.tensor(W0, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(B0, dtype=lib.float64, requires_grad=True)
        opt = lib.optim.NAdam([{"params": [w]}, {"params": [b], "lr": 0.1, "weight_decay": 0.2}], lr=0.01)
        return w, b, opt

    w, b, opt = make(ad)
    tw, tb, topt = make(torch)
    _assert_same(_run(ad, opt, w, b, 10), _run(torch, topt, tw, tb, 10))


# ------------------------------------------------------------------------------------------- LBFGS
A = RNG.standard_normal((5, 3))
Y = RNG.standard_normal(5)


def _rosen(lib, x, y):
    r = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    return r.sum()


def _lbfgs_run(lib, kwargs, steps, problem):
    x = lib.tensor(np.array([-1.2, 1.0, 0.3]), dtype=lib.float64, requires_grad=True)
    y = lib.tensor(np.array([1.0, 0.5, -0.2]), dtype=lib.float64, requires_grad=True)
    opt = lib.optim.LBFGS([x, y], **kwargs)

    def closure():
        opt.zero_grad()
        if problem == "rosen":
            loss = _rosen(lib, x, y)
        else:  # least squares with a tanh: a smooth, non-quadratic loss
            a = lib.tensor(A, dtype=lib.float64)
            loss = ((lib.tanh(a @ x) + y.sum() - lib.tensor(Y, dtype=lib.float64)) ** 2).sum() + (y * y).sum()
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        loss = opt.step(closure)
        out.append((float(loss.detach()), x.detach().numpy().copy(), y.detach().numpy().copy()))
    return out, opt, (x, y), closure


LBFGS_CONFIGS = [
    (dict(), "rosen"),
    (dict(lr=0.1, max_iter=5), "rosen"),
    (dict(line_search_fn="strong_wolfe"), "rosen"),
    (dict(line_search_fn="strong_wolfe", history_size=3, max_iter=7, max_eval=12), "rosen"),
    (dict(lr=0.5, history_size=2, tolerance_grad=1e-5, tolerance_change=1e-7), "lsq"),
    (dict(line_search_fn="strong_wolfe", max_iter=4), "lsq"),
]


@pytest.mark.parametrize(("kwargs", "problem"), LBFGS_CONFIGS, ids=[f"{k}-{p}" for k, p in LBFGS_CONFIGS])
def test_lbfgs_matches_torch(kwargs, problem):
    # Rosenbrock's valley amplifies rounding (numpy's and torch's dot products sum in different orders):
    # two steps (up to 40 iterations) stay within 1e-9
    steps = 2 if problem == "rosen" else 6
    ours, opt, _, _ = _lbfgs_run(ad, kwargs, steps, problem)
    theirs, topt, (tx, _), _ = _lbfgs_run(torch, kwargs, steps, problem)
    for (loss, x, y), (tloss, tx_, ty) in zip(ours, theirs):
        assert abs(loss - tloss) <= 1e-9 * max(1.0, abs(tloss))
        np.testing.assert_allclose(x, tx_, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(y, ty, rtol=1e-9, atol=1e-10)
    state, tstate = opt.state[opt._params[0]], topt.state[tx]
    assert state["func_evals"] == tstate["func_evals"] and state["n_iter"] == tstate["n_iter"]
    assert len(state["old_dirs"]) == len(tstate["old_dirs"])
    np.testing.assert_allclose(np.asarray(state["d"]), tstate["d"].numpy(), rtol=1e-6, atol=1e-9)


def test_lbfgs_state_dict_round_trip():
    kwargs = dict(line_search_fn="strong_wolfe", max_iter=3, history_size=4)
    _, opt, (x, y), closure = _lbfgs_run(ad, kwargs, 2, "lsq")
    saved = copy.deepcopy(opt.state_dict())
    snapshot = (x._data.copy(), y._data.copy())
    expected = [float(opt.step(closure)) for _ in range(3)]
    x._data[...], y._data[...] = snapshot
    opt2 = ad.optim.LBFGS([x, y], lr=3.0)
    opt2.load_state_dict(saved)

    def closure2():
        opt2.zero_grad()
        return closure()

    assert [float(opt2.step(closure2)) for _ in range(3)] == expected


def test_lbfgs_errors():
    x = ad.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        ad.optim.LBFGS([{"params": [x]}, {"params": [ad.zeros(2, requires_grad=True)]}])
    opt = ad.optim.LBFGS([x], line_search_fn="armijo")

    def closure():
        opt.zero_grad()
        loss = ((x - 1) ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure)
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        opt.add_param_group({"params": [ad.zeros(2, requires_grad=True)]})
    assert len(opt.param_groups) == 1


BAD = [
    ("Adamax", dict(lr=-1.0)),
    ("Adamax", dict(betas=(1.0, 0.9))),
    ("Adamax", dict(betas=(0.9, -0.1))),
    ("Adamax", dict(eps=-1e-3)),
    ("NAdam", dict(momentum_decay=-0.1)),
    ("NAdam", dict(weight_decay=-0.1)),
    ("RAdam", dict(betas=(0.9, 1.0))),
    ("RAdam", dict(eps=-1.0)),
    ("Adadelta", dict(rho=1.5)),
    ("Adadelta", dict(lr=-0.1)),
    ("Adadelta", dict(eps=-0.1)),
    ("ASGD", dict(lr=-0.1)),
    ("ASGD", dict(weight_decay=-0.1)),
    ("Rprop", dict(etas=(1.1, 1.2))),
    ("Rprop", dict(etas=(0.5, 0.9))),
    ("Rprop", dict(lr=-0.1)),
    ("LBFGS", dict(lr=-1.0)),
]


@pytest.mark.parametrize(("name", "kwargs"), BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_bad_hyperparameters_raise_torchs_errors(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(ad.optim, name)([ad.zeros(2, requires_grad=True)], **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop"])
def test_unsupported_flags_raise(name):
    with pytest.raises(NotImplementedError, match="differentiable=True"):
        getattr(ad.optim, name)([ad.zeros(2, requires_grad=True)], differentiable=True)
    getattr(ad.optim, name)([ad.zeros(2, requires_grad=True)], foreach=True)  # accepted, as torch does


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop", "LBFGS"])
def test_signature_is_torchs(name):
    import inspect

    ours = inspect.signature(getattr(ad.optim, name)).parameters.values()
    theirs = inspect.signature(getattr(torch.optim, name)).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs]
