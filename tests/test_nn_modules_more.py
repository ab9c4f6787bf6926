"""The torch.nn modules added over existing functionals (padding, resampling, fold, distances, norms, losses,
Softmax2d / RReLU / FeatureAlphaDropout, Container, DataParallel), the Lazy* modules, the Transformer family,
MultiheadAttention's kdim / vdim / add_bias_kv / add_zero_attn, and AdaptiveLogSoftmaxWithLoss, against
torch.nn: same constructor arguments, torch's parameters copied in, values and gradients of the inputs and
parameters in float64, repr and state-dict keys, and torch's exception classes."""

import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _to_ad_state(module):
    return {k: ad.tensor(v.detach().numpy()) for k, v in module.state_dict().items()}


def _inputs(rng, spec):
    """(torch inputs, ad inputs) from a spec: a shape (float input that gets a gradient) or ("int", low, high,
    shape), ("sign", shape), ("pos", shape) (positive floats with a gradient), ("prob", shape)."""
    t_in, a_in = [], []
    for s in spec:
        kind, shape = ("float", s) if isinstance(s[0], int) else (s[0], s[-1])
        if kind == "int":
            x = rng.integers(s[1], s[2], shape)
        elif kind == "sign":
            x = np.where(rng.standard_normal(shape) > 0, 1.0, -1.0)
        elif kind == "pos":
            x = rng.uniform(0.5, 2.0, shape)
        else:
            x = rng.standard_normal(shape)
        grad = kind in ("float", "pos")
        t_in.append(torch.tensor(x, requires_grad=grad))
        a_in.append(ad.tensor(x, requires_grad=grad))
    return t_in, a_in


def _compare(tm, am, t_in, a_in, rng, tol=TOL):
    """Outputs, then the gradients of the inputs and parameters under a random cotangent."""
    t_out, a_out = tm(*t_in), am(*a_in)
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), **tol)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(w)).sum().backward()
    (a_out * ad.tensor(w)).sum().backward()
    for ti, ai in zip(t_in, a_in):
        if ti.requires_grad:
            np.testing.assert_allclose(ai.grad.numpy(), ti.grad.numpy(), **tol)
    for (n, tp), (an, ap) in zip(tm.named_parameters(), am.named_parameters()):
        assert n == an
        np.testing.assert_allclose(ap.grad.numpy(), tp.grad.numpy(), err_msg=n, **tol)


# (class name, constructor args, constructor kwargs, input specs, mode)
CASES = [
    ("ZeroPad1d", (2,), {}, [(2, 3, 4)], "train"),
    ("ZeroPad2d", ((1, 0, 2, 1),), {}, [(2, 3, 4, 4)], "train"),
    ("ZeroPad3d", (1,), {}, [(1, 2, 3, 3, 3)], "train"),
    ("ConstantPad1d", ((1, 2), 3.5), {}, [(2, 3, 4)], "train"),
    ("ConstantPad2d", (1, -1.0), {}, [(3, 4, 4)], "train"),
    ("ConstantPad3d", ((1, 0, 0, 1, 2, 0), 0.5), {}, [(1, 2, 3, 3, 3)], "train"),
    ("ReflectionPad1d", (2,), {}, [(2, 3, 5)], "train"),
    ("ReflectionPad2d", ((1, 2, 0, 1),), {}, [(2, 3, 4, 4)], "train"),
    ("ReflectionPad3d", (1,), {}, [(1, 2, 3, 3, 3)], "train"),
    ("ReplicationPad1d", ((3, 1),), {}, [(2, 3, 4)], "train"),
    ("ReplicationPad2d", (2,), {}, [(2, 3, 4, 4)], "train"),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), {}, [(1, 2, 3, 3, 3)], "train"),
    ("CircularPad1d", (2,), {}, [(2, 3, 4)], "train"),
    ("CircularPad2d", ((1, 2, 2, 0),), {}, [(2, 3, 4, 4)], "train"),
    ("CircularPad3d", (1,), {}, [(1, 2, 3, 3, 3)], "train"),
    ("Upsample", (), {"scale_factor": 2}, [(2, 3, 4)], "train"),
    ("Upsample", (), {"size": (5, 7), "mode": "bilinear"}, [(2, 3, 4, 4)], "train"),
    ("Upsample", (), {"scale_factor": (1.5, 2), "mode": "bicubic", "align_corners": True}, [(1, 2, 4, 4)], "train"),
    ("Upsample", (), {"scale_factor": 2, "mode": "trilinear"}, [(1, 2, 2, 3, 2)], "train"),
    ("UpsamplingNearest2d", (), {"scale_factor": 3}, [(2, 3, 2, 3)], "train"),
    ("UpsamplingBilinear2d", ((5, 6),), {}, [(2, 3, 3, 4)], "train"),
    ("PixelShuffle", (2,), {}, [(2, 8, 3, 3)], "train"),
    ("PixelUnshuffle", (2,), {}, [(2, 2, 4, 6)], "train"),
    ("Fold", ((4, 5), (2, 2)), {}, [(2, 12, 12)], "train"),
    ("Fold", ((5, 5), 3), {"padding": 1, "stride": 2, "dilation": 1}, [(1, 18, 9)], "train"),
    ("Unfold", ((2, 3),), {"dilation": (1, 2), "padding": 1, "stride": 2}, [(2, 3, 5, 6)], "train"),
    ("PairwiseDistance", (), {}, [(4, 5), (4, 5)], "train"),
    ("PairwiseDistance", (), {"p": 1.0, "keepdim": True}, [(4, 5), (4, 5)], "train"),
    ("CosineSimilarity", (), {}, [(4, 5), (4, 5)], "train"),
    ("CosineSimilarity", (), {"dim": 0, "eps": 1e-6}, [(4, 5), (4, 5)], "train"),
    ("Softmax2d", (), {}, [(2, 3, 4, 4)], "train"),
    ("Softmax2d", (), {}, [(3, 4, 4)], "train"),
    ("RReLU", (), {}, [(4, 5)], "eval"),
    ("RReLU", (0.1, 0.3), {}, [(4, 5)], "eval"),
    ("FeatureAlphaDropout", (0.3,), {}, [(4, 5, 3)], "eval"),
    ("AdaptiveAvgPool3d", ((2, 3, 2),), {}, [(2, 3, 5, 6, 4)], "train"),
    ("AdaptiveAvgPool3d", (2,), {}, [(3, 4, 4, 5)], "train"),
    ("LocalResponseNorm", (3,), {}, [(2, 5, 4)], "train"),
    ("LocalResponseNorm", (2,), {"alpha": 0.1, "beta": 0.5, "k": 2.0}, [(2, 6, 3, 3)], "train"),
    ("RMSNorm", (4,), {}, [(3, 4)], "train"),
    ("RMSNorm", ((2, 4),), {"eps": 1e-3, "elementwise_affine": False}, [(3, 2, 4)], "train"),
    ("RMSNorm", ([4],), {"eps": 1e-3}, [(3, 2, 4)], "train"),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "spec", "mode"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_module_matches_torch(name, args, kwargs, spec, mode):
    rng = np.random.default_rng(0)
    tm = getattr(torch.nn, name)(*args, **kwargs).double()
    am = getattr(ad.nn, name)(*args, **kwargs)
    assert repr(am) == repr(tm)
    t_state = tm.state_dict()
    assert list(am.state_dict()) == list(t_state)
    for k in t_state:
        assert tuple(am.state_dict()[k].shape) == tuple(t_state[k].shape), k
    if t_state:
        am.load_state_dict(_to_ad_state(tm))
        with torch.no_grad():  # non-trivial affine weights, so that their gradients are tested
            for p in tm.parameters():
                p.copy_(torch.tensor(rng.uniform(0.5, 1.5, tuple(p.shape))))
        am.load_state_dict(_to_ad_state(tm))
    if mode == "eval":
        tm.eval()
        am.eval()
    t_in, a_in = _inputs(rng, spec)
    _compare(tm, am, t_in, a_in, rng)


@pytest.mark.parametrize(
    ("args", "kwargs", "shape"),
    [
        ((3,), {"alpha": 0.2}, (2, 6, 3, 3)),
        ((4,), {"alpha": 0.5, "beta": 0.6, "k": 2}, (2, 7, 2, 3)),
        ((1,), {}, (1, 3, 2, 2)),
    ],
)
def test_cross_map_lrn2d_values_are_torchs_gradients_are_exact(args, kwargs, shape):
    """torch's legacy CrossMapLRN2d backward does not differentiate its own forward (torch.autograd.gradcheck
    fails on it: channel 0 stays in every later window in the forward, not in the backward); ad's values are
    torch's and its gradients are checked against finite differences instead."""
    x = np.random.default_rng(4).standard_normal(shape)
    tm, am = torch.nn.CrossMapLRN2d(*args, **kwargs), ad.nn.CrossMapLRN2d(*args, **kwargs)
    assert repr(am) == repr(tm)
    out = am(ad.tensor(x)).numpy()
    np.testing.assert_allclose(out, tm(torch.tensor(x)).numpy(), **TOL)
    assert ad.autograd.gradcheck(am, (ad.tensor(x, requires_grad=True),))


# (class name, constructor kwargs, input specs (the last ones are targets, no gradient))
LOSSES = [
    ("NLLLoss2d", {}, [(2, 3, 4, 4), ("int", 0, 3, (2, 4, 4))]),
    ("NLLLoss2d", {"weight": "w", "ignore_index": 1, "reduction": "sum"}, [(2, 3, 4, 4), ("int", 0, 3, (2, 4, 4))]),
    ("PoissonNLLLoss", {}, [(5, 3), ("pos", (5, 3))]),
    ("PoissonNLLLoss", {"log_input": False, "full": True, "reduction": "sum"}, [("pos", (5, 3)), ("pos", (5, 3))]),
    ("GaussianNLLLoss", {}, [(5, 3), (5, 3), ("pos", (5, 3))]),
    ("GaussianNLLLoss", {"full": True, "eps": 1e-3, "reduction": "none"}, [(5, 3), (5, 3), ("pos", (5, 1))]),
    ("MarginRankingLoss", {"margin": 0.3}, [(6,), (6,), ("sign", (6,))]),
    ("HingeEmbeddingLoss", {"margin": 0.5, "reduction": "sum"}, [(4, 3), ("sign", (4, 3))]),
    ("HingeEmbeddingLoss", {}, [(4, 3), ("sign", (4, 3))]),
    ("CosineEmbeddingLoss", {"margin": 0.2}, [(5, 4), (5, 4), ("sign", (5,))]),
    ("CosineEmbeddingLoss", {"reduction": "none"}, [(5, 4), (5, 4), ("sign", (5,))]),
    ("TripletMarginLoss", {}, [(5, 4), (5, 4), (5, 4)]),
    ("TripletMarginLoss", {"margin": 2.0, "p": 1.0, "swap": True, "reduction": "none"}, [(5, 4), (5, 4), (5, 4)]),
]


@pytest.mark.parametrize(("name", "kwargs", "spec"), LOSSES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LOSSES)])
def test_loss_module_matches_torch(name, kwargs, spec):
    rng = np.random.default_rng(1)
    t_kw, a_kw = dict(kwargs), dict(kwargs)
    if kwargs.get("weight") == "w":
        w = rng.uniform(0.5, 2.0, spec[0][1])
        t_kw["weight"], a_kw["weight"] = torch.tensor(w), ad.tensor(w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tm, am = getattr(torch.nn, name)(**t_kw), getattr(ad.nn, name)(**a_kw)
    assert repr(am) == repr(tm)
    assert list(am.state_dict()) == list(tm.state_dict())
    t_in, a_in = _inputs(rng, spec)
    _compare(tm, am, t_in, a_in, rng)


def test_deprecated_classes_warn_as_torch():
    with pytest.warns(FutureWarning, match="NLLLoss2d"):
        ad.nn.NLLLoss2d()
    with pytest.warns(FutureWarning, match="Container"):
        c = ad.nn.Container(lin=ad.nn.Linear(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tc = torch.nn.Container(lin=torch.nn.Linear(2, 3))
    assert repr(c) == repr(tc)
    assert list(c.state_dict()) == ["lin.weight", "lin.bias"]


@pytest.mark.parametrize(
    ("make_t", "make_a", "shape", "exc"),
    [
        (lambda m: m.CircularPad2d(1), None, (4,), ValueError),
        (lambda m: m.Softmax2d(), None, (2, 3), ValueError),
        (lambda m: m.CrossMapLRN2d(3), None, (2, 3, 4), ValueError),
        (lambda m: m.TripletMarginLoss(margin=0.0), "ctor", None, ValueError),
    ],
)
def test_errors_are_torchs(make_t, make_a, shape, exc):
    if make_a == "ctor":
        with pytest.raises(exc) as t_err:
            make_t(torch.nn)
        with pytest.raises(exc) as a_err:
            make_t(ad.nn)
        assert str(a_err.value) == str(t_err.value)
        return
    x = np.ones(shape)
    with pytest.raises(exc) as t_err:
        make_t(torch.nn)(torch.tensor(x))
    with pytest.raises(exc) as a_err:
        make_t(ad.nn)(ad.tensor(x))
    assert str(a_err.value) == str(t_err.value)


def test_rrelu_and_feature_alpha_dropout_train_mode():
    x = ad.tensor(np.random.default_rng(3).standard_normal((200, 8, 3)), requires_grad=True)
    out = ad.nn.RReLU(0.1, 0.3)(x).detach().numpy()
    xs = x.detach().numpy()
    slope = out[xs < 0] / xs[xs < 0]
    assert np.all(out[xs >= 0] == xs[xs >= 0]) and slope.min() >= 0.1 and slope.max() <= 0.3 and slope.std() > 0.01
    fad = ad.nn.FeatureAlphaDropout(0.5)(x).detach().numpy()
    dropped = np.ptp(fad, axis=2) == 0  # a dropped channel is one constant at all its positions
    assert 0.3 < dropped.mean() < 0.7
    kept = fad[~dropped] / xs[~dropped]  # a kept one is scaled (and shifted) as a whole
    assert np.ptp(np.diff(fad[~dropped], axis=-1) / np.diff(xs[~dropped], axis=-1)) < 1e-9 and kept.size


def test_data_parallel_passes_through():
    inner = ad.nn.Linear(3, 2)
    dp = ad.nn.DataParallel(inner)
    assert dp.module is inner and list(dp.state_dict()) == ["module.weight", "module.bias"]
    x = ad.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    tdp = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert repr(dp) == repr(tdp)
    assert ad.nn.parallel.DataParallel is ad.nn.DataParallel
