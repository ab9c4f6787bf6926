"""``F.embedding_bag``'s offsets against torch: decreasing offsets (torch bags each token after the last start at
or before it; sum and max follow), a last offset short of the input with ``include_last_offset`` (the last bag
still runs to the end), out-of-range offsets and indices (torch's errors), and the gradients of the weight and of
``per_sample_weights`` with padding and ``include_last_offset``, in float64."""

import numpy as np
import pytest

import ad
import ad.nn.functional as AF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

WEIGHT = np.random.default_rng(0).standard_normal((6, 3))
INPUT = np.array([0, 2, 4, 1, 3, 3, 5, 2])


def _run(F, L, offsets, psw=None, **kwargs):
    w = L.tensor(WEIGHT, requires_grad=True)
    p = None if psw is None else L.tensor(psw, requires_grad=True)
    out = F.embedding_bag(L.tensor(INPUT), w, L.tensor(offsets), per_sample_weights=p, **kwargs)
    g = np.arange(out.numel(), dtype=float).reshape(tuple(out.shape)) + 1.0
    (out * L.tensor(g)).sum().backward()
    return out.detach().numpy(), w.grad.numpy(), None if p is None else p.grad.numpy()


CASES = [
    ("sum_decreasing", [0, 5, 2], {"mode": "sum"}),
    ("max_decreasing", [0, 5, 2, 7], {"mode": "max"}),
    ("sum_last_offset_short", [0, 2, 5], {"mode": "sum", "include_last_offset": True}),
    ("mean_last_offset_short", [0, 3, 6], {"mode": "mean", "include_last_offset": True}),
    ("max_last_offset_short", [0, 3, 6], {"mode": "max", "include_last_offset": True}),
    ("sum_empty_bags", [0, 2, 2, 8], {"mode": "sum"}),
    ("mean_padding_last_offset", [0, 3, 3, 8], {"mode": "mean", "padding_idx": 3, "include_last_offset": True}),
    ("psw_padding_last_offset", [0, 2, 2, 7], {"mode": "sum", "padding_idx": 2, "include_last_offset": True,
                                               "psw": True}),
    ("psw_decreasing", [0, 6, 3], {"mode": "sum", "psw": True}),
]


@pytest.mark.parametrize("name,offsets,kwargs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, offsets, kwargs):
    kwargs = dict(kwargs)
    psw = np.linspace(0.5, 2.0, INPUT.size) if kwargs.pop("psw", False) else None
    ours = _run(AF, ad, offsets, psw, **kwargs)
    theirs = _run(TF, torch, offsets, psw, **kwargs)
    for a, t in zip(ours, theirs):
        if t is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, t, rtol=1e-12, atol=1e-12)


def test_errors_match_torch():
    w = np.ones((6, 3))
    cases = [
        (INPUT, [1, 3], "offsets\\[0\\] has to be 0"),
        (INPUT, [0, 9], "offsets\\[-1\\] can not be greater than input's length 8 but got offsets\\[-1\\] of 9"),
        (INPUT, [-1, 3], "offsets\\[0\\] has to be 0"),
    ]
    for inp, offsets, match in cases:
        for F, L in ((AF, ad), (TF, torch)):
            with pytest.raises(RuntimeError, match=match):
                F.embedding_bag(L.tensor(inp), L.tensor(w), L.tensor(offsets))
    # an index out of range: torch's float32 sum / mean kernel and its other kernels word it differently; ad
    # words it by mode, as torch does in its default float32
    for bad in (-1, 6):
        for mode in ("sum", "mean", "max"):
            if mode != "max":
                match = f"Index 1 of input takes value {bad} which is not in the valid range \\[0, 6\\)"
            else:
                match = f"Expected idx >= 0 && idx < num_embeddings but found idx to be {bad}"
            with pytest.raises(RuntimeError, match=match):
                TF.embedding_bag(torch.tensor([0, bad]), torch.ones(6, 3), torch.tensor([0]), mode=mode)
            for dtype in (ad.float32, ad.float64):
                with pytest.raises(RuntimeError, match=match):
                    AF.embedding_bag(ad.tensor([0, bad]), ad.ones(6, 3, dtype=dtype), ad.tensor([0]), mode=mode)


def test_single_offset_with_include_last_offset_has_no_bag():
    # torch gives (0, D) on an empty input (and crashes on a non-empty one); ad gives (0, D) for both
    empty = TF.embedding_bag(torch.tensor([], dtype=torch.long), torch.ones(6, 3), torch.tensor([0]),
                             include_last_offset=True)
    assert tuple(empty.shape) == (0, 3)
    for mode in ("sum", "mean", "max"):
        for inp in (np.zeros(0, np.int64), INPUT):
            out = AF.embedding_bag(ad.tensor(inp), ad.tensor(WEIGHT), ad.tensor([0]), mode=mode,
                                   include_last_offset=True)
            assert out.shape == (0, 3)


# torch's mean divisor is the bag's extent (the next offset less its own; the input's end for the last bag) less its
# padding tokens, at least 1: where the offsets decrease the extent is not the token count (0 or negative). Its
# backward divides by the negative extent unclamped, which torch's own gradcheck rejects; ad's gradient is the
# derivative of that forward. Max mode with decreasing offsets: torch's gradient also fails its gradcheck (an
# empty bag's cotangent reaches row 0), ad's passes.
DECREASING = [
    ([0, 4, 2], {}, "mean"), ([0, 6, 1, 7], {}, "mean"), ([0, 6, 1, 7], {"include_last_offset": True}, "mean"),
    ([0, 5, 3, 3], {"include_last_offset": True}, "mean"), ([0, 6, 1, 7], {"padding_idx": 3}, "mean"),
    ([0, 5, 3, 3], {}, "max"), ([0, 3, 3, 1], {}, "max"),
]


@pytest.mark.parametrize("offsets,kwargs,mode", DECREASING)
def test_decreasing_offsets_forward_as_torch_gradient_of_the_forward(offsets, kwargs, mode):
    def call(F, L, w):
        return F.embedding_bag(L.tensor(INPUT), w, L.tensor(offsets), mode=mode, **kwargs)

    w = ad.tensor(WEIGHT, requires_grad=True)
    ours = call(AF, ad, w)
    theirs = call(TF, torch, torch.tensor(WEIGHT))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=1e-13, atol=0)
    assert not np.signbit(ours.detach().numpy()[theirs.numpy() == 0]).any()  # an empty bag is +0.0, as torch's
    assert ad.autograd.gradcheck(lambda w_: call(AF, ad, w_), (w,))
    if mode == "mean":  # the analytic gradient: each token's row gets its bag's cotangent over the divisor
        g = np.arange(ours.numel(), dtype=float).reshape(tuple(ours.shape)) + 1.0
        (ours * ad.tensor(g)).sum().backward()
        starts = np.array(offsets[:-1] if kwargs.get("include_last_offset") else offsets)
        bag_of = np.cumsum(np.bincount(starts, minlength=INPUT.size + 1)[:INPUT.size]) - 1
        keep = INPUT != kwargs.get("padding_idx", -1)
        extents = np.diff(np.append(starts, INPUT.size))
        padding = np.bincount(bag_of[~keep], minlength=starts.size)
        divisor = np.maximum(extents - padding, 1)
        expected = np.zeros_like(WEIGHT)
        np.add.at(expected, INPUT[keep], g[bag_of[keep]] / divisor[bag_of[keep], None])
        np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-13)
