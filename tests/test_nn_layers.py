"""ad.nn layers against torch.nn: same constructor arguments, torch's weights loaded through
load_state_dict, then outputs, input gradients and parameter gradients compared in float64; parameter
shapes, state-dict keys and repr must be torch's. A layer whose functional does not exist yet in
ad.nn.functional is skipped with the functional's name."""

import math

import numpy as np
import pytest

import ad
import ad.nn.functional as F

torch = pytest.importorskip("torch")

# (layer name, constructor args, constructor kwargs, input shape, functionals it needs, input kind)
CASES = [
    ("Linear", (4, 3), {}, (5, 4), ["linear"], "float"),
    ("Linear", (4, 3), {"bias": False}, (2, 5, 4), ["linear"], "float"),
    ("Bilinear", (3, 4, 2), {}, None, ["bilinear"], "bilinear"),
    ("Identity", (7,), {"unused": 1}, (3, 2), [], "float"),
    ("Flatten", (), {}, (2, 3, 4), [], "float"),
    ("Flatten", (0, 1), {}, (2, 3, 4), [], "float"),
    ("Unflatten", (1, (2, 3)), {}, (4, 6, 2), [], "float"),
    ("ReLU", (), {}, (3, 4), ["relu"], "float"),
    ("Tanh", (), {}, (3, 4), ["tanh"], "float"),
    ("Sigmoid", (), {}, (3, 4), ["sigmoid"], "float"),
    ("GELU", (), {}, (3, 4), ["gelu"], "float"),
    ("GELU", (), {"approximate": "tanh"}, (3, 4), ["gelu"], "float"),
    ("SiLU", (), {}, (3, 4), ["silu"], "float"),
    ("LeakyReLU", (0.2,), {}, (3, 4), ["leaky_relu"], "float"),
    ("ELU", (), {"alpha": 0.7}, (3, 4), ["elu"], "float"),
    ("Softplus", (), {"beta": 2.0}, (3, 4), ["softplus"], "float"),
    ("Hardtanh", (), {}, (3, 4), ["hardtanh"], "float"),
    ("Mish", (), {}, (3, 4), ["mish"], "float"),
    ("PReLU", (), {}, (3, 4), ["prelu"], "float"),
    ("Softmax", (), {"dim": 1}, (3, 4), ["softmax"], "float"),
    ("LogSoftmax", (), {"dim": -1}, (3, 4), ["log_softmax"], "float"),
    ("Softmin", (), {"dim": 0}, (3, 4), ["softmax"], "float"),
    ("Conv1d", (2, 4, 3), {}, (2, 2, 9), ["conv1d"], "float"),
    ("Conv1d", (4, 4, 3), {"stride": 2, "padding": 1, "groups": 2, "bias": False}, (2, 4, 9), ["conv1d"], "float"),
    ("Conv2d", (3, 4, 3), {}, (2, 3, 7, 6), ["conv2d"], "float"),
    ("Conv2d", (2, 4, (3, 2)), {"stride": (2, 1), "padding": 1, "dilation": (1, 2)}, (2, 2, 8, 7), ["conv2d"], "float"),
    ("Conv2d", (2, 2, 3), {"padding": "same", "padding_mode": "reflect"}, (1, 2, 6, 6), ["conv2d", "pad"], "float"),
    ("Conv3d", (2, 3, 2), {}, (1, 2, 4, 4, 4), ["conv3d"], "float"),
    ("ConvTranspose1d", (3, 2, 3), {"stride": 2}, (2, 3, 5), ["conv_transpose1d"], "float"),
    (
        "ConvTranspose2d",
        (3, 2, 3),
        {"stride": 2, "padding": 1, "output_padding": 1},
        (2, 3, 4, 5),
        ["conv_transpose2d"],
        "float",
    ),
    ("MaxPool1d", (3,), {"stride": 2}, (2, 3, 9), ["max_pool1d"], "float"),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 6), ["max_pool2d"], "float"),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1}, (2, 3, 7, 7), ["max_pool2d"], "float"),
    ("AvgPool1d", (2,), {}, (2, 3, 8), ["avg_pool1d"], "float"),
    ("AvgPool2d", (2,), {"stride": 1}, (2, 3, 5, 5), ["avg_pool2d"], "float"),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 8), ["adaptive_avg_pool1d"], "float"),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, (2, 3, 7, 8), ["adaptive_avg_pool2d"], "float"),
    ("BatchNorm1d", (3,), {}, (5, 3), ["batch_norm"], "float"),
    ("BatchNorm1d", (3,), {"momentum": None}, (5, 3, 4), ["batch_norm"], "float"),
    ("BatchNorm2d", (3,), {"affine": False}, (4, 3, 2, 2), ["batch_norm"], "float"),
    ("BatchNorm2d", (3,), {"bias": False}, (4, 3, 2, 2), ["batch_norm"], "float"),
    ("LayerNorm", (4,), {}, (3, 4), ["layer_norm"], "float"),
    ("LayerNorm", ((2, 4),), {"elementwise_affine": False}, (3, 2, 4), ["layer_norm"], "float"),
    ("GroupNorm", (2, 4), {}, (3, 4, 5), ["group_norm"], "float"),
    ("GroupNorm", (2, 4), {"bias": False}, (3, 4, 5), ["group_norm"], "float"),
    ("InstanceNorm1d", (3,), {}, (2, 3, 6), ["instance_norm"], "float"),
    ("InstanceNorm2d", (3,), {"affine": True}, (2, 3, 4, 4), ["instance_norm"], "float"),
    ("Dropout", (0.3,), {}, (4, 5), ["dropout"], "eval"),
    ("Embedding", (10, 3), {}, (4, 2), ["embedding"], "index"),
    ("Embedding", (10, 3), {"padding_idx": 0}, (4, 2), ["embedding"], "index"),
]


def _missing(names):
    return [n for n in names if not hasattr(F, n)]


def _to_ad_state(module):
    return {k: ad.tensor(v.detach().numpy()) for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "shape", "needs", "kind"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_layer_matches_torch(name, args, kwargs, shape, needs, kind):
    rng = np.random.default_rng(0)
    tm = getattr(torch.nn, name)(*args, **kwargs).double()
    am = getattr(ad.nn, name)(*args, **kwargs)
    # the parameters and buffers torch has, with torch's shapes, and torch's repr
    t_state = tm.state_dict()
    a_state = am.state_dict()
    assert list(a_state) == list(t_state)
    for k in t_state:
        assert tuple(a_state[k].shape) == tuple(t_state[k].shape), k
    assert repr(am) == repr(tm)
    missing = _missing(needs)
    if missing:
        pytest.skip(f"ad.nn.functional.{missing[0]} does not exist yet")
    am.load_state_dict(_to_ad_state(tm))
    if kind == "eval":
        tm.eval()
        am.eval()
    if kind == "index":
        idx = rng.integers(0, args[0], shape)
        t_in, a_in = [torch.tensor(idx)], [ad.tensor(idx)]
    elif kind == "bilinear":
        x1, x2 = rng.standard_normal((5, args[0])), rng.standard_normal((5, args[1]))
        t_in = [torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)]
        a_in = [ad.tensor(x1, requires_grad=True), ad.tensor(x2, requires_grad=True)]
    else:
        x = rng.standard_normal(shape)
        t_in, a_in = [torch.tensor(x, requires_grad=True)], [ad.tensor(x, requires_grad=True)]
    t_out, a_out = tm(*t_in), am(*a_in)
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(w)).sum().backward()
    (a_out * ad.tensor(w)).sum().backward()
    for ti, ai in zip(t_in, a_in):
        if ti.requires_grad:
            np.testing.assert_allclose(ai.grad.numpy(), ti.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (n, tp), (an, ap) in zip(tm.named_parameters(), am.named_parameters()):
        assert n == an
        np.testing.assert_allclose(ap.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)
    for (n, tb), (_, ab) in zip(tm.named_buffers(), am.named_buffers()):  # running statistics
        np.testing.assert_allclose(ab.numpy(), tb.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


LOSSES = [
    ("MSELoss", {}, "float", ["mse_loss"]),
    ("MSELoss", {"reduction": "sum"}, "float", ["mse_loss"]),
    ("L1Loss", {}, "float", ["l1_loss"]),
    ("SmoothL1Loss", {"beta": 0.5}, "float", ["smooth_l1_loss"]),
    ("HuberLoss", {"delta": 0.7}, "float", ["huber_loss"]),
    ("CrossEntropyLoss", {}, "class", ["cross_entropy"]),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "reduction": "none"}, "class", ["cross_entropy"]),
    ("CrossEntropyLoss", {"weight": "w", "ignore_index": 1}, "class", ["cross_entropy"]),
    ("NLLLoss", {}, "logp", ["nll_loss"]),
    ("NLLLoss", {"weight": "w", "reduction": "sum"}, "logp", ["nll_loss"]),
    ("BCELoss", {}, "prob", ["binary_cross_entropy"]),
    ("BCEWithLogitsLoss", {"pos_weight": "p"}, "binary", ["binary_cross_entropy_with_logits"]),
    ("KLDivLoss", {"reduction": "batchmean"}, "kl", ["kl_div"]),
    ("SoftMarginLoss", {}, "sign", ["soft_margin_loss"]),
    ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": "w"}, "class", ["multi_margin_loss"]),
]


@pytest.mark.parametrize(("name", "kwargs", "kind", "needs"), LOSSES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LOSSES)])
def test_loss_matches_torch(name, kwargs, kind, needs):
    missing = _missing(needs)
    if missing:
        pytest.skip(f"ad.nn.functional.{missing[0]} does not exist yet")
    rng = np.random.default_rng(1)
    n, c = 6, 4
    x = rng.standard_normal((n, c))
    w = rng.uniform(0.5, 2.0, c)
    t_kw, a_kw = dict(kwargs), dict(kwargs)
    for key in ("weight", "pos_weight"):
        if key in kwargs:
            t_kw[key], a_kw[key] = torch.tensor(w), ad.tensor(w)
    if kind == "class":
        target = rng.integers(0, c, n)
        x_t = x
    elif kind == "logp":
        target = rng.integers(0, c, n)
        x_t = x - np.log(np.exp(x).sum(1, keepdims=True))
    elif kind == "prob":
        target = rng.uniform(0, 1, (n, c))
        x_t = 1 / (1 + np.exp(-x))
    elif kind == "binary":
        target = rng.integers(0, 2, (n, c)).astype(float)
        x_t = x
    elif kind == "kl":
        p = np.exp(rng.standard_normal((n, c)))
        target = p / p.sum(1, keepdims=True)
        x_t = x - np.log(np.exp(x).sum(1, keepdims=True))
    elif kind == "sign":
        target = np.where(rng.standard_normal((n, c)) > 0, 1.0, -1.0)
        x_t = x
    else:
        target = rng.standard_normal((n, c))
        x_t = x
    ti, ai = torch.tensor(x_t, requires_grad=True), ad.tensor(x_t, requires_grad=True)
    t_loss = getattr(torch.nn, name)(**t_kw)(ti, torch.tensor(target))
    a_loss = getattr(ad.nn, name)(**a_kw)(ai, ad.tensor(target))
    np.testing.assert_allclose(a_loss.detach().numpy(), t_loss.detach().numpy(), rtol=1e-12, atol=1e-14)
    t_loss.sum().backward()
    a_loss.sum().backward()
    np.testing.assert_allclose(ai.grad.numpy(), ti.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert repr(getattr(ad.nn, name)()) == repr(getattr(torch.nn, name)())


@pytest.mark.parametrize(
    ("make", "fan_in"),
    [
        (lambda: ad.nn.Linear(300, 200), 300),
        (lambda: ad.nn.Conv2d(20, 30, 3), 20 * 9),
        (lambda: ad.nn.Conv1d(40, 50, 5, groups=2), 20 * 5),
    ],
)
def test_default_init_is_torchs(make, fan_in):
    """kaiming_uniform_(a=sqrt(5)) weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias the same bound."""
    ad.manual_seed(0)
    m = make()
    bound = 1 / math.sqrt(fan_in)
    w = m.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    # the variance of U(-b, b) is b^2/3; over tens of thousands of draws within 3%
    assert abs(w.var() / (bound**2 / 3) - 1) < 0.03
    b = m.bias.detach().numpy()
    assert np.abs(b).max() <= bound
    assert m.weight.dtype == np.float64 and m.weight.requires_grad and m.weight.is_leaf


def test_layer_dtype_argument_and_module_to():
    m = ad.nn.Linear(3, 2, dtype=ad.float32)
    assert m.weight.dtype == np.float32
    m.double()
    assert m.weight.dtype == np.float64 and isinstance(m.weight, ad.nn.Parameter)
    bn = ad.nn.BatchNorm1d(3).float()
    assert bn.running_mean.dtype == np.float32 and bn.num_batches_tracked.dtype == np.int64


@pytest.mark.parametrize(
    ("make", "exc", "message"),
    [
        (lambda nn: nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
        (lambda nn: nn.Conv2d(2, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
        (lambda nn: nn.Conv2d(2, 2, 3, padding="full"), ValueError, "Invalid padding string"),
        (lambda nn: nn.Conv2d(2, 2, 3, stride=2, padding="same"), ValueError, "not supported for strided"),
        (lambda nn: nn.Conv2d(2, 2, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
        (lambda nn: nn.Dropout(1.5), ValueError, "dropout probability has to be between 0 and 1"),
        (lambda nn: nn.GroupNorm(3, 4), ValueError, r"num_channels \(4\) must be divisible by num_groups \(3\)"),
        (lambda nn: nn.Embedding(4, 2, padding_idx=4), AssertionError, "Padding_idx must be within"),
    ],
)
def test_constructor_errors_are_torchs(make, exc, message):
    with pytest.raises(exc, match=message):
        make(ad.nn)
    with pytest.raises(exc, match=message):
        make(torch.nn)


def test_batchnorm_input_dim_error():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        ad.nn.BatchNorm2d(3)(ad.ones(2, 3))


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("uniform_", (-0.5, 2.0)),
        ("normal_", (1.0, 0.5)),
        ("xavier_uniform_", ()),
        ("xavier_normal_", (2.0,)),
        ("kaiming_uniform_", ()),
        ("kaiming_normal_", (0, "fan_out", "relu")),
        ("trunc_normal_", (0.0, 1.0, -1.0, 1.5)),
    ],
)
def test_init_distributions(name, args):
    """Each init draws from the distribution torch's formula names: mean and std of 40,000 draws."""
    t = ad.empty(200, 200)
    assert getattr(ad.nn.init, name)(t, *args) is t
    x = t.numpy()
    fan = 200
    if name == "uniform_":
        a, b = args
        mean, std = (a + b) / 2, (b - a) / math.sqrt(12)
        assert x.min() >= a and x.max() <= b
    elif name == "normal_":
        mean, std = args
    elif name == "xavier_uniform_":
        mean, std = 0.0, math.sqrt(2.0 / (fan + fan))
    elif name == "xavier_normal_":
        mean, std = 0.0, args[0] * math.sqrt(2.0 / (fan + fan))
    elif name == "kaiming_uniform_":
        mean, std = 0.0, math.sqrt(2.0 / (1 + 0.0)) / math.sqrt(fan)
    elif name == "kaiming_normal_":
        mean, std = 0.0, math.sqrt(2.0) / math.sqrt(fan)
    else:
        lo, hi = args[2], args[3]
        assert x.min() >= lo and x.max() <= hi
        from scipy.stats import truncnorm

        dist = truncnorm(lo, hi)
        mean, std = dist.mean(), dist.std()
    assert abs(x.mean() - mean) < 4 * std / 200 + 1e-12
    assert abs(x.std() / std - 1) < 0.03


def test_init_deterministic_ones():
    t = ad.empty(3, 4)
    np.testing.assert_array_equal(ad.nn.init.ones_(t).numpy(), np.ones((3, 4)))
    np.testing.assert_array_equal(ad.nn.init.zeros_(t).numpy(), np.zeros((3, 4)))
    np.testing.assert_array_equal(ad.nn.init.constant_(t, 2.5).numpy(), np.full((3, 4), 2.5))
    np.testing.assert_array_equal(ad.nn.init.eye_(t).numpy(), np.eye(3, 4))
    q = ad.nn.init.orthogonal_(ad.empty(6, 4), gain=2.0).numpy()
    np.testing.assert_allclose(q.T @ q, 4.0 * np.eye(4), atol=1e-12)
    d = ad.nn.init.dirac_(ad.empty(3, 3, 3, 3)).numpy()
    x = np.random.default_rng(0).standard_normal((1, 3, 5, 5))
    out = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(d), padding=1)
    np.testing.assert_allclose(out.numpy(), x, atol=1e-12)
    assert ad.nn.init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)
    assert ad.nn.init.calculate_gain("tanh") == torch.nn.init.calculate_gain("tanh")
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed"):
        ad.nn.init.xavier_uniform_(ad.empty(3))


@pytest.mark.parametrize(
    ("kwargs", "call"),
    [
        ({}, {}),
        ({"batch_first": True}, {}),
        ({}, {"need_weights": False}),
        ({}, {"average_attn_weights": False}),
        ({}, {"attn_mask": "bool"}),
        ({}, {"attn_mask": "float"}),
        ({}, {"key_padding_mask": True}),
        ({"bias": False}, {"is_causal": True, "attn_mask": "causal"}),
        ({}, {"unbatched": True}),
    ],
)
def test_multihead_attention_matches_torch(kwargs, call):
    rng = np.random.default_rng(2)
    e, h, l_tgt, l_src, n = 8, 2, 4, 5, 3
    tm = torch.nn.MultiheadAttention(e, h, **kwargs).double()
    am = ad.nn.MultiheadAttention(e, h, **kwargs)
    assert list(am.state_dict()) == list(tm.state_dict()) and repr(am) == repr(tm)
    am.load_state_dict(_to_ad_state(tm))
    call = dict(call)
    unbatched = call.pop("unbatched", False)
    if unbatched:
        shapes = [(l_tgt, e), (l_src, e), (l_src, e)]
    elif kwargs.get("batch_first"):
        shapes = [(n, l_tgt, e), (n, l_src, e), (n, l_src, e)]
    else:
        shapes = [(l_tgt, n, e), (l_src, n, e), (l_src, n, e)]
    qkv = [rng.standard_normal(s) for s in shapes]
    t_kw, a_kw = dict(call), dict(call)
    if call.get("attn_mask") == "bool":
        m = rng.uniform(size=(l_tgt, l_src)) < 0.3
        m[:, 0] = False  # every query keeps one key
        t_kw["attn_mask"], a_kw["attn_mask"] = torch.tensor(m), ad.tensor(m)
    elif call.get("attn_mask") == "float":
        m = rng.standard_normal((l_tgt, l_src))
        t_kw["attn_mask"], a_kw["attn_mask"] = torch.tensor(m), ad.tensor(m)
    elif call.get("attn_mask") == "causal":
        m = np.triu(np.ones((l_tgt, l_src), bool), 1)
        t_kw["attn_mask"], a_kw["attn_mask"] = torch.tensor(m), ad.tensor(m)
    if call.get("key_padding_mask"):
        m = np.zeros((n, l_src), bool)
        m[0, -2:] = True
        t_kw["key_padding_mask"], a_kw["key_padding_mask"] = torch.tensor(m), ad.tensor(m)
    t_in = [torch.tensor(x, requires_grad=True) for x in qkv]
    a_in = [ad.tensor(x, requires_grad=True) for x in qkv]
    t_out, t_w = tm(*t_in, **t_kw)
    a_out, a_w = am(*a_in, **a_kw)
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    if t_w is None:
        assert a_w is None
    else:
        np.testing.assert_allclose(a_w.detach().numpy(), t_w.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(w)).sum().backward()
    (a_out * ad.tensor(w)).sum().backward()
    for ti, ai in zip(t_in, a_in):
        np.testing.assert_allclose(ai.grad.numpy(), ti.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, tp), (_, ap) in zip(tm.named_parameters(), am.named_parameters()):
        np.testing.assert_allclose(ap.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
