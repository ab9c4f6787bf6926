"""Session 18's sweep of torch.nn against ad.nn: the layer, loss and functional configurations the other nn tests
skip (Transformer options, MultiheadAttention's unbatched and weight-averaging paths, conv padding modes and
ConvTranspose's ``output_size``, norms in train and eval with their running statistics, every loss reduction and
option, Embedding's ``max_norm`` and ``scale_grad_by_freq``, the activation modules' ``inplace=True``).

``CASES`` maps a name to ``fn(L)``, run once with ``L = torch`` and once with ``L = ad``. ``fn`` builds its modules
with ``_module`` (parameters drawn from one seeded numpy stream, so both libraries hold the same weights, in
float64) and its inputs with ``_x`` / ``_ints``, and returns what is compared: tensors, the gradients of the inputs
and parameters (``_grads``), buffers, state-dict keys and shapes (``_state``), or an exception as
``(class name, message)``. ``_check`` compares the two results: the same structure, values to ``RTOL`` / ``ATOL``,
the same exception class, and, where a case names one, a fragment of torch's message. ``DELIBERATE`` lists where ad
differs on purpose (``name -> why``); such a case must still differ from torch.

Where to start: ``_check``, then the table (sections: attention and Transformer, convolutions, norms, losses,
embeddings and the rest).
"""

import math
import warnings

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

RTOL, ATOL = 1e-9, 1e-11


# ---------------------------------------------------------------------------------------------------- harness
def _values(shape, seed, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _x(L, shape, seed=0, grad=True, low=-1.0, high=1.0):
    """A float64 leaf in ``L`` with values drawn from ``seed`` (the same numbers in both libraries)."""
    return L.tensor(_values(shape, seed, low, high), dtype=L.float64, requires_grad=grad)


def _ints(L, values):
    return L.tensor(np.asarray(values, dtype=np.int64))


def _module(L, make, seed=1):
    """``make(L.nn)`` in float64 with every parameter overwritten by uniform(-0.5, 0.5) draws (one stream, in
    ``named_parameters`` order, so both libraries hold the same weights)."""
    m = make(L.nn).double()
    rng = np.random.default_rng(seed)
    with L.no_grad():
        for _, p in m.named_parameters():
            p.copy_(L.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)), dtype=L.float64))
    return m


def _backward(L, out, seed=7):
    """``(out * w).sum().backward()`` for a fixed ``w`` of ``out``'s shape."""
    w = L.tensor(_values(tuple(out.shape), seed), dtype=L.float64)
    (out * w).sum().backward()
    return out


def _grads(module=None, *inputs):
    """The gradients of ``inputs`` and of ``module``'s parameters (by name)."""
    params = {} if module is None else {n: p.grad for n, p in module.named_parameters()}
    return [x.grad for x in inputs], params


def _state(module):
    """State-dict keys and shapes."""
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def _plain(value):
    if isinstance(value, (torch.Tensor, ad.Tensor)):
        v = value.detach()
        if isinstance(v, torch.Tensor):
            v = v.cpu()
        dt = str(v.dtype).replace("torch.", "")
        return ("tensor", dt if dt in ("bool", "int64") else "float", np.asarray(v.numpy(), dtype=np.float64))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (torch.Size, ad.Size)) if hasattr(ad, "Size") else isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, str):
        return value.replace("torch.", "").replace("ad.", "")
    return value


def _run(L, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ("ok", _plain(fn(L)))
    except Exception as e:  # noqa: BLE001 - the class and message are what is compared
        return ("raised", type(e).__name__, str(e))


def _differences(a, t, where="result"):
    """Where ``a`` (ad's plain result) differs from ``t`` (torch's)."""
    if isinstance(t, tuple) and t and t[0] == "tensor":
        if not (isinstance(a, tuple) and a and a[0] == "tensor"):
            return [f"{where}: torch gives a tensor, ad {type(a).__name__}"]
        if a[1] != t[1]:
            return [f"{where}: dtype {a[1]} (torch {t[1]})"]
        if a[2].shape != t[2].shape:
            return [f"{where}: shape {a[2].shape} (torch {t[2].shape})"]
        if not np.allclose(a[2], t[2], rtol=RTOL, atol=ATOL, equal_nan=True):
            err = np.nanmax(np.abs(a[2] - t[2])) if a[2].size else 0.0
            return [f"{where}: values differ by up to {err:.3g}"]
        return []
    if isinstance(t, list):
        if not isinstance(a, list) or len(a) != len(t):
            return [f"{where}: {a!r:.200} (torch {t!r:.200})"]
        return [d for i, (x, y) in enumerate(zip(a, t)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(t, dict):
        if not isinstance(a, dict) or list(a) != list(t):
            return [f"{where}: keys {list(a) if isinstance(a, dict) else a!r:.200} (torch {list(t)})"]
        return [d for k in t for d in _differences(a[k], t[k], f"{where}[{k!r}]")]
    if isinstance(t, float) and isinstance(a, float):
        return [] if math.isclose(a, t, rel_tol=RTOL, abs_tol=ATOL) or (a != a and t != t) else [f"{where}: {a} != {t}"]
    return [] if a == t else [f"{where}: {a!r:.300} (torch {t!r:.300})"]


def _check(name):
    """The differences between torch's and ad's run of ``CASES[name]`` (an empty list where they agree)."""
    fn, fragment = CASES[name]
    t, a = _run(torch, fn), _run(ad, fn)
    if t[0] == "raised":
        if a[0] != "raised":
            return [f"torch raises {t[1]}({t[2]!r:.200}); ad returns"]
        if a[1] != t[1]:
            return [f"ad raises {a[1]}({a[2]!r:.200}), torch {t[1]}({t[2]!r:.200})"]
        if fragment and fragment not in a[2]:
            return [f"ad's message {a[2]!r:.200} lacks {fragment!r} (torch: {t[2]!r:.200})"]
        return []
    if a[0] == "raised":
        return [f"ad raises {a[1]}({a[2]!r:.300}); torch returns"]
    return _differences(a[1], t[1])


CASES = {}


def case(name, fragment=None):
    """Register ``fn(L)`` under ``name``; ``fragment``: a part of torch's error message ad's must contain."""

    def register(fn):
        assert name not in CASES, name
        CASES[name] = (fn, fragment)
        return fn

    return register


def _layer(L, make, *shapes, train=True, call=None, buffers=True, twice=False):
    """Build ``make``, run it on float64 leaves of ``shapes`` (``call(m, *xs)`` when given), backward a fixed
    cotangent, and return the output, the input and parameter gradients, the buffers and the state-dict layout.
    ``twice``: run a second training step first (running statistics after two updates)."""
    m = _module(L, make)
    m.train(train)
    xs = [_x(L, s, seed=i + 2) for i, s in enumerate(shapes)]
    run = call or (lambda m, *xs: m(*xs))
    if twice:
        run(m, *[_x(L, s, seed=i + 20, grad=False) for i, s in enumerate(shapes)])
    out = run(m, *xs)
    first = out[0] if isinstance(out, tuple) else out
    _backward(L, first)
    result = [out, *_grads(m, *xs)]
    if buffers:
        result.append({n: b for n, b in m.named_buffers()})
    return [*result, _state(m), repr(m)]


def _mask(L, kind, shape, seed=3):
    """``bool`` (True: masked, column 0 always allowed), ``float`` (additive), ``causal`` (-inf above the diagonal)."""
    if kind == "bool":
        m = _values(shape, seed) > 0.4
        m[..., 0] = False
        return L.tensor(m)
    if kind == "float":
        return L.tensor(_values(shape, seed), dtype=L.float64)
    return L.tensor(np.triu(np.full(shape, -np.inf), 1), dtype=L.float64)


# ------------------------------------------------------------------------------- attention and Transformer
_E, _H = 8, 2


def _mha(**kw):
    return lambda nn: nn.MultiheadAttention(_E, _H, **kw)


@case("mha unbatched, need_weights per head")
def _(L):
    return _layer(L, _mha(), (4, _E), (5, _E), (5, _E),
                  call=lambda m, q, k, v: m(q, k, v, average_attn_weights=False))


@case("mha unbatched with kdim/vdim, bias_kv, zero_attn, masks")
def _(L):
    def call(m, q, k, v):
        kpm = L.tensor(np.array([False, False, True, False, True]))
        return m(q, k, v, key_padding_mask=kpm, attn_mask=_mask(L, "bool", (4, 5)))

    return _layer(L, _mha(kdim=3, vdim=6, add_bias_kv=True, add_zero_attn=True), (4, _E), (5, 3), (5, 6), call=call)


@case("mha need_weights=False")
def _(L):
    return _layer(L, _mha(batch_first=True), (2, 4, _E), (2, 5, _E), (2, 5, _E),
                  call=lambda m, q, k, v: m(q, k, v, need_weights=False))


@case("mha float key_padding_mask")
def _(L):
    kpm = _values((3, 5), 4)
    return _layer(L, _mha(), (4, 3, _E), (5, 3, _E), (5, 3, _E),
                  call=lambda m, q, k, v: m(q, k, v, key_padding_mask=L.tensor(kpm, dtype=L.float64)))


@case("mha 3-d attn_mask per head, average weights off")
def _(L):
    return _layer(L, _mha(), (4, 3, _E), (5, 3, _E), (5, 3, _E),
                  call=lambda m, q, k, v: m(q, k, v, attn_mask=_mask(L, "float", (3 * _H, 4, 5)),
                                            average_attn_weights=False))


@case("mha is_causal with its mask")
def _(L):
    return _layer(L, _mha(), (4, 3, _E), (4, 3, _E), (4, 3, _E),
                  call=lambda m, q, k, v: m(q, k, v, attn_mask=_mask(L, "causal", (4, 4)), is_causal=True))


@case("mha self-attention, same tensor")
def _(L):
    return _layer(L, _mha(dropout=0.0, bias=False), (4, 3, _E), call=lambda m, x: m(x, x, x))


@case("mha eval mode, dropout set")
def _(L):
    return _layer(L, _mha(dropout=0.5), (4, 3, _E), train=False, call=lambda m, x: m(x, x, x))


@case("mha bad embed dim", "embed_dim must be divisible by num_heads")
def _(L):
    return L.nn.MultiheadAttention(7, 2)


@case("mha wrong query width")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    return m(_x(L, (4, 3, 6)), _x(L, (5, 3, _E)), _x(L, (5, 3, _E)))


@case("mha wrong attn_mask shape")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    x = _x(L, (4, 3, _E))
    return m(x, x, x, attn_mask=_mask(L, "bool", (3, 4)))


@case("mha batched query with unbatched key")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    return m(_x(L, (4, 3, _E)), _x(L, (5, _E)), _x(L, (5, _E)))


@case("mha default init")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H, add_bias_kv=True, kdim=3, vdim=5)
    return [_state(m), m.in_proj_bias is None, m.q_proj_weight is not None, m._qkv_same_embed_dim,
            bool((m.out_proj.bias == 0).all()), bool((m.k_proj_weight.abs() <= math.sqrt(6 / (3 + _E))).all())]


def _enc(**kw):
    kw.setdefault("dropout", 0.0)
    return lambda nn: nn.TransformerEncoderLayer(_E, _H, 12, **kw)


def _dec(**kw):
    kw.setdefault("dropout", 0.0)
    return lambda nn: nn.TransformerDecoderLayer(_E, _H, 12, **kw)


@case("encoder layer, callable activation, norm_first, batch_first")
def _(L):
    return _layer(L, _enc(activation=L.nn.functional.gelu, norm_first=True, batch_first=True), (2, 5, _E))


@case("encoder layer, activation 'gelu', float key padding")
def _(L):
    kpm = L.tensor(np.where(_values((3, 5), 5) > 0.5, -np.inf, 0.0), dtype=L.float64)
    return _layer(L, _enc(activation="gelu"), (5, 3, _E), call=lambda m, x: m(x, src_key_padding_mask=kpm))


@case("encoder layer, bool mask and bool key padding together")
def _(L):
    kpm = L.tensor(np.array([[False] * 4 + [True], [False] * 5, [False, True, False, False, False]]))
    return _layer(L, _enc(norm_first=True), (5, 3, _E),
                  call=lambda m, x: m(x, src_mask=_mask(L, "bool", (5, 5)), src_key_padding_mask=kpm))


@case("encoder layer, eval mode")
def _(L):
    return _layer(L, _enc(dropout=0.3), (5, 3, _E), train=False)


@case("encoder layer, bias=False, layer_norm_eps")
def _(L):
    return _layer(L, _enc(bias=False, layer_norm_eps=1e-2, activation=L.nn.ReLU()), (5, 3, _E))


@case("encoder layer, unbatched with key padding")
def _(L):
    kpm = L.tensor(np.array([False, False, True, False, True]))
    return _layer(L, _enc(), (5, _E), call=lambda m, x: m(x, src_key_padding_mask=kpm))


@case("encoder stack, no nested tensor, final norm, causal")
def _(L):
    def make(nn):
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, _H, 12, 0.0, batch_first=True), 2,
                                     norm=nn.LayerNorm(_E), enable_nested_tensor=False)

    kpm = L.tensor(np.array([[False] * 4 + [True], [False] * 5]))
    return _layer(L, make, (2, 5, _E), call=lambda m, x: m(
        x, mask=L.nn.Transformer.generate_square_subsequent_mask(5, dtype=L.float64), src_key_padding_mask=kpm,
        is_causal=True))


@case("decoder layer, norm_first, batch_first, callable activation, causal")
def _(L):
    def call(m, t, s):
        return m(t, s, tgt_mask=_mask(L, "causal", (4, 4)), tgt_is_causal=True,
                 tgt_key_padding_mask=L.tensor(np.array([[False, False, False, True], [False] * 4])),
                 memory_key_padding_mask=L.tensor(np.array([[False] * 5, [False, False, True, True, False]])))

    return _layer(L, _dec(norm_first=True, batch_first=True, activation=L.tanh), (2, 4, _E), (2, 5, _E), call=call)


@case("decoder layer, unbatched, float memory mask, gelu")
def _(L):
    return _layer(L, _dec(activation="gelu", bias=False), (4, _E), (5, _E),
                  call=lambda m, t, s: m(t, s, memory_mask=_mask(L, "float", (4, 5))))


@case("decoder stack with final norm")
def _(L):
    def make(nn):
        return nn.TransformerDecoder(nn.TransformerDecoderLayer(_E, _H, 12, 0.0, norm_first=True), 2,
                                     norm=nn.LayerNorm(_E))

    return _layer(L, make, (4, 2, _E), (5, 2, _E))


@case("transformer, norm_first, gelu string, bias=False, all masks")
def _(L):
    def make(nn):
        return nn.Transformer(_E, _H, 1, 2, 12, 0.0, activation="gelu", norm_first=True, bias=False,
                              batch_first=True)

    def call(m, s, t):
        return m(s, t, src_mask=_mask(L, "float", (5, 5)), tgt_mask=_mask(L, "causal", (4, 4)),
                 memory_mask=_mask(L, "bool", (4, 5)),
                 tgt_key_padding_mask=L.tensor(np.array([[False] * 4, [False, False, True, False]])),
                 tgt_is_causal=True)

    return _layer(L, make, (2, 5, _E), (2, 4, _E), call=call)


@case("transformer, unbatched")
def _(L):
    return _layer(L, lambda nn: nn.Transformer(_E, _H, 1, 1, 12, 0.0), (5, _E), (4, _E))


@case("transformer default init is xavier")
def _(L):
    m = L.nn.Transformer(_E, _H, 1, 1, 12)
    w = m.encoder.layers[0].self_attn.in_proj_weight
    lim = math.sqrt(6 / (w.shape[0] + w.shape[1]))
    return [_state(m), bool((w.abs() <= lim).all()), bool((m.encoder.norm.weight == 1).all()),
            bool((m.decoder.layers[0].linear1.bias.abs() <= 1 / math.sqrt(_E)).all())]


@case("encoder layer wrong width")
def _(L):
    return _module(L, _enc())(_x(L, (5, 3, 6)))


@case("decoder layer memory batch mismatch")
def _(L):
    return _module(L, _dec())(_x(L, (4, 3, _E)), _x(L, (5, 2, _E)))


# -------------------------------------------------------------------------------------------- convolutions
def _conv(L, cls, args, kw, shape, call=None, train=True):
    return _layer(L, lambda nn: getattr(nn, cls)(*args, **kw), shape, call=call, train=train)


_CONVS = {
    "conv1d same, dilation, reflect": ("Conv1d", (2, 4, 3), {"padding": "same", "dilation": 2,
                                                            "padding_mode": "reflect"}, (2, 2, 9)),
    "conv1d same, even kernel": ("Conv1d", (2, 3, 4), {"padding": "same"}, (2, 2, 7)),
    "conv1d valid, circular": ("Conv1d", (2, 3, 3), {"padding": "valid", "padding_mode": "circular"}, (2, 2, 7)),
    "conv1d circular pad 2, groups": ("Conv1d", (4, 6, 3), {"padding": 2, "padding_mode": "circular", "groups": 2},
                                      (1, 4, 6)),
    "conv1d replicate, stride, no bias": ("Conv1d", (2, 3, 3), {"padding": 1, "padding_mode": "replicate",
                                                                "stride": 2, "bias": False}, (2, 2, 8)),
    "conv1d unbatched": ("Conv1d", (2, 3, 2), {}, (2, 6)),
    "conv2d same, asymmetric kernel, replicate": ("Conv2d", (2, 3, (2, 3)),
                                                  {"padding": "same", "padding_mode": "replicate"}, (1, 2, 5, 6)),
    "conv2d reflect tuple padding, dilation": ("Conv2d", (2, 2, 3), {"padding": (1, 2), "dilation": (2, 1),
                                                                     "padding_mode": "reflect"}, (2, 2, 6, 5)),
    "conv2d circular, groups=in (depthwise)": ("Conv2d", (3, 6, 3), {"padding": 1, "padding_mode": "circular",
                                                                     "groups": 3}, (2, 3, 4, 5)),
    "conv2d same, dilation, groups, no bias": ("Conv2d", (4, 4, 3), {"padding": "same", "dilation": 2, "groups": 2,
                                                                     "bias": False}, (1, 4, 7, 6)),
    "conv2d unbatched, stride tuple": ("Conv2d", (2, 3, 3), {"stride": (2, 1)}, (2, 6, 5)),
    "conv3d same, circular": ("Conv3d", (2, 2, 3), {"padding": "same", "padding_mode": "circular"}, (1, 2, 4, 4, 3)),
    "conv3d reflect, groups, stride": ("Conv3d", (2, 4, 2), {"padding": 1, "padding_mode": "reflect", "groups": 2,
                                                             "stride": 2}, (1, 2, 4, 5, 3)),
    "conv3d replicate, dilation, no bias": ("Conv3d", (1, 2, (2, 1, 3)), {"padding": (1, 0, 1), "dilation": 2,
                                                                          "padding_mode": "replicate", "bias": False},
                                            (2, 1, 4, 3, 6)),
    "conv_transpose1d output_padding, dilation": ("ConvTranspose1d", (2, 3, 3), {"stride": 3, "output_padding": 2,
                                                                                 "dilation": 2, "padding": 1},
                                                  (2, 2, 4)),
    "conv_transpose1d groups, no bias": ("ConvTranspose1d", (4, 2, 2), {"groups": 2, "stride": 2, "bias": False},
                                         (1, 4, 3)),
    "conv_transpose2d groups, output_padding": ("ConvTranspose2d", (4, 6, 3), {"groups": 2, "stride": (2, 3),
                                                                               "output_padding": (1, 2),
                                                                               "padding": (1, 0)}, (1, 4, 3, 3)),
    "conv_transpose2d unbatched, dilation": ("ConvTranspose2d", (2, 3, 2), {"dilation": (2, 1)}, (2, 3, 4)),
    "conv_transpose3d stride, output_padding, no bias": ("ConvTranspose3d", (2, 2, 2), {"stride": 2,
                                                                                         "output_padding": 1,
                                                                                         "bias": False},
                                                         (1, 2, 2, 3, 2)),
}
for _name, (_cls, _args, _kw, _shape) in _CONVS.items():
    case(_name)(lambda L, c=_cls, a=_args, k=_kw, s=_shape: _conv(L, c, a, k, s))


@case("conv_transpose1d output_size in forward")
def _(L):
    return _conv(L, "ConvTranspose1d", (2, 3, 3), {"stride": 2}, (2, 2, 4), call=lambda m, x: m(x, output_size=[10]))


@case("conv_transpose2d output_size with batch and channel dims")
def _(L):
    return _conv(L, "ConvTranspose2d", (2, 3, 3), {"stride": 2, "padding": 1}, (1, 2, 3, 4),
                 call=lambda m, x: m(x, output_size=(1, 3, 6, 8)))


@case("conv_transpose2d output_size as torch.Size-like tuple, unbatched")
def _(L):
    return _conv(L, "ConvTranspose2d", (2, 3, 2), {"stride": 3}, (2, 3, 3),
                 call=lambda m, x: m(x, output_size=(10, 11)))


@case("conv_transpose3d output_size")
def _(L):
    return _conv(L, "ConvTranspose3d", (1, 2, 2), {"stride": 2}, (1, 1, 2, 2, 3),
                 call=lambda m, x: m(x, output_size=[5, 4, 7]))


@case("conv_transpose2d output_size out of range", "valid sizes range from [7, 9] to [8, 10]")
def _(L):
    return _conv(L, "ConvTranspose2d", (2, 3, 3), {"stride": 2}, (1, 2, 3, 4),
                 call=lambda m, x: m(x, output_size=(11, 9)))


@case("conv_transpose2d output_size wrong length", "output_size must have 2 or 4 elements (got 3)")
def _(L):
    return _conv(L, "ConvTranspose2d", (2, 3, 3), {"stride": 2}, (1, 2, 3, 4),
                 call=lambda m, x: m(x, output_size=(1, 3, 5)))


@case("conv2d padding same with stride", "padding='same' is not supported for strided convolutions")
def _(L):
    return L.nn.Conv2d(2, 2, 3, stride=2, padding="same")


@case("conv2d bad padding string", "Invalid padding string")
def _(L):
    return L.nn.Conv2d(2, 2, 3, padding="full")


@case("conv2d bad padding_mode", "padding_mode must be one of")
def _(L):
    return L.nn.Conv2d(2, 2, 3, padding_mode="mirror")


@case("conv2d groups not dividing", "in_channels must be divisible by groups")
def _(L):
    return L.nn.Conv2d(3, 4, 3, groups=2)


@case("conv_transpose with padding_mode reflect", "Only \"zeros\" padding mode is supported")
def _(L):
    return L.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


@case("conv2d wrong channel count")
def _(L):
    return _module(L, lambda nn: nn.Conv2d(3, 2, 3))(_x(L, (1, 2, 5, 5)))


@case("conv2d input too small", "Kernel size can't be greater than actual input size")
def _(L):
    return _module(L, lambda nn: nn.Conv2d(2, 2, 3))(_x(L, (1, 2, 2, 5)))


@case("conv1d reflect padding too large")
def _(L):
    return _module(L, lambda nn: nn.Conv1d(1, 1, 3, padding=4, padding_mode="reflect"))(_x(L, (1, 1, 4)))


@case("conv2d 5-d input")
def _(L):
    return _module(L, lambda nn: nn.Conv2d(2, 2, 3))(_x(L, (1, 1, 2, 5, 5)))


@case("conv default init and layout")
def _(L):
    out = []
    for m in (L.nn.Conv2d(4, 6, 3, groups=2), L.nn.ConvTranspose1d(4, 6, 3, groups=2),
              L.nn.Conv3d(2, 3, 2, bias=False)):
        w = m.weight
        fan_in = w.shape[1] * math.prod(w.shape[2:])
        lim = 1 / math.sqrt(fan_in)
        out.append([_state(m), repr(m), bool((w.abs() <= lim).all()), bool((w.abs() > lim / 2).any()),
                    m.bias is None or bool((m.bias.abs() <= lim).all())])
    return out


@case("conv_transpose2d input too small", "Output size is too small")
def _(L):
    return _module(L, lambda nn: nn.ConvTranspose2d(2, 2, 3, padding=3))(_x(L, (1, 2, 2, 2)))


@case("unfold input too small", "calculated shape of the array of sliding blocks as (0, 3)")
def _(L):
    return L.nn.Unfold(3)(_x(L, (1, 2, 2, 5)))


@case("conv_transpose1d output_padding not below stride or dilation", "output padding must be smaller than")
def _(L):
    return _module(L, lambda nn: nn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2))(_x(L, (1, 2, 4)))


# --------------------------------------------------------------------------------------------------- norms
def _norm(L, make, shape, train=True, twice=True, then_eval=False):
    """Two training steps (the running statistics after both), then, with ``then_eval``, one in eval mode."""
    if not then_eval:
        return _layer(L, make, shape, train=train, twice=twice)
    m = _module(L, make)
    m(_x(L, shape, seed=20, grad=False))
    m(_x(L, shape, seed=21, grad=False))
    m.eval()
    x = _x(L, shape)
    out = _backward(L, m(x))
    return [out, *_grads(m, x), dict(m.named_buffers()), _state(m)]


_NORMS = {
    "batchnorm1d momentum=None (cumulative average)": (lambda nn: nn.BatchNorm1d(3, momentum=None), (4, 3, 5)),
    "batchnorm1d 2-d input, affine=False": (lambda nn: nn.BatchNorm1d(3, affine=False, momentum=0.3), (6, 3)),
    "batchnorm2d track_running_stats=False": (lambda nn: nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 2, 3)),
    "batchnorm3d eps, momentum": (lambda nn: nn.BatchNorm3d(2, eps=1e-2, momentum=0.5), (2, 2, 2, 3, 2)),
    "instancenorm1d track_running_stats": (lambda nn: nn.InstanceNorm1d(3, track_running_stats=True), (2, 3, 5)),
    "instancenorm2d affine and running stats, momentum=None": (
        lambda nn: nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=None), (2, 3, 3, 4)),
    "instancenorm1d unbatched": (lambda nn: nn.InstanceNorm1d(3, affine=True), (3, 6)),
    "instancenorm3d": (lambda nn: nn.InstanceNorm3d(2, affine=True, eps=1e-3), (2, 2, 2, 3, 2)),
    "groupnorm 3-d input, affine=False": (lambda nn: nn.GroupNorm(2, 4, affine=False), (3, 4, 5)),
    "groupnorm 2-d input": (lambda nn: nn.GroupNorm(3, 6, eps=1e-3), (4, 6)),
    "groupnorm 5-d input, one group per channel": (lambda nn: nn.GroupNorm(4, 4), (2, 4, 2, 2, 3)),
    "layernorm elementwise_affine=False": (lambda nn: nn.LayerNorm((3, 4), elementwise_affine=False), (2, 3, 4)),
    "layernorm bias=False": (lambda nn: nn.LayerNorm(4, bias=False, eps=1e-2), (2, 3, 4)),
    "rmsnorm eps=None, two dims": (lambda nn: nn.RMSNorm((3, 4)), (2, 3, 4)),
    "localresponsenorm 5-d, even size": (lambda nn: nn.LocalResponseNorm(4, alpha=0.3, beta=0.6, k=1.5),
                                         (2, 5, 2, 3, 2)),
    "localresponsenorm size 1": (lambda nn: nn.LocalResponseNorm(1), (2, 3, 4)),
}
for _name, (_make, _shape) in _NORMS.items():
    case(_name + ", train")(lambda L, m=_make, s=_shape: _norm(L, m, s))
    case(_name + ", eval after training")(lambda L, m=_make, s=_shape: _norm(L, m, s, then_eval=True))


@case("batchnorm eval without running stats uses batch statistics")
def _(L):
    return _norm(L, lambda nn: nn.BatchNorm1d(3, track_running_stats=False), (5, 3), train=False, twice=False)


@case("batchnorm num_batches_tracked counts, state dict")
def _(L):
    m = L.nn.BatchNorm2d(2).double()
    for i in range(3):
        m(_x(L, (2, 2, 2, 2), seed=i, grad=False))
    m.eval()
    m(_x(L, (2, 2, 2, 2), grad=False))
    return [m.num_batches_tracked, str(m.num_batches_tracked.dtype), dict(m.state_dict()), repr(m)]


@case("batchnorm reset_running_stats and load of an old state dict without num_batches_tracked")
def _(L):
    m = L.nn.BatchNorm1d(2).double()
    m(_x(L, (4, 2), grad=False))
    state = {k: v for k, v in m.state_dict().items() if k != "num_batches_tracked"}
    m.reset_running_stats()
    reset = [b.clone() for b in m.buffers()]
    result = m.load_state_dict(state)
    return [reset, list(result.missing_keys), list(result.unexpected_keys), dict(m.state_dict())]


@case("batchnorm one value per channel in training", "Expected more than 1 value per channel when training")
def _(L):
    return L.nn.BatchNorm1d(3).double()(_x(L, (1, 3)))


@case("batchnorm2d wrong ndim", "expected 4D input (got 3D input)")
def _(L):
    return L.nn.BatchNorm2d(3).double()(_x(L, (2, 3, 4)))


@case("batchnorm wrong channel count")
def _(L):
    return L.nn.BatchNorm1d(3).double()(_x(L, (4, 2)))


@case("instancenorm2d wrong ndim", "expected 3D or 4D input (got 2D input)")
def _(L):
    return L.nn.InstanceNorm2d(3)(_x(L, (3, 4)))


@case("instancenorm one spatial value", "Expected more than 1 spatial element when training")
def _(L):
    return L.nn.InstanceNorm1d(3)(_x(L, (2, 3, 1)))


@case("instancenorm channel mismatch, affine", "expected input's size at dim=1 to match num_features (4)")
def _(L):
    return L.nn.InstanceNorm1d(4, affine=True).double()(_x(L, (2, 3, 5)))


@case("instancenorm unbatched channel mismatch, affine", "expected input's size at dim=0 to match num_features")
def _(L):
    return L.nn.InstanceNorm1d(4, affine=True).double()(_x(L, (3, 5)))


@case("instancenorm channel mismatch warns without affine")
def _(L):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = L.nn.InstanceNorm1d(4)(_x(L, (2, 3, 5)))
    return [out, [str(w.message) for w in caught]]


@case("instance_norm weight of the wrong size", "weight should contain 6 elements not 8")
def _(L):
    return L.nn.functional.instance_norm(_x(L, (2, 3, 5)), weight=_x(L, (4,)))


@case("instance_norm bias of the wrong size", "bias should contain 6 elements not 2")
def _(L):
    return L.nn.functional.instance_norm(_x(L, (2, 3, 5)), bias=_x(L, (1,)))


@case("instancenorm channel mismatch with running stats", "running_mean should contain 6 elements not 8")
def _(L):
    return L.nn.InstanceNorm1d(4, track_running_stats=True).double()(_x(L, (2, 3, 5)))


@case("groupnorm groups not dividing", "must be divisible by num_groups (3)")
def _(L):
    return L.nn.GroupNorm(3, 4)


@case("groupnorm wrong channels")
def _(L):
    return L.nn.GroupNorm(2, 4).double()(_x(L, (2, 6, 3)))


@case("layernorm wrong trailing shape")
def _(L):
    return L.nn.LayerNorm((3, 4)).double()(_x(L, (2, 4, 3)))


@case("rmsnorm wrong trailing shape")
def _(L):
    return L.nn.RMSNorm(4).double()(_x(L, (2, 3)))


@case("localresponsenorm 2-d input")
def _(L):
    return L.nn.LocalResponseNorm(2)(_x(L, (3, 4)))


@case("norm default init and reprs")
def _(L):
    ms = [L.nn.BatchNorm1d(3, momentum=None), L.nn.InstanceNorm2d(2, affine=True, track_running_stats=True),
          L.nn.GroupNorm(2, 4, eps=1e-3), L.nn.LayerNorm(3, bias=False), L.nn.RMSNorm(3, eps=1e-4),
          L.nn.LocalResponseNorm(3), L.nn.LayerNorm([2, 3], elementwise_affine=False)]
    return [[repr(m), dict(m.state_dict())] for m in ms]


@case("layer_norm weight of the wrong size")
def _(L):
    return L.nn.functional.layer_norm(_x(L, (2, 3, 4)), (4,), weight=_x(L, (3,)))


@case("group_norm weight of the wrong size")
def _(L):
    return L.nn.functional.group_norm(_x(L, (2, 4, 3)), 2, weight=_x(L, (3,)))


@case("rms_norm weight of the wrong size")
def _(L):
    return L.nn.functional.rms_norm(_x(L, (2, 3, 4)), (4,), weight=_x(L, (2,)))


@case("batch_norm functional, eval, no affine")
def _(L):
    rm, rv = _x(L, (3,), seed=5, grad=False), _x(L, (3,), seed=6, grad=False, low=0.5, high=2.0)
    x = _x(L, (4, 3, 2))
    return [_backward(L, L.nn.functional.batch_norm(x, rm, rv, training=False, eps=1e-3)), x.grad]
