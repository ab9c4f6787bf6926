"""The optimizers written with ``ad`` ops (Adamax, NAdam, RAdam, Adadelta, ASGD, Rprop, Adafactor, Muon) and LBFGS on
CUDA parameters (the simulator): the same parameters and state as on the CPU, state dicts that keep the device."""

import numpy as np
import pytest

import ad

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device or simulator", allow_module_level=True)

CASES = [
    ("Adamax", {}),
    ("Adamax", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("NAdam", {"weight_decay": 0.05, "momentum_decay": 0.01, "maximize": True}),
    ("RAdam", {"lr": 0.05}),
    ("RAdam", {"betas": (0.9, 0.5), "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"weight_decay": 0.1, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("ASGD", {}),
    ("ASGD", {"lr": 0.05, "t0": 3, "lambd": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True}),
    ("Adafactor", {}),
    ("Adafactor", {"lr": 0.05, "beta2_decay": -0.5, "d": 1.5, "weight_decay": 0.1, "maximize": True}),
    ("Muon", {}),
    ("Muon", {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"}),
]


def _run(name, kwargs, dev, steps=10):
    rng = np.random.default_rng(0)
    w = ad.tensor(rng.standard_normal((3, 4)), device=dev, requires_grad=True)
    b = ad.tensor(rng.standard_normal(4 if name != "Muon" else (4, 2)), device=dev, requires_grad=True)
    opt = getattr(ad.optim, name)([w, b], **kwargs)
    for step in range(steps):
        # gradients set directly (the simulator makes each kernel slow), flipping sign on every third step
        # (Rprop's shrink path)
        sign = -1 if step % 3 == 0 else 1
        w.grad = ad.tensor(sign * rng.standard_normal((3, 4)), device=dev)
        b.grad = ad.tensor(sign * rng.standard_normal(b.shape), device=dev)
        opt.step()
    return opt, [w, b]


def _host(t):
    return t.detach().cpu().numpy() if isinstance(t, ad.Tensor) else t


def _assert_same_state(sa, sb):
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_allclose(_host(sa[key]), _host(sb[key]), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name,kwargs", CASES)
def test_steps_on_cuda_equal_cpu(name, kwargs):
    opt_cpu, params_cpu = _run(name, kwargs, "cpu")
    opt_gpu, params_gpu = _run(name, kwargs, "cuda")
    for pc, pg in zip(params_cpu, params_gpu):
        assert pg.is_cuda
        np.testing.assert_allclose(_host(pg), _host(pc), rtol=1e-12, atol=1e-300)
        sc, sg = opt_cpu.state[pc], opt_gpu.state[pg]
        _assert_same_state(sc, sg)
        for key, value in sg.items():
            if isinstance(value, ad.Tensor):
                # per-element buffers live on the parameter's device; 0-d counters on the host, as torch's
                assert value.is_cuda == (value.ndim > 0), key


@pytest.mark.parametrize("name,kwargs", CASES[::2])
def test_state_dict_round_trip_keeps_the_device(name, kwargs):
    opt, (w, b) = _run(name, kwargs, "cuda", steps=3)
    saved = opt.state_dict()
    w2 = ad.tensor(_host(w), device="cuda", requires_grad=True)
    b2 = ad.tensor(_host(b), device="cuda", requires_grad=True)
    opt2 = getattr(ad.optim, name)([w2, b2], **kwargs)
    opt2.load_state_dict(saved)
    for p, p2 in zip((w, b), (w2, b2)):
        state, state2 = opt.state[p], opt2.state[p2]
        _assert_same_state(state, state2)
        for key, value in state2.items():
            if isinstance(value, ad.Tensor):
                assert value.is_cuda == state[key].is_cuda, key
                assert value is not state[key]  # a copy: stepping one optimizer leaves the other's state
    # both continue alike
    for o, ps in ((opt, (w, b)), (opt2, (w2, b2))):
        for p in ps:
            p.grad = p.detach() * 0.5 + 1.0
        o.step()
    np.testing.assert_allclose(_host(w2), _host(w), rtol=1e-12)
    np.testing.assert_allclose(_host(b2), _host(b), rtol=1e-12)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_closure_on_cuda_equals_cpu(line_search_fn):
    def run(dev):
        x = ad.tensor([1.5, -0.5], device=dev, requires_grad=True)
        y = ad.tensor([[0.3], [0.7]], device=dev, requires_grad=True)
        c = ad.tensor([3.0, 2.0], device=dev)
        opt = ad.optim.LBFGS([x, y], lr=0.5, max_iter=4, history_size=3, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            # a Rosenbrock-like coupling keeps the problem non-quadratic
            loss = (c * x * x + (y[:, 0] - x * x) ** 2 * 5 + y[:, 0] ** 4).sum()
            loss.backward()
            return loss

        losses = [float(opt.step(closure)) for _ in range(2)]
        return opt, (x, y), losses

    opt_c, (xc, yc), lc = run("cpu")
    opt_g, (xg, yg), lg = run("cuda")
    np.testing.assert_allclose(lg, lc, rtol=1e-12)
    np.testing.assert_allclose(_host(xg), _host(xc), rtol=1e-12)
    np.testing.assert_allclose(_host(yg), _host(yc), rtol=1e-12)
    sc, sg = opt_c.state[xc], opt_g.state[xg]
    assert sc["n_iter"] == sg["n_iter"] and sc["func_evals"] == sg["func_evals"]
    assert sg["d"].is_cuda and sg["prev_flat_grad"].is_cuda and len(sg["old_dirs"]) > 1
    for key in ("d", "prev_flat_grad"):
        np.testing.assert_allclose(_host(sg[key]), _host(sc[key]), rtol=1e-12, atol=1e-300)
    for key in ("old_dirs", "old_stps"):
        assert len(sc[key]) == len(sg[key])
        for u, v in zip(sc[key], sg[key]):
            # differences of gradients (the device's reductions round apart from numpy's in the last bit):
            # an element that cancels keeps the vector's absolute error, not its own relative one
            u = _host(u)
            np.testing.assert_allclose(_host(v), u, rtol=1e-12, atol=1e-12 * np.abs(u).max())
    # the saved state goes back onto CUDA parameters of another optimizer and continues alike
    x2 = ad.tensor(_host(xg), device="cuda", requires_grad=True)
    y2 = ad.tensor(_host(yg), device="cuda", requires_grad=True)
    opt2 = ad.optim.LBFGS([x2, y2], lr=0.5, max_iter=4, history_size=3, line_search_fn=line_search_fn)
    opt2.load_state_dict(opt_g.state_dict())
    assert opt2.state[x2]["d"].is_cuda
