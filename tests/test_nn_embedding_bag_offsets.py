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
