"""ad.optim against torch.optim: trajectories (float64, 1e-12) for every option, state dicts, param groups,
zero_grad, errors, and the learning-rate schedulers."""

import copy
import math

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 3))
W0 = RNG.standard_normal((3, 4))
B0 = RNG.standard_normal(4)

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, weight_decay=0.2)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, maximize=True, amsgrad=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.8)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]


def _loss(lib, w, b):
    x = lib.tensor(X, dtype=lib.float64)
    return (lib.tanh(x @ w + b) ** 2).sum() + (w * w).sum() * 0.01


def _trajectory(lib, name, kwargs, steps=6):
    w = lib.tensor(W0, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(B0, dtype=lib.float64, requires_grad=True)
    opt = getattr(lib.optim, name)([w, b], **kwargs)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(lib, w, b).backward()
        opt.step()
        out.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return out, opt


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_trajectory_matches_torch(name, kwargs):
    ours, opt = _trajectory(ad, name, kwargs)
    theirs, topt = _trajectory(torch, name, kwargs)
    for (w, b), (tw, tb) in zip(ours, theirs):
        np.testing.assert_allclose(w, tw, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, tb, rtol=0, atol=1e-12)
    # the state has torch's keys and values
    for p, tp in zip(opt.param_groups[0]["params"], topt.param_groups[0]["params"]):
        state, tstate = opt.state[p], topt.state[tp]
        assert sorted(state) == sorted(tstate)
        for key in state:
            np.testing.assert_allclose(np.asarray(state[key]), tstate[key].detach().numpy(), rtol=0, atol=1e-12)
    assert opt.param_groups[0].keys() - {"initial_lr"} == topt.param_groups[0].keys() - {"initial_lr"}


def test_float32_parameters_stay_float32():
    w = ad.tensor(W0.astype(np.float32), requires_grad=True)
    opt = ad.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    assert w.dtype == np.float32 and opt.state[w]["exp_avg"].dtype == np.float32


def test_state_dict_round_trip_continues_the_trajectory():
    ours, _ = _trajectory(ad, "Adam", dict(lr=0.05, amsgrad=True), steps=6)
    w = ad.tensor(W0, requires_grad=True)
    b = ad.tensor(B0, requires_grad=True)
    opt = ad.optim.Adam([w, b], lr=0.05, amsgrad=True)
    for _ in range(3):
        opt.zero_grad()
        _loss(ad, w, b).backward()
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    assert sorted(saved["state"]) == [0, 1] and saved["param_groups"][0]["params"] == [0, 1]
    w2 = ad.tensor(w.detach().numpy().copy(), requires_grad=True)
    b2 = ad.tensor(b.detach().numpy().copy(), requires_grad=True)
    opt2 = ad.optim.Adam([w2, b2], lr=123.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[0]["params"][0] is w2
    for _ in range(3):
        opt2.zero_grad()
        _loss(ad, w2, b2).backward()
        opt2.step()
    np.testing.assert_array_equal(w2.detach().numpy(), ours[-1][0])
    np.testing.assert_array_equal(b2.detach().numpy(), ours[-1][1])


def test_load_state_dict_mismatch_raises_and_changes_nothing():
    w = ad.tensor(W0, requires_grad=True)
    opt = ad.optim.SGD([w], lr=0.1)
    other = ad.optim.SGD([ad.tensor(W0, requires_grad=True), ad.tensor(B0, requires_grad=True)], lr=0.5)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(other.state_dict())
    groups = [{"params": [ad.tensor(W0, requires_grad=True)]}, {"params": [ad.ones(2, requires_grad=True)]}]
    two_groups = ad.optim.SGD(groups)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(two_groups.state_dict())
    assert opt.param_groups[0]["lr"] == 0.1


def test_param_groups_and_add_param_group():
    w = ad.tensor(W0, requires_grad=True)
    b = ad.tensor(B0, requires_grad=True)
    opt = ad.optim.SGD([{"params": [w]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})
    assert len(opt.param_groups) == 2
    c = ad.ones(3, requires_grad=True)
    opt.add_param_group({"params": [c], "lr": 1.0})
    (c * 2.0).sum().backward()
    opt.step()
    np.testing.assert_array_equal(c.detach().numpy(), np.full(3, -1.0))


def test_zero_grad():
    w = ad.tensor(W0, requires_grad=True)
    opt = ad.optim.SGD([w])
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros_like(W0))
    opt.zero_grad()
    assert w.grad is None


def test_step_with_closure_and_version_counter():
    w = ad.tensor([1.0, 2.0], requires_grad=True)
    opt = ad.optim.SGD([w], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with ad.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_array_equal(w.detach().numpy(), [0.0, 0.0])
    # a graph that saved w before the step can no longer be differentiated through it
    y = (w * w).sum()
    (w * 1.0).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize(
    ("make", "exc", "message"),
    [
        (lambda lib, p: lib.optim.SGD(p, lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
        (lambda lib, p: lib.optim.SGD(p, momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
        (lambda lib, p: lib.optim.SGD(p, nesterov=True), ValueError, "Nesterov momentum requires"),
        (lambda lib, p: lib.optim.Adam(p, betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0"),
        (lambda lib, p: lib.optim.Adam(p, eps=-1.0), ValueError, "Invalid epsilon value"),
        (lambda lib, p: lib.optim.RMSprop(p, alpha=-1.0), ValueError, "Invalid alpha value"),
        (lambda lib, p: lib.optim.Adagrad(p, lr_decay=-1.0), ValueError, "Invalid lr_decay value"),
        (lambda lib, p: lib.optim.SGD(p[0]), TypeError, "should be an iterable of Tensors or dicts"),
        (lambda lib, p: lib.optim.SGD([]), ValueError, "empty parameter list"),
        (lambda lib, p: lib.optim.SGD([p[0] * 2]), ValueError, "can't optimize a non-leaf Tensor"),
        (lambda lib, p: lib.optim.SGD([1.0]), TypeError, "can only optimize Tensors"),
    ],
)
def test_bad_arguments_raise_torchs_errors(make, exc, message):
    with pytest.raises(exc, match=message):
        make(ad, [ad.ones(2, requires_grad=True)])
    with pytest.raises(exc):  # torch raises the same class
        make(torch, [torch.ones(2, requires_grad=True)])


SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.25, total_iters=4)),
    ("LambdaLR", dict(lr_lambda=lambda e: 1.0 / (1 + e))),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95)),
    ("ConstantLR", dict(factor=0.5, total_iters=3)),
    ("PolynomialLR", dict(total_iters=6, power=2.0)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.01)),
]


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_matches_torch(name, kwargs):
    def run(lib):
        opt = lib.optim.SGD([lib.ones(2, requires_grad=True)], lr=0.1)
        opt.add_param_group({"params": [lib.ones(1, requires_grad=True)], "lr": 0.5})
        sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
        lrs = []
        for _ in range(14):
            opt.step()
            sched.step()
            lrs.append(list(sched.get_last_lr()) + [g["lr"] for g in opt.param_groups])
        return np.array(lrs, dtype=float)

    np.testing.assert_allclose(run(ad), run(torch), rtol=1e-14, atol=0)


def test_chained_schedulers_and_state_dict():
    def run(lib, steps=10):
        opt = lib.optim.SGD([lib.ones(2, requires_grad=True)], lr=1.0)
        a = lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
        b = lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        out = []
        for _ in range(steps):
            opt.step()
            a.step()
            b.step()
            out.append(opt.param_groups[0]["lr"])
        return out, b

    ours, sched = run(ad)
    theirs, _ = run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    state = sched.state_dict()
    assert state["last_epoch"] == 10 and "optimizer" not in state


def test_sequential_lr_matches_torch():
    def run(lib):
        opt = lib.optim.SGD([lib.ones(2, requires_grad=True)], lr=1.0)
        warm = lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
        decay = lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
        sched = lib.optim.lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[4])
        out = [opt.param_groups[0]["lr"]]
        for _ in range(10):
            opt.step()
            sched.step()
            out.append(opt.param_groups[0]["lr"])
        return out

    np.testing.assert_allclose(run(ad), run(torch), rtol=1e-14)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_reduce_lr_on_plateau_matches_torch(mode, threshold_mode):
    metrics = [1.0, 0.9, 0.9, 0.91, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7]

    def run(lib):
        opt = lib.optim.SGD([lib.ones(2, requires_grad=True)], lr=1.0)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=mode, factor=0.5, patience=1, threshold_mode=threshold_mode, cooldown=1, min_lr=0.1
        )
        out = []
        for m in metrics:
            sched.step(m)
            out.append(opt.param_groups[0]["lr"])
        return out

    assert run(ad) == run(torch)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        ad.optim.lr_scheduler.ReduceLROnPlateau(ad.optim.SGD([ad.ones(1, requires_grad=True)]), factor=1.0)


def test_cosine_schedule_closed_form():
    opt = ad.optim.SGD([ad.ones(1, requires_grad=True)], lr=2.0)
    sched = ad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for epoch in range(1, 11):
        opt.step()
        sched.step()
        assert math.isclose(opt.param_groups[0]["lr"], 1.0 + math.cos(math.pi * epoch / 10), abs_tol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
    ],
)
def test_fused_adam_equals_the_numpy_path_bit_for_bit(dtype, kwargs, monkeypatch):
    """Big parameters take one compiled pass (kernels/optim.py); it must give exactly the numpy path's bits."""
    import ad.optim.adam as adam_mod

    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((80, 70)).astype(dtype)
    grads = [rng.standard_normal((80, 70)).astype(dtype) for _ in range(4)]

    def run(fused_min):
        monkeypatch.setattr(adam_mod, "FUSED_MIN", fused_min)
        w = ad.tensor(w0, requires_grad=True)
        opt = ad.optim.Adam([w], **kwargs)
        for g in grads:
            w.grad = ad.tensor(g)
            opt.step()
        return w.detach().numpy().copy(), {k: np.asarray(v).copy() for k, v in opt.state[w].items()}

    fused_w, fused_state = run(1)
    plain_w, plain_state = run(10**12)
    assert fused_w.dtype == dtype
    assert fused_w.tobytes() == plain_w.tobytes()
    for key in plain_state:
        assert fused_state[key].tobytes() == plain_state[key].tobytes(), key
    if dtype == np.float64:  # and both are torch's trajectory
        tw = torch.tensor(w0, requires_grad=True)
        topt = torch.optim.Adam([tw], **kwargs)
        for g in grads:
            tw.grad = torch.tensor(g)
            topt.step()
        np.testing.assert_allclose(fused_w, tw.detach().numpy(), rtol=0, atol=1e-12)


def test_step_hooks():
    w = ad.tensor([1.0], requires_grad=True)
    opt = ad.optim.SGD([w], lr=0.5)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o is opt, w.item())))
    opt.register_step_post_hook(lambda o, a, k: calls.append(("post", o is opt, w.item())))
    w.grad = ad.tensor([1.0])
    opt.step()
    pre.remove()
    opt.step()
    assert calls == [("pre", True, 1.0), ("post", True, 0.5), ("post", True, 0.0)]


@pytest.mark.parametrize(
    ("opt_name", "kwargs"),
    [
        ("SGD", dict(max_lr=0.5, total_steps=20)),
        ("Adam", dict(max_lr=[0.5, 0.2], total_steps=20, anneal_strategy="linear", three_phase=True)),
        ("SGD", dict(max_lr=0.3, epochs=4, steps_per_epoch=5, cycle_momentum=False, pct_start=0.5)),
    ],
)
def test_one_cycle_lr_matches_torch(opt_name, kwargs):
    def run(lib):
        extra = {"momentum": 0.9} if opt_name == "SGD" else {}
        opt = getattr(lib.optim, opt_name)([lib.ones(2, requires_grad=True)], lr=0.1, **extra)
        opt.add_param_group({"params": [lib.ones(1, requires_grad=True)]})
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, **kwargs)
        out = []
        for _ in range(20):
            opt.step()
            sched.step()
            for g in opt.param_groups:
                out.append([g["lr"], g.get("momentum", 0.0), g.get("betas", (0.0,))[0]])
        return np.array(out)

    np.testing.assert_allclose(run(ad), run(torch), rtol=1e-13, atol=1e-15)


class _HalvingScale:  # a callable object: CyclicLR's state_dict keeps its __dict__ (a function it drops)
    def __init__(self):
        self.base = 0.5

    def __call__(self, x):
        return self.base**x


@pytest.mark.parametrize(
    ("opt_name", "kwargs"),
    [
        ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=3)),
        ("SGD", dict(base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=2, step_size_down=5, mode="triangular2")),
        ("Adam", dict(base_lr=0.01, max_lr=[0.1, 0.3], step_size_up=4, mode="exp_range", gamma=0.9)),
        ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, cycle_momentum=False,
                     scale_fn=lambda x: 1 / (1 + x), scale_mode="iterations")),  # fmt: skip
    ],
)
def test_cyclic_lr_matches_torch(opt_name, kwargs):
    def run(lib):
        extra = {"momentum": 0.9} if opt_name == "SGD" else {}
        opt = getattr(lib.optim, opt_name)([lib.ones(2, requires_grad=True)], lr=0.1, **extra)
        opt.add_param_group({"params": [lib.ones(1, requires_grad=True)]})
        sched = lib.optim.lr_scheduler.CyclicLR(opt, **kwargs)
        out = []
        for _ in range(20):
            opt.step()
            sched.step()
            for g in opt.param_groups:
                out.append([g["lr"], g.get("momentum", 0.0), g.get("betas", (0.0,))[0], *sched.get_last_lr()])
        return np.array(out)

    np.testing.assert_allclose(run(ad), run(torch), rtol=1e-13, atol=1e-15)


def test_cyclic_lr_state_dict_and_errors_as_torch():
    def make(lib, scale_fn):
        opt = lib.optim.SGD([lib.ones(2, requires_grad=True)], lr=0.1, momentum=0.9)
        return opt, lib.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=3, scale_fn=scale_fn)

    for lib in (ad, torch):
        opt, sched = make(lib, _HalvingScale())
        for _ in range(4):
            opt.step()
            sched.step()
        state = sched.state_dict()
        assert state["_scale_fn_custom"] == {"base": 0.5} and "optimizer" not in state
        opt2, resumed = make(lib, _HalvingScale())
        resumed._scale_fn_custom.base = 0.25
        resumed.load_state_dict(state)
        assert resumed._scale_fn_custom.base == 0.5 and resumed.last_epoch == 4
        assert make(lib, lambda x: 1.0)[1].state_dict()["_scale_fn_custom"] is None
        with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
            lib.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, mode="cosine")
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            lib.optim.lr_scheduler.CyclicLR(lib.optim.Adagrad([lib.ones(1, requires_grad=True)]), 0.01, 0.1)
        with pytest.raises(ValueError, match="base_lr must have the same length as optimizer.param_groups"):
            lib.optim.lr_scheduler.CyclicLR(opt, [0.01, 0.02], 0.1)


def test_chained_scheduler_matches_torch():
    def run(lib):
        opt = lib.optim.SGD([lib.ones(2, requires_grad=True)], lr=0.05)
        s1 = lib.optim.lr_scheduler.ConstantLR(opt, factor=0.1, total_iters=4)
        s2 = lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
        sched = lib.optim.lr_scheduler.ChainedScheduler([s1, s2], optimizer=opt)
        out = [sched.get_last_lr()[0]]
        for _ in range(8):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr()[0])
            assert out[-1] == opt.param_groups[0]["lr"]
        state = sched.state_dict()
        assert [s["last_epoch"] for s in state["_schedulers"]] == [8, 8] and "optimizer" not in state
        s1.last_epoch = s2.last_epoch = 0
        sched.load_state_dict(state)
        assert (s1.last_epoch, s2.last_epoch) == (8, 8)
        other = lib.optim.SGD([lib.ones(1, requires_grad=True)], lr=0.1)
        with pytest.raises(ValueError, match="expects all schedulers to belong to the same optimizer"):
            lib.optim.lr_scheduler.ChainedScheduler([s1, lib.optim.lr_scheduler.ExponentialLR(other, 0.5)])
        with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
            lib.optim.lr_scheduler.ChainedScheduler([s1, lib.optim.lr_scheduler.ReduceLROnPlateau(opt)])
        with pytest.raises(ValueError, match="expects at least one scheduler"):
            lib.optim.lr_scheduler.ChainedScheduler([])
        return out

    np.testing.assert_allclose(run(ad), run(torch), rtol=1e-14)
