"""torch's storage-level surface against torch 2.13: ``as_strided`` / ``as_strided_`` / ``as_strided_scatter``
(ad/as_strided.py), ``resize_`` / ``set_`` and the other storage methods (ad/storage.py), ``apply_`` / ``map_`` /
``map2_``, the aten forms of nn functions (ad/nn_aten.py), ``Module.compile`` / ``to_empty`` / ``share_memory``
and ``ad.nn.attention``: values, gradients (torch's, and finite differences where torch's are wrong), errors."""

import os
import warnings

import numpy as np
import pytest

import ad
from ad.autograd import gradcheck

torch = pytest.importorskip("torch")


def _outcome(fn, lib):
    try:
        out = fn(lib)
    except Exception as e:  # noqa: BLE001 - the class and text are what is compared
        return type(e).__name__, str(e)
    return "ok", out


def _same(fn):
    """``fn(ad)`` and ``fn(torch)`` return equal plain values, or raise the same class with the same text."""
    ours, theirs = _outcome(fn, ad), _outcome(fn, torch)
    assert ours == theirs


def _compare(fn, *arrays, skip_grads=()):
    """Values of ``fn(lib, *inputs)`` and the gradients of a weighted sum against torch's (float64)."""
    rng = np.random.default_rng(0)
    ours = [ad.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_a, out_t = fn(ad, *ours), fn(torch, *theirs)
    np.testing.assert_allclose(out_a.detach().numpy(), out_t.detach().numpy(), rtol=1e-12)
    w = rng.standard_normal(tuple(out_t.shape))
    grads_a = ad.autograd.grad(out_a, ours, ad.tensor(w), allow_unused=True)
    grads_t = torch.autograd.grad(out_t, theirs, torch.tensor(w), allow_unused=True)
    for k, (a, t) in enumerate(zip(grads_a, grads_t)):
        if k in skip_grads:
            continue
        expected = np.zeros(arrays[k].shape) if t is None else t.numpy()
        np.testing.assert_allclose(np.zeros(arrays[k].shape) if a is None else a.numpy(), expected, rtol=1e-12)
    return out_a


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --- as_strided ------------------------------------------------------------------------------------------------

AS_STRIDED = {
    "overlapping": lambda m, x: (x * 1).as_strided((2, 2), (1, 1), 1),
    "of_a_leaf": lambda m, x: x.as_strided((2, 3), (1, 2), 0),
    "transposed_input": lambda m, x: x.reshape(2, 3).t().as_strided((3, 2), (1, 2), 1),
    "expanded_input": lambda m, x: x[:3].expand(2, 3).as_strided((2, 3), (0, 1), 0),
    "outside_the_input": lambda m, x: (x * 1)[1:3].as_strided((4,), (1,), 0),
    "default_offset": lambda m, x: (x * 1)[2:].as_strided((2,), (2,)),
    "unfolded_input": lambda m, x: x.unfold(0, 3, 1).as_strided((2, 4), (1, 1)),
    "top_level": lambda m, x: m.as_strided(x, (3,), (2,), 0),
    "empty": lambda m, x: x.as_strided((0, 2), (1, 1), 6),
}


@pytest.mark.parametrize("name", AS_STRIDED)
def test_as_strided_values_and_gradients_match_torch(name):
    out = _compare(AS_STRIDED[name], _r(6))
    if out.numel():
        assert out.grad_fn.name() == "AsStridedBackward0"


def test_as_strided_is_a_view_sharing_storage_and_version():
    for m in (ad, torch):
        x = m.zeros(6, dtype=m.float64)
        v = x.as_strided((2, 2), (1, 2), 1)
        assert v._base is x and v.storage_offset() == 1 and v.stride() == (1, 2)
        v.add_(1)
        assert x.tolist() == [0, 1, 1, 1, 1, 0] and x._version == 1
        x[1] = 5.0
        assert v[0, 0].item() == 5.0


def test_write_through_an_as_strided_view_reaches_the_base_gradient():
    def fn(m, x, y):
        q = x * 1
        v = q.as_strided((2, 2), (1, 2), 1)
        v.mul_(y)
        return q * v.sum()

    out = _compare(fn, _r(6), _r(2, 2, seed=1))
    assert out.grad_fn.name() == "MulBackward0"


def test_as_strided_forward_mode_agrees_with_reverse():
    import ad.autograd.forward_ad as fwAD

    x, t = _r(6), _r(6, seed=1)
    fns = (AS_STRIDED["overlapping"], AS_STRIDED["expanded_input"], AS_STRIDED["outside_the_input"])
    for fn in fns:
        with fwAD.dual_level():
            tangent = fwAD.unpack_dual(fn(ad, fwAD.make_dual(ad.tensor(x), ad.tensor(t)))).tangent.numpy()
        jac = ad.autograd.functional.jacobian(lambda v, fn=fn: fn(ad, v), ad.tensor(x)).numpy()
        np.testing.assert_allclose(tangent.reshape(-1), jac.reshape(tangent.size, 6) @ t)
        if fn is not AS_STRIDED["outside_the_input"]:  # (there torch's rule: storage outside the input is constant)
            assert gradcheck(lambda v, fn=fn: fn(ad, v), (ad.tensor(x, requires_grad=True),))


def test_as_strided_errors_match_torch():
    # (ad's default dtype is float64: its storage is twice torch's float32 bytes, so each side uses its own)
    _same(lambda m: m.arange(6.0, dtype=m.float64).as_strided((3, 3), (1, 1), 2))
    _same(lambda m: m.arange(6.0).as_strided((3,), (1, 1)))
    _same(lambda m: m.arange(6.0).as_strided((3,), (-1,)))
    _same(lambda m: m.arange(6.0).as_strided((3,), (1,), -1))
    _same(lambda m: m.arange(6.0).as_strided((-3,), (1,), 0))


def test_as_strided_in_place_takes_the_geometry():
    def fn(m, x):
        q = x * 1
        r = q[1:]
        r.as_strided_((2, 2), (2, 1))
        assert r._base is q and r.storage_offset() == 1
        return r * q.sum()

    _compare(fn, _r(6))

    def root(m, x):
        q = x * 1
        assert q.as_strided_((2,), (1,), 2) is q
        assert q.grad_fn.name() == "AsStridedBackward1" and q.storage_offset() == 2 and q._base is None
        return q

    _compare(root, _r(6))
    _same(lambda m: m.arange(6.0, requires_grad=True).as_strided_((2,), (1,)))


def test_as_strided_past_a_root_whose_geometry_changed():
    q = ad.arange(6.0, requires_grad=True) * 1
    q.as_strided_((4,), (1,), 2)
    assert q.as_strided((2,), (1,), 3).tolist() == [3.0, 4.0]  # (inside q: recorded as usual)
    with pytest.raises(RuntimeError, match="reads storage outside the elements"):
        q.as_strided((6,), (1,), 0)  # (ad/as_strided.py: a write through it could not be recorded)
    with ad.no_grad():
        assert q.as_strided((6,), (1,), 0).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    x = ad.arange(6.0)
    view = x[1:3]
    x.as_strided_((2,), (1,), 3)  # (a view made before: its base no longer covers it)
    assert view.storage_offset() == 1 and x.storage_offset() == 3


def test_as_strided_scatter_values_match_torch_and_gradients_are_exact():
    cases = [
        (lambda m, x, s: m.as_strided_scatter(x, s, (2, 2), (1, 2), 1), (6,), (2, 2)),
        (lambda m, x, s: (x * 1)[2:8].as_strided_scatter(s, (2,), (1,)), (10,), (2,)),
        (lambda m, x, s: m.as_strided_scatter(x, s, (2, 2), (1, 1), 1), (6,), (2, 2)),  # overlap: last write wins
    ]
    for fn, xs, ss in cases:
        x, s = _r(*xs), _r(*ss, seed=1)
        # torch's input gradient is wrong (its gradcheck fails: it passes the cotangent where src was written and
        # drops it elsewhere); ad's is checked against finite differences instead
        out = _compare(fn, x, s, skip_grads=(0,) if fn is not cases[2][0] else (0, 1))
        assert out.grad_fn.name() == "AsStridedScatterBackward0"
        inputs = (ad.tensor(x, requires_grad=True), ad.tensor(s, requires_grad=True))
        assert gradcheck(lambda a, b, fn=fn: fn(ad, a, b), inputs)
    # a transposed (non-contiguous) input: torch supports it only without grad
    x = _r(2, 3)
    ours = ad.as_strided_scatter(ad.tensor(x).t(), ad.tensor([-1.0, -2.0]), (2,), (1,), 0)
    theirs = torch.as_strided_scatter(torch.tensor(x).t(), torch.tensor([-1.0, -2.0]), (2,), (1,), 0)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    _same(lambda m: m.as_strided_scatter(m.zeros(6), m.ones(3), (2, 2), (1, 2), 1))


# --- resize_, set_ and the storage methods ------------------------------------------------------------------------


def test_resize_in_place_keeps_the_prefix_and_grows():
    def fn(m):
        x = m.arange(6.0)
        x.resize_(2, 2)
        first = (x.tolist(), x.storage_offset(), x._version)
        x.resize_(3, 3)
        return first, x[:2].tolist(), x._version, x.stride()

    _same(fn)

    def view(m):
        b = m.arange(6.0)
        v = b[1:]
        v.resize_(3)
        return v.tolist(), v.storage_offset(), v._base is b

    _same(view)
    _same(lambda m: m.arange(6.0).resize_as_(m.ones(2, 2)).tolist())
    _same(lambda m: m.resize_as_(m.arange(6.0), m.ones(2, 2)).tolist())
    _same(lambda m: m.arange(3.0, requires_grad=True).resize_(2))
    _same(lambda m: (m.arange(3.0, requires_grad=True) * 1).resize_(2))
    _same(lambda m: m.arange(6.0).resize_(-1))
    b = ad.arange(6.0)
    with pytest.raises(RuntimeError, match="not resizable"):
        b[1:].resize_(7)  # (a view cannot grow its base's storage in ad: ad/storage.py)


def test_resize_out_of_place_is_a_view_of_the_same_size():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(lambda m: m.arange(3.0, requires_grad=True).resize(2))
        _same(lambda m: m.arange(6.0).resize_as(m.ones(2, 2)))
        _same(lambda m: m.arange(3.0, requires_grad=True).resize(3, 1).grad_fn.name())
    x = ad.arange(6.0, requires_grad=True)
    with pytest.warns(UserWarning, match="non-inplace resize is deprecated"):
        r = x.resize(2, 3)
    (r * ad.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6.0))


def test_set_shares_storage_and_geometry():
    def fn(m):
        y = m.arange(4.0)
        s = m.zeros(1)
        s.set_(y)
        first = (s.tolist(), s.is_set_to(y), y.is_set_to(s), s._base is None)
        s.set_(y, 1, (2,), (1,))
        second = (s.tolist(), s.is_set_to(y), s.storage_offset())
        s[0] = 9
        third = y.tolist()
        s.set_()
        return first, second, third, list(s.shape), s.is_set_to(y)

    _same(fn)
    _same(lambda m: m.zeros(1, requires_grad=True).set_(m.arange(4.0)))
    _same(lambda m: m.zeros(1, dtype=m.int64).set_(m.arange(4, dtype=m.int32)))


def test_storage_flags_and_allocation_methods():
    _same(lambda m: (m.empty(2).share_memory_().is_shared(), m.ones(2).is_shared(), m.empty(2).is_pinned()))
    _same(lambda m: m.empty(2, 3).new_empty_strided((2, 2), (1, 2)).stride())

    def output_nr(m):
        a = m.ones(3, requires_grad=True)
        q = m.ones(3, requires_grad=True)
        first, second = q.split(2)
        return a.output_nr, a.unbind()[1].output_nr, (a * 2).output_nr, first.output_nr, second.output_nr

    _same(output_nr)


def test_untyped_storage_is_the_bytes_of_the_storage():
    def fn(m):
        x = m.arange(6.0, dtype=m.float64)
        s = x.untyped_storage()
        facts = (s.nbytes(), s.size(), len(s), s.element_size(), str(s.device), s.tolist()[8:16], s.is_shared())
        ptr = s.data_ptr()
        shared = (ptr == x.data_ptr(), x[2:].untyped_storage().data_ptr() == ptr,
                  x.clone().untyped_storage().data_ptr() == ptr, x.untyped_storage() is s, m.is_storage(s))  # fmt: skip
        t = m.zeros(0, dtype=m.float64)
        t.set_(s)
        whole = (t.tolist(), t.is_set_to(x))
        t.set_(s, 2, (2,))
        part = (t.tolist(), t.storage_offset(), m.zeros(0, dtype=m.float32).set_(s).shape[0])
        s[0] = 7
        written = x[0].item() > 0
        s.fill_(0)
        # (x's version is left out: a tensor set_ to x's storage shares x's version counter in ad, ad/storage.py)
        return facts, shared, whole, part, written, x.tolist(), m.UntypedStorage(8).nbytes()

    _same(fn)


def test_pin_memory_page_locks_a_copy_where_cuda_is_available(monkeypatch):
    x = ad.arange(4.0, requires_grad=True)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":  # (asking numba for a device costs seconds: say there is none)
        monkeypatch.setattr(ad.cuda, "is_available", lambda: False)
    if not ad.cuda.is_available():
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available."):
            x.pin_memory()
        return
    pinned = x.pin_memory()
    assert pinned.is_pinned() and pinned[1:].is_pinned() and not x.is_pinned() and pinned.pin_memory() is pinned
    (pinned * 2).sum().backward()  # (a differentiable copy, as torch's)
    assert pinned.tolist() == [0.0, 1.0, 2.0, 3.0] and x.grad.tolist() == [2.0] * 4


def test_typed_storage_reads_the_storage_as_one_dtype():
    def fn(m):
        x = m.arange(6.0, dtype=m.float64)[2:]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s = x.storage()
        facts = (s.size(), len(s), str(s.dtype)[-7:], s.nbytes(), s.element_size(), str(s.device), s[0], s[5])
        shared = (s.data_ptr() == x.untyped_storage().data_ptr(), type(s.untyped()).__name__, s.is_shared())
        s[0] = 9
        return [(w.category.__name__, str(w.message)) for w in caught], facts, s.tolist(), shared, x._base.tolist()

    _same(fn)


def test_layout_and_device_queries_match_torch():
    def queries(m):
        x = m.arange(6.0).reshape(2, 3)
        devices = (x.is_mps, x.is_xpu, x.is_ipu, x.is_xla, x.is_maia, x.is_mtia, x.is_vulkan, x.is_distributed())
        layout = (x.const_data_ptr() == x.data_ptr(), x.dim_order(), x.t().dim_order(), x.to_dense() is x)
        broadcast = m.ones(2, 3).expand(4, 2, 3).dim_order()
        return devices, m.is_distributed(x), layout, x.conj_physical_() is x, m.ones(2, 1, 3).dim_order(), broadcast

    _same(queries)
    _same(lambda m: m.ones(2, 1, 3).dim_order(ambiguity_check=True))
    _same(lambda m: m.ones(2, 3).expand(4, 2, 3).dim_order(ambiguity_check=True))
    _same(lambda m: m.ones(2, 3, 4).permute(2, 0, 1).dim_order(ambiguity_check=True))


def test_embedding_renorm_rescales_rows_in_place():
    def renorm(m):
        w = m.arange(12.0).reshape(4, 3)
        out = m.embedding_renorm_(w, m.tensor([1, 1, 3]), 1.0, 2.0)
        return out is w, [round(v, 6) for v in w.reshape(-1).tolist()], w._version

    _same(renorm)
    _same(lambda m: m.embedding_renorm_(m.ones(3, 2, requires_grad=True), m.tensor([0]), 1.0, 2.0))


def test_apply_map_map2_match_torch():
    _same(lambda m: m.ones(3, requires_grad=True).apply_(lambda v: v * 2))
    _same(lambda m: m.ones(3).apply_(lambda v: v * 2).tolist())
    _same(lambda m: m.ones(3, dtype=m.int64).apply_(lambda v: v * 2.5).tolist())
    _same(lambda m: m.ones(3, dtype=m.bool).apply_(lambda v: not v).tolist())
    _same(lambda m: m.ones(3).apply_(lambda v: "a"))
    _same(lambda m: m.ones(2, 3).t().apply_(lambda v: v + 1).tolist())
    _same(lambda m: m.ones(3).map_(m.arange(3.0), lambda a, b: a + b).tolist())
    _same(lambda m: m.ones(3).map2_(m.arange(3.0), m.ones(1) * 5, lambda a, b, c: a + b * c).tolist())
    _same(lambda m: (m.ones(3) * 1).map_(m.ones(3, requires_grad=True) * 1, lambda a, b: a))
    with pytest.raises(TypeError, match="map_: expected torch.DoubleTensor for 'other'"):
        ad.ones(3).map_(ad.arange(3), lambda a, b: a)
    b = ad.zeros(2, 3)
    b[:, 1].apply_(lambda v: 7.0)  # through a view: the base sees it
    assert b.tolist() == [[0, 7, 0], [0, 7, 0]]


# --- aten forms of nn functions ----------------------------------------------------------------------------------


def _compare_outputs(fn, *arrays, grads=True):
    ours = [ad.tensor(a, requires_grad=grads) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grads) for a in arrays]
    out_a, out_t = fn(ad, *ours), fn(torch, *theirs)
    out_a = out_a if isinstance(out_a, tuple) else (out_a,)
    out_t = out_t if isinstance(out_t, tuple) else (out_t,)
    for a, t in zip(out_a, out_t):
        np.testing.assert_allclose(a.detach().numpy(), t.detach().numpy(), rtol=1e-9, atol=1e-12)
    if grads:
        ga = ad.autograd.grad((out_a[0] * out_a[0]).sum(), ours, allow_unused=True)
        gt = torch.autograd.grad((out_t[0] * out_t[0]).sum(), theirs, allow_unused=True)
        for a, t in zip(ga, gt):
            assert (a is None) == (t is None)
            if a is not None:
                np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-9, atol=1e-12)


def _rnn_params(layers, directions, gates, bias, hidden=5, features=4):
    params, seed = [], 10
    for layer in range(layers):
        for _ in range(directions):
            width = features if layer == 0 else hidden * directions
            shapes = [(gates * hidden, width), (gates * hidden, hidden)] + [(gates * hidden,)] * (2 * bias)
            for s in shapes:
                params.append(_r(*s, seed=seed))
                seed += 1
    return params


ATEN = {
    "channel_shuffle": (lambda m, x: m.channel_shuffle(x, 2), [(2, 4, 3)]),
    "native_layer_norm": (lambda m, x, w, b: m.native_layer_norm(x, (4,), w, b, 1e-5), [(2, 3, 4), (4,), (4,)]),
    "native_group_norm": (lambda m, x, w, b: m.native_group_norm(x, w, b, 2, 6, 4, 3, 1e-5), [(2, 6, 4), (6,), (6,)]),
    "native_batch_norm": (
        lambda m, x, w, b: m.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5), [(4, 3, 5), (3,), (3,)]
    ),
    "rnn_tanh_cell": (lambda m, x, h, a, b, c, d: m.rnn_tanh_cell(x, h, a, b, c, d),
                      [(3, 4), (3, 5), (5, 4), (5, 5), (5,), (5,)]),
    "rnn_relu_cell": (lambda m, x, h, a, b: m.rnn_relu_cell(x, h, a, b), [(3, 4), (3, 5), (5, 4), (5, 5)]),
    "gru_cell": (lambda m, x, h, a, b, c, d: m.gru_cell(x, h, a, b, c, d),
                 [(3, 4), (3, 5), (15, 4), (15, 5), (15,), (15,)]),
    "lstm_cell": (lambda m, x, h, c, a, b: m.lstm_cell(x, (h, c), a, b), [(3, 4), (3, 5), (3, 5), (20, 4), (20, 5)]),
    "grid_sampler": (lambda m, x, g: m.grid_sampler(x, g.tanh(), 0, 2, False), [(1, 2, 4, 4), (1, 3, 3, 2)]),
    "grid_sampler_2d": (lambda m, x, g: m.grid_sampler_2d(x, g.tanh(), 2, 1, True), [(1, 2, 4, 4), (1, 3, 3, 2)]),
    "grid_sampler_3d": (
        lambda m, x, g: m.grid_sampler_3d(x, g.tanh(), 1, 0, False), [(1, 2, 3, 3, 3), (1, 2, 2, 2, 3)]
    ),
    "affine_grid_generator": (lambda m, t: m.affine_grid_generator(t, (2, 1, 3, 4), False), [(2, 2, 3)]),
    "ctc_loss": (
        lambda m, x: m.ctc_loss(x.log_softmax(-1), m.tensor([[1, 2, 3], [2, 2, 0]]), [7, 6], [3, 2], 0, 2, False),
        [(7, 2, 5)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", ATEN)
def test_aten_forms_match_torch(name):
    fn, shapes = ATEN[name]
    _compare_outputs(fn, *[_r(*s, seed=k) for k, s in enumerate(shapes)])


@pytest.mark.parametrize(
    "name, gates, args",
    [("rnn_tanh", 1, (True, 2, 0.0, False, True, False)), ("rnn_relu", 1, (False, 2, 0.0, False, False, True)),
     ("gru", 3, (True, 2, 0.0, False, True, False)), ("lstm", 4, (True, 1, 0.0, False, True, False))],
)  # fmt: skip
def test_recurrent_layers_as_functions_match_torch(name, gates, args):
    has_biases, layers, _, _, bidirectional, batch_first = args
    directions = 2 if bidirectional else 1
    params = _rnn_params(layers, directions, gates, has_biases)
    x = _r(3, 6, 4) if batch_first else _r(6, 3, 4)
    h = _r(layers * directions, 3, 5, seed=1)
    c = _r(layers * directions, 3, 5, seed=2)

    def fn(m, x, h, c, *p):
        return getattr(m, name)(x, (h, c) if name == "lstm" else h, list(p), *args)

    _compare_outputs(fn, x, h, c, *params)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_embedding_bag_outputs_match_torch(mode):
    table, idx = _r(10, 3), np.array([1, 2, 4, 5, 4, 3, 2, 9])
    # (offsets, include_last_offset, padding_idx): torch takes padding_idx by position only
    cases = [(np.array([0, 4]), False, None), (np.array([0, 4, 8]), True, None), (np.array([0, 4, 4]), False, None),
             (np.array([0, 4]), False, 4), (np.array([0, 3, 8]), True, -8)]  # fmt: skip
    for dtype, requires_grad in ((np.float64, True), (np.float32, False)):
        for offsets, last, padding in cases:
            results = []
            for lib in (ad, torch):
                weight = lib.tensor(table.astype(dtype), requires_grad=requires_grad)
                args = (lib.tensor(offsets), False, mode, False, None, last, padding)
                out = lib.embedding_bag(weight, lib.tensor(idx), *args)
                grad = None
                if requires_grad:
                    (grad,) = (ad if lib is ad else torch).autograd.grad((out[0] * out[0]).sum(), [weight])
                    grad = grad.numpy()
                results.append((out[0].detach().numpy(), [t.tolist() for t in out[1:]], grad))
            (va, aux_a, ga), (vt, aux_t, gt) = results
            np.testing.assert_allclose(va, vt, rtol=1e-6)
            assert aux_a == aux_t
            if requires_grad:
                np.testing.assert_allclose(ga, gt, rtol=1e-9)
    with pytest.raises(TypeError, match="argument 'offsets'"):
        ad.embedding_bag(ad.tensor(table), ad.tensor(idx.reshape(2, 4)), None)


def test_native_batch_norm_running_stats_and_eval_outputs():
    for training in (True, False):
        x = _r(4, 3, 5)
        outs = []
        for m in (ad, torch):
            rm, rv = m.zeros(3, dtype=m.float64), m.ones(3, dtype=m.float64)
            res = m.native_batch_norm(m.tensor(x), None, None, rm, rv, training, 0.1, 1e-5)
            outs.append([r.numpy() for r in (*res, rm, rv)])
        for a, t in zip(*outs):
            assert a.shape == t.shape
            np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-12)


def test_dropout_forms_follow_torch():
    x = ad.ones(2000)
    out, mask = ad.native_dropout(x, 0.3, True)
    assert mask.dtype == ad.bool and abs(mask.float().mean().item() - 0.7) < 0.05
    np.testing.assert_allclose(out.numpy()[mask.numpy()], 1 / 0.7)
    assert not out.numpy()[~mask.numpy()].any()
    out, mask = ad.native_dropout(x, 0.3, False)
    assert mask.numpy().all() and (out.numpy() == 1).all()
    y = ad.ones(4, 6, 3)
    z = ad.feature_dropout(y, 0.5, True)
    assert set(np.unique(z.numpy())) <= {0.0, 2.0} and (z.numpy() == z.numpy()[..., :1]).all()
    assert ad.feature_dropout_(y, 0.5, True) is y and ad.feature_dropout(y, 0.5, False) is y
    y = ad.ones(100)
    assert ad.dropout_(y, 0.5, True) is y and set(np.unique(y.numpy())) <= {0.0, 2.0}
    assert ad.alpha_dropout_(y, 0.5, True) is y
    assert ad.feature_alpha_dropout_(ad.ones(2, 3, 4), 0.5, True).shape == (2, 3, 4)


# --- segment_reduce ---------------------------------------------------------------------------------------------


def _segment_outcome(lib, data, reduce, **kwargs):
    """Values and the gradient of a weighted sum of the finite values of ``lib.segment_reduce``."""
    x = lib.tensor(data, requires_grad=True)
    args = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    try:
        out = lib.segment_reduce(x, reduce, **args)
    except Exception as e:  # noqa: BLE001 - compared with torch's
        return type(e).__name__, str(e)
    finite = np.isfinite(out.detach().numpy())
    w = np.random.default_rng(0).standard_normal(tuple(out.shape)) * finite
    loss = (lib.where(lib.tensor(finite), out, 0.0) * lib.tensor(w)).sum()
    (g,) = (ad if lib is ad else torch).autograd.grad(loss, [x])
    return np.round(out.detach().numpy(), 10).tolist(), np.round(g.numpy(), 10).tolist()


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod", "amax", "amin"])
def test_segment_reduce_matches_torch(reduce):
    data, lengths = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.array([2, 0, 3, 1])  # (an empty segment)
    cases = [
        (data, {"lengths": lengths}),
        (data, {"lengths": lengths, "initial": 10.0}),
        (data, {"offsets": np.array([0, 2, 2, 5, 6])}),
        (np.array([1.0, 3.0, 3.0, 0.0]), {"lengths": np.array([4])}),  # (a tie for max, a zero for prod)
        (_r(2, 6, 3), {"lengths": np.array([[2, 4], [3, 3]]), "axis": 1}),
    ]
    for values, kwargs in cases:
        ours, theirs = _segment_outcome(ad, values, reduce, **kwargs), _segment_outcome(torch, values, reduce, **kwargs)
        assert str(ours) == str(theirs)


def test_segment_reduce_errors_match_torch():
    data = np.arange(6.0)
    cases = [("sum", {"lengths": np.array([2, 2])}), ("sum", {}), ("foo", {"lengths": np.array([6])}),
             ("sum", {"indices": np.array([0, 1])}), ("sum", {"lengths": np.array([6]), "axis": 1})]  # fmt: skip
    for reduce, kwargs in cases:
        data_ = _r(2, 6) if kwargs.get("axis") else data
        ours, theirs = _segment_outcome(ad, data_, reduce, **kwargs), _segment_outcome(torch, data_, reduce, **kwargs)
        assert ours == theirs


# --- Module and nn.attention -------------------------------------------------------------------------------------


def test_module_compile_to_empty_share_memory():
    m = ad.nn.Linear(3, 2)
    eager = m(ad.ones(4, 3))
    assert m.compile() is None and m.__dict__["_compiled_call_impl"] is not None
    for _ in range(3):  # records, then replays: the same values and gradients
        out = m(ad.ones(4, 3))
        np.testing.assert_allclose(out.detach().numpy(), eager.detach().numpy())
    out.sum().backward()
    np.testing.assert_allclose(m.bias.grad.numpy(), [4.0, 4.0])
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    m(ad.ones(1, 3))
    assert seen == [(1, 2)]  # (hooks run inside the compiled call, as torch's Module.compile)
    weight = m.weight
    assert m.to_empty(device="cpu") is m and m.weight is weight and m.weight.shape == (2, 3)
    seq = ad.nn.Sequential(ad.nn.Linear(2, 2), ad.nn.BatchNorm1d(2))
    assert seq.to_empty(device="cpu", recurse=False) is seq
    assert seq.share_memory() is seq and all(p.is_shared() for p in seq.parameters())
    assert ad.nn.Module.call_super_init is torch.nn.Module.call_super_init is False


def test_sdpa_kernel_accepts_backends_and_checks_its_argument():
    from torch.nn.attention import SDPBackend as TorchBackend

    from ad.nn.attention import SDPBackend, sdpa_kernel

    assert {k: int(v) for k, v in SDPBackend.__members__.items()} == {
        k: int(v.value) for k, v in TorchBackend.__members__.items()
    }
    q = ad.tensor(_r(1, 2, 3, 4))
    expected = ad.nn.functional.scaled_dot_product_attention(q, q, q).numpy()
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
        assert ad.nn.attention.current_backends() == [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]
        np.testing.assert_array_equal(ad.nn.functional.scaled_dot_product_attention(q, q, q).numpy(), expected)
    assert SDPBackend.MATH in ad.nn.attention.current_backends() and str(SDPBackend.MATH) == "SDPBackend.MATH"
    for bad in ("math", 5, (SDPBackend.MATH,)):
        _same(lambda m, bad=bad: m.nn.attention.sdpa_kernel(bad).__enter__())


def _non_full_hook_record(m):
    """What torch's deprecated non-full backward hooks see and warn, for module library ``m``."""

    class Square(m.nn.Module):
        def forward(self, x):
            return x * x

    class Apply(m.nn.Module):
        def forward(self, x):
            return self.f(x)

    record, seen = [], []
    square = Square()
    handle = square.register_backward_hook(
        lambda mod, gi, go: seen.append(([None if g is None else g.tolist() for g in gi], [g.tolist() for g in go]))
    )
    x = m.tensor([1.0, 2.0], requires_grad=True)
    for arg in (x * 1, x):  # (a leaf input: its node is not the input's, so torch warns)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            square(arg).sum().backward()
        record.append([(w.category.__name__, str(w.message)) for w in caught])
    record.append(seen)
    handle.remove()
    square(x * 1).sum().backward()
    record.append(len(seen))
    with pytest.raises(RuntimeError) as mixed:
        square.register_full_backward_hook(lambda *a: None)
    record.append(str(mixed.value))
    for f in (lambda v: {"a": v * 2}, lambda v: (v * 2, v * 3), lambda v: (v * 2).exp()):
        module = Apply()
        module.f = f
        module.register_backward_hook(lambda *a: None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module(x * 1)
        record.append([str(w.message) for w in caught])
    linear, sizes = m.nn.Linear(2, 2), []
    linear.register_backward_hook(lambda mod, gi, go: sizes.append(len(gi)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear(m.ones(1, 2, dtype=linear.weight.dtype)).sum().backward()
    record.append(sizes)
    return record


def test_register_backward_hook_sees_the_output_node_and_warns_as_torch():
    assert _non_full_hook_record(ad) == _non_full_hook_record(torch)
    full = ad.nn.Linear(2, 2)
    full.register_full_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full backward hooks"):
        full.register_backward_hook(lambda *a: None)
    replacing = ad.nn.Linear(2, 2)
    replacing.register_backward_hook(lambda mod, gi, go: tuple(None if g is None else 2 * g for g in gi))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = replacing(ad.ones(1, 2)).sum()
    out.backward()  # (the hook's grad_input replaces the node's: tests/test_engine_gaps20.py against torch)
    np.testing.assert_array_equal(replacing.bias.grad.numpy(), [2.0, 2.0])
