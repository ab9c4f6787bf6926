"""ad.optim's Adamax, NAdam, RAdam, Adadelta, ASGD, Rprop, Adafactor, Muon and LBFGS against torch.optim:
parameter trajectories (float64) for several settings, state dicts that continue a run, torch's errors (Muon
against its algorithm in float64: torch orthogonalizes in bfloat16)."""

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
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1)),
    ("Adafactor", dict(lr=0.2, maximize=True)),  # (lr > 1/sqrt(step) in the first steps: the relative step)
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
    ("Adafactor", dict(lr=-1.0)),
    ("Adafactor", dict(beta2_decay=0.5)),
    ("Adafactor", dict(eps=(-1.0, 1e-3))),
    ("Adafactor", dict(eps=(None, -1e-3))),
    ("Adafactor", dict(d=0.5)),
    ("Adafactor", dict(weight_decay=-0.1)),
    ("Muon", dict(lr=-1.0)),
    ("Muon", dict(momentum=-0.1)),
    ("Muon", dict(weight_decay=-0.1)),
    ("Muon", dict(adjust_lr_fn="rms")),
]


@pytest.mark.parametrize(("name", "kwargs"), BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_bad_hyperparameters_raise_torchs_errors(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(ad.optim, name)([ad.zeros(2, requires_grad=True)], **kwargs)
    assert str(ours.value) == str(theirs.value)


def _muon_reference(w, grads, lr, weight_decay, momentum, nesterov, coefficients, eps, steps, adjust):
    """torch's Muon written out in float64 numpy (torch itself orthogonalizes in bfloat16)."""
    a, b, c = coefficients
    buf = np.zeros_like(w)
    for g in grads:
        buf += (1 - momentum) * (g - buf)
        u = g + momentum * (buf - g) if nesterov else buf.copy()
        tall = u.shape[0] > u.shape[1]
        o = u.T if tall else u
        o = o / max(np.linalg.norm(o), eps)
        for _ in range(steps):
            gram = o @ o.T
            o = a * o + (b * gram + c * gram @ gram) @ o
        o = o.T if tall else o
        rows, cols = w.shape
        ratio = np.sqrt(max(1, rows / cols)) if adjust in (None, "original") else 0.2 * np.sqrt(max(rows, cols))
        w = w * (1 - lr * weight_decay) - lr * ratio * o
    return w


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(lr=0.02, nesterov=False, adjust_lr_fn="match_rms_adamw"), dict(momentum=0.5, ns_steps=3)],
)
@pytest.mark.parametrize("shape", [(3, 5), (6, 2)])
def test_muon_matches_its_algorithm_in_float64_and_torch_to_bfloat16(kwargs, shape):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(6)]
    full = dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, ns_coefficients=(3.4445, -4.775, 2.0315),
                eps=1e-7, ns_steps=5, adjust_lr_fn=None) | kwargs
    results = {}
    for lib in (ad, torch):
        w = lib.tensor(w0, requires_grad=True)
        opt = lib.optim.Muon([w], **kwargs)
        for g in grads:
            w.grad = lib.tensor(g)
            opt.step()
        results[lib] = w.detach().numpy()
        assert sorted(opt.state[w]) == ["momentum_buffer"]
    want = _muon_reference(w0, grads, *full.values())
    np.testing.assert_allclose(results[ad], want, rtol=0, atol=1e-13)
    step = np.abs(want - w0).max()  # torch's bfloat16 iteration: agreement to bfloat16's precision of the steps
    np.testing.assert_allclose(results[torch], want, rtol=0, atol=0.05 * step)


def test_muon_refuses_what_torch_refuses():
    for lib in (ad, torch):
        with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
            lib.optim.Muon([lib.zeros(3, requires_grad=True)])
        w = lib.zeros(2, 2, requires_grad=True)
        with pytest.raises(ValueError, match="Number of steps must be less than 100"):
            w.grad = lib.ones(2, 2)
            lib.optim.Muon([w], ns_steps=100).step()
        with pytest.raises(ValueError, match="Coefficients must be a tuple of exactly 3 values"):
            lib.optim.Muon([w], ns_coefficients=(1.0, 2.0)).step()


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop"])
def test_unsupported_flags_raise(name):
    with pytest.raises(NotImplementedError, match="differentiable=True"):
        getattr(ad.optim, name)([ad.zeros(2, requires_grad=True)], differentiable=True)
    getattr(ad.optim, name)([ad.zeros(2, requires_grad=True)], foreach=True)  # accepted, as torch does


@pytest.mark.parametrize(
    "name", ["Adamax", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop", "LBFGS", "Adafactor", "Muon"]
)
def test_signature_is_torchs(name):
    import inspect

    ours = inspect.signature(getattr(ad.optim, name)).parameters.values()
    theirs = inspect.signature(getattr(torch.optim, name)).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs]
