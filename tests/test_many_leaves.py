"""Many-leaf graphs (benchmark W6: ``stack([tanh(p_i * c_i).sum()]).sum()`` over many small leaves).

Their hot paths are checked against the general ones: the compiled sweep's leaf gradients (``engine.LeafGrads``,
two dicts instead of a tuple per leaf) against the differentiable graph sweep (``create_graph=True``) and torch;
the edge cases the hot paths hand to the generic code (a leaf used twice, a leaf whose ``.grad`` exists, a leaf
with a hook, a float32 leaf in a float64 graph, ``inputs=``, ``autograd.grad``, a compiled replay) against
analytic values; the forward's inlined paths (a leaf's or constant's first import in ``p * c``, a small vector's
``sum()``, a stack of many scalars) against torch: values, gradients, and the errors of operands written in place.
"""

import numpy as np
import pytest

import ad
from ad import engine

N_LEAVES = 40


def _data(seed=0, n=N_LEAVES, size=8):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size) for _ in range(n)], [rng.uniform(0.5, 1.5, size) for _ in range(n)]


def _loss(lib, ps, cs):
    return lib.stack([lib.tanh(p * c).sum() for p, c in zip(ps, cs)]).sum()


def _expected(p, c):
    """d/dp sum(tanh(p * c)) = c (1 - tanh(p c)^2)."""
    return c * (1.0 - np.tanh(p * c) ** 2)


def test_many_leaves_grads_match_graph_sweep_and_analytic():
    p_np, c_np = _data()
    ps = [ad.tensor(a, requires_grad=True) for a in p_np]
    cs = [ad.tensor(a) for a in c_np]
    for _ in range(2):  # the second step imports the same leaves and constants into a new tape
        for p in ps:
            p.grad = None
        _loss(ad, ps, cs).backward()
        for p, a, c in zip(ps, p_np, c_np):
            np.testing.assert_allclose(p.grad.numpy(), _expected(a, c), rtol=1e-12, atol=1e-15)
    # the differentiable sweep (create_graph=True) walks the Python graph: the same gradients
    swept = ad.autograd.grad(_loss(ad, ps, cs), ps, create_graph=True)
    for p, g in zip(ps, swept):
        np.testing.assert_allclose(g.detach().numpy(), p.grad.numpy(), rtol=1e-12, atol=1e-15)
        assert g.requires_grad


def test_many_leaves_match_torch():
    torch = pytest.importorskip("torch")
    p_np, c_np = _data(1)
    ps = [ad.tensor(a, requires_grad=True) for a in p_np]
    tps = [torch.tensor(a, requires_grad=True) for a in p_np]
    loss = _loss(ad, ps, [ad.tensor(a) for a in c_np])
    tloss = _loss(torch, tps, [torch.tensor(a) for a in c_np])
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-13)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_many_leaves_edge_cases_take_the_general_path():
    p_np, c_np = _data(2, n=6)
    ps = [ad.tensor(a, requires_grad=True) for a in p_np]
    cs = [ad.tensor(a) for a in c_np]
    ps[3] = ad.tensor(p_np[3].astype(np.float32), requires_grad=True)  # float32 leaf: its gradient is float32
    old = np.full(8, 0.5)
    ps[1].grad = ad.tensor(old.copy())  # accumulated into, in place
    grad_before = ps[1].grad
    version = grad_before._version
    seen = []
    ps[2].register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    terms = [ad.tanh(p * c).sum() for p, c in zip(ps, cs)]
    terms.append((ps[0] * ps[0]).sum())  # ps[0] used twice: two contributions summed
    ad.stack(terms).sum().backward()
    g_expected = [_expected(ps[k].detach().numpy().astype(np.float64), c_np[k]) for k in range(6)]
    np.testing.assert_allclose(ps[0].grad.numpy(), g_expected[0] + 2 * p_np[0], rtol=1e-12)
    assert ps[1].grad is grad_before and grad_before._version > version
    np.testing.assert_allclose(ps[1].grad.numpy(), old + g_expected[1], rtol=1e-12)
    np.testing.assert_allclose(seen[0], g_expected[2], rtol=1e-12)
    np.testing.assert_allclose(ps[2].grad.numpy(), 2 * g_expected[2], rtol=1e-12)
    assert ps[3].grad.dtype == ad.float32
    np.testing.assert_allclose(ps[3].grad.numpy(), g_expected[3], rtol=1e-5)
    for k in (4, 5):
        np.testing.assert_allclose(ps[k].grad.numpy(), g_expected[k], rtol=1e-12)


def test_many_leaves_inputs_and_grad():
    p_np, c_np = _data(3, n=5)
    ps = [ad.tensor(a, requires_grad=True) for a in p_np]
    cs = [ad.tensor(a) for a in c_np]
    _loss(ad, ps, cs).backward(inputs=[ps[1], ps[3]])
    assert [p.grad is None for p in ps] == [True, False, True, False, True]
    np.testing.assert_allclose(ps[3].grad.numpy(), _expected(p_np[3], c_np[3]), rtol=1e-12)
    grads = ad.autograd.grad(_loss(ad, ps, cs), [ps[4], ps[0]])
    np.testing.assert_allclose(grads[0].numpy(), _expected(p_np[4], c_np[4]), rtol=1e-12)
    np.testing.assert_allclose(grads[1].numpy(), _expected(p_np[0], c_np[0]), rtol=1e-12)
    assert ps[0].grad is None and ps[4].grad is None  # grad() writes no .grad


def test_many_leaves_compiled_replay():
    p_np, c_np = _data(4, n=8)
    ps = [ad.tensor(a, requires_grad=True) for a in p_np]
    cs = [ad.tensor(a) for a in c_np]
    step = ad.compile(lambda ps, cs: _loss(ad, ps, cs))
    for _ in range(3):  # record, then replays (whose tape hands the leaves' gradients over at once)
        for p in ps:
            p.grad = None
        step(ps, cs).backward()
        for p, a, c in zip(ps, p_np, c_np):
            np.testing.assert_allclose(p.grad.numpy(), _expected(a, c), rtol=1e-12, atol=1e-15)


def test_leaf_grads_reads_as_a_dict_of_tuples():
    a, b = ad.tensor([1.0], requires_grad=True), ad.tensor([2.0], requires_grad=True)
    ga, gb, gb2 = np.ones(1), np.full(1, 2.0), np.full(1, 3.0)
    lg = engine.LeafGrads()
    assert not lg and lg.get(id(a)) is None and id(a) not in lg
    lg[id(a)] = (a, ga, False)
    lg.update([(id(b), (b, gb, True))])
    assert len(lg) == 2 and list(lg) == [id(a), id(b)] and list(lg.keys()) == [id(a), id(b)]
    assert lg[id(a)] == (a, ga, False) and lg.get(id(b)) == (b, gb, True)
    assert lg.values() == [(a, ga, False), (b, gb, True)]
    assert lg.items() == [(id(a), (a, ga, False)), (id(b), (b, gb, True))]
    lg[id(b)] = (b, gb2)  # a two-tuple entry: not owned; the order of the leaves is kept
    assert lg[id(b)] == (b, gb2, False) and list(lg) == [id(a), id(b)]
    assert [(t, g) for t, g in engine.leaf_pairs(lg)] == [(a, ga), (b, gb2)]
    assert list(engine.leaf_pairs({7: (a, ga, False)})) == [(a, ga)]


def _torch_or_skip():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("first_op", ["mul", "add"])
@pytest.mark.parametrize("written", ["leaf", "constant"])
def test_operand_written_in_place_between_uses_in_one_graph(written, first_op):
    """A leaf or constant imported by ``p * c`` or ``p + c`` (the fast path's first import), then written in
    place, then used again in the same graph: as torch, backward raises where the first op saved the written
    tensor (``p * c`` saves the constant, for ``p``'s gradient) and backpropagates the new values elsewhere."""
    torch = _torch_or_skip()
    p_np, c_np = _data(5, n=1)

    def run(lib):
        p = lib.tensor(p_np[0], requires_grad=True)
        c = lib.tensor(c_np[0])
        first = p * c if first_op == "mul" else p + c
        with lib.no_grad():
            (p if written == "leaf" else c).mul_(2.0)
        loss = (first * 1.5 + p * c).sum()
        try:
            loss.backward()
        except RuntimeError as e:
            assert "modified by an inplace operation" in str(e)
            return "raised"
        return p.grad.numpy()

    expected = run(torch)
    assert isinstance(expected, str) == (written == "constant" and first_op == "mul")  # (what torch does)
    got = run(ad)
    if isinstance(expected, str):
        assert got == expected
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_imports_of_one_leaf_into_two_live_tapes():
    """One leaf and constant imported into two tapes whose graphs are both alive (the second import appends to
    the tensors' list of copies): both graphs backpropagate, and after an in-place write to the constant both
    raise torch's error (every copy was flagged)."""
    torch = _torch_or_skip()
    p_np, c_np = _data(6, n=1)
    for lib in (ad, torch):
        p = lib.tensor(p_np[0], requires_grad=True)
        c = lib.tensor(c_np[0])
        first = lib.tanh(p * c).sum()
        if lib is ad:
            ad.tape.reset_current()  # the next product records on a new tape
        second = (p * c).sum()
        if lib is ad:
            assert second._tape is not first._tape and len(p._imports) == len(c._imports) == 2
        first.backward(retain_graph=True)
        second.backward(retain_graph=True)
        np.testing.assert_allclose(p.grad.numpy(), _expected(p_np[0], c_np[0]) + c_np[0], rtol=1e-13)
        with lib.no_grad():
            c.add_(1.0)
        for loss in (first, second):
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                loss.backward()


def test_fast_path_imports_match_the_general_ones():
    """The tape entries a first import on ``p * c``'s fast path makes (offset, row, held tensor, extern) are those
    of ``Tape.import_tensor``: a leaf is an extern (its cotangent is handed to ``.grad``), a constant is not;
    a no_grad view of a leaf is imported without an extern."""
    p = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    c = ad.tensor([4.0, 5.0, 6.0])
    with ad.no_grad():
        v = p[:]  # a view made under no_grad: requires grad, gets no gradient
    ad.tape.reset_current()
    y = p * c
    z = v * c
    tape = y._tape
    assert z._tape is tape
    off_p, row_p, held_p, version_p = tape.imports[id(p)]
    off_c, row_c, held_c, _ = tape.imports[id(c)]
    assert held_p is p and held_c is c and version_p == 0 and row_p == row_c == y._row
    np.testing.assert_array_equal(tape.values[off_p : off_p + 3], p.detach().numpy())
    np.testing.assert_array_equal(tape.values[off_c : off_c + 3], c.numpy())
    assert [(row, off) for row, off, _ in tape.externs] == [(y._row, off_p)]
    (z.sum() + y.sum()).backward()
    np.testing.assert_array_equal(p.grad.numpy(), c.numpy())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("variant", ["one tape", "a constant piece", "a piece of an older tape"])
def test_stack_of_many_scalars_matches_torch(dtype, variant):
    """``stack`` of many 0-d pieces (the values read one by one, the rows built at once when every piece is a
    result of the current tape; else the per-piece loop): values bit for bit those of the pieces, gradients as
    torch's."""
    torch = _torch_or_skip()
    p_np, c_np = _data(8, n=24)
    p_np = [a.astype(dtype) for a in p_np]
    c_np = [a.astype(dtype) for a in c_np]

    def run(lib):
        ps = [lib.tensor(a, requires_grad=True) for a in p_np]
        cs = [lib.tensor(a) for a in c_np]
        early = lib.tanh(ps[0] * cs[0]).sum()
        if lib is ad:
            ad.tape.reset_current()
        pieces = [lib.tanh(p * c).sum() for p, c in zip(ps, cs)]
        if variant == "a constant piece":
            pieces[4] = lib.tensor(np.asarray(2.5, dtype))
        elif variant == "a piece of an older tape":
            pieces[7] = early
        s = lib.stack(pieces)
        (s * lib.tensor(np.arange(1.0, 25.0).astype(dtype))).sum().backward()
        return s, [p.grad for p in ps], pieces

    s, grads, pieces = run(ad)
    ts, tgrads, _ = run(torch)
    assert s.dtype == getattr(ad, dtype)
    np.testing.assert_array_equal(s.detach().numpy(), np.array([float(x.item()) for x in pieces], dtype))
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(s.detach().numpy(), ts.detach().numpy(), rtol=tol)
    for g, tg in zip(grads, tgrads):
        assert (g is None) == (tg is None)  # (the leaf whose piece was replaced gets no gradient)
        if g is not None:
            np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_small_sums_recorded_inline_match_numpy_and_torch(dtype):
    """``x.sum()`` of a recorded vector on the current tape (the per-leaf loss, written by ``Tensor.sum``'s own
    row) for the sizes around ``_total``'s cases (empty, under 8, 8, under 16, 16 and more): numpy's value bit
    for bit, torch's ``grad_fn`` name and gradients; a vector of a retired tape takes the general path."""
    torch = _torch_or_skip()
    rng = np.random.default_rng(9)
    for n in (0, 1, 7, 8, 9, 15, 16, 40):
        a = rng.standard_normal(n).astype(dtype)
        for retire in (False, True):
            p = ad.tensor(a, requires_grad=True)
            y = ad.tanh(p * 1.5)
            if retire:
                ad.tape.reset_current()
            s = y.sum()
            assert s.grad_fn.name() == "SumBackward0" and s.shape == () and s.dtype == getattr(ad, dtype)
            assert s.item() == np.add.reduce(y.detach().numpy())
            (s * 2.0).backward()
            tp = torch.tensor(a, requires_grad=True)
            (torch.tanh(tp * 1.5).sum() * 2.0).backward()
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12 if dtype == "float64" else 1e-5)
