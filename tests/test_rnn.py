"""ad.nn's RNN, LSTM, GRU and cells against torch.nn (float64, weights copied through the state dict):
outputs, final states, input / state / parameter gradients, for each flag that changes the computation;
packed sequences; finite differences on a tiny case; torch's errors."""

import numpy as np
import pytest

import ad
from ad.nn.utils import rnn as R

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn

RNG = np.random.default_rng(5)


def _pair(cls, **kw):
    tm = getattr(torch.nn, cls)(**kw).double()
    m = getattr(ad.nn, cls)(**kw)
    m.load_state_dict({k: ad.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return m, tm


def _flat(out):
    if isinstance(out, tuple | list):
        return [a for o in out for a in _flat(o)]
    if isinstance(out, R.PackedSequence | TR.PackedSequence):
        return [out.data]
    return [] if out is None else [out]


def _compare(m, tm, inputs, training=False, atol=1e-12):
    """Run both modules on ``inputs`` (numpy arrays, tuples of them or None), compare every output and, after a
    random linear functional of them is backpropagated, every parameter and input gradient."""
    m.train(training)
    tm.train(training)

    def lift(lib, v):
        if v is None:
            return None
        if isinstance(v, tuple):
            return tuple(lift(lib, a) for a in v)
        return lib.tensor(v, dtype=lib.float64, requires_grad=True)

    ours, theirs = [lift(ad, v) for v in inputs], [lift(torch, v) for v in inputs]
    out, tout = _flat(m(*ours)), _flat(tm(*theirs))
    assert len(out) == len(tout)
    for a, t in zip(out, tout):
        assert tuple(a.shape) == tuple(t.shape)
        np.testing.assert_allclose(a.detach().numpy(), t.detach().numpy(), rtol=0, atol=atol)
    weights = [RNG.standard_normal(tuple(t.shape)) for t in tout]
    sum((a * ad.tensor(w)).sum() for a, w in zip(out, weights)).backward()
    sum((t * torch.tensor(w)).sum() for t, w in zip(tout, weights)).backward()
    for (name, p), (tname, tp) in zip(m.named_parameters(), tm.named_parameters(), strict=True):
        assert name == tname
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=0, atol=atol, err_msg=name)
    for a, t in zip(_flat(ours), _flat(theirs)):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=0, atol=atol)


def _states(cls, kw, batch):
    """Random initial states of torch's shapes, unbatched when ``batch`` is None."""
    d = (2 if kw.get("bidirectional") else 1) * kw.get("num_layers", 1)
    hidden = kw["hidden_size"]
    size = kw.get("proj_size") or hidden
    shape = (d, batch) if batch is not None else (d,)
    h = RNG.standard_normal((*shape, size))
    if cls == "LSTM":
        return (h, RNG.standard_normal((*shape, hidden)))
    return h


LAYER_CASES = [
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("RNN", dict(bidirectional=True, batch_first=True, bias=False)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=2, batch_first=True)),
    ("LSTM", dict(proj_size=3, num_layers=2, bidirectional=True, bias=False)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=3, batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, bias=False)),
]


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize(("cls", "kw"), LAYER_CASES, ids=[f"{c}-{k}" for c, k in LAYER_CASES])
def test_layer_matches_torch(cls, kw, with_state):
    kw = dict(input_size=3, hidden_size=4, **kw)
    m, tm = _pair(cls, **kw)
    x = RNG.standard_normal((2, 5, 3) if kw.get("batch_first") else (5, 2, 3))
    _compare(m, tm, [x, _states(cls, kw, 2) if with_state else None])
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in tm.parameters()]


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input(cls, batch_first):
    kw = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=batch_first)
    m, tm = _pair(cls, **kw)
    x = RNG.standard_normal((6, 3))
    _compare(m, tm, [x, None])
    _compare(m, tm, [x, _states(cls, kw, None)])


def test_dropout_between_layers_train_only():
    kw = dict(input_size=3, hidden_size=4, num_layers=3, dropout=1.0)
    for cls in ["LSTM", "GRU"]:
        m, tm = _pair(cls, **kw)
        x = RNG.standard_normal((4, 2, 3))
        # p=1 zeroes the inputs of layers 2 and 3: deterministic, so it can be compared with torch
        _compare(m, tm, [x, None], training=True)
        _compare(m, tm, [x, None], training=False)
    m = ad.nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = ad.randn(30, 8, 3)
    m.eval()
    assert np.array_equal(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())  # eval: no dropout
    m.train()
    assert not np.array_equal(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())  # train: a fresh mask each call


PACKED_CASES = [
    ("RNN", dict(), True),
    ("LSTM", dict(num_layers=2, bidirectional=True), False),
    ("LSTM", dict(proj_size=2, bidirectional=True), True),
    ("GRU", dict(num_layers=2, bidirectional=True), False),
]


@pytest.mark.parametrize(("cls", "kw", "enforce_sorted"), PACKED_CASES, ids=[c for c, _, _ in PACKED_CASES])
@pytest.mark.parametrize("with_state", [False, True])
def test_packed_sequence_matches_torch(cls, kw, enforce_sorted, with_state):
    kw = dict(input_size=3, hidden_size=4, **kw)
    m, tm = _pair(cls, **kw)
    lengths = [5, 3, 3, 1] if enforce_sorted else [2, 5, 1, 4]
    x = RNG.standard_normal((5, 4, 3))
    hx = _states(cls, kw, 4) if with_state else None

    def run(lib, mod, utils):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        h = None
        if hx is not None:
            h = tuple(lib.tensor(v, requires_grad=True) for v in hx) if cls == "LSTM" else lib.tensor(hx)
        packed = utils.pack_padded_sequence(xt, lengths, enforce_sorted=enforce_sorted)
        out, state = mod(packed, h)
        assert isinstance(out, utils.PackedSequence)
        padded, lens = utils.pad_packed_sequence(out, batch_first=True)
        assert list(np.asarray(lens)) == [*lengths]
        outs = [padded, *(state if cls == "LSTM" else (state,))]
        w = np.random.default_rng(0)
        sum((o * lib.tensor(w.standard_normal(tuple(o.shape)))).sum() for o in outs).backward()
        return [o.detach().numpy() for o in outs], xt.grad.numpy(), [p.grad.numpy() for p in mod.parameters()]

    ours, theirs = run(ad, m, R), run(torch, tm, TR)
    for a, t in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, t, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=0, atol=1e-12)
    for a, t in zip(ours[2], theirs[2], strict=True):
        np.testing.assert_allclose(a, t, rtol=0, atol=1e-12)


def test_packing_utilities_match_torch():
    x = RNG.standard_normal((3, 5, 2))
    for lengths, enforce in [([5, 4, 2], True), ([2, 5, 4], False)]:
        p = R.pack_padded_sequence(ad.tensor(x), lengths, batch_first=True, enforce_sorted=enforce)
        tp = TR.pack_padded_sequence(torch.tensor(x), lengths, batch_first=True, enforce_sorted=enforce)
        np.testing.assert_array_equal(p.data.numpy(), tp.data.numpy())
        np.testing.assert_array_equal(p.batch_sizes.numpy(), tp.batch_sizes.numpy())
        if not enforce:
            np.testing.assert_array_equal(p.sorted_indices.numpy(), tp.sorted_indices.numpy())
            np.testing.assert_array_equal(p.unsorted_indices.numpy(), tp.unsorted_indices.numpy())
        padded, lens = R.pad_packed_sequence(p, batch_first=True, padding_value=-2.0, total_length=7)
        tpadded, tlens = TR.pad_packed_sequence(tp, batch_first=True, padding_value=-2.0, total_length=7)
        np.testing.assert_array_equal(padded.numpy(), tpadded.numpy())
        np.testing.assert_array_equal(lens.numpy(), tlens.numpy())
    seqs = [RNG.standard_normal((n, 2)) for n in (2, 4, 3)]
    for side in ("right", "left"):
        for batch_first in (False, True):
            ours = R.pad_sequence([ad.tensor(s) for s in seqs], batch_first, 1.5, side)
            theirs = TR.pad_sequence([torch.tensor(s) for s in seqs], batch_first, 1.5, side)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    p = R.pack_sequence([ad.tensor(s) for s in seqs], enforce_sorted=False)
    tp = TR.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(p.data.numpy(), tp.data.numpy())
    # gradients flow through packing and padding to the padded input (zero at the padding)
    xt = ad.tensor(x, requires_grad=True)
    padded, _ = R.pad_packed_sequence(R.pack_padded_sequence(xt, [5, 4, 2], batch_first=True), batch_first=True)
    padded.sum().backward()
    expected = np.zeros_like(x)
    for b, n in enumerate([5, 4, 2]):
        expected[b, :n] = 1
    np.testing.assert_array_equal(xt.grad.numpy(), expected)


def test_packing_errors():
    x = ad.randn(4, 3, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order when `enforce_sorted` is True"):
        R.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        R.pack_padded_sequence(x, [4, 2, 0])
    with pytest.raises(RuntimeError, match=r"Expected `len\(lengths\)` to be equal to batch_size, but got 2"):
        R.pack_padded_sequence(x, [4, 2])
    with pytest.raises(ValueError, match="Expected total_length to be at least the length of the longest"):
        R.pad_packed_sequence(R.pack_padded_sequence(x, [4, 2, 1]), total_length=3)


CELL_CASES = [
    ("RNNCell", dict()),
    ("RNNCell", dict(nonlinearity="relu", bias=False)),
    ("LSTMCell", dict()),
    ("LSTMCell", dict(bias=False)),
    ("GRUCell", dict()),
    ("GRUCell", dict(bias=False)),
]


@pytest.mark.parametrize(("cls", "kw"), CELL_CASES, ids=[f"{c}-{k}" for c, k in CELL_CASES])
def test_cell_matches_torch(cls, kw):
    m, tm = _pair(cls, input_size=3, hidden_size=4, **kw)
    for batch in (2, None):
        shape = (batch,) if batch else ()
        x = RNG.standard_normal((*shape, 3))
        h = RNG.standard_normal((*shape, 4))
        state = (h, RNG.standard_normal((*shape, 4))) if cls == "LSTMCell" else h
        m.zero_grad()
        tm.zero_grad()
        _compare(m, tm, [x, None])
        m.zero_grad()
        tm.zero_grad()
        _compare(m, tm, [x, state])


def test_gradcheck_tiny_lstm_and_gru():
    """Finite differences through the input, the initial state and two weights (a first-layer one and a
    second-layer reverse one) of a two-layer bidirectional LSTM (with projections) and GRU."""
    names = ["bias_ih_l0", "weight_hh_l1_reverse"]
    for m in (ad.nn.LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2), ad.nn.GRU(2, 3, 2, bidirectional=True)):
        lstm = isinstance(m, ad.nn.LSTM)
        originals = {n: m._parameters[n] for n in names}
        c0 = ad.randn(4, 1, 3)

        def f(x, h0, w1, w2, m=m, lstm=lstm, originals=originals, c0=c0):
            m._parameters.update(zip(names, (w1, w2)))
            try:
                out, h = m(x, (h0, c0) if lstm else h0)
            finally:
                m._parameters.update(originals)
            return out, h[1] if lstm else h

        h0 = ad.randn(4, 1, 2 if lstm else 3, requires_grad=True)
        weights = [originals[n].detach().clone().requires_grad_() for n in names]
        assert ad.autograd.gradcheck(f, (ad.randn(3, 1, 2, requires_grad=True), h0, *weights))


def test_state_dict_keys_and_init():
    m, tm = _pair("LSTM", input_size=3, hidden_size=5, num_layers=2, bidirectional=True, proj_size=2)
    assert list(m.state_dict()) == list(tm.state_dict())
    fresh = ad.nn.GRU(3, 16, num_layers=2)
    bound = 1 / np.sqrt(16)
    for p in fresh.parameters():
        v = p.detach().numpy()
        assert np.all(np.abs(v) <= bound) and v.std() > bound / 4  # U(-1/sqrt(h), 1/sqrt(h))
    assert repr(ad.nn.LSTM(3, 5, num_layers=2, batch_first=True)) == repr(
        torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
    )


def _raises_like(make_ours, make_theirs):
    with pytest.raises(Exception) as theirs:
        make_theirs()
    with pytest.raises(type(theirs.value)) as ours:
        make_ours()
    assert str(ours.value) == str(theirs.value)


CONSTRUCTOR_ERRORS = [
    ("RNN", (3, 4), dict(nonlinearity="sigmoid")),
    ("RNN", (3, 4), dict(proj_size=2)),
    ("GRU", (3, 4), dict(proj_size=2)),
    ("LSTM", (3, 4), dict(proj_size=4)),
    ("LSTM", (3, 4), dict(proj_size=-1)),
    ("LSTM", (3, 4), dict(dropout=1.5)),
    ("LSTM", (3, 4), dict(num_layers=0)),
    ("LSTM", (3, 0), dict()),
    ("LSTM", (0, 4), dict()),
    ("LSTM", (3, 4.0), dict()),
    ("GRU", (3, 4), dict(batch_first=1)),
]


@pytest.mark.parametrize(
    ("cls", "args", "kw"), CONSTRUCTOR_ERRORS, ids=[f"{c}-{a}-{k}" for c, a, k in CONSTRUCTOR_ERRORS]
)
def test_constructor_errors(cls, args, kw):
    _raises_like(lambda: getattr(ad.nn, cls)(*args, **kw), lambda: getattr(torch.nn, cls)(*args, **kw))


FORWARD_ERRORS = [
    ("RNN", (4, 2, 3, 1), None),  # 4-D input
    ("LSTM", (5,), None),  # 1-D input
    ("GRU", (5, 2, 6), None),  # wrong input_size
    ("GRU", (5, 2, 3), (2, 2, 4)),  # wrong number of layers in h0
    ("RNN", (5, 2, 3), (1, 3, 4)),  # wrong batch in h0
    ("RNN", (5, 2, 3), (2, 4)),  # 2-D h0 for batched input
    ("GRU", (5, 3), (1, 1, 4)),  # 3-D h0 for unbatched input
    ("LSTM", (5, 2, 3), ((1, 2, 4), (1, 2, 5))),  # wrong cell size
    ("LSTM", (5, 2, 3), ((1, 2, 4), (2, 4))),  # 2-D c0 for batched input
    ("LSTM", (5, 3), ((1, 4), (1, 1, 4))),
]


@pytest.mark.parametrize(("cls", "shape", "hshape"), FORWARD_ERRORS, ids=[f"{c}-{s}-{h}" for c, s, h in FORWARD_ERRORS])
def test_forward_errors(cls, shape, hshape):
    m, tm = _pair(cls, input_size=3, hidden_size=4)

    def make(lib, mod):
        def call():
            h = None
            if hshape is not None:
                h = tuple(lib.zeros(s, dtype=lib.float64) for s in hshape) if cls == "LSTM" else None
                h = h if h is not None else lib.zeros(hshape, dtype=lib.float64)
            return mod(lib.zeros(shape, dtype=lib.float64), h)

        return call

    _raises_like(make(ad, m), make(torch, tm))


CELL_ERRORS = [
    ("RNNCell", (2, 3, 1), None),
    ("RNNCell", (2, 3), (1, 2, 4)),
    ("RNNCell", (2, 5), None),
    ("GRUCell", (2, 3), (3, 4)),
    ("GRUCell", (2, 3), (2, 5)),
    ("LSTMCell", (2, 3), ((2, 4), (2, 5))),
    ("LSTMCell", (2, 3), ((2, 4), (1, 2, 4))),
]


@pytest.mark.parametrize(("cls", "shape", "hshape"), CELL_ERRORS, ids=[f"{c}-{s}-{h}" for c, s, h in CELL_ERRORS])
def test_cell_errors(cls, shape, hshape):
    m, tm = _pair(cls, input_size=3, hidden_size=4)

    def make(lib, mod):
        def call():
            h = None
            if hshape is not None:
                if cls == "LSTMCell":
                    h = tuple(lib.zeros(s, dtype=lib.float64) for s in hshape)
                else:
                    h = lib.zeros(hshape, dtype=lib.float64)
            return mod(lib.zeros(shape, dtype=lib.float64), h)

        return call

    _raises_like(make(ad, m), make(torch, tm))


def test_unpad_and_unpack_sequence():
    seqs = [RNG.standard_normal((n, 2)) for n in (3, 5, 1)]
    ours = [ad.tensor(s) for s in seqs]
    for batch_first in (False, True):
        padded = R.pad_sequence(ours, batch_first=batch_first)
        back = R.unpad_sequence(padded, ad.tensor([3, 5, 1]), batch_first=batch_first)
        assert [b.numpy().tolist() for b in back] == [s.tolist() for s in seqs]
    back = R.unpack_sequence(R.pack_sequence(ours, enforce_sorted=False))
    assert [b.numpy().tolist() for b in back] == [s.tolist() for s in seqs]


def test_double_backward_matches_torch():
    """create_graph through an LSTM (composites: second order comes from the ops' own rules)."""
    m, tm = _pair("LSTM", input_size=3, hidden_size=4, bidirectional=True)
    x = RNG.standard_normal((4, 2, 3))
    grads = []
    for lib, mod in ((ad, m), (torch, tm)):
        xt = lib.tensor(x, requires_grad=True)
        out = mod(xt)[0]
        (g,) = lib.autograd.grad((out * out).sum(), xt, create_graph=True)
        (g * g).sum().backward()
        grads.append([p.grad.numpy() for p in mod.parameters()] + [xt.grad.numpy()])
    for a, t in zip(*grads):
        np.testing.assert_allclose(a, t, rtol=0, atol=1e-11)


FAST_CASES = [
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
]


@pytest.mark.parametrize(("cls", "kw"), FAST_CASES, ids=[c for c, _ in FAST_CASES])
def test_float32_matches_torch(cls, kw):
    """The one-row recurrence (numpy forward, compiled backward) in float32, against torch's float32."""
    kw = dict(input_size=3, hidden_size=5, **kw)
    tm = getattr(torch.nn, cls)(**kw)
    m = getattr(ad.nn, cls)(**kw, dtype=ad.float32)
    m.load_state_dict({k: ad.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = RNG.standard_normal((6, 3, 3)).astype(np.float32)
    lengths = [6, 4, 2]
    outs = []
    for lib, mod, utils in ((ad, m, R), (torch, tm, TR)):
        xt = lib.tensor(x, requires_grad=True)
        out, state = mod(utils.pack_padded_sequence(xt, lengths))
        h = state[0] if cls == "LSTM" else state
        w = np.random.default_rng(1)
        loss = (out.data * lib.tensor(w.standard_normal(tuple(out.data.shape)).astype(np.float32))).sum()
        (loss + (h * h).sum()).backward()
        assert out.data.dtype == lib.float32
        grads = [p.grad.numpy() for p in mod.parameters()]
        outs.append([out.data.detach().numpy(), h.detach().numpy(), xt.grad.numpy(), *grads])
    for a, t in zip(*outs, strict=True):
        np.testing.assert_allclose(a, t, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("cls", "kw"), FAST_CASES, ids=[c for c, _ in FAST_CASES])
def test_forward_mode_and_paths_agree(cls, kw):
    """Forward mode (the composite of ad ops: a dual input takes it) against central finite differences, and
    its output against the one-row path's; reverse mode's <v, J u> against forward mode's."""
    from ad.autograd import forward_ad as fwAD

    kw = dict(input_size=3, hidden_size=4, **kw)
    m = getattr(ad.nn, cls)(**kw)
    x = RNG.standard_normal((4, 2, 3))
    u = RNG.standard_normal(x.shape)
    v = RNG.standard_normal((4, 2, 2 * (kw.get("proj_size") or 4)))

    def f(a):
        return m(ad.tensor(a))[0].detach().numpy()

    with fwAD.dual_level():
        out = m(fwAD.make_dual(ad.tensor(x), ad.tensor(u)))[0]
        primal, tangent = fwAD.unpack_dual(out)
    eps = 1e-6
    fd = (f(x + eps * u) - f(x - eps * u)) / (2 * eps)
    tangent, primal = tangent.detach().numpy(), primal.detach().numpy()
    np.testing.assert_allclose(tangent, fd, rtol=0, atol=1e-8)
    np.testing.assert_allclose(primal, f(x), rtol=0, atol=1e-13)  # composite vs one row
    xt = ad.tensor(x, requires_grad=True)
    (m(xt)[0] * ad.tensor(v)).sum().backward()
    np.testing.assert_allclose((xt.grad.numpy() * u).sum(), (tangent * v).sum(), rtol=1e-10)
