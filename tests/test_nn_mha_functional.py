"""``F.multi_head_attention_forward`` against torch's (float64 values and gradients of every input and weight):
batched and unbatched, stacked and separate projection weights, bias key/value, zero attention, boolean and float
masks, static keys/values, weights averaged or per head; and ``nn.MultiheadAttention``'s errors (which now come
from the functional form) with torch's classes."""

import numpy as np
import pytest

import ad
import ad.nn.functional as AF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

E, H, L, S, N = 4, 2, 3, 5, 2
TOL = {"rtol": 1e-9, "atol": 1e-11}


def _pair(x, grad=True):
    if x is None:
        return None, None
    if isinstance(x, np.ndarray) and x.dtype == bool:
        return torch.tensor(x), ad.tensor(x)
    return torch.tensor(x, requires_grad=grad), ad.tensor(x, requires_grad=grad)


CASES = {
    "plain": {},
    "unbatched": {"batched": False},
    "separate_kv_dims": {"kdim": 3, "vdim": 6},
    "bias_kv_zero_attn": {"bias_kv": True, "add_zero_attn": True},
    "bool_masks": {"attn_mask": "bool2d", "key_padding_mask": "bool"},
    "float_3d_mask_per_head": {"attn_mask": "float3d", "average_attn_weights": False},
    "no_weights_masks": {"need_weights": False, "attn_mask": "bool2d", "key_padding_mask": "float"},
    "no_weights_causal_hint": {"need_weights": False, "attn_mask": "causal", "is_causal": True, "self": True},
    "static_kv": {"static": True},
    "unbatched_masks_bias": {"batched": False, "bias_kv": True, "attn_mask": "bool2d", "key_padding_mask": "bool"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    c = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case))
    batched = c.get("batched", True)
    kdim, vdim = c.get("kdim", E), c.get("vdim", E)
    src = L if c.get("self") else S
    shape = (lambda n, d: (n, N, d)) if batched else (lambda n, d: (n, d))
    arrays = {
        "query": rng.standard_normal(shape(L, E)),
        "key": rng.standard_normal(shape(src, kdim)),
        "value": rng.standard_normal(shape(src, vdim)),
        "in_proj_bias": rng.standard_normal(3 * E),
        "out_proj_weight": rng.standard_normal((E, E)) * 0.5,
        "out_proj_bias": rng.standard_normal(E),
    }
    separate = kdim != E or vdim != E
    if separate:
        arrays.update(q_proj_weight=rng.standard_normal((E, E)) * 0.5,
                      k_proj_weight=rng.standard_normal((E, kdim)) * 0.5,
                      v_proj_weight=rng.standard_normal((E, vdim)) * 0.5)
    else:
        arrays["in_proj_weight"] = rng.standard_normal((3 * E, E)) * 0.5
    if c.get("bias_kv"):
        arrays.update(bias_k=rng.standard_normal((1, 1, E)), bias_v=rng.standard_normal((1, 1, E)))
    bsz = N if batched else 1
    if c.get("static"):
        arrays.update(static_k=rng.standard_normal((bsz * H, S, E // H)),
                      static_v=rng.standard_normal((bsz * H, S, E // H)))
    masks = {}
    kind = c.get("attn_mask")
    if kind == "bool2d":
        m = rng.random((L, src)) < 0.3
        m[:, 0] = False  # every query keeps a key
        masks["attn_mask"] = m
    elif kind == "float3d":
        masks["attn_mask"] = rng.standard_normal((bsz * H, L, src))
    elif kind == "causal":
        masks["attn_mask"] = np.triu(np.ones((L, src), bool), 1)
    kpm = c.get("key_padding_mask")
    if kpm:
        m = rng.random((bsz, src)) < 0.3
        m[:, 0] = False
        m = m if batched else m[0]
        masks["key_padding_mask"] = m if kpm == "bool" else np.where(m, -1e9, 0.0)
    t_args, a_args = {}, {}
    for name, x in arrays.items():
        t_args[name], a_args[name] = _pair(x)
    for name, x in masks.items():
        t_args[name], a_args[name] = _pair(x, grad=False)
    flags = {
        "add_zero_attn": c.get("add_zero_attn", False), "dropout_p": 0.0, "training": True,
        "need_weights": c.get("need_weights", True), "use_separate_proj_weight": separate,
        "average_attn_weights": c.get("average_attn_weights", True), "is_causal": c.get("is_causal", False),
    }
    positional = ["query", "key", "value"]
    late = ["in_proj_weight", "in_proj_bias", "bias_k", "bias_v"]

    def call(F, args):
        return F.multi_head_attention_forward(
            *(args[k] for k in positional), E, H, *(args.get(k) for k in late), flags["add_zero_attn"],
            flags["dropout_p"], args["out_proj_weight"], args["out_proj_bias"], training=flags["training"],
            key_padding_mask=args.get("key_padding_mask"), need_weights=flags["need_weights"],
            attn_mask=args.get("attn_mask"), use_separate_proj_weight=separate,
            q_proj_weight=args.get("q_proj_weight"), k_proj_weight=args.get("k_proj_weight"),
            v_proj_weight=args.get("v_proj_weight"), static_k=args.get("static_k"), static_v=args.get("static_v"),
            average_attn_weights=flags["average_attn_weights"], is_causal=flags["is_causal"],
        )

    t_out, t_w = call(TF, t_args)
    a_out, a_w = call(AF, a_args)
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), **TOL)
    if t_w is None:
        assert a_w is None
    else:
        np.testing.assert_allclose(a_w.detach().numpy(), t_w.detach().numpy(), **TOL)
    g = rng.standard_normal(tuple(t_out.shape))
    loss_t = (t_out * torch.tensor(g)).sum() + (0 if t_w is None else t_w.pow(2).sum())
    loss_a = (a_out * ad.tensor(g)).sum() + (0 if a_w is None else a_w.pow(2).sum())
    loss_t.backward()
    loss_a.backward()
    for name in arrays:
        tg, ag = t_args[name].grad, a_args[name].grad
        if tg is None:
            assert ag is None or not np.any(ag.numpy()), name
            continue
        np.testing.assert_allclose(ag.numpy(), tg.numpy(), **TOL, err_msg=name)


def test_module_calls_the_functional_form_and_errors_match_torch():
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(E, H, kdim=3, vdim=5, batch_first=True).double()
    a = ad.nn.MultiheadAttention(E, H, kdim=3, vdim=5, batch_first=True, dtype=ad.float64)
    a.load_state_dict({k: ad.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((N, L, E)), rng.standard_normal((N, S, 3)), rng.standard_normal((N, S, 5))
    t_out, t_w = t(torch.tensor(q), torch.tensor(k), torch.tensor(v))
    a_out, a_w = a(ad.tensor(q), ad.tensor(k), ad.tensor(v))
    np.testing.assert_allclose(a_out.detach().numpy(), t_out.detach().numpy(), **TOL)
    np.testing.assert_allclose(a_w.detach().numpy(), t_w.detach().numpy(), **TOL)

    def both(fn_t, fn_a, exc, match):
        with pytest.raises(exc, match=match):
            fn_t()
        with pytest.raises(exc, match=match):
            fn_a()

    T, A = torch.tensor, ad.tensor
    # a key / value of the wrong width: torch's AssertionError naming the weight's expected shape
    both(lambda: t(T(q), T(rng.standard_normal((N, S, 4))), T(v)),
         lambda: a(A(q), A(rng.standard_normal((N, S, 4))), A(v)), AssertionError,
         r"expecting key weights shape of \(4, 4\)")
    both(lambda: t(T(q), T(k), T(rng.standard_normal((N, S, 4)))),
         lambda: a(A(q), A(k), A(rng.standard_normal((N, S, 4)))), AssertionError,
         r"expecting value weights shape of \(4, 4\)")
    both(lambda: t(T(q), T(k), T(rng.standard_normal((N, 2, 5)))),
         lambda: a(A(q), A(k), A(rng.standard_normal((N, 2, 5)))), AssertionError, "sequence and batch dims")
    both(lambda: t(T(rng.standard_normal((N, L, 5))), T(k), T(v)),
         lambda: a(A(rng.standard_normal((N, L, 5))), A(k), A(v)), AssertionError,
         "was expecting embedding dimension of 4, but got 5")
    t2 = torch.nn.MultiheadAttention(E, H).double()
    a2 = ad.nn.MultiheadAttention(E, H, dtype=ad.float64)
    x = rng.standard_normal((L, N, E))
    both(lambda: t2(T(x), T(x), T(x), is_causal=True), lambda: a2(A(x), A(x), A(x), is_causal=True),
         RuntimeError, "Need attn_mask if specifying the is_causal hint")
    both(lambda: t2(T(x), T(x), T(x), attn_mask=torch.zeros(2, 2, dtype=torch.float64)),
         lambda: a2(A(x), A(x), A(x), attn_mask=ad.zeros(2, 2, dtype=ad.float64)), RuntimeError,
         "The shape of the 2D attn_mask is")
    both(lambda: t2(T(x), T(x), T(x), attn_mask=torch.zeros(L, L, dtype=torch.int64)),
         lambda: a2(A(x), A(x), A(x), attn_mask=ad.zeros(L, L, dtype=ad.int64)), AssertionError,
         "only bool and floating types of attn_mask are supported")
    both(lambda: t2(T(x), T(x), T(x), key_padding_mask=torch.zeros(N, L + 1, dtype=torch.bool)),
         lambda: a2(A(x), A(x), A(x), key_padding_mask=ad.zeros(N, L + 1, dtype=ad.bool)), AssertionError,
         r"Expected key_padded_mask.shape\[1\] to be 3, but got 4")
    both(lambda: t2(T(x[..., None]), T(x), T(x)), lambda: a2(A(x[..., None]), A(x), A(x)), AssertionError,
         "query should be unbatched 2D or batched 3D tensor but received 4-D")
