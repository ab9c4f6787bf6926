"""Session 15's surface on CUDA tensors (the simulator; unchanged on a GPU), against the same calls on the CPU.

The op table's new functionals (interpolate modes, grid_sample, embedding_bag, ctc_loss, lp_pool, max_unpool,
fractional_max_pool, pdist, channel_shuffle, multilabel losses) run on CUDA in ``test_cuda_tensors.py``
(``CUDA_CASES``). This file holds what those cases do not reach, each a row of a table run on both devices:

- ``NON_DIFFERENTIABLE``: the predicates (device comparisons, no host copy), argmax/argmin, nonzero, where(cond),
  unique, searchsorted, one_hot, floor_divide, isreal, histogram: equal values, results on the CUDA device.
  Each of these raised (a numpy call on a device array) or returned a CPU tensor before; the distributions'
  mode / log_prob and the masks of ``nn`` reach them.
- ``MODULES``: MultiheadAttention (masks, bias_kv, zero_attn, dropout), the Transformer layers and stacks,
  AdaptiveLogSoftmaxWithLoss, SyncBatchNorm / BatchNorm / InstanceNorm in training (running statistics), dropout
  in training: outputs, buffers, and gradients of inputs and parameters equal the CPU's.
- Distributions whose mode / log_prob / sample take argmax or a finite mask, and cross-family KL pairs.
- CyclicLR over an optimizer of CUDA parameters.

Sizes stay tiny: the simulator costs about 75 us per simulated thread.
"""

import math

import numpy as np
import pytest

import ad
import ad.distributions as D
import ad.nn as nn
import ad.nn.functional as F

if not ad.cuda.is_available():  # pragma: no cover - the simulator is always available
    pytest.skip("no CUDA device or simulator", allow_module_level=True)

RNG = np.random.default_rng(7)


def _host(t):
    return t.detach().cpu().numpy()


def _tensors(out):
    """The tensors of an op's result (a tensor, or a tuple / named tuple / list of them, nested once)."""
    if isinstance(out, ad.Tensor):
        return [out]
    flat = []
    for o in out:
        flat.extend(_tensors(o) if isinstance(o, (tuple, list)) else [o] if isinstance(o, ad.Tensor) else [])
    return flat


def _assert_same(cpu, cuda, what):
    assert len(cpu) == len(cuda), what
    for a, b in zip(cpu, cuda):
        assert (a is None) == (b is None), what
        if a is not None:
            assert b.is_cuda, f"{what}: a result on {b.device}"
            assert a.dtype == b.dtype, what
            np.testing.assert_allclose(_host(b), _host(a), rtol=1e-10, atol=1e-12, err_msg=what)


# --- non-differentiable ops: values and device ------------------------------------------------------------------

X = np.array([[0.5, -1.0, np.nan, 2.0], [np.inf, 2.0, -0.0, -np.inf], [1.0, -3.0, 0.25, 2.0]])
Y = np.array([[0.5, -2.0, 1.0, 3.0], [3.0, 2.0, -0.5, 0.0], [1.0, -3.0, 0.25, 2.0]])
NON_DIFFERENTIABLE = {
    "isnan": lambda x, y: ad.isnan(x),
    "isinf": lambda x, y: ad.isinf(x),
    "isfinite": lambda x, y: ad.isfinite(x),
    "isfinite_float32_int": lambda x, y: (ad.isfinite(x.float()), ad.isfinite(y.long()), ad.isinf(y.long())),
    "signbit": lambda x, y: (ad.signbit(x), ad.signbit(y.long())),
    "isposinf_isneginf": lambda x, y: (ad.isposinf(x), ad.isneginf(x)),
    "masked_fill_isnan": lambda x, y: x.masked_fill(ad.isnan(x), 0.0),
    "argmax_argmin": lambda x, y: (ad.argmax(y), ad.argmax(y, 1), ad.argmin(y, 0, keepdim=True), y.argmax(-1)),
    "nonzero": lambda x, y: (ad.nonzero(y > 0), ad.nonzero(y > 0, as_tuple=True), ad.argwhere(y < 0)),
    "where_condition": lambda x, y: ad.where(y > 0),
    "unique": lambda x, y: (ad.unique(y, return_inverse=True, return_counts=True), ad.unique(y, dim=0)),
    "unique_consecutive": lambda x, y: ad.unique_consecutive(y.flatten(), return_counts=True),
    "searchsorted_bucketize": lambda x, y: (
        ad.searchsorted(ad.sort(y.flatten())[0], y, right=True),
        ad.bucketize(y, ad.tensor([-1.0, 0.5, 2.0], device=y.device)),
    ),
    "one_hot": lambda x, y: F.one_hot((y.abs() * 2).long().flatten(), 7),
    "floor_divide": lambda x, y: (ad.floor_divide(y, 0.3), y.long() // 2, ad.div(y.long(), 2, rounding_mode="trunc")),
    "isreal": lambda x, y: ad.isreal(y),
    "histogram": lambda x, y: (ad.histogram(y, bins=3), ad.histogramdd(y[:, :2], bins=2)),
    # integer tensors stay integer, as on the CPU (they became float64, or raised)
    "integer_arithmetic": lambda x, y: (
        (i := y.long()) + 1, i * 3, 5 - i, -i, ad.abs(i), ad.square(i), ad.relu(i), ad.sign(i), ad.floor(i),
        ad.round(i * 7, decimals=-1), ad.round(i), i.clone(), (y > 0) + 1, y.int() * 2,
    ),
}


@pytest.mark.parametrize("name", sorted(NON_DIFFERENTIABLE))
def test_non_differentiable_op_on_cuda(name):
    fn = NON_DIFFERENTIABLE[name]
    cpu = _tensors(fn(ad.tensor(X), ad.tensor(Y)))
    cuda = _tensors(fn(ad.tensor(X, device="cuda"), ad.tensor(Y, device="cuda")))
    _assert_same(cpu, cuda, name)


def test_integer_division_by_zero_raises_on_cuda():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        ad.floor_divide(ad.tensor([3, 4], device="cuda"), ad.tensor([1, 0], device="cuda"))


# --- in-place index ops on CUDA tensors outside the graph (each raised: numpy's store into a device array) -----

INPLACE = {
    "scatter_": lambda x, T: x.scatter_(0, T([[1, 0, 2], [0, 1, 1]]), T(np.ones((2, 3)), dtype=x.dtype)),
    "scatter_value": lambda x, T: x.scatter_(1, T([[1], [0], [2]]), 2),
    "scatter_add_": lambda x, T: x.scatter_add_(0, T([[1, 0, 2]]), T(np.ones((1, 3)), dtype=x.dtype)),
    "scatter_reduce_": lambda x, T: x.scatter_reduce_(0, T([[1, 0, 2]]), T(np.full((1, 3), 5), dtype=x.dtype), "amax"),
    "index_add_": lambda x, T: x.index_add_(0, T([0, 2]), T(np.ones((2, 3)), dtype=x.dtype), alpha=2),
    "index_copy_": lambda x, T: x.index_copy_(0, T([0, 2]), T(np.full((2, 3), 7), dtype=x.dtype)),
    "index_fill_": lambda x, T: x.index_fill_(1, T([0, 2]), -1),
    "index_put_": lambda x, T: x.index_put_((T([0, 2]), T([1, 1])), T([5, 6], dtype=x.dtype), accumulate=True),
    "index_reduce_": lambda x, T: x.index_reduce_(0, T([0, 2]), T(np.full((2, 3), 2), dtype=x.dtype), "prod"),
    "masked_fill_": lambda x, T: x.masked_fill_(x > 3, 0),
    "masked_scatter_": lambda x, T: x.masked_scatter_(x > 3, T(np.arange(9), dtype=x.dtype)),
    "put_": lambda x, T: x.put_(T([0, 8]), T([9, 9], dtype=x.dtype)),
    "tril_triu_": lambda x, T: x.tril_().triu_(-1),
    "clone": lambda x, T: x.copy_(ad.clone(x[:, 1:]).sum(1, keepdim=True)),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_index_op_on_cuda(name):
    for dtype in (np.float64, np.int64):
        got = []
        for dev in ("cpu", "cuda"):
            x = ad.tensor(np.arange(9).reshape(3, 3).astype(dtype), device=dev)
            view = x[1:]  # shares x's storage: it must see the write
            assert INPLACE[name](x, lambda a, dev=dev, **kw: ad.tensor(a, device=dev, **kw)) is x
            got.append(([x, view], x._version))
        _assert_same(got[0][0], got[1][0], f"{name} ({np.dtype(dtype).name})")
        assert got[1][1] == got[0][1]


# --- functionals whose constants (masks, factors, draws) were made on the host ----------------------------------


def _embedding_max_norm(w):
    out = F.embedding(ad.tensor([[0, 2], [2, 1]], device=w.device), w, max_norm=1.0, norm_type=1.5)
    return out, w * 1.0  # the rows renormalized in place (outside the graph)


FUNCTIONALS = {
    "embedding_padding_idx": (lambda w: F.embedding(ad.tensor([0, 2, 2], device=w.device), w, padding_idx=2), (3, 2)),
    "embedding_scale_grad_by_freq": (
        lambda w: F.embedding(ad.tensor([0, 2, 2], device=w.device), w, scale_grad_by_freq=True), (3, 2)
    ),
    "embedding_max_norm": (_embedding_max_norm, (4, 2)),
    "rrelu_training": (lambda x: (ad.manual_seed(0), F.rrelu(x, training=True))[1], (2, 3)),
    "gumbel_softmax_hard": (lambda x: (ad.manual_seed(0), F.gumbel_softmax(x, tau=0.5, hard=True))[1], (2, 3)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONALS))
def test_functional_on_cuda_equals_cpu(name):
    fn, shape = FUNCTIONALS[name]
    a = np.linspace(-2.0, 2.5, int(np.prod(shape))).reshape(shape)
    got = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(a, device=dev, requires_grad=True)
        outs = _tensors(fn(x))
        loss = sum((o * ad.linspace(0.5, 1.5, o.numel(), dtype=o.dtype, device=dev).reshape(o.shape)).sum()
                   for o in outs)
        got.append(outs + list(ad.autograd.grad(loss, x)))
    _assert_same(*got, name)


# --- modules: outputs, buffers, gradients of inputs and parameters ---------------------------------------------

E = 4
SRC = RNG.standard_normal((3, 2, E))
TGT = RNG.standard_normal((2, 2, E))
CAUSAL = np.triu(np.full((3, 3), -np.inf), 1)
PADDING = np.array([[False, False, True], [False, False, False]])


# name -> (build, inputs (a tuple marks a constant), call(module, *inputs) or None, training)
MODULES = {
    "mha_masks_bias_kv_zero_attn": (
        lambda: nn.MultiheadAttention(E, 2, add_bias_kv=True, add_zero_attn=True),
        [SRC, SRC, SRC, (CAUSAL > 0,), (PADDING,)],
        lambda m, q, k, v, am, kp: m(q, k, v, attn_mask=am, key_padding_mask=kp, average_attn_weights=False),
        False,
    ),
    "mha_kdim_float_mask_dropout": (
        lambda: nn.MultiheadAttention(E, 2, dropout=0.3, kdim=3, vdim=5, batch_first=True),
        [RNG.standard_normal((2, 3, E)), RNG.standard_normal((2, 2, 3)), RNG.standard_normal((2, 2, 5)),
         RNG.standard_normal((4, 3, 2))],
        lambda m, q, k, v, am: m(q, k, v, attn_mask=am),
        True,
    ),
    "mha_unbatched_is_causal": (
        lambda: nn.MultiheadAttention(E, 1),
        [SRC[:, 0], SRC[:, 0], SRC[:, 0], (np.array([False, True, False]),)],
        lambda m, q, k, v, kp: m(q, k, v, key_padding_mask=kp, attn_mask=ad.tensor(CAUSAL, device=q.device),
                                 is_causal=True),
        False,
    ),
    "transformer_encoder_causal": (
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(2, 1, 2, 0.0, norm_first=True), 1,
                                      norm=nn.LayerNorm(2), enable_nested_tensor=False),
        [SRC[:, :1, :2], (CAUSAL,)],
        lambda m, x, mask: m(x, mask=mask),
        False,
    ),
    "transformer_dropout": (  # the decoder layer too
        lambda: nn.Transformer(2, 1, 1, 1, dim_feedforward=2, dropout=0.2),
        [SRC[:2, :1, :2], TGT[:, :1, :2]],
        lambda m, s, t: m(s, t, tgt_mask=nn.Transformer.generate_square_subsequent_mask(2, device=t.device,
                                                                                         dtype=t.dtype)),
        True,
    ),
    "adaptive_log_softmax": (
        lambda: nn.AdaptiveLogSoftmaxWithLoss(E, 6, cutoffs=[2, 4], div_value=2.0),
        [RNG.standard_normal((5, E)), (np.array([0, 1, 3, 5, 2]),)],
        lambda m, x, t: (*m(x, t), m.predict(x)),
        False,
    ),
    "sync_batch_norm_train": (lambda: nn.SyncBatchNorm(3), [RNG.standard_normal((2, 3, 2))], None, True),
    "batch_norm2d_train": (lambda: nn.BatchNorm2d(3, momentum=None), [RNG.standard_normal((2, 3, 2, 2))], None, True),
    "instance_norm_running_stats": (
        lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True),
        [RNG.standard_normal((2, 3, 4))],
        None,
        True,
    ),
    "dropouts_train": (
        lambda: nn.Sequential(nn.Dropout(0.3), nn.AlphaDropout(0.2), nn.Dropout2d(0.5)),
        [RNG.standard_normal((2, 3, 2, 2))],
        None,
        True,
    ),
}


def _run_module(name, dev):
    build, inputs, call, training = MODULES[name]
    ad.manual_seed(0)
    module = build().double().train(training).to(dev)
    xs = [ad.tensor(a[0], device=dev) if isinstance(a, tuple) else ad.tensor(a, device=dev, requires_grad=True)
          for a in inputs]
    ad.manual_seed(1)  # the same dropout masks on both devices
    outs = _tensors(call(module, *xs) if call else module(*xs))
    leaves = [x for x in xs if x.requires_grad] + list(module.parameters())
    loss = sum((o * ad.linspace(0.5, 1.5, o.numel(), dtype=o.dtype, device=dev).reshape(o.shape)).sum()
               for o in outs if o.requires_grad)
    grads = ad.autograd.grad(loss, leaves, allow_unused=True)
    return outs + list(module.buffers()), list(grads)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_on_cuda_equals_cpu(name):
    cpu_values, cpu_grads = _run_module(name, "cpu")
    cuda_values, cuda_grads = _run_module(name, "cuda")
    _assert_same(cpu_values, cuda_values, f"{name}: outputs and buffers")
    _assert_same(cpu_grads, cuda_grads, f"{name}: gradients")


# --- distributions: the methods that take argmax or a finite mask; cross-family KL -----------------------------

DISTRIBUTIONS = {
    "Beta": (lambda t: D.Beta(t([0.5, 2.0]), t([1.5, 0.7])), [0.2, 0.4]),
    "Dirichlet": (lambda t: D.Dirichlet(t([0.5, 2.0, 1.3])), [0.2, 0.3, 0.5]),
    "Categorical": (lambda t: D.Categorical(probs=t([[0.1, 0.5, 0.4], [0.3, 0.2, 0.5]])), [2.0, 0.0]),
    "OneHotCategoricalStraightThrough": (
        lambda t: D.OneHotCategoricalStraightThrough(logits=t([0.1, 0.5, -1.0])), [0.0, 1.0, 0.0]
    ),
    "Pareto_outside_support": (lambda t: D.Pareto(t([0.1, 0.3]), t([1.5, 2.7]), validate_args=False), [0.2, 0.2]),
}


def _distribution_values(name, dev):
    make, value = DISTRIBUTIONS[name]
    leaves = []

    def t(x):
        leaves.append(ad.tensor(np.asarray(x, dtype=np.float64), device=dev, requires_grad=True))
        return leaves[-1]

    d = make(t)
    log_prob = d.log_prob(ad.tensor(np.asarray(value, dtype=np.float64), device=dev))
    ad.manual_seed(3)
    sample = d.rsample((2,)) if d.has_rsample else d.sample((2,))
    finite = ad.where(ad.isfinite(log_prob), log_prob, ad.zeros_like(log_prob))
    total = finite.sum() + d.entropy().sum() + (sample.sum() if sample.requires_grad else 0.0)
    grads = ad.autograd.grad(total, leaves, allow_unused=True)
    return [d.mode, log_prob, sample, total], list(grads)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_distribution_methods_on_cuda_equal_cpu(name):
    (cpu_values, cpu_grads), (cuda_values, cuda_grads) = (_distribution_values(name, dev) for dev in ("cpu", "cuda"))
    for a, b in zip(cpu_values + cpu_grads, cuda_values + cuda_grads):
        assert b.is_cuda
        np.testing.assert_allclose(_host(b), _host(a), rtol=1e-10, atol=1e-12, equal_nan=True)


KL_PAIRS = [
    (lambda t: D.Beta(t([0.5, 2.0]), t([1.5, 0.7])), lambda t: D.Uniform(t([0.0, 0.0]), t([1.0, 1.0]))),
    (lambda t: D.Gamma(t([0.5, 2.0]), t([1.5, 0.7])), lambda t: D.Exponential(t([0.5, 2.0]))),
    (lambda t: D.Normal(t([0.1, -0.3]), t([0.5, 2.0])), lambda t: D.Gumbel(t([0.0, 0.2]), t([1.0, 0.7]))),
    (lambda t: D.Uniform(t([0.1, -0.3]), t([0.5, 2.0])), lambda t: D.Normal(t([0.0, 0.2]), t([1.0, 0.7]))),
]


@pytest.mark.parametrize("pair", range(len(KL_PAIRS)))
def test_cross_family_kl_on_cuda_equals_cpu(pair):
    got = []
    for dev in ("cpu", "cuda"):
        leaves = []

        def t(x, dev=dev, leaves=leaves):
            leaves.append(ad.tensor(np.asarray(x, dtype=np.float64), device=dev, requires_grad=True))
            return leaves[-1]

        p, q = (make(t) for make in KL_PAIRS[pair])
        kl = D.kl_divergence(p, q)
        got.append([kl, *ad.autograd.grad(kl.sum(), leaves)])
    for a, b in zip(*got):
        assert b.is_cuda
        np.testing.assert_allclose(_host(b), _host(a), rtol=1e-10, atol=1e-12)


# --- gradient clipping and parameter vectors on CUDA gradients (each read the device arrays with numpy) ----------


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clip_grad_on_cuda_equals_cpu(norm_type):
    got = []
    for dev in ("cpu", "cuda"):
        params = [ad.tensor(np.zeros(s), device=dev, requires_grad=True) for s in ((3,), (2, 2))]
        for p, g in zip(params, (np.array([0.3, -1.2, 0.8]), np.array([[2.0, -0.1], [0.4, 0.9]]))):
            p.grad = ad.tensor(g, device=dev)
        norm = nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
        nn.utils.clip_grad_value_(params, 0.3)
        nn.utils.clip_grads_with_norm_(params, 0.5, 0.9)
        nn.utils.vector_to_parameters(nn.utils.parameters_to_vector([p.grad for p in params]) * 3.0, params)
        got.append([norm, nn.utils.get_total_norm([p.grad for p in params], 3.0)] + [p.grad for p in params]
                   + [p.detach() for p in params])
    _assert_same(*got, "clipping")
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.get_total_norm([ad.tensor([math.inf], device="cuda")], error_if_nonfinite=True)


# --- state dicts: saved from, loaded to and loaded into CUDA modules; padded sequences -----------------------------


def test_save_load_and_load_state_dict_on_cuda():
    import io

    cpu = nn.Linear(2, 3).double()
    model = nn.Linear(2, 3).double().to("cuda")
    weight = model.weight
    model.load_state_dict(cpu.state_dict())  # a CPU state dict into a CUDA module (numpy's copyto raised)
    assert model.weight is weight and weight.is_cuda
    buf = io.BytesIO()
    ad.save(model.state_dict(), buf)  # a CUDA state dict (raised: a device array has no itemsize)
    for map_location, device in ((None, "cuda"), ("cpu", "cpu"), ({"cuda:0": "cpu"}, "cpu")):
        buf.seek(0)
        loaded = ad.load(buf, map_location=map_location)
        assert {t.device.type for t in loaded.values()} == {device}
        np.testing.assert_array_equal(_host(loaded["weight"]), _host(cpu.weight))
    restored = nn.Linear(2, 3).double()
    restored.load_state_dict(loaded)
    _assert_same([cpu.weight], [model.weight], "loaded weight")


def test_padded_sequences_on_cuda():
    from ad.nn.utils import rnn

    got = []
    for dev in ("cpu", "cuda"):
        x = ad.tensor(np.arange(12.0).reshape(3, 2, 2), device=dev, requires_grad=True)
        packed = rnn.pack_padded_sequence(x, ad.tensor([2, 3]), enforce_sorted=False)
        padded, _ = rnn.pad_packed_sequence(packed, batch_first=True, padding_value=-1.0)
        seqs = rnn.pad_sequence([x[:, 0, 0], x[:2, 1, 1]], padding_side="left")
        got.append([packed.data, padded, seqs, *ad.autograd.grad(padded.sum() + (seqs * seqs).sum(), x)])
    _assert_same(*got, "pack / pad")
    with pytest.raises(RuntimeError, match="1D CPU int64 tensor"):  # torch's: the lengths are read on the host
        rnn.pack_padded_sequence(x, ad.tensor([3, 2], device="cuda"))


# --- CyclicLR over CUDA parameters ----------------------------------------------------------------------------


def test_cyclic_lr_on_cuda_equals_cpu():
    results = []
    for dev in ("cpu", "cuda"):
        w = ad.tensor([1.0, -2.0, 0.5], device=dev, requires_grad=True)
        opt = ad.optim.SGD([w], lr=0.1, momentum=0.9)
        sched = ad.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=2, mode="exp_range", gamma=0.9)
        lrs = []
        for step in range(5):
            w.grad = ad.tensor([math.sin(step), 1.0, -0.5], device=dev)
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        assert w.device.type == dev and opt.state[w]["momentum_buffer"].device.type == dev
        results.append((_host(w), lrs))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    assert results[1][1] == results[0][1]


def test_norm_buffers_built_on_cuda():
    """``device="cuda"`` at construction puts the running statistics there too (they stayed on the CPU)."""
    x = RNG.standard_normal((2, 3, 2))
    got = []
    for dev in ("cpu", "cuda"):
        m = nn.SyncBatchNorm(3, momentum=None, device=dev, dtype=ad.float64)
        assert {b.device.type for b in m.buffers()} == {dev}
        m(ad.tensor(x, device=dev))
        got.append([m.running_mean, m.running_var, m.num_batches_tracked])
    _assert_same(*got, "running statistics")
