"""The UserWarnings of ``lr_scheduler.step()`` about its order with ``optimizer.step()``, against torch: one table
of call orders, each run through both libraries, comparing which warnings come and from which file."""

import types
import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

BEFORE = "Detected call of `lr_scheduler.step()` before `optimizer.step()`"
OVERRIDDEN = "Seems like `optimizer.step()` has been overridden after learning rate scheduler initialization"
EPOCH = "The epoch parameter in `scheduler.step()` was not necessary"


def _sgd(lib):
    p = lib.nn.Parameter(lib.ones(2)) if lib is torch else ad.tensor(np.ones(2), requires_grad=True)
    return lib.optim.SGD([p], lr=0.1, momentum=0.9)


def _noop(self, *args, **kwargs):
    return None


# each scenario: (name, fn(lib, lr_scheduler module)) doing the calls of one training-loop order
def _s_before_o(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    s.step()


def _o_then_s(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    for _ in range(3):
        o.step()
        s.step()


def _s_s_o_s(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    s.step()
    s.step()
    o.step()
    s.step()


def _o_before_construction(lib, S):  # optimizer steps made before the first scheduler do not count
    o = _sgd(lib)
    o.step()
    s = S.StepLR(o, 1)
    s.step()


def _o_between_two_schedulers(lib, S):  # but they do once a first scheduler tracks the optimizer
    o = _sgd(lib)
    S.StepLR(o, 1)
    o.step()
    s2 = S.ExponentialLR(o, 0.9)
    s2.step()


def _two_schedulers_s_o_s2(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    s2 = S.LambdaLR(o, lambda e: 1.0)
    s.step()
    o.step()
    s2.step()


def _overridden_after(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    o.step = types.MethodType(_noop, o)
    o.step()
    s.step()
    s.step()


def _overridden_after_first_step(lib, S):  # only the first user step checks
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    o.step()
    s.step()
    o.step = types.MethodType(_noop, o)
    s.step()


def _overridden_before_no_o(lib, S):
    o = _sgd(lib)
    o.step = types.MethodType(_noop, o)
    s = S.StepLR(o, 1)
    s.step()


def _overridden_before_with_o(lib, S):
    o = _sgd(lib)
    o.step = types.MethodType(_noop, o)
    s = S.StepLR(o, 1)
    o.step()
    s.step()


def _subclass(lib, S):
    class MySGD(lib.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    o = MySGD(_sgd(lib).param_groups[0]["params"], lr=0.1)
    s = S.StepLR(o, 1)
    o.step()
    s.step()
    o2 = MySGD(_sgd(lib).param_groups[0]["params"], lr=0.1)
    s2 = S.StepLR(o2, 1)
    s2.step()


def _zero_grad_only(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    o.zero_grad()
    s.step()


def _step_with_epoch(lib, S):
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    s.step(3)


def _loaded_state(lib, S):  # _step_count comes with the state dict
    o = _sgd(lib)
    s = S.StepLR(o, 1)
    state = s.state_dict()
    s2 = S.StepLR(o, 1)
    o.step()
    s2.step()
    s3 = S.StepLR(o, 1)
    s3.load_state_dict(state)
    s3.step()


def _sequential(lib, S):
    o = _sgd(lib)
    s = S.SequentialLR(o, [S.StepLR(o, 1), S.StepLR(o, 1)], [2])
    s.step()


def _sequential_milestone_first(lib, S):  # the milestone's jump to epoch 0 is the checked step
    o = _sgd(lib)
    s = S.SequentialLR(o, [S.StepLR(o, 1), S.StepLR(o, 1)], [1])
    s.step()
    s.step()


def _sequential_in_order(lib, S):
    o = _sgd(lib)
    s = S.SequentialLR(o, [S.StepLR(o, 1), S.ExponentialLR(o, 0.9)], [2])
    for _ in range(4):
        o.step()
        s.step()


def _chained(lib, S):  # each chained scheduler warns
    o = _sgd(lib)
    s = S.ChainedScheduler([S.StepLR(o, 1), S.ExponentialLR(o, 0.9)])
    s.step()


def _chained_in_order(lib, S):
    o = _sgd(lib)
    s = S.ChainedScheduler([S.StepLR(o, 1), S.ExponentialLR(o, 0.9)])
    o.step()
    s.step()


def _warm_restarts(lib, S):  # its own step(), which torch does not check
    o = _sgd(lib)
    s = S.CosineAnnealingWarmRestarts(o, 2)
    s.step()
    s.step(1)


def _plateau(lib, S):
    o = _sgd(lib)
    s = S.ReduceLROnPlateau(o)
    s.step(1.0)


def _cyclic_and_one_cycle(lib, S):
    o = _sgd(lib)
    S.CyclicLR(o, 0.01, 0.1).step()
    o2 = _sgd(lib)
    S.OneCycleLR(o2, 0.1, total_steps=10).step()


def _every_chainable(lib, S):
    made = [
        lambda o: S.LambdaLR(o, lambda e: 1.0),
        lambda o: S.MultiplicativeLR(o, lambda e: 1.0),
        lambda o: S.MultiStepLR(o, [1]),
        lambda o: S.ExponentialLR(o, 0.9),
        lambda o: S.LinearLR(o),
        lambda o: S.ConstantLR(o),
        lambda o: S.PolynomialLR(o),
        lambda o: S.CosineAnnealingLR(o, 3),
    ]
    for make in made:
        make(_sgd(lib)).step()


SCENARIOS = [
    _s_before_o,
    _o_then_s,
    _s_s_o_s,
    _o_before_construction,
    _o_between_two_schedulers,
    _two_schedulers_s_o_s2,
    _overridden_after,
    _overridden_after_first_step,
    _overridden_before_no_o,
    _overridden_before_with_o,
    _subclass,
    _zero_grad_only,
    _step_with_epoch,
    _loaded_state,
    _sequential,
    _sequential_milestone_first,
    _sequential_in_order,
    _chained,
    _chained_in_order,
    _warm_restarts,
    _plateau,
    _cyclic_and_one_cycle,
    _every_chainable,
]


def _warnings_of(scenario, lib):
    """The warnings a scenario raises, as (kind, raised from this test file) pairs in order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scenario(lib, lib.optim.lr_scheduler)
    out = []
    for w in caught:
        text = str(w.message)
        kind = next((k for k in (BEFORE, OVERRIDDEN, EPOCH) if text.startswith(k)), None)
        if kind is None:
            continue
        assert w.category is UserWarning
        out.append((kind, w.filename == __file__))
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__.strip("_"))
def test_call_order_warnings_match_torch(scenario):
    expected = _warnings_of(scenario, torch)
    assert _warnings_of(scenario, ad) == expected


def test_the_table_covers_each_warning():
    """The scenarios above are not vacuous: torch gives each warning at least once and none in some."""
    seen = [_warnings_of(s, torch) for s in SCENARIOS]
    kinds = {k for ws in seen for k, _ in ws}
    assert kinds == {BEFORE, OVERRIDDEN, EPOCH}
    assert any(ws == [] for ws in seen)


def test_message_is_torchs():
    for lib in (torch, ad):
        o = _sgd(lib)
        s = lib.optim.lr_scheduler.StepLR(o, 1)
        with pytest.warns(UserWarning) as caught:
            s.step()
        texts = [str(w.message) for w in caught]
        if lib is torch:
            expected = texts
        else:
            assert texts == expected


def test_plain_function_override_before_the_scheduler_is_tracked():
    """torch raises AttributeError when ``optimizer.step`` is a plain function at the scheduler's construction
    (it unwraps a bound method); ``ad`` wraps any callable, and sees its calls."""
    o = _sgd(ad)
    calls = []
    o.step = lambda: calls.append(1)
    s = ad.optim.lr_scheduler.StepLR(o, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o.step()
        s.step()
    assert calls == [1]
    assert s.last_epoch == 1
