"""``ad.amp.GradScaler`` against ``torch.amp.GradScaler`` on the CPU: the same training loop (finite and inf
gradients, growth and backoff, two optimizers, explicit unscale_ with gradient clipping), parameters, scales and
state dicts step by step; disabled scalers; and torch's errors."""

import math

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")


def _loop(lib, steps, init_scale=4.0, growth_interval=2, unscale_first=False):
    w = lib.nn.Parameter(lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64))
    v = lib.nn.Parameter(lib.tensor([0.3], dtype=lib.float64))
    opt_w, opt_v = lib.optim.SGD([w], lr=0.1, momentum=0.5), lib.optim.Adam([v], lr=0.01)
    scaler = lib.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    trace = []
    for k, bad in enumerate(steps):
        opt_w.zero_grad()
        opt_v.zero_grad()
        loss = (w * w).sum() * (k + 1) + (v * w[0]).sum()
        if bad:
            loss = loss + w[1] * math.inf
        scaler.scale(loss).backward()
        if unscale_first:
            scaler.unscale_(opt_w)
            lib.nn.utils.clip_grad_norm_([w], 1.0)
        scaler.step(opt_w)
        scaler.step(opt_v)
        scaler.update()
        trace.append((w.detach().numpy().copy(), v.detach().numpy().copy(), scaler.get_scale(),
                      dict(scaler.state_dict())))
    return trace


@pytest.mark.parametrize("unscale_first", [False, True])
def test_training_loop_matches_torch(unscale_first):
    steps = [False, True, False, False, False, True, False, False]
    for (aw, av, ascale, astate), (tw, tv, tscale, tstate) in zip(_loop(ad, steps, unscale_first=unscale_first),
                                                                  _loop(torch, steps, unscale_first=unscale_first)):
        np.testing.assert_allclose(aw, tw, rtol=1e-12)
        np.testing.assert_allclose(av, tv, rtol=1e-12)
        assert ascale == tscale and astate == tstate


def test_scale_nesting_state_dict_and_disabled():
    for lib in (ad, torch):
        scaler = lib.amp.GradScaler("cpu", init_scale=3.0)
        x = lib.tensor(1.0 / 3.0, dtype=lib.float64)
        out = scaler.scale([x, (x,)])
        assert isinstance(out, list) and isinstance(out[1], tuple)
        assert out[0].item() == 1.0 and scaler.get_scale() == 3.0 and isinstance(scaler.get_scale(), float)
        other = lib.amp.GradScaler("cpu")
        other.load_state_dict(scaler.state_dict())
        assert other.state_dict() == scaler.state_dict()
        off = lib.amp.GradScaler("cpu", enabled=False)
        assert off.scale(x) is x and off.get_scale() == 1.0 and off.state_dict() == {} and not off.is_enabled()
        w = lib.nn.Parameter(lib.tensor([1.0], dtype=lib.float64))
        opt = lib.optim.SGD([w], lr=1.0)
        (w * 2).sum().backward()
        off.step(opt)  # a plain optimizer step
        assert w.item() == -1.0
    assert ad.GradScaler is ad.amp.GradScaler and ad.amp.autocast is ad.autocast


def test_errors_match_torch():
    def run(lib):
        errors = []
        w = lib.nn.Parameter(lib.tensor([1.0], dtype=lib.float64))
        opt = lib.optim.SGD([w], lr=0.1)
        for call in (lambda s: s.step(opt), lambda s: s.update(), lambda s: s.scale(3.0),
                     lambda s: s.load_state_dict({})):
            try:
                call(lib.amp.GradScaler("cpu"))
            except Exception as exc:  # noqa: BLE001 - the class is compared
                errors.append((type(exc), str(exc)))
        scaler = lib.amp.GradScaler("cpu")
        scaler.scale((w * w).sum()).backward()
        scaler.unscale_(opt)
        for call in (lambda: scaler.unscale_(opt), lambda: scaler.step(opt, closure=lambda: 0)):
            try:
                call()
            except Exception as exc:  # noqa: BLE001
                errors.append((type(exc), str(exc)))
        scaler.step(opt)
        for call in (lambda: scaler.step(opt), lambda: scaler.unscale_(opt)):
            try:
                call()
            except Exception as exc:  # noqa: BLE001
                errors.append((type(exc), str(exc)))
        return errors

    ours, theirs = run(ad), run(torch)
    assert len(ours) == len(theirs) == 8
    for (a_cls, a_msg), (t_cls, t_msg) in zip(ours, theirs):
        assert a_cls is t_cls and a_msg == t_msg


def test_deprecated_cuda_amp_names_warn_as_torch():
    import torch.cuda.amp as tamp

    import ad.cuda.amp as aamp

    for lib_amp in (tamp, aamp):
        with pytest.warns(FutureWarning, match=r"torch.cuda.amp.GradScaler\(args...\)` is deprecated"):
            scaler = lib_amp.GradScaler(init_scale=8.0, enabled=False)
        assert not scaler.is_enabled() and scaler.get_scale() == 1.0
        with pytest.warns(FutureWarning, match=r"torch.cuda.amp.autocast\(args...\)` is deprecated"):
            with lib_amp.autocast(enabled=False):
                pass
    assert ad.cuda.amp is aamp
