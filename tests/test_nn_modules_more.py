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
    """Outputs, then the gradients of the inputs (and of the parameters, when ``tm`` / ``am`` are modules) under
    a random cotangent."""
    t_out, a_out = tm(*t_in), am(*a_in)
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), **tol)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(w)).sum().backward()
    (a_out * ad.tensor(w)).sum().backward()
    for ti, ai in zip(t_in, a_in):
        if ti.requires_grad:
            np.testing.assert_allclose(ai.grad.numpy(), ti.grad.numpy(), **tol)
    if not isinstance(tm, torch.nn.Module):
        return
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
    ("SyncBatchNorm", (3,), {}, [(4, 3, 5)], "train"),  # no process group: BatchNorm over (N, C, *)
    ("SyncBatchNorm", (3,), {"momentum": None, "affine": False}, [(4, 3, 2, 2, 2)], "train"),
    ("SyncBatchNorm", (3,), {}, [(4, 3)], "eval"),
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
    for (n, tb), (_, ab) in zip(tm.named_buffers(), am.named_buffers()):  # running statistics
        np.testing.assert_allclose(ab.numpy(), tb.numpy(), err_msg=n, **TOL)


def test_convert_sync_batchnorm_is_torchs():
    def make(nn):
        return nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Sequential(nn.BatchNorm1d(4, affine=False)))

    tm = torch.nn.SyncBatchNorm.convert_sync_batchnorm(make(torch.nn))
    am_src = make(ad.nn)
    w = am_src[1].weight
    am = ad.nn.SyncBatchNorm.convert_sync_batchnorm(am_src)
    assert repr(am) == repr(tm) and list(am.state_dict()) == list(tm.state_dict())
    assert am[1].weight is w  # the same parameters: an optimizer made before keeps working
    with pytest.raises(ValueError, match=r"expected at least 2D input \(got 1D input\)"):
        am[1](ad.zeros(3))


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


# ---------------------------------------------------------------- MultiheadAttention's options, Transformer


def _mask_pair(kind, shape, rng):
    """(torch mask, ad mask) of ``kind``: "bool" (True: masked; column 0 always allowed), "float", "causal"
    (torch's square subsequent mask)."""
    if kind == "bool":
        m = rng.uniform(size=shape) < 0.3
        m[..., 0] = False
    elif kind == "float":
        m = rng.standard_normal(shape)
    else:
        m = np.triu(np.full(shape, -np.inf), 1)
    return torch.tensor(m), ad.tensor(m)


@pytest.mark.parametrize(
    ("kwargs", "masks"),
    [
        ({"kdim": 5, "vdim": 3}, {}),
        ({"kdim": 5, "vdim": 3, "batch_first": True, "bias": False}, {"key_padding_mask": True}),
        ({"add_bias_kv": True}, {"attn_mask": "bool", "key_padding_mask": True}),
        ({"add_zero_attn": True}, {"attn_mask": "float"}),
        ({"add_bias_kv": True, "add_zero_attn": True, "kdim": 6}, {"attn_mask": "bool", "key_padding_mask": True}),
    ],
)
def test_multihead_attention_options_match_torch(kwargs, masks):
    rng = np.random.default_rng(5)
    e, h, lt, ls, n = 8, 2, 4, 5, 3
    tm = torch.nn.MultiheadAttention(e, h, **kwargs).double()
    am = ad.nn.MultiheadAttention(e, h, **kwargs)
    assert list(am.state_dict()) == list(tm.state_dict()) and repr(am) == repr(tm)
    for k, v in tm.state_dict().items():
        assert tuple(am.state_dict()[k].shape) == tuple(v.shape), k
    am.load_state_dict(_to_ad_state(tm))
    kd, vd = kwargs.get("kdim", e), kwargs.get("vdim", e)
    bf = kwargs.get("batch_first", False)
    shapes = [(lt, e), (ls, kd), (ls, vd)]
    shapes = [(n, *s) if bf else (s[0], n, s[1]) for s in shapes]
    t_in, a_in = _inputs(rng, shapes)
    t_kw, a_kw = {}, {}
    if "attn_mask" in masks:
        t_kw["attn_mask"], a_kw["attn_mask"] = _mask_pair(masks["attn_mask"], (lt, ls), rng)
    if masks.get("key_padding_mask"):
        m = np.zeros((n, ls), bool)
        m[0, -2:] = True
        t_kw["key_padding_mask"], a_kw["key_padding_mask"] = torch.tensor(m), ad.tensor(m)
    t_out, t_w = tm(*t_in, **t_kw)
    a_out, a_w = am(*a_in, **a_kw)
    np.testing.assert_allclose(a_w.detach().numpy(), t_w.detach().numpy(), **TOL)
    _compare(lambda *x: tm(*x, **t_kw)[0], lambda *x: am(*x, **a_kw)[0], t_in, a_in, rng)
    for (name, tp), (_, ap) in zip(tm.named_parameters(), am.named_parameters()):
        np.testing.assert_allclose(ap.grad.numpy(), tp.grad.numpy(), err_msg=name, **TOL)


def _pair(make):
    """The same construction in torch (made float64) and in ad, torch's parameters copied into ad's."""
    tm, am = make(torch.nn).double(), make(ad.nn)
    assert repr(am) == repr(tm)
    assert list(am.state_dict()) == list(tm.state_dict())
    am.load_state_dict(_to_ad_state(tm))
    return tm, am


def _compare_call(tm, am, t_in, a_in, t_kw, a_kw, rng):
    _compare(lambda *x: tm(*x, **t_kw), lambda *x: am(*x, **a_kw), t_in, a_in, rng)
    for (name, tp), (an, ap) in zip(tm.named_parameters(), am.named_parameters()):
        assert name == an
        np.testing.assert_allclose(ap.grad.numpy(), tp.grad.numpy(), err_msg=name, **TOL)


ENCODER_LAYERS = [
    ({}, {}),
    ({"norm_first": True, "activation": "gelu", "batch_first": True}, {"src_mask": "float"}),
    ({"activation": "module", "bias": False}, {"src_key_padding_mask": True}),
    ({"layer_norm_eps": 1e-3}, {"src_mask": "causal", "is_causal": True}),
    ({"norm_first": True}, {"unbatched": True, "src_mask": "bool"}),
]


@pytest.mark.parametrize(("kwargs", "call"), ENCODER_LAYERS)
def test_transformer_encoder_layer_matches_torch(kwargs, call):
    rng = np.random.default_rng(6)
    d, n, s = 8, 3, 5

    def make(nn):
        kw = dict(kwargs)
        if kw.get("activation") == "module":
            kw["activation"] = nn.GELU(approximate="tanh")
        return nn.TransformerEncoderLayer(d, 2, dim_feedforward=12, dropout=0.0, **kw)

    tm, am = _pair(make)
    call = dict(call)
    shape = (s, d) if call.pop("unbatched", False) else ((n, s, d) if kwargs.get("batch_first") else (s, n, d))
    t_in, a_in = _inputs(rng, [shape])
    t_kw, a_kw = {}, {}
    if "src_mask" in call:
        t_kw["src_mask"], a_kw["src_mask"] = _mask_pair(call["src_mask"], (s, s), rng)
    if call.get("src_key_padding_mask"):
        m = np.zeros((n, s), bool)
        m[1, -2:] = True
        t_kw["src_key_padding_mask"], a_kw["src_key_padding_mask"] = torch.tensor(m), ad.tensor(m)
    if "is_causal" in call:
        t_kw["is_causal"] = a_kw["is_causal"] = call["is_causal"]
    _compare_call(tm, am, t_in, a_in, t_kw, a_kw, rng)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_layer_matches_torch(norm_first):
    rng = np.random.default_rng(7)
    d, n, t, s = 8, 2, 4, 5
    tm, am = _pair(lambda nn: nn.TransformerDecoderLayer(d, 4, 16, 0.0, norm_first=norm_first))
    t_in, a_in = _inputs(rng, [(t, n, d), (s, n, d)])
    t_kw, a_kw = {}, {}
    t_kw["tgt_mask"], a_kw["tgt_mask"] = _mask_pair("causal", (t, t), rng)
    t_kw["memory_mask"], a_kw["memory_mask"] = _mask_pair("bool", (t, s), rng)
    m = np.zeros((n, s), bool)
    m[0, -1] = True
    t_kw["memory_key_padding_mask"], a_kw["memory_key_padding_mask"] = torch.tensor(m), ad.tensor(m)
    _compare_call(tm, am, t_in, a_in, t_kw, a_kw, rng)


def test_transformer_encoder_decoder_stacks_match_torch():
    rng = np.random.default_rng(8)
    d, n, t, s = 8, 2, 4, 5

    def make_enc(nn):
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 16, 0.0), 2, norm=nn.LayerNorm(d))

    with warnings.catch_warnings():  # torch's nested-tensor fast-path notice
        warnings.simplefilter("ignore", UserWarning)
        tm, am = _pair(make_enc)
    assert len(am.layers) == 2 and am.layers[0] is not am.layers[1]
    t_in, a_in = _inputs(rng, [(s, n, d)])
    t_kw, a_kw = {}, {}
    t_kw["mask"], a_kw["mask"] = _mask_pair("causal", (s, s), rng)
    _compare_call(tm, am, t_in, a_in, t_kw, a_kw, rng)
    tm, am = _pair(lambda nn: nn.TransformerDecoder(nn.TransformerDecoderLayer(d, 2, 16, 0.0), 2))
    t_in, a_in = _inputs(rng, [(t, n, d), (s, n, d)])
    _compare_call(tm, am, t_in, a_in, {}, {}, rng)


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(batch_first):
    rng = np.random.default_rng(9)
    d, n, t, s = 8, 2, 4, 5

    def make(nn):
        return nn.Transformer(d, 2, 2, 1, 16, dropout=0.0, batch_first=batch_first)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tm, am = _pair(make)
    shapes = [(n, s, d), (n, t, d)] if batch_first else [(s, n, d), (t, n, d)]
    t_in, a_in = _inputs(rng, shapes)
    t_mask = torch.nn.Transformer.generate_square_subsequent_mask(t, dtype=torch.float64)
    a_mask = ad.nn.Transformer.generate_square_subsequent_mask(t)
    np.testing.assert_array_equal(a_mask.numpy(), t_mask.numpy())
    m = np.zeros((n, s), bool)
    m[1, -2:] = True
    t_kw = {"tgt_mask": t_mask, "src_key_padding_mask": torch.tensor(m), "memory_key_padding_mask": torch.tensor(m)}
    a_kw = {"tgt_mask": a_mask, "src_key_padding_mask": ad.tensor(m), "memory_key_padding_mask": ad.tensor(m)}
    _compare_call(tm, am, t_in, a_in, t_kw, a_kw, rng)


def test_transformer_default_init_and_errors_are_torchs():
    model = ad.nn.Transformer(8, 2, 1, 1, 16)
    w = model.encoder.layers[0].linear1.weight.detach().numpy()  # xavier_uniform_: bound sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= np.sqrt(6 / (8 + 16)) and np.abs(w).max() > 0.5 * np.sqrt(6 / (8 + 16))
    for nn, x in ((torch.nn, torch), (ad.nn, ad)):
        with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
            nn.TransformerEncoderLayer(8, 2, activation="tanh")
        m = nn.Transformer(8, 2, 1, 1, 16)
        with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
            m(x.zeros(5, 2, 8), x.zeros(4, 3, 8))
        with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
            m(x.zeros(5, 2, 6), x.zeros(4, 2, 6))


# ---------------------------------------------------------------- Lazy modules

LAZY = [
    ("LazyLinear", (3,), {}, (4, 5)),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 3, 7)),
    ("LazyConv2d", (4, 3), {"groups": 2, "stride": 2}, (2, 6, 7, 7)),
    ("LazyConv3d", (2, 2), {"bias": False}, (3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 3), {"groups": 2, "output_padding": 1, "stride": 2}, (2, 4, 3, 3)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 2, 3, 2)),
    ("LazyBatchNorm1d", (), {}, (5, 3)),
    ("LazyBatchNorm2d", (), {"affine": False}, (4, 3, 2, 2)),
    ("LazyBatchNorm3d", (), {"momentum": None}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 6)),
    ("LazyInstanceNorm2d", (), {"affine": False, "track_running_stats": False}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"bias": False}, (2, 3, 3, 3, 3)),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAZY, ids=[f"{c[0]}-{i}" for i, c in enumerate(LAZY)])
def test_lazy_module_matches_torch(name, args, kwargs, shape):
    rng = np.random.default_rng(10)
    tm, am = getattr(torch.nn, name)(*args, **kwargs).double(), getattr(ad.nn, name)(*args, **kwargs).double()
    assert repr(am) == repr(tm)
    t_state, a_state = tm.state_dict(), am.state_dict()
    assert list(a_state) == list(t_state)
    assert [repr(v) for v in a_state.values()] == [repr(v) for v in t_state.values()]  # the placeholders
    assert am.has_uninitialized_params() == tm.has_uninitialized_params()
    assert isinstance(am, ad.nn.modules.lazy.LazyModuleMixin)
    params = list(am.parameters())
    opt = ad.optim.SGD(params, lr=0.1) if params else None  # made before the shapes are known, as torch allows
    x = rng.standard_normal(shape)
    tm(torch.tensor(x))
    am(ad.tensor(x))
    # the first call inferred the shapes and turned the module into its non-lazy class
    assert type(am).__name__ == type(tm).__name__ and repr(am) == repr(tm)
    assert not hasattr(am, "_initialize_hook")
    t_state, a_state = tm.state_dict(), am.state_dict()
    assert list(a_state) == list(t_state)
    for k in t_state:
        assert tuple(a_state[k].shape) == tuple(t_state[k].shape), k
        assert a_state[k].dtype == np.float64 or k == "num_batches_tracked", k
    with torch.no_grad():  # the same values in both, then the same function
        for p in tm.parameters():
            p.copy_(torch.tensor(rng.uniform(0.5, 1.5, tuple(p.shape))))
    am.load_state_dict(_to_ad_state(tm))
    t_in, a_in = _inputs(rng, [shape])
    _compare(tm, am, t_in, a_in, rng)
    if opt is None:
        return
    before = [p.detach().numpy().copy() for p in am.parameters()]
    opt.step()  # the optimizer holds the materialized parameters themselves
    for b, p in zip(before, am.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), b - 0.1 * p.grad.numpy(), rtol=1e-14)


def test_lazy_placeholders_and_errors_are_torchs():
    p = ad.nn.UninitializedParameter()
    tp = torch.nn.UninitializedParameter()
    assert repr(p) == repr(tp) == "<UninitializedParameter>" and p.requires_grad
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        p + 1.0
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        p.shape  # noqa: B018
    p.materialize((2, 3))
    assert type(p) is ad.nn.Parameter and p.shape == (2, 3) and p.requires_grad
    b = ad.nn.UninitializedBuffer()
    assert repr(b) == "<UninitializedBuffer>" and not b.requires_grad
    b.materialize(4)
    assert type(b) is ad.Tensor and b.shape == (4,)
    for nn, x in ((torch.nn, torch.zeros(2, 3, 5)), (ad.nn, ad.zeros(2, 3, 5))):
        with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
            nn.LazyConv1d(4, 3, groups=2)(x)
        with pytest.raises(RuntimeError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input to LazyConv1d"):
            nn.LazyConv1d(4, 3)(x[0, 0])


def test_lazy_state_dict_load_copy_and_dtype():
    src = ad.nn.Linear(5, 3)
    lazy = ad.nn.LazyLinear(3)
    lazy.load_state_dict(src.state_dict())  # materialized with the loaded shapes, values copied
    assert lazy.weight.shape == (5, 3)[::-1] and type(lazy).__name__ == "LazyLinear"
    np.testing.assert_array_equal(lazy.weight.detach().numpy(), src.weight.detach().numpy())
    x = ad.randn(2, 5)
    np.testing.assert_array_equal(lazy(x).detach().numpy(), src(x).detach().numpy())
    assert type(lazy) is ad.nn.Linear
    import copy
    import pickle

    fresh = ad.nn.LazyConv2d(2, 3).float()  # the dtype to materialize with follows .float()
    for clone in (copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh)), fresh):
        assert clone.has_uninitialized_params()
    fresh(ad.zeros(1, 3, 4, 4, dtype=np.float32))
    assert fresh.weight.dtype == np.float32 and fresh.weight.shape == (2, 3, 3, 3)
    with pytest.raises(RuntimeError, match="Can't access the shape"):
        ad.nn.Linear(5, 3).load_state_dict(ad.nn.LazyLinear(3).state_dict())


# ---------------------------------------------------------------- AdaptiveLogSoftmaxWithLoss


@pytest.mark.parametrize(
    ("cutoffs", "kwargs", "targets"),
    [
        ([4, 7], {}, [0, 3, 5, 9, 1, 7, 8]),
        ([2], {"head_bias": True, "div_value": 2.0}, [0, 1, 1, 0]),  # shortlist rows only
        ([3, 6, 8], {"div_value": 1.5}, [9, 4, 7, 6, 8, 5]),  # tail rows only
        ([5], {}, 7),  # unbatched
    ],
)
def test_adaptive_log_softmax_matches_torch(cutoffs, kwargs, targets):
    rng = np.random.default_rng(11)
    in_f, n_classes = 8, 10
    tm, am = _pair(lambda nn: nn.AdaptiveLogSoftmaxWithLoss(in_f, n_classes, cutoffs, **kwargs))
    target = np.array(targets)
    shape = (target.size, in_f) if target.ndim else (in_f,)
    t_in, a_in = _inputs(rng, [shape])
    t_out, t_loss = tm(t_in[0], torch.tensor(target))
    a_out, a_loss = am(a_in[0], ad.tensor(target))
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), **TOL)
    np.testing.assert_allclose(a_loss.detach().numpy(), t_loss.detach().numpy(), **TOL)
    w = rng.standard_normal(tuple(t_out.shape))
    ((t_out * torch.tensor(w)).sum() + t_loss).backward()
    ((a_out * ad.tensor(w)).sum() + a_loss).backward()
    np.testing.assert_allclose(a_in[0].grad.numpy(), t_in[0].grad.numpy(), **TOL)
    for (name, tp), (_, ap) in zip(tm.named_parameters(), am.named_parameters()):
        if tp.grad is None:  # a tail no target fell in
            assert ap.grad is None, name
        else:
            np.testing.assert_allclose(ap.grad.numpy(), tp.grad.numpy(), err_msg=name, **TOL)
    x = rng.standard_normal((6, in_f)) * 3
    np.testing.assert_allclose(
        am.log_prob(ad.tensor(x)).detach().numpy(), tm.log_prob(torch.tensor(x)).detach().numpy(), **TOL
    )
    np.testing.assert_array_equal(am.predict(ad.tensor(x)).numpy(), tm.predict(torch.tensor(x)).numpy())


def test_adaptive_log_softmax_errors_are_torchs():
    for nn, lib in ((torch.nn, torch), (ad.nn, ad)):
        with pytest.raises(ValueError, match="cutoffs should be a sequence of unique"):
            nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3])
        with pytest.raises(ValueError, match="cutoffs should be a sequence of length larger than 0"):
            nn.AdaptiveLogSoftmaxWithLoss(8, 10, [])
        m = nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4])
        with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 9\]"):
            m(lib.zeros(2, 8), lib.tensor([1, 10]))
        with pytest.raises(RuntimeError, match="Input and target should have the same size in the batch dimension"):
            m(lib.zeros(3, 8), lib.tensor([1, 2]))
        with pytest.raises(RuntimeError, match="multi-target not supported"):
            m(lib.zeros(3, 8), lib.zeros(3, 2, dtype=lib.int64))


# ---------------------------------------------------------------- LinearCrossEntropyLoss (torch 2.13)


@pytest.mark.parametrize(
    ("kwargs", "target"),
    [
        ({}, ("int", 0, 5, (6,))),
        ({"bias": True, "reduction": "sum", "weight": "w", "ignore_index": 2}, ("int", 0, 5, (6,))),
        ({"label_smoothing": 0.2, "reduction": "none"}, ("int", 0, 5, (6,))),
        ({"out_features": (3,), "bias": True}, ("int", 0, 5, (6, 3))),
        ({}, ("prob", (6, 5))),
        ({"options": "default"}, ("int", 0, 5, (6,))),
    ],
)
def test_linear_cross_entropy_loss_matches_torch(kwargs, target):
    if not hasattr(torch.nn, "LinearCrossEntropyLoss"):
        pytest.skip("torch < 2.13 has no LinearCrossEntropyLoss")
    rng = np.random.default_rng(12)
    c = 5
    w = rng.uniform(0.5, 2.0, c)

    def make(nn):
        kw = dict(kwargs)
        if kw.get("weight") == "w":
            kw["weight"] = torch.tensor(w) if nn is torch.nn else ad.tensor(w)
        if kw.get("options") == "default":
            kw["options"] = nn.LinearCrossEntropyOptions()
        return nn.LinearCrossEntropyLoss(4, c, **kw)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tm, am = _pair(make)
        t_in, a_in = _inputs(rng, [(6, 4), target])
        if target[0] == "prob":  # class probabilities per row
            p = np.exp(rng.standard_normal((6, c)))
            p /= p.sum(1, keepdims=True)
            t_in[1], a_in[1] = torch.tensor(p), ad.tensor(p)
        _compare_call(tm, am, t_in, a_in, {}, {}, rng)


def test_linear_cross_entropy_errors_are_torchs():
    if not hasattr(torch.nn, "LinearCrossEntropyLoss"):
        pytest.skip("torch < 2.13 has no LinearCrossEntropyLoss")
    for nn, lib in ((torch.nn, torch), (ad.nn, ad)):
        with pytest.raises(RuntimeError, match=r"expected weight shape to be \(3,\), got \(2,\)"):
            nn.LinearCrossEntropyLoss(4, 3, weight=lib.ones(2))
        with pytest.raises(RuntimeError, match="expected label_smoothing to be in range"):
            nn.LinearCrossEntropyLoss(4, 3, label_smoothing=1.5)
        with pytest.raises(RuntimeError, match="expected input with dimensionality 1 or 2, got 3"):
            nn.LinearCrossEntropyLoss(4, 3)(lib.zeros(2, 2, 4), lib.zeros(2, 2, dtype=lib.int64))
        with pytest.raises(RuntimeError, match="ignore_index cannot be specified when target contains probabilities"):
            nn.LinearCrossEntropyLoss(4, 3, ignore_index=1)(lib.zeros(2, 4), lib.zeros(2, 3))
