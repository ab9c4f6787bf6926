"""Session 18's sweep of torch.nn against ad.nn: the layer, loss and functional configurations the other nn tests
skip (Transformer options and torch's nested-tensor inference output, MultiheadAttention's unbatched and
weight-averaging paths, conv padding modes and ConvTranspose's ``output_size``, norms in train and eval with their
running statistics and old checkpoints, every loss reduction and option, Embedding's ``max_norm`` and
``scale_grad_by_freq``, the activation modules' ``inplace=True``, float32 end to end, default init distributions,
and the errors of bad shapes and arguments).

``CASES`` maps a name to ``fn(L)``, run once with ``L = torch`` and once with ``L = ad`` (each library seeded).
``fn`` builds its modules with ``_module`` (parameters drawn from one seeded numpy stream, so both libraries hold the
same weights, in float64) and its inputs with ``_x`` / ``_ints``, and returns what is compared: tensors, the
gradients of the inputs and parameters (``_grads``), buffers, state-dict keys and shapes (``_state``), reprs, or an
exception as ``(class name, message)``. ``_check`` compares the two results: the same structure, values to the
case's tolerances (``RTOL`` / ``ATOL`` unless it says why not), the same exception class and, where a case names
one, a fragment of torch's message. ``DELIBERATE`` lists where ad differs on purpose (``name -> why``); such a case
must still differ from torch.

Where to start: ``_check``, then the table (sections: attention and Transformer, convolutions, norms, losses,
embeddings and the rest, more configurations, float32, errors, default inits).
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
    if isinstance(value, (torch.nn.Module, ad.nn.Module)):
        return ("module", repr(value))
    return value


def _run(L, fn):
    L.manual_seed(0)  # (default inits: each library's own draws, reproducible)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ("ok", _plain(fn(L)))
    except Exception as e:  # noqa: BLE001 - the class and message are what is compared
        return ("raised", type(e).__name__, str(e))


def _differences(a, t, where="result", rtol=RTOL, atol=ATOL):
    """Where ``a`` (ad's plain result) differs from ``t`` (torch's)."""
    if isinstance(t, tuple) and t and t[0] == "tensor":
        if not (isinstance(a, tuple) and a and a[0] == "tensor"):
            return [f"{where}: torch gives a tensor, ad {type(a).__name__}"]
        if a[1] != t[1]:
            return [f"{where}: dtype {a[1]} (torch {t[1]})"]
        if a[2].shape != t[2].shape:
            return [f"{where}: shape {a[2].shape} (torch {t[2].shape})"]
        if not np.allclose(a[2], t[2], rtol=rtol, atol=atol, equal_nan=True):
            nan = np.isnan(a[2]) != np.isnan(t[2])
            err = np.abs(a[2] - t[2])[~np.isnan(a[2]) & ~np.isnan(t[2])].max(initial=0.0)
            nans = f", NaN at {nan.sum()} places of one only" if nan.any() else ""
            return [f"{where}: values differ by up to {err:.3g}{nans}"]
        return []
    if isinstance(t, list):
        if not isinstance(a, list) or len(a) != len(t):
            return [f"{where}: {a!r:.200} (torch {t!r:.200})"]
        return [d for i, (x, y) in enumerate(zip(a, t)) for d in _differences(x, y, f"{where}[{i}]", rtol, atol)]
    if isinstance(t, dict):
        if not isinstance(a, dict) or list(a) != list(t):
            return [f"{where}: keys {list(a) if isinstance(a, dict) else a!r:.200} (torch {list(t)})"]
        return [d for k in t for d in _differences(a[k], t[k], f"{where}[{k!r}]", rtol, atol)]
    if isinstance(t, float) and isinstance(a, float):
        return [] if math.isclose(a, t, rel_tol=rtol, abs_tol=atol) or (a != a and t != t) else [f"{where}: {a} != {t}"]
    return [] if a == t else [f"{where}: {a!r:.300} (torch {t!r:.300})"]


def _check(name):
    """The differences between torch's and ad's run of ``CASES[name]`` (an empty list where they agree)."""
    fn, fragment, rtol, atol = CASES[name]
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
    return _differences(a[1], t[1], rtol=rtol, atol=atol)


CASES = {}


def case(name, fragment=None, rtol=RTOL, atol=ATOL):
    """Register ``fn(L)`` under ``name``; ``fragment``: a part of torch's error message ad's must contain;
    ``rtol`` / ``atol``: looser tolerances for float32 cases, or where torch's own result is less accurate (the
    case says why)."""

    def register(fn):
        assert name not in CASES, name
        CASES[name] = (fn, fragment, rtol, atol)
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
        return nn.Transformer(_E, _H, 1, 1, 12, 0.0, activation="gelu", norm_first=True, bias=False,
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
    "localresponsenorm size above the channels, 4-d": (lambda nn: nn.LocalResponseNorm(7, k=0.5), (2, 3, 2, 2)),
    "groupnorm one group": (lambda nn: nn.GroupNorm(1, 3, eps=0.5), (2, 3, 4)),
    "layernorm over three dims": (lambda nn: nn.LayerNorm((2, 3, 2)), (2, 2, 3, 2)),
    "batchnorm1d momentum=0": (lambda nn: nn.BatchNorm1d(3, momentum=0.0), (4, 3)),
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


@case("instancenorm without running stats loads an old checkpoint with them", "Unexpected running stats buffer(s) "
      "\"running_mean\" and \"running_var\" for InstanceNorm1d with track_running_stats=False")
def _(L):
    return L.nn.InstanceNorm1d(3).load_state_dict({"running_mean": L.zeros(3), "running_var": L.ones(3)})


@case("instancenorm with running stats loads a plain dict without num_batches_tracked")
def _(L):
    m = L.nn.InstanceNorm1d(3, track_running_stats=True)
    result = m.load_state_dict({"running_mean": L.zeros(3) + 0.5, "running_var": L.ones(3)})
    return [list(result.missing_keys), list(result.unexpected_keys), dict(m.state_dict())]


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


@case("rms_norm weight of the wrong size", "Expected weight to be of same shape as normalized_shape")
def _(L):
    return L.nn.functional.rms_norm(_x(L, (2, 3, 4)), (4,), weight=_x(L, (2,)))


@case("batch_norm functional, eval, no affine")
def _(L):
    rm, rv = _x(L, (3,), seed=5, grad=False), _x(L, (3,), seed=6, grad=False, low=0.5, high=2.0)
    x = _x(L, (4, 3, 2))
    return [_backward(L, L.nn.functional.batch_norm(x, rm, rv, training=False, eps=1e-3)), x.grad]


# -------------------------------------------------------------------------------------------------- losses
def _arg(L, spec, seed):
    """An input from ``spec``: a shape (a float leaf), ``("prob", shape)`` (in (0.05, 0.95), a leaf),
    ``("pos", shape)`` (in (0.5, 2), a leaf; ``"wpos"``: the same values, no gradient), ``("const", shape)``
    (floats, no gradient), ``("sign", shape)`` (+-1), ``("zeros", shape)``, ``("int", values)``, ``("bool",
    values)``, or a ready value (``None``, numbers)."""
    if isinstance(spec, tuple) and spec and isinstance(spec[0], int):
        return _x(L, spec, seed)
    if not isinstance(spec, tuple) or not spec or not isinstance(spec[0], str):
        return spec
    kind, value = spec
    if kind == "prob":
        return _x(L, value, seed, low=0.05, high=0.95)
    if kind == "pos":
        return _x(L, value, seed, low=0.5, high=2.0)
    if kind == "const":
        return _x(L, value, seed, grad=False)
    if kind == "wpos":
        return _x(L, value, seed, grad=False, low=0.5, high=2.0)
    if kind == "sign":
        return L.tensor(np.where(_values(value, seed) > 0, 1.0, -1.0), dtype=L.float64)
    if kind == "int":
        return _ints(L, value)
    if kind == "zeros":
        return L.zeros(value, dtype=L.float64)
    return L.tensor(np.asarray(value, dtype=bool))


def _loss(L, cls, kw, *specs):
    """``L.nn.<cls>(**kw)`` (tensor-valued keywords given as specs) on inputs from ``specs``: the loss, the
    gradients of the float leaves (inputs and tensor keywords), and the module's repr."""
    kw = {k: _arg(L, v, 40 + i) for i, (k, v) in enumerate(kw.items())}
    args = [_arg(L, s, i) for i, s in enumerate(specs)]
    m = getattr(L.nn, cls)(**kw)
    out = m(*args)
    leaves = [a for a in [*args, *kw.values()] if isinstance(a, (torch.Tensor, ad.Tensor)) and a.requires_grad]
    _backward(L, out)
    return [out, [a.grad for a in leaves], repr(m)]


_REDUCTIONS = ("none", "mean", "sum")
_LOSSES = {
    "cross_entropy probabilities, label_smoothing, weight": (
        "CrossEntropyLoss", {"weight": ("pos", (4,)), "label_smoothing": 0.2}, (3, 4), ("prob", (3, 4))),
    "cross_entropy probabilities, 4-d input": ("CrossEntropyLoss", {"label_smoothing": 0.1}, (2, 3, 2, 2),
                                               ("prob", (2, 3, 2, 2))),
    "cross_entropy probabilities unbatched": ("CrossEntropyLoss", {}, (4,), ("prob", (4,))),
    "cross_entropy index, weight, ignore_index, label_smoothing": (
        "CrossEntropyLoss", {"weight": ("wpos", (4,)), "ignore_index": 2, "label_smoothing": 0.3}, (5, 4),
        ("int", [0, 2, 3, 2, 1])),
    "cross_entropy index, 3-d input, ignore_index": ("CrossEntropyLoss", {"ignore_index": 0}, (2, 3, 4),
                                                     ("int", [[0, 1, 2, 0], [2, 2, 1, 0]])),
    "cross_entropy index unbatched": ("CrossEntropyLoss", {"label_smoothing": 0.1}, (4,), ("int", 3)),
    "cross_entropy all targets ignored": ("CrossEntropyLoss", {"ignore_index": 1}, (2, 3), ("int", [1, 1])),
    "nll 4-d, weight, ignore_index": ("NLLLoss", {"weight": ("wpos", (3,)), "ignore_index": 1}, (2, 3, 2, 2),
                                      ("int", [[[0, 1], [2, 2]], [[1, 1], [0, 2]]])),
    "nll 3-d": ("NLLLoss", {}, (2, 3, 4), ("int", [[0, 1, 2, 0], [2, 2, 1, 0]])),
    "nll unbatched": ("NLLLoss", {"weight": ("wpos", (3,))}, (3,), ("int", 2)),
    "nll negative ignore_index": ("NLLLoss", {"ignore_index": -1}, (3, 3), ("int", [0, -1, 2])),
    "kl_div log_target": ("KLDivLoss", {"log_target": True}, (3, 4), (3, 4)),
    "kl_div batchmean": ("KLDivLoss", {"reduction": "batchmean"}, (3, 4), ("prob", (3, 4))),
    "kl_div negative target": ("KLDivLoss", {}, (2, 3), ("const", (2, 3))),
    "kl_div zero target": ("KLDivLoss", {}, (2, 3), ("zeros", (2, 3))),
    "huber delta": ("HuberLoss", {"delta": 0.3}, (3, 4), (3, 4)),
    "smooth_l1 beta=0": ("SmoothL1Loss", {"beta": 0.0}, (3, 4), (3, 4)),
    "smooth_l1 beta": ("SmoothL1Loss", {"beta": 0.4}, (3, 4), (3, 4)),
    "bce_with_logits pos_weight, weight": ("BCEWithLogitsLoss", {"pos_weight": ("wpos", (4,)),
                                                                  "weight": ("wpos", (3, 1))}, (3, 4),
                                           ("prob", (3, 4))),
    "bce weight broadcast": ("BCELoss", {"weight": ("wpos", (4,))}, ("prob", (3, 4)), ("prob", (3, 4))),
    "gaussian_nll full, broadcast var": ("GaussianNLLLoss", {"full": True, "eps": 1e-3}, (3, 4), (3, 4),
                                         ("pos", (3, 1))),
    "gaussian_nll var one fewer dim": ("GaussianNLLLoss", {}, (3, 4), (3, 4), ("pos", (3,))),
    "poisson_nll not log_input, full": ("PoissonNLLLoss", {"log_input": False, "full": True},
                                        ("pos", (3, 4)), ("pos", (3, 4))),
    "poisson_nll log_input": ("PoissonNLLLoss", {}, (3, 4), ("pos", (3, 4))),
    "l1": ("L1Loss", {}, (3, 4), (3, 4)),
    "mse broadcast target": ("MSELoss", {}, (3, 4), (4,)),
    "soft_margin": ("SoftMarginLoss", {}, (3, 4), ("sign", (3, 4))),
    "multilabel_soft_margin weight": ("MultiLabelSoftMarginLoss", {"weight": ("pos", (4,))}, (3, 4),
                                      ("sign", (3, 4))),
    "hinge_embedding margin": ("HingeEmbeddingLoss", {"margin": 0.5}, (3, 4), ("sign", (3, 4))),
    "cosine_embedding margin": ("CosineEmbeddingLoss", {"margin": 0.2}, (3, 4), (3, 4), ("sign", (3,))),
    "margin_ranking": ("MarginRankingLoss", {"margin": 0.1}, (5,), (5,), ("sign", (5,))),
    "triplet_margin swap, p=1": ("TripletMarginLoss", {"swap": True, "p": 1.0}, (3, 4), (3, 4), (3, 4)),
    "multi_margin weight, p=2": ("MultiMarginLoss", {"p": 2, "margin": 0.7, "weight": ("wpos", (4,))}, (3, 4),
                                 ("int", [0, 3, 1])),
    "multilabel_margin": ("MultiLabelMarginLoss", {}, (2, 4), ("int", [[3, 0, -1, 1], [1, 2, 3, -1]])),
}
for _name, (_cls, _kw, *_specs) in _LOSSES.items():
    for _r in _REDUCTIONS if "batchmean" not in _name else ("batchmean",):
        case(f"{_name}, reduction={_r}")(
            lambda L, c=_cls, k={**_kw, "reduction": _r}, s=_specs: _loss(L, c, k, *s))


def _ctc(L, reduction, zero_infinity=False, blank=0, lengths=((5, 4, 5), (3, 2, 2))):
    logits = _x(L, (5, 3, 4), seed=3)
    log_probs = logits.log_softmax(2)
    targets = _ints(L, [[1, 2, 2, 3], [3, 1, 0, 0], [2, 1, 3, 3]]) if blank == 0 else _ints(
        L, [[1, 2, 2, 0], [0, 1, 0, 0], [2, 1, 0, 0]])
    m = L.nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    out = m(log_probs, targets, _ints(L, lengths[0]), _ints(L, lengths[1]))
    _backward(L, out)
    return [out, logits.grad, repr(m)]


for _r in _REDUCTIONS:
    case(f"ctc reduction={_r}")(lambda L, r=_r: _ctc(L, r))
    case(f"ctc impossible alignment, zero_infinity, reduction={_r}")(
        lambda L, r=_r: _ctc(L, r, True, lengths=((5, 2, 2), (3, 2, 4))))
case("ctc blank last")(lambda L: _ctc(L, "mean", blank=3))


@case("ctc concatenated targets")
def _(L):
    logits = _x(L, (5, 2, 4), seed=3)
    out = L.nn.CTCLoss()(logits.log_softmax(2), _ints(L, [1, 2, 3, 1]), _ints(L, [5, 4]), _ints(L, [3, 1]))
    _backward(L, out)
    return [out, logits.grad]


@case("ctc unbatched")
def _(L):
    logits = _x(L, (5, 4), seed=3)
    out = L.nn.CTCLoss(reduction="sum")(logits.log_softmax(1), _ints(L, [1, 2, 2]), _ints(L, 5), _ints(L, 3))
    _backward(L, out)
    return [out, logits.grad]


# loss errors
@case("cross_entropy target out of range")
def _(L):
    return L.nn.CrossEntropyLoss()(_x(L, (2, 3)), _ints(L, [0, 3]))


@case("cross_entropy batch mismatch", "Expected input batch_size (2) to match target batch_size (3).")
def _(L):
    return L.nn.CrossEntropyLoss()(_x(L, (2, 3)), _ints(L, [0, 1, 2]))


@case("cross_entropy probabilities with ignore_index set")
def _(L):
    return L.nn.CrossEntropyLoss(ignore_index=1)(_x(L, (2, 3)), _arg(L, ("prob", (2, 3)), 1))


@case("cross_entropy probabilities of the wrong shape")
def _(L):
    return L.nn.CrossEntropyLoss()(_x(L, (2, 3)), _arg(L, ("prob", (2, 4)), 1))


@case("cross_entropy label_smoothing out of range", "label_smoothing must be between 0.0 and 1.0")
def _(L):
    return L.nn.CrossEntropyLoss(label_smoothing=1.5)(_x(L, (2, 3)), _ints(L, [0, 1]))


@case("cross_entropy float target with integer-like shape")
def _(L):
    return L.nn.CrossEntropyLoss()(_x(L, (2, 3)), _arg(L, ("const", (2,)), 1))


@case("nll 4-d target shape mismatch", "size mismatch (got input: [2, 3, 2, 2] , target: [2, 1, 2]")
def _(L):
    return L.nn.NLLLoss()(_x(L, (2, 3, 2, 2)), _ints(L, [[[0, 1]], [[1, 1]]]))


@case("nll 2-d input with 2-d target", "0D or 1D target tensor expected, multi-target not supported")
def _(L):
    return L.nn.NLLLoss()(_x(L, (2, 3)), _ints(L, [[0, 1, 2], [1, 1, 1]]))


@case("nll 1-d input with 2-d target", "0D or 1D target tensor expected, multi-target not supported")
def _(L):
    return L.nn.NLLLoss()(_x(L, (3,)), _ints(L, [[1]]))


@case("cross_entropy 4-d input with 2-d target", "only batches of spatial targets supported (3D tensors)")
def _(L):
    return L.nn.CrossEntropyLoss()(_x(L, (2, 3, 2, 2)), _ints(L, [[0, 1], [1, 1]]))


@case("nll 3-d target shape mismatch", "Expected target size [2, 4], got [2, 5]")
def _(L):
    return L.nn.NLLLoss()(_x(L, (2, 3, 4)), _ints(L, [[0] * 5, [1] * 5]))


@case("bilinear batch mismatch", "input batch dimensions do not match at dim 0: got 5 and 4")
def _(L):
    return L.nn.functional.bilinear(_x(L, (5, 3)), _x(L, (4, 4)), _x(L, (2, 3, 4)))


@case("bilinear bias of the wrong size", "bias size does not match weight size: got 3 but expected 2")
def _(L):
    return L.nn.functional.bilinear(_x(L, (5, 3)), _x(L, (5, 4)), _x(L, (2, 3, 4)), _x(L, (3,)))


@case("nll weight of the wrong size")
def _(L):
    return L.nn.NLLLoss(weight=_x(L, (4,), grad=False))(_x(L, (2, 3)), _ints(L, [0, 1]))


@case("nll 1-d input with batched target", "For 1D input, 1D target must have size 1, but got target size: 2")
def _(L):
    return L.nn.NLLLoss()(_x(L, (3,)), _ints(L, [0, 1]))


@case("mse target shape mismatch warns and broadcasts")
def _(L):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = L.nn.MSELoss()(_x(L, (3, 1)), _x(L, (3,)))
    return [out, [str(w.message) for w in caught]]


@case("bce target shape mismatch", "Using a target size")
def _(L):
    return L.nn.BCELoss()(_arg(L, ("prob", (3, 4)), 0), _arg(L, ("prob", (3, 1)), 1))


@case("bce_with_logits target shape mismatch", "must be the same as input size")
def _(L):
    return L.nn.BCEWithLogitsLoss()(_x(L, (3, 4)), _arg(L, ("prob", (4,)), 1))


@case("kl_div mean warns")
def _(L):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = L.nn.KLDivLoss(reduction="mean")(_x(L, (2, 3)), _arg(L, ("prob", (2, 3)), 1))
    return [out, [str(w.message)[:60] for w in caught]]


@case("kl_div integer target", "kl_div: Integral inputs not supported.")
def _(L):
    return L.nn.KLDivLoss(reduction="sum")(_x(L, (2, 3)), _ints(L, [[0, 1, 0], [1, 0, 0]]))


@case("bad reduction", "is not a valid value for reduction")
def _(L):
    return L.nn.L1Loss(reduction="avg")(_x(L, (2,)), _x(L, (2,)))


@case("huber negative delta")
def _(L):
    return L.nn.HuberLoss(delta=-1.0)(_x(L, (2,)), _x(L, (2,)))


@case("smooth_l1 negative beta")
def _(L):
    return L.nn.SmoothL1Loss(beta=-1.0)(_x(L, (2,)), _x(L, (2,)))


@case("gaussian_nll negative var", "var has negative entry/entries")
def _(L):
    return L.nn.GaussianNLLLoss()(_x(L, (2, 3)), _x(L, (2, 3)), _x(L, (2, 3)))


@case("gaussian_nll var of the wrong shape", "var is of incorrect size")
def _(L):
    return L.nn.GaussianNLLLoss()(_x(L, (2, 3)), _x(L, (2, 3)), _arg(L, ("pos", (2, 2)), 1))


@case("ctc target lengths longer than targets")
def _(L):
    lp = _x(L, (5, 2, 4)).log_softmax(2)
    return L.nn.CTCLoss()(lp, _ints(L, [[1, 2], [1, 1]]), _ints(L, [5, 5]), _ints(L, [3, 2]))


@case("ctc input length past the input")
def _(L):
    lp = _x(L, (5, 2, 4)).log_softmax(2)
    return L.nn.CTCLoss()(lp, _ints(L, [[1, 2], [1, 1]]), _ints(L, [6, 5]), _ints(L, [2, 2]))


@case("multi_margin bad p", "only p == 1 and p == 2 supported")
def _(L):
    return L.nn.MultiMarginLoss(p=3)


def _weight_grad(L, fn, n=3):
    w = _x(L, (n,), seed=9, low=0.5, high=2.0)
    out = fn(L.nn.functional, _x(L, (4, n)), w)
    _backward(L, out)
    return [out, w.grad]


_CLASS_TARGETS = [0, 2, 1, 2]
_WEIGHT_GRAD = {  # torch: no derivative for a class weight (RuntimeError), except in composites
    "cross_entropy": lambda F, x, w, L=None: F.cross_entropy(x, _ints(L, _CLASS_TARGETS), weight=w),
    "cross_entropy label_smoothing": lambda F, x, w, L=None: F.cross_entropy(x, _ints(L, _CLASS_TARGETS), weight=w,
                                                                              label_smoothing=0.2),
    "nll_loss 3-d": lambda F, x, w, L=None: F.nll_loss(x.reshape(2, 3, 2), _ints(L, [[0, 1], [2, 0]]), weight=w),
    "binary_cross_entropy": lambda F, x, w, L=None: F.binary_cross_entropy(x.sigmoid(), x.detach().sigmoid() * 0.5,
                                                                            weight=w),
    "binary_cross_entropy_with_logits pos_weight": lambda F, x, w, L=None: F.binary_cross_entropy_with_logits(
        x, x.detach().sigmoid(), pos_weight=w),
    "multi_margin_loss": lambda F, x, w, L=None: F.multi_margin_loss(x, _ints(L, _CLASS_TARGETS), weight=w),
    "cross_entropy probabilities": lambda F, x, w, L=None: F.cross_entropy(x, x.detach().softmax(1), weight=w,
                                                                            label_smoothing=0.1),
    "multilabel_soft_margin_loss": lambda F, x, w, L=None: F.multilabel_soft_margin_loss(x, x.detach().sigmoid(),
                                                                                          weight=w),
}
for _name, _fn in _WEIGHT_GRAD.items():
    case(f"{_name}: weight requiring grad")(lambda L, f=_fn: _weight_grad(L, lambda F, x, w: f(F, x, w, L)))


# ------------------------------------------------------------------------------- embeddings and the rest
def _embedding(L, idx, **kw):
    m = _module(L, lambda nn: nn.Embedding(6, 3, **kw))
    with L.no_grad():
        m.weight.mul_(4.0)  # rows of norm above 1, so that max_norm renormalizes
    out = m(_ints(L, idx))
    _backward(L, out)
    return [out, m.weight.grad, m.weight, repr(m)]


case("embedding max_norm renormalizes the used rows in place")(
    lambda L: _embedding(L, [[0, 2], [2, 5]], max_norm=1.0))
case("embedding max_norm, norm_type=1")(lambda L: _embedding(L, [1, 3, 3], max_norm=0.8, norm_type=1.0))
case("embedding scale_grad_by_freq")(lambda L: _embedding(L, [[0, 2, 2], [2, 5, 0]], scale_grad_by_freq=True))
case("embedding padding_idx negative, scale_grad_by_freq")(
    lambda L: _embedding(L, [[0, 5, 5], [2, 5, 1]], padding_idx=-1, scale_grad_by_freq=True))
case("embedding padding_idx with max_norm")(lambda L: _embedding(L, [0, 1, 1, 4], padding_idx=1, max_norm=2.0))
case("embedding sparse=False repr")(lambda L: _embedding(L, [0], sparse=False))


@case("embedding from_pretrained, freeze, padding_idx")
def _(L):
    w = _x(L, (4, 3), grad=False)
    m = L.nn.Embedding.from_pretrained(w, freeze=False, padding_idx=0, max_norm=0.5)
    out = m(_ints(L, [0, 3, 3]))
    _backward(L, out)
    frozen = L.nn.Embedding.from_pretrained(w)
    return [out, m.weight.grad, m.weight, repr(m), frozen.weight.requires_grad, repr(frozen)]


@case("embedding default init is N(0, 1) with padding row zero")
def _(L):
    m = L.nn.Embedding(400, 5, padding_idx=3)
    w = m.weight.detach()
    return [bool((w[3] == 0).all()), abs(float(w.std()) - 1.0) < 0.1, abs(float(w.mean())) < 0.1, _state(m)]


@case("embedding index out of range")
def _(L):
    return L.nn.Embedding(4, 2)(_ints(L, [1, 4]))


@case("embedding float indices")
def _(L):
    return L.nn.Embedding(4, 2)(_x(L, (2,), grad=False))


@case("embedding padding_idx out of range", "Padding_idx must be within num_embeddings")
def _(L):
    return L.nn.Embedding(4, 2, padding_idx=4)


def _bag(L, idx, offsets=None, per_sample=False, **kw):
    m = _module(L, lambda nn: nn.EmbeddingBag(7, 3, **kw))
    psw = _x(L, (len(idx) if offsets is not None else np.size(idx),), seed=5) if per_sample else None
    if psw is not None and offsets is None:
        psw = psw.reshape(np.shape(idx))
    out = m(_ints(L, idx), None if offsets is None else _ints(L, offsets), per_sample_weights=psw)
    _backward(L, out)
    return [out, m.weight.grad, None if psw is None else psw.grad, repr(m)]


case("embedding_bag mean, 2-d input")(lambda L: _bag(L, [[0, 2, 2], [4, 5, 6]]))
case("embedding_bag sum, offsets, per_sample_weights")(
    lambda L: _bag(L, [1, 2, 4, 5, 4, 3], [0, 2, 2], per_sample=True, mode="sum"))
case("embedding_bag max, include_last_offset")(
    lambda L: _bag(L, [1, 2, 4, 5, 4, 3], [0, 3, 4, 6], mode="max", include_last_offset=True))
case("embedding_bag padding_idx, mean")(lambda L: _bag(L, [[0, 2, 2], [2, 2, 6]], padding_idx=2))
case("embedding_bag max_norm")(lambda L: _bag(L, [[0, 2], [3, 2]], max_norm=0.3))
case("embedding_bag per_sample_weights with mean", "embedding_bag: per_sample_weights was not None")(
    lambda L: _bag(L, [[0, 2], [3, 2]], per_sample=True))
case("embedding_bag 2-d input with offsets", "if input is 2D, then offsets has to be None")(
    lambda L: _bag(L, [[0, 2], [3, 2]], [0, 1]))


def _simple(L, make, shape, train=True, **kw):
    return _layer(L, make, shape, train=train, **kw)


_MISC = {
    "flatten start/end": (lambda nn: nn.Flatten(1, 2), (2, 3, 4, 2)),
    "flatten negative dims": (lambda nn: nn.Flatten(-3, -2), (2, 3, 4, 2)),
    "unflatten -1 size": (lambda nn: nn.Unflatten(1, (2, -1)), (3, 6, 2)),
    "unflatten negative dim": (lambda nn: nn.Unflatten(-1, (3, 2)), (2, 6)),
    "upsample nearest-exact": (lambda nn: nn.Upsample(scale_factor=1.5, mode="nearest-exact"), (1, 2, 4, 4)),
    "upsample linear align_corners": (lambda nn: nn.Upsample(size=7, mode="linear", align_corners=True), (2, 2, 4)),
    "upsample bilinear, recompute_scale_factor": (
        lambda nn: nn.Upsample(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True), (1, 2, 3, 5)),
    "upsample nearest 3-d scale tuple": (lambda nn: nn.Upsample(scale_factor=(2, 1, 3)), (1, 1, 2, 3, 2)),
    "upsample bicubic downscale": (lambda nn: nn.Upsample(size=(3, 2), mode="bicubic"), (1, 2, 5, 6)),
    "pixel_shuffle 5-d batch": (lambda nn: nn.PixelShuffle(2), (2, 1, 8, 2, 3)),
    "pixel_unshuffle 3-d": (lambda nn: nn.PixelUnshuffle(3), (2, 6, 3)),
    "fold unbatched": (lambda nn: nn.Fold((4, 5), (2, 3), stride=(2, 1), padding=(1, 0)), (12, 12)),
    "unfold unbatched, dilation": (lambda nn: nn.Unfold(2, dilation=2, padding=1, stride=(1, 2)), (2, 5, 6)),
    "dropout eval": (lambda nn: nn.Dropout(0.7), (3, 4)),
    "dropout2d eval": (lambda nn: nn.Dropout2d(0.7), (2, 3, 4, 4)),
    "alpha_dropout eval": (lambda nn: nn.AlphaDropout(0.4), (3, 4)),
    "identity with arguments": (lambda nn: nn.Identity(3, unused="x"), (3, 4)),
    "bilinear no bias": (lambda nn: nn.Bilinear(3, 4, 2, bias=False), (5, 3), (5, 4)),
    "bilinear unbatched": (lambda nn: nn.Bilinear(3, 4, 2), (3,), (4,)),
    "bilinear extra batch dims": (lambda nn: nn.Bilinear(3, 4, 2), (2, 5, 3), (2, 5, 4)),
    "linear unbatched, no bias": (lambda nn: nn.Linear(3, 2, bias=False), (3,)),
}
for _name, (_make, *_shapes) in _MISC.items():
    case(_name)(lambda L, m=_make, s=_shapes, n=_name: _layer(L, m, *s, train="eval" not in n))


@case("dropout eval returns its input")
def _(L):
    x = _x(L, (3,))
    return [L.nn.Dropout(0.5).eval()(x) is x, L.nn.Dropout(0.0)(x).shape]


@case("dropout p out of range", "dropout probability has to be between 0 and 1, but got 1.5")
def _(L):
    return L.nn.Dropout(1.5)


@case("identity returns its input object")
def _(L):
    x = _x(L, (3,))
    return L.nn.Identity()(x) is x


@case("bilinear default init")
def _(L):
    m = L.nn.Bilinear(3, 4, 200)
    b = 1 / math.sqrt(3)
    return [_state(m), bool((m.weight.abs() <= b).all()), bool((m.weight.abs() > b * 0.9).any()),
            bool((m.bias.abs() <= b).all()), repr(m)]


@case("bilinear wrong second width", "input2 size does not match weight size: got 3 but expected 4")
def _(L):
    return _module(L, lambda nn: nn.Bilinear(3, 4, 2))(_x(L, (5, 3)), _x(L, (5, 3)))


@case("unflatten bad sizes", "unflatten: Provided sizes [2, 4] don't multiply up to the size of dim 1 (6)")
def _(L):
    return L.nn.Unflatten(1, (2, 4))(_x(L, (3, 6)))


@case("pixel_shuffle channels not divisible")
def _(L):
    return L.nn.PixelShuffle(2)(_x(L, (1, 6, 2, 2)))


@case("fold wrong block count")
def _(L):
    return L.nn.Fold((4, 5), (2, 2))(_x(L, (1, 12, 11)))


@case("upsample both size and scale", "only one of size or scale_factor should be defined")
def _(L):
    return L.nn.Upsample(size=4, scale_factor=2)(_x(L, (1, 1, 2)))


# activation modules with inplace=True: the same values and gradients as torch through a non-leaf input
_INPLACE = {
    "ReLU": (), "ReLU6": (), "LeakyReLU": (0.2,), "ELU": (0.5,), "CELU": (1.3,), "SELU": (), "SiLU": (),
    "Mish": (), "Hardtanh": (-0.5, 0.4), "Hardsigmoid": (), "Hardswish": (), "Threshold": (0.1, -2.0),
    "RReLU": (0.1, 0.3), "Dropout": (0.0,), "AlphaDropout": (0.0,), "Dropout1d": (0.0,),
}


def _inplace(L, cls, args, train=True):
    m = getattr(L.nn, cls)(*args, inplace=True)
    m.train(train)
    x = _x(L, (2, 3, 4), seed=11, low=-2.0, high=2.0)
    y = x * 1.5 + 0.0013
    out = m(y)
    same = out is y
    _backward(L, out)
    return [out, x.grad, same, y._version > 0 if hasattr(y, "_version") else True, repr(m)]


# torch's in-place CELU and Hardsigmoid backward use float32 constants (1 / alpha, 1 / 6): 1e-7 relative errors
_INPLACE_RTOL = {"CELU": 1e-6, "Hardsigmoid": 1e-6}
for _cls, _args in _INPLACE.items():
    case(f"{_cls} inplace=True", rtol=_INPLACE_RTOL.get(_cls, RTOL))(
        lambda L, c=_cls, a=_args: _inplace(L, c, a, train=c != "RReLU"))


@case("inplace ReLU on a leaf that requires grad")
def _(L):
    return L.nn.ReLU(inplace=True)(_x(L, (3,)))


@case("inplace ReLU under no_grad on a leaf")
def _(L):
    x = _x(L, (3,))
    with L.no_grad():
        out = L.nn.ReLU(inplace=True)(x)
    return [out is x, x, x.requires_grad]


@case("inplace ReLU then reuse of its input in backward")
def _(L):
    x = _x(L, (3,))
    y = x.sigmoid()
    z = L.nn.ReLU(inplace=True)(y - 0.5)
    return _backward(L, z * y)


@case("inplace SELU's saved input modified again")
def _(L):
    x = _x(L, (3,))
    y = x * 2
    z = L.nn.SELU(inplace=True)(y)
    z.mul_(2)
    (z * 1.0).sum().backward()
    return x.grad


# ------------------------------------------------------------------------------------ more configurations
_MORE = {
    "conv1d same even kernel, reflect": (lambda nn: nn.Conv1d(2, 2, 4, padding="same", padding_mode="reflect"),
                                         (2, 2, 7)),
    "conv2d same even kernel, dilation, circular": (
        lambda nn: nn.Conv2d(2, 3, (2, 4), padding="same", dilation=(3, 1), padding_mode="circular"), (1, 2, 6, 7)),
    "conv3d same even kernel, dilation 2": (lambda nn: nn.Conv3d(1, 2, 2, padding="same", dilation=2),
                                            (1, 1, 4, 5, 3)),
    "conv1d 'valid' string and replicate, groups, dilation": (
        lambda nn: nn.Conv1d(4, 2, 3, padding="valid", padding_mode="replicate", groups=2, dilation=2), (2, 4, 9)),
    "prelu per channel, init": (lambda nn: nn.PReLU(3, init=0.1), (2, 3, 4)),
    "prelu 1-d input": (lambda nn: nn.PReLU(), (5,)),
    "softplus beta, threshold": (lambda nn: nn.Softplus(beta=2.0, threshold=1.0), (3, 4)),
    "gelu tanh": (lambda nn: nn.GELU("tanh"), (3, 4)),
    "softmax dim": (lambda nn: nn.Softmax(dim=0), (3, 4)),
    "log_softmax negative dim": (lambda nn: nn.LogSoftmax(-2), (2, 3, 4)),
    "softmin": (lambda nn: nn.Softmin(1), (3, 4)),
    "softmax2d unbatched": (lambda nn: nn.Softmax2d(), (3, 2, 2)),
    "glu dim 1": (lambda nn: nn.GLU(1), (2, 4, 3)),
    "logsigmoid, softsign, tanhshrink": (
        lambda nn: nn.Sequential(nn.LogSigmoid(), nn.Softsign(), nn.Tanhshrink()), (3, 4)),
    "hardshrink lambd": (lambda nn: nn.Hardshrink(0.3), (3, 4)),
    "threshold, not in place": (lambda nn: nn.Threshold(0.2, -1.0), (3, 4)),
    "elu, celu, selu modules": (lambda nn: nn.Sequential(nn.ELU(0.3), nn.CELU(0.7), nn.SELU()), (3, 4)),
    "tanh, sigmoid, silu modules": (lambda nn: nn.Sequential(nn.Tanh(), nn.Sigmoid(), nn.SiLU()), (3, 4)),
    "leaky_relu slope": (lambda nn: nn.LeakyReLU(0.3), (3, 4)),
    "hardtanh min/max": (lambda nn: nn.Hardtanh(-0.4, 0.3), (3, 4)),
    "relu6": (lambda nn: nn.ReLU6(), (3, 4)),
    "multihead attention inside a Sequential-like stack": (
        lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, 4, 16, 0.0, activation="gelu",
                                                                    norm_first=True), 1, enable_nested_tensor=False),
        (3, 2, _E)),
}
# torch's CELU backward uses 1 / alpha rounded to float32: 1e-8 relative errors
for _name, (_make, *_shapes) in _MORE.items():
    case(_name, rtol=1e-6 if "celu" in _name else RTOL)(lambda L, m=_make, s=_shapes: _layer(L, m, *s))


@case("softmax without dim warns and picks torch's implicit dim")
def _(L):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = L.nn.Softmax()(_x(L, (2, 3, 4)))
    return [out, [str(w.message)[:40] for w in caught]]


@case("prelu parameter count mismatch", "Found parameter numbers = 4 and channel size = 3")
def _(L):
    return L.nn.PReLU(4).double()(_x(L, (2, 3, 4)))


@case("embedding_bag max with padding_idx")
def _(L):
    return _bag(L, [[0, 2, 2], [2, 2, 6]], padding_idx=2, mode="max")


@case("embedding_bag sum, per_sample_weights, padding_idx, 2-d")
def _(L):
    return _bag(L, [[0, 2, 1], [2, 2, 6]], per_sample=True, padding_idx=2, mode="sum")


@case("transformer src/tgt/memory is_causal flags")
def _(L):
    def call(m, s, t):
        return m(s, t, src_mask=_mask(L, "causal", (5, 5)), src_is_causal=True,
                 tgt_mask=_mask(L, "causal", (4, 4)), tgt_is_causal=True)

    return _layer(L, lambda nn: nn.Transformer(_E, _H, 1, 1, 12, 0.0), (5, 2, _E), (4, 2, _E), call=call)


@case("encoder stack is_causal without mask", "Need attn_mask if specifying the is_causal hint")
def _(L):
    m = L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(_E, _H, 12, 0.0), 1, enable_nested_tensor=False)
    return m.double()(_x(L, (5, 2, _E)), is_causal=True)


@case("mha is_causal without mask", "attn_mask")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    x = _x(L, (4, 3, _E))
    return m(x, x, x, is_causal=True)


@case("mha key_padding_mask of the wrong shape")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    x = _x(L, (4, 3, _E))
    return m(x, x, x, key_padding_mask=L.tensor(np.zeros((3, 5), bool)))


@case("mha int attn_mask", "only bool and floating types of attn_mask are supported")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    x = _x(L, (4, 3, _E))
    return m(x, x, x, attn_mask=_ints(L, np.zeros((4, 4))))


@case("mha bool attn_mask with float key_padding_mask")
def _(L):
    m = _module(L, _mha())
    x = _x(L, (4, 3, _E))
    kpm = L.tensor(_values((3, 4), 4), dtype=L.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = m(x, x, x, attn_mask=_mask(L, "bool", (4, 4)), key_padding_mask=kpm)
    return [out, [str(w.message)[:50] for w in caught]]


@case("encoder layer and stack, bool mask with float key padding")
def _(L):
    def call(m, x):
        kpm = L.tensor(np.where(np.arange(5) > 3, -np.inf, 0.0)[None].repeat(2, 0), dtype=L.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = m(x, mask=_mask(L, "bool", (5, 5)), src_key_padding_mask=kpm)
        return out, [str(w.message) for w in caught]

    def make(nn):
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, _H, 12, 0.0), 2, enable_nested_tensor=False)

    return _layer(L, make, (5, 2, _E), call=call)


@case("encoder layer, float mask with bool key padding")
def _(L):
    def call(m, x):
        kpm = L.tensor(np.arange(10).reshape(2, 5) == 4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = m(x, src_mask=_mask(L, "float", (5, 5)), src_key_padding_mask=kpm)
        return out, [str(w.message) for w in caught]

    return _layer(L, _enc(), (5, 2, _E), call=call)


@case("encoder stack eval, nested tensor, float padding mask, final norm")
def _(L):
    def make(nn):
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, 4, 12, 0.0, batch_first=True, activation="gelu"),
                                     2, norm=nn.LayerNorm(_E))

    m = _module(L, make).eval()
    kpm = L.tensor(np.where(np.arange(10).reshape(2, 5) % 5 > 2, -np.inf, 0.0), dtype=L.float64)
    with L.no_grad():
        return m(_x(L, (2, 5, _E), grad=False), src_key_padding_mask=kpm)


@case("encoder stack eval with grad enabled keeps the dense path")
def _(L):
    m = _module(L, lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, _H, 12, 0.0, batch_first=True),
                                                    1)).eval()
    kpm = L.tensor(np.arange(10).reshape(2, 5) % 5 > 2)
    return m(_x(L, (2, 5, _E), grad=False), src_key_padding_mask=kpm)


@case("encoder stack eval under no_grad, GELU('tanh') module")
def _(L):
    def make(nn):
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, _H, 12, 0.0, activation=nn.GELU("tanh"),
                                                                batch_first=True), 1)

    m = _module(L, make).eval()
    with L.no_grad():
        return m(_x(L, (2, 5, _E), grad=False), src_key_padding_mask=L.tensor(np.zeros((2, 5), bool)))


@case("encoder layer eval under no_grad, a sample with every key padded")
def _(L):
    m = _module(L, _enc(batch_first=True)).eval()
    kpm = L.tensor(np.array([[True] * 5, [False] * 5]))
    with L.no_grad():
        return m(_x(L, (2, 5, _E), grad=False), src_key_padding_mask=kpm)


@case("encoder layer eval under no_grad (torch's fast path)")
def _(L):
    m = _module(L, _enc(batch_first=True)).eval()
    kpm = L.tensor(np.array([[False] * 4 + [True], [False] * 5]))
    with L.no_grad():
        return m(_x(L, (2, 5, _E), grad=False), src_key_padding_mask=kpm)


@case("encoder stack eval under no_grad, nested tensor on, padding mask")
def _(L):
    def make(nn):
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(_E, _H, 12, 0.0, batch_first=True), 2)

    m = _module(L, make).eval()
    kpm = L.tensor(np.array([[False] * 3 + [True] * 2, [False] * 5]))
    with L.no_grad():
        return m(_x(L, (2, 5, _E), grad=False), src_key_padding_mask=kpm)


@case("mha eval under no_grad, batch_first self-attention (torch's fast path)")
def _(L):
    m = _module(L, _mha(batch_first=True)).eval()
    kpm = L.tensor(np.array([[False] * 4 + [True], [False] * 5]))
    x = _x(L, (2, 5, _E), grad=False)
    with L.no_grad():
        return m(x, x, x, key_padding_mask=kpm)


@case("encoder layer, a sample with every key padded")
def _(L):
    kpm = L.tensor(np.array([[True] * 5, [False, False, False, True, False]]))
    return _layer(L, _enc(batch_first=True), (2, 5, _E), call=lambda m, x: m(x, src_key_padding_mask=kpm))


@case("mha, a query with every key masked")
def _(L):
    mask = np.zeros((4, 5), bool)
    mask[1] = True
    return _layer(L, _mha(), (4, 3, _E), (5, 3, _E), (5, 3, _E),
                  call=lambda m, q, k, v: m(q, k, v, attn_mask=L.tensor(mask)))


@case("encoder stack construction warnings (nested tensor)")
def _(L):
    out = []
    for kw in ({"batch_first": False}, {"norm_first": True, "batch_first": False}, {"bias": False, "nhead": 1},
               {"activation": L.tanh, "nhead": 1}, {"nhead": 1}, {"activation": "gelu"}):
        kw = {"batch_first": True, "nhead": 2, **kw}
        nhead = kw.pop("nhead")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(_E, nhead, 12, **kw), 1)
        out.append([m.use_nested_tensor, [str(w.message) for w in caught]])
    return out



@case("upsample nearest with align_corners", "align_corners option can only be set with the interpolating modes")
def _(L):
    return L.nn.Upsample(scale_factor=2, align_corners=True)(_x(L, (1, 1, 3)))


@case("upsample bilinear on a 3-d input")
def _(L):
    return L.nn.Upsample(scale_factor=2, mode="bilinear")(_x(L, (1, 1, 3)))


@case("upsample scale tuple of the wrong length")
def _(L):
    return L.nn.Upsample(scale_factor=(2, 2, 2))(_x(L, (1, 1, 3, 3)))


@case("pixel_unshuffle size not divisible", "expects height to be divisible by downscale_factor")
def _(L):
    return L.nn.PixelUnshuffle(2)(_x(L, (1, 1, 3, 4)))


@case("fold 4-d input")
def _(L):
    return L.nn.Fold((4, 5), 2)(_x(L, (1, 4, 12, 1)))


@case("unfold 2-d input", "Dimension out of range")
def _(L):
    return L.nn.Unfold(2)(_x(L, (3, 4)))


@case("fold 1-d input", "Expected 2D or 3D (batch mode) tensor")
def _(L):
    return L.nn.functional.fold(_x(L, (4,)), (2, 2), 1)


@case("unfold 5-d input", "Expected 3D or 4D (batch mode) tensor")
def _(L):
    return L.nn.Unfold(2)(_x(L, (1, 1, 3, 4, 4)))


@case("embedding_bag bad mode", "mode has to be one of sum, mean or max")
def _(L):
    return L.nn.EmbeddingBag(4, 2, mode="min")(_ints(L, [[0, 1]]))


@case("embedding_bag offsets not starting at 0")
def _(L):
    return L.nn.EmbeddingBag(4, 2)(_ints(L, [0, 1, 2]), _ints(L, [1, 2]))


@case("flatten and unflatten reprs, default init of linear, prelu, layernorm")
def _(L):
    lin = L.nn.Linear(30, 400)
    b = 1 / math.sqrt(30)
    return [repr(L.nn.Flatten()), repr(L.nn.Unflatten(1, (2, 3))), repr(L.nn.PReLU(3)), _state(lin),
            bool((lin.weight.abs() <= b).all()), bool((lin.weight.abs() > 0.9 * b).any()),
            bool((lin.bias.abs() <= b).all()), bool((L.nn.PReLU(3).weight == 0.25).all()),
            repr(L.nn.LayerNorm([2, 3], eps=1e-3)), repr(L.nn.Bilinear(2, 3, 4, bias=False))]


@case("linear wrong input width")
def _(L):
    return _module(L, lambda nn: nn.Linear(3, 2))(_x(L, (4, 5)))


@case("multihead attention repr and modules")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H, kdim=3, vdim=5, batch_first=True, dropout=0.1)
    return [repr(m), [n for n, _ in m.named_modules()], m.head_dim, m.batch_first, m.dropout]


@case("transformer layer reprs")
def _(L):
    return [repr(L.nn.TransformerEncoderLayer(_E, _H, 12, activation="gelu")),
            repr(L.nn.TransformerDecoderLayer(_E, _H, 12, norm_first=True, bias=False))]


@case("conv reprs with every option")
def _(L):
    return [repr(L.nn.Conv2d(2, 4, (3, 2), stride=2, padding=(1, 0), dilation=2, groups=2, bias=False,
                             padding_mode="reflect")),
            repr(L.nn.ConvTranspose3d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)),
            repr(L.nn.Conv1d(2, 2, 3, padding="same")), repr(L.nn.Conv1d(2, 2, 3, padding="valid"))]


@case("loss reprs")
def _(L):
    return [repr(L.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=2)), repr(L.nn.HuberLoss(delta=0.5)),
            repr(L.nn.SmoothL1Loss(beta=0.0)), repr(L.nn.KLDivLoss(log_target=True)),
            repr(L.nn.CTCLoss(zero_infinity=True)), repr(L.nn.NLLLoss(ignore_index=3)),
            repr(L.nn.BCEWithLogitsLoss(pos_weight=L.ones(2))), repr(L.nn.MarginRankingLoss(0.3)),
            repr(L.nn.TripletMarginLoss(swap=True)), repr(L.nn.GaussianNLLLoss(full=True))]


@case("loss module attributes")
def _(L):
    ce = L.nn.CrossEntropyLoss(weight=L.ones(3, dtype=L.float64), label_smoothing=0.1)
    bce = L.nn.BCEWithLogitsLoss(pos_weight=L.ones(2, dtype=L.float64))
    return [ce.reduction, ce.ignore_index, ce.label_smoothing, ce.weight, dict(ce.state_dict()),
            dict(bce.state_dict()), [n for n, _ in bce.named_buffers()], L.nn.HuberLoss().delta,
            L.nn.SmoothL1Loss().beta, L.nn.KLDivLoss().log_target, L.nn.CTCLoss().blank]




_LOSSES_MORE = {
    "triplet_margin_with_distance custom, swap": (
        "TripletMarginWithDistanceLoss", {"distance_function": lambda a, b: (a - b).abs().sum(-1), "swap": True,
                                          "margin": 0.5}, (3, 4), (3, 4), (3, 4)),
    "triplet_margin_with_distance default": ("TripletMarginWithDistanceLoss", {}, (3, 4), (3, 4), (3, 4)),
    "cosine_embedding unbatched": ("CosineEmbeddingLoss", {"margin": -0.2}, (4,), (4,), ("sign", ())),
    "poisson_nll eps, not log_input": ("PoissonNLLLoss", {"log_input": False, "eps": 0.1}, ("pos", (3, 4)),
                                       ("pos", (3, 4))),
    "gaussian_nll var broadcast last dim": ("GaussianNLLLoss", {}, (3, 4), (3, 4), ("pos", (3, 1))),
    "multilabel_soft_margin unbatched": ("MultiLabelSoftMarginLoss", {}, (4,), ("sign", (4,))),
    "multi_margin unbatched": ("MultiMarginLoss", {}, (4,), ("int", 2)),
    "nll2d": ("NLLLoss2d", {}, (2, 3, 2, 2), ("int", [[[0, 1], [2, 2]], [[1, 1], [0, 2]]])),
}
for _name, (_cls, _kw, *_specs) in _LOSSES_MORE.items():
    for _r in _REDUCTIONS:
        case(f"{_name}, reduction={_r}")(
            lambda L, c=_cls, k={**_kw, "reduction": _r}, s=_specs: _loss(L, c, k, *s))



_SHAPE_EDGES = {
    "flatten of a 1-d input": lambda L: L.nn.Flatten()(_x(L, (4,))),
    "flatten of a 0-d input": lambda L: L.nn.Flatten(0)(_x(L, ())),
    "flatten start after end": lambda L: L.nn.Flatten(2, 1)(_x(L, (2, 3, 4))),
    "unflatten -1 in the middle": lambda L: L.nn.Unflatten(0, (2, -1, 3))(_x(L, (12, 2))),
    "unflatten two -1": lambda L: L.nn.Unflatten(0, (-1, -1))(_x(L, (12, 2))),
    "upsample int size on 2-d": lambda L: L.nn.Upsample(size=5, mode="bilinear")(_x(L, (1, 1, 3, 2))),
    "pixel_shuffle empty batch": lambda L: L.nn.PixelShuffle(2)(_x(L, (0, 4, 2, 2))),
    "linear empty batch": lambda L: _layer(L, lambda nn: nn.Linear(3, 2), (0, 3)),
    "conv2d empty batch": lambda L: _layer(L, lambda nn: nn.Conv2d(2, 3, 2), (0, 2, 3, 3)),
    "batchnorm1d empty batch in eval": lambda L: _layer(L, lambda nn: nn.BatchNorm1d(3), (0, 3), train=False),
    "layernorm empty batch": lambda L: _layer(L, lambda nn: nn.LayerNorm(3), (0, 3)),
    "embedding empty index": lambda L: L.nn.Embedding(4, 2)(_ints(L, np.zeros((2, 0), np.int64))),
}
for _name, _fn in _SHAPE_EDGES.items():
    case(_name)(_fn)



@case("embedding max_norm called twice in one graph")
def _(L):
    emb = _module(L, lambda nn: nn.Embedding(6, 3, max_norm=1.0))
    with L.no_grad():
        emb.weight.mul_(4.0)
    a = emb(_ints(L, [1, 2]))
    b = emb(_ints(L, [2, 4, 5]))
    out = (a.sum(0) * b.sum(0)).sum()
    out.backward()
    return [out, emb.weight.grad, emb.weight]


@case("embedding_bag max_norm called twice in one graph")
def _(L):
    bag = _module(L, lambda nn: nn.EmbeddingBag(6, 3, max_norm=1.0, mode="sum"))
    with L.no_grad():
        bag.weight.mul_(4.0)
    a = bag(_ints(L, [[1, 2]]))
    b = bag(_ints(L, [[2, 4, 5]]))
    out = (a * b).sum()
    out.backward()
    return [out, bag.weight.grad, bag.weight]



@case("legacy size_average / reduce arguments")
def _(L):
    out = []
    for kw in ({"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = L.nn.MSELoss(**kw)
            nll = L.nn.NLLLoss(**kw)
        out.append([m.reduction, nll.reduction, m(_x(L, (2, 3)), _x(L, (2, 3), seed=3)),
                    [str(w.message) for w in caught]])
    return out



@case("hardtanh's deprecated min_value / max_value")
def _(L):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = L.nn.Hardtanh(min_value=-0.3, max_value=0.4)
    return [repr(m), m(_x(L, (5,))), [(w.category.__name__, str(w.message)) for w in caught]]


# float32 end to end: modules made with dtype=float32, their outputs, gradients and buffers in float32
def _f32(L, make, *shapes, call=None, train=True):
    m = make(L.nn).to(L.float32)
    rng = np.random.default_rng(1)
    with L.no_grad():
        for _, p in m.named_parameters():
            p.copy_(L.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)), dtype=L.float32))
    m.train(train)
    xs = [L.tensor(_values(s, i + 2), dtype=L.float32, requires_grad=True) for i, s in enumerate(shapes)]
    out = (call or (lambda m, *xs: m(*xs)))(m, *xs)
    first = out[0] if isinstance(out, tuple) else out
    (first * L.tensor(_values(tuple(first.shape), 7), dtype=L.float32)).sum().backward()
    tensors = [first, *[x.grad for x in xs], *[p.grad for p in m.parameters()], *m.buffers()]
    return [[str(t.dtype).replace("torch.", "") for t in tensors], tensors]


_F32 = {
    "conv2d": (lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 4, 4)),
    "conv_transpose1d": (lambda nn: nn.ConvTranspose1d(2, 3, 3, stride=2), (2, 2, 4)),
    "batchnorm2d": (lambda nn: nn.BatchNorm2d(2), (3, 2, 2, 2)),
    "layernorm": (lambda nn: nn.LayerNorm(4), (3, 4)),
    "groupnorm": (lambda nn: nn.GroupNorm(2, 4), (3, 4, 2)),
    "multihead attention": (lambda nn: nn.MultiheadAttention(_E, _H), (4, 2, _E), (5, 2, _E), (5, 2, _E)),
    "encoder layer": (_enc(), (5, 2, _E)),
    "bilinear": (lambda nn: nn.Bilinear(3, 2, 4), (5, 3), (5, 2)),
}
for _name, (_make, *_shapes) in _F32.items():
    case(f"float32 {_name}", rtol=1e-4, atol=1e-6)(lambda L, m=_make, s=_shapes: _f32(L, m, *s))


@case("float32 cross_entropy with label smoothing, weight", rtol=1e-5, atol=1e-6)
def _(L):
    x = L.tensor(_values((4, 3), 1), dtype=L.float32, requires_grad=True)
    w = L.tensor([0.5, 1.0, 2.0], dtype=L.float32)
    out = L.nn.functional.cross_entropy(x, _ints(L, [0, 2, 1, 2]), weight=w, label_smoothing=0.1)
    out.backward()
    return [str(out.dtype), out, x.grad]


@case("float32 embedding max_norm", rtol=1e-5, atol=1e-6)
def _(L):
    m = L.nn.Embedding(5, 3, max_norm=0.5).to(L.float32)
    with L.no_grad():
        m.weight.copy_(L.tensor(_values((5, 3), 1) * 3, dtype=L.float32))
    out = m(_ints(L, [1, 1, 4]))
    out.sum().backward()
    return [str(out.dtype), out, m.weight, m.weight.grad]



# losses at ties and on empty batches
def _tie_loss(L, cls, **kw):
    x = L.tensor([0.5, -0.2, 1.0, 0.0], dtype=L.float64, requires_grad=True)
    y = L.tensor([0.5, 0.3, 1.0, 0.0], dtype=L.float64, requires_grad=True)
    out = getattr(L.nn, cls)(**kw)(x, y)
    out.backward()
    return [out, x.grad, y.grad]


for _cls, _kw in (("L1Loss", {}), ("SmoothL1Loss", {"beta": 0.0}), ("SmoothL1Loss", {"beta": 0.7}),
                  ("HuberLoss", {"delta": 0.7}), ("MSELoss", {})):
    case(f"{_cls} {_kw} at ties")(lambda L, c=_cls, k=_kw: _tie_loss(L, c, **k))


def _empty_loss(L, cls, x_shape, target, **kw):
    x = _x(L, x_shape)
    out = getattr(L.nn, cls)(**kw)(x, target(L))
    return [out, str(out.dtype).replace("torch.", "")]


_EMPTY = {
    "cross_entropy": ("CrossEntropyLoss", (0, 3), lambda L: _ints(L, np.zeros(0, np.int64))),
    "nll sum": ("NLLLoss", (0, 3), lambda L: _ints(L, np.zeros(0, np.int64)), {"reduction": "sum"}),
    "mse": ("MSELoss", (0, 2), lambda L: L.zeros(0, 2, dtype=L.float64)),
    "l1 none": ("L1Loss", (0,), lambda L: L.zeros(0, dtype=L.float64), {"reduction": "none"}),
    "bce_with_logits": ("BCEWithLogitsLoss", (0, 2), lambda L: L.zeros(0, 2, dtype=L.float64)),
    "kl_div batchmean": ("KLDivLoss", (0, 2), lambda L: L.zeros(0, 2, dtype=L.float64), {"reduction": "batchmean"}),
}
for _name, (_cls, _shape, _target, *_kw) in _EMPTY.items():
    case(f"empty batch {_name}")(
        lambda L, c=_cls, s=_shape, t=_target, k=(_kw or [{}])[0]: _empty_loss(L, c, s, t, **k))



# constructor argument errors
_BAD_ARGS = {
    "conv2d kernel of three values": lambda nn: nn.Conv2d(2, 2, (3, 3, 3))(L_INPUT[nn](1, 2, 5, 5)),
    "conv2d stride 0": lambda nn: nn.Conv2d(2, 2, 3, stride=0)(L_INPUT[nn](1, 2, 5, 5)),
    "conv1d dilation 0": lambda nn: nn.Conv1d(2, 2, 3, dilation=0)(L_INPUT[nn](1, 2, 5)),
    "conv_transpose2d stride 0": lambda nn: nn.ConvTranspose2d(2, 2, 3, stride=0)(L_INPUT[nn](1, 2, 5, 5)),
    "conv_transpose2d negative padding": lambda nn: nn.ConvTranspose2d(2, 2, 3, padding=-1)(L_INPUT[nn](1, 2, 5, 5)),
    "conv_transpose1d negative output_padding": lambda nn: nn.functional.conv_transpose1d(
        L_INPUT[nn](1, 2, 5), L_INPUT[nn](2, 2, 3), output_padding=-1),
    "conv_transpose2d dilation 0": lambda nn: nn.ConvTranspose2d(2, 2, 3, dilation=0)(L_INPUT[nn](1, 2, 5, 5)),
    "unfold stride 0": lambda nn: nn.Unfold(3, stride=0)(L_INPUT[nn](1, 2, 5, 5)),
    "unfold negative padding": lambda nn: nn.Unfold(3, padding=-1)(L_INPUT[nn](1, 2, 5, 5)),
    "unfold kernel 0": lambda nn: nn.Unfold(0)(L_INPUT[nn](1, 2, 5, 5)),
    "conv2d negative padding": lambda nn: nn.Conv2d(2, 2, 3, padding=-1)(L_INPUT[nn](1, 2, 5, 5)),
    "conv2d groups 0": lambda nn: nn.Conv2d(2, 2, 3, groups=0),
    "conv2d out_channels not divisible by groups": lambda nn: nn.Conv2d(2, 3, 3, groups=2),
    "conv1d padding tuple of two": lambda nn: nn.Conv1d(2, 2, 3, padding=(1, 1))(L_INPUT[nn](1, 2, 5)),
    "conv_transpose2d output_padding 2 values on 3-d": lambda nn: nn.ConvTranspose3d(2, 2, 3, output_padding=(1, 1)),
    "batchnorm negative features": lambda nn: nn.BatchNorm1d(-1),
    "layernorm empty shape": lambda nn: nn.LayerNorm([])(L_INPUT[nn](2, 3)),
    "rms_norm empty shape": lambda nn: nn.functional.rms_norm(L_INPUT[nn](2, 3), []),
    "groupnorm zero groups": lambda nn: nn.GroupNorm(0, 4),
    "embedding negative size": lambda nn: nn.Embedding(-1, 3),
    "embedding padding_idx below -num": lambda nn: nn.Embedding(4, 3, padding_idx=-5),
    "mha negative dropout": lambda nn: nn.MultiheadAttention(_E, _H, dropout=-0.1),
    "transformer layer bad activation string": lambda nn: nn.TransformerDecoderLayer(_E, _H, activation="swish"),
    "upsample bad mode": lambda nn: nn.Upsample(scale_factor=2, mode="cubic")(L_INPUT[nn](1, 1, 3, 3)),
    "pixel_shuffle 2-d input": lambda nn: nn.PixelShuffle(2)(L_INPUT[nn](4, 4)),
    "linear negative out": lambda nn: nn.Linear(3, -2),
    "huber delta 0": lambda nn: nn.HuberLoss(delta=0.0)(L_INPUT[nn](3), L_INPUT[nn](3)),
    "ctc blank out of range": lambda nn: nn.CTCLoss(blank=5)(
        L_INPUT[nn](4, 2, 3).log_softmax(2), L_INPUT[nn](2, 2).long(), (4, 4), (2, 2)),
}
# (zeros of each library's default dtype, that of its modules' parameters)
L_INPUT = {torch.nn: lambda *s: torch.zeros(*s), ad.nn: lambda *s: ad.zeros(*s)}
for _name, _fn in _BAD_ARGS.items():
    case(_name)(lambda L, f=_fn: f(L.nn))



# in-place modules against saved tensors
@case("sigmoid then ReLU(inplace): sigmoid's saved output modified")
def _(L):
    x = _x(L, (3, 4))
    return _backward(L, L.nn.Sequential(L.nn.Sigmoid(), L.nn.ReLU(inplace=True))(x))


@case("tanh then Hardtanh(inplace), then the tanh output reused")
def _(L):
    x = _x(L, (3, 4))
    t = x.tanh()
    return _backward(L, L.nn.Hardtanh(-0.5, 0.5, inplace=True)(t * 1.0) + t)


@case("linear then LeakyReLU(inplace) in a Sequential")
def _(L):
    m = _module(L, lambda nn: nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.1, inplace=True), nn.Linear(3, 2)))
    x = _x(L, (5, 4))
    _backward(L, m(x))
    return _grads(m, x)


@case("embedding max_norm renorm after the weight was used")
def _(L):
    emb = _module(L, lambda nn: nn.Embedding(6, 3, max_norm=1.0))
    with L.no_grad():
        emb.weight.mul_(4.0)
    logits = _x(L, (2, 3)) @ emb.weight.T
    out = emb(_ints(L, [1, 2]))
    return _backward(L, logits.sum() + out.sum())


@case("embedding max_norm with tied output weights")
def _(L):
    emb = _module(L, lambda nn: nn.Embedding(6, 3, max_norm=1.0))
    with L.no_grad():
        emb.weight.mul_(4.0)
    out = emb(_ints(L, [[1, 2], [2, 5]]))
    logits = out @ emb.weight.T
    _backward(L, logits)
    return [logits, emb.weight.grad, emb.weight]



@case("dropout p=1 in training")
def _(L):
    x = _x(L, (3, 4))
    return [_backward(L, L.nn.Dropout(1.0)(x)), x.grad]


@case("dropout2d on a 3-d input warns")
def _(L):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        L.nn.Dropout2d(0.5).eval()(_x(L, (2, 3, 4)))
        L.nn.Dropout1d(0.5).eval()(_x(L, (3, 4)))
        L.nn.Dropout3d(0.5).eval()(_x(L, (2, 3, 4, 4)))
    return [str(w.message)[:80] for w in caught]


@case("dropout1d on a 4-d input")
def _(L):
    return L.nn.Dropout1d(0.5)(_x(L, (2, 3, 4, 4)))


@case("alpha_dropout p=1")
def _(L):
    x = _x(L, (3, 4))
    return [_backward(L, L.nn.AlphaDropout(1.0)(x)), x.grad]



@case("mha unbatched, need_weights=False, batch_first")
def _(L):
    return _layer(L, _mha(batch_first=True), (4, _E), (5, _E), (5, _E),
                  call=lambda m, q, k, v: m(q, k, v, need_weights=False))


@case("mha unbatched with a 3-d attn_mask per head")
def _(L):
    return _layer(L, _mha(), (4, _E), (5, _E), (5, _E),
                  call=lambda m, q, k, v: m(q, k, v, attn_mask=_mask(L, "float", (_H, 4, 5)),
                                            average_attn_weights=False))


@case("mha key and value lengths differ")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    return m(_x(L, (4, 3, _E)), _x(L, (5, 3, _E)), _x(L, (6, 3, _E)))


@case("mha kdim given, key of the wrong width")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H, kdim=3, vdim=3).double()
    return m(_x(L, (4, 3, _E)), _x(L, (5, 3, 4)), _x(L, (5, 3, 3)))


@case("mha 3-d attn_mask of the wrong batch")
def _(L):
    m = L.nn.MultiheadAttention(_E, _H).double()
    x = _x(L, (4, 3, _E))
    return m(x, x, x, attn_mask=_mask(L, "bool", (2, 4, 4)))


@case("transformer unbatched src with batched tgt")
def _(L):
    m = L.nn.Transformer(_E, _H, 1, 1, 12, 0.0).double()
    return m(_x(L, (5, _E)), _x(L, (4, 2, _E)))


@case("decoder layer, unbatched tgt with batched memory")
def _(L):
    return _module(L, _dec())(_x(L, (4, _E)), _x(L, (5, 2, _E)))


@case("decoder stack memory_is_causal with memory_mask")
def _(L):
    def make(nn):
        return nn.TransformerDecoder(nn.TransformerDecoderLayer(_E, _H, 12, 0.0), 1)

    return _layer(L, make, (4, 2, _E), (4, 2, _E), call=lambda m, t, s: m(
        t, s, memory_mask=_mask(L, "causal", (4, 4)), memory_is_causal=True, tgt_mask=_mask(L, "causal", (4, 4))))



# default init distributions: per parameter, its shape, its kind (constant, or uniform / normal by the kurtosis:
# 1.8 / 3), whether it is centred (|mean| below 4 standard errors) and its std (to 15%); buffers exactly
def _init_stats(L, make):
    m = make(L.nn)
    out = {}
    for name, p in m.named_parameters():
        w = np.asarray(p.detach().numpy(), dtype=np.float64).ravel()
        std = float(w.std())
        if not std:
            out[name] = [tuple(p.shape), "constant", float(w[0])]
            continue
        kurtosis = float(np.mean((w - w.mean()) ** 4)) / std**4
        centred = abs(float(w.mean())) < 4 * std / math.sqrt(w.size)
        out[name] = [tuple(p.shape), "uniform" if kurtosis < 2.4 else "normal", centred, std]
    return [out, dict(m.named_buffers())]


_INITS = {
    "linear": lambda nn: nn.Linear(256, 300),
    "conv2d": lambda nn: nn.Conv2d(16, 256, 3),
    "conv_transpose2d groups": lambda nn: nn.ConvTranspose2d(16, 512, 3, groups=2),
    "bilinear": lambda nn: nn.Bilinear(20, 30, 256),
    "multihead attention with bias_kv": lambda nn: nn.MultiheadAttention(256, 4, add_bias_kv=True),
    "multihead attention kdim/vdim": lambda nn: nn.MultiheadAttention(256, 4, kdim=128, vdim=64),
    "encoder layer": lambda nn: nn.TransformerEncoderLayer(256, 4, 256),
    "transformer": lambda nn: nn.Transformer(128, 4, 1, 1, 256),
    "embedding": lambda nn: nn.Embedding(300, 256),
    "embedding_bag": lambda nn: nn.EmbeddingBag(300, 256),
    "norms": lambda nn: nn.ModuleList([nn.BatchNorm1d(300), nn.LayerNorm(300), nn.GroupNorm(3, 300),
                                       nn.InstanceNorm1d(300, affine=True), nn.RMSNorm(300)]),
    "prelu": lambda nn: nn.PReLU(300),
}
for _name, _make in _INITS.items():
    case(f"default init: {_name}", rtol=0.15)(lambda L, m=_make: _init_stats(L, m))


# ---------------------------------------------------------------------------------------------- the check
DELIBERATE = {
    "encoder stack eval under no_grad, GELU('tanh') module": "torch's fused inference path runs the exact gelu for "
    "any GELU module (its training path, and ad always, the tanh approximation that was asked for)",
    "encoder layer eval under no_grad, a sample with every key padded": "torch's fused inference kernel gives NaN "
    "there; its composite path (training, or with gradients) and ad give the output of attending to nothing",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity(name):
    differences = _check(name)
    if name in DELIBERATE:
        assert differences, f"{name} now agrees with torch: delete its DELIBERATE entry ({DELIBERATE[name]})"
    else:
        assert not differences, "\n".join(differences)


def test_deliberate_entries_name_cases():
    assert set(DELIBERATE) <= set(CASES)
