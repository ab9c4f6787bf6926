"""Semantics of grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled``.

Covers the context managers and decorators, nesting, restoration on exceptions, thread locality, what ops
record under each mode, and in-place updates of leaves (the optimizer step). Checked against torch 2.13 with
``ad`` aliased to ``torch`` (default dtype float64, which is ``ad``'s default by design).

Where to start: ``test_no_grad_context_records_nothing``.
"""

import threading

import numpy as np
import pytest

import ad

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation"


def _np(t):
    return t.detach().numpy()


def _leaf(*values):
    return ad.tensor(np.array(values, dtype=np.float64), requires_grad=True)


@pytest.fixture(autouse=True)
def _grad_mode_restored():
    # A test that fails half way must not leave grad mode off for the next one.
    assert ad.is_grad_enabled()
    yield
    ad.set_grad_enabled(True)


def test_grad_enabled_by_default():
    assert ad.is_grad_enabled() is True


# --- context managers ---------------------------------------------------------------------------------------


def test_no_grad_context_records_nothing():
    x = _leaf(1.0, 2.0)
    with ad.no_grad():
        assert ad.is_grad_enabled() is False
        y = x * x
    assert ad.is_grad_enabled() is True
    assert y.requires_grad is False
    assert y.grad_fn is None
    assert y.is_leaf
    np.testing.assert_allclose(_np(y), [1.0, 4.0])


def test_ops_after_no_grad_record_again():
    x = _leaf(1.0, 2.0)
    with ad.no_grad():
        pass
    y = x * x
    assert y.requires_grad
    assert y.grad_fn is not None


def test_no_grad_result_is_a_constant_in_later_graphs():
    x = _leaf(1.0, 2.0)
    with ad.no_grad():
        c = x * 3.0
    (x * c).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 6.0])


def test_enable_grad_inside_no_grad():
    x = _leaf(1.0, 2.0)
    with ad.no_grad():
        with ad.enable_grad():
            assert ad.is_grad_enabled()
            y = x * x
        assert ad.is_grad_enabled() is False
        z = x * x
    assert y.requires_grad
    assert y.grad_fn is not None
    assert z.requires_grad is False


def test_set_grad_enabled_context():
    x = _leaf(1.0, 2.0)
    with ad.set_grad_enabled(False):
        assert ad.is_grad_enabled() is False
        y = x * 2.0
        with ad.set_grad_enabled(True):
            assert ad.is_grad_enabled()
            z = x * 2.0
        assert ad.is_grad_enabled() is False
    assert ad.is_grad_enabled()
    assert y.requires_grad is False
    assert z.requires_grad


def test_set_grad_enabled_as_a_function_call_sets_the_mode():
    ad.set_grad_enabled(False)
    try:
        assert ad.is_grad_enabled() is False
        y = _leaf(1.0) * 2.0
        assert y.requires_grad is False
    finally:
        ad.set_grad_enabled(True)
    assert ad.is_grad_enabled()


def test_deep_nesting_restores_each_level():
    states = []
    with ad.no_grad():
        states.append(ad.is_grad_enabled())
        with ad.enable_grad():
            states.append(ad.is_grad_enabled())
            with ad.set_grad_enabled(False):
                states.append(ad.is_grad_enabled())
                with ad.no_grad():
                    states.append(ad.is_grad_enabled())
                states.append(ad.is_grad_enabled())
            states.append(ad.is_grad_enabled())
        states.append(ad.is_grad_enabled())
    states.append(ad.is_grad_enabled())
    assert states == [False, True, False, False, False, True, False, True]


def test_mode_restored_after_exception():
    with pytest.raises(KeyError):
        with ad.no_grad():
            raise KeyError("inside")
    assert ad.is_grad_enabled()
    with ad.no_grad():
        with pytest.raises(KeyError):
            with ad.enable_grad():
                raise KeyError("inside")
        assert ad.is_grad_enabled() is False
    assert ad.is_grad_enabled()


def test_enable_grad_when_already_enabled_is_harmless():
    with ad.enable_grad():
        assert ad.is_grad_enabled()
    assert ad.is_grad_enabled()


# --- decorators ---------------------------------------------------------------------------------------------


def test_no_grad_decorator():
    @ad.no_grad()
    def double(t):
        """Doubles t."""
        assert ad.is_grad_enabled() is False
        return t * 2.0

    y = double(_leaf(1.0, 2.0))
    assert y.requires_grad is False
    np.testing.assert_allclose(_np(y), [2.0, 4.0])
    assert ad.is_grad_enabled()
    assert double.__name__ == "double"
    assert double.__doc__ == "Doubles t."


def test_no_grad_decorator_without_parentheses():
    @ad.no_grad
    def double(t):
        return t * 2.0

    assert double(_leaf(1.0)).requires_grad is False
    assert ad.is_grad_enabled()


def test_enable_grad_decorator_inside_no_grad():
    @ad.enable_grad()
    def double(t):
        return t * 2.0

    x = _leaf(1.0, 2.0)
    with ad.no_grad():
        y = double(x)
        assert ad.is_grad_enabled() is False
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 2.0])


def test_set_grad_enabled_decorator():
    @ad.set_grad_enabled(False)
    def double(t):
        return t * 2.0

    assert double(_leaf(1.0)).requires_grad is False
    assert ad.is_grad_enabled()


def test_decorated_function_restores_mode_after_exception():
    @ad.no_grad()
    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail()
    assert ad.is_grad_enabled()


# --- threads ------------------------------------------------------------------------------------------------


def test_grad_mode_is_thread_local():
    entered = threading.Event()
    checked = threading.Event()
    seen = {}

    def worker():
        with ad.no_grad():
            entered.set()
            checked.wait(timeout=10)
            seen["worker"] = ad.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(timeout=10)
    seen["main"] = ad.is_grad_enabled()
    y = _leaf(1.0) * 2.0
    checked.set()
    thread.join(timeout=10)
    assert seen == {"main": True, "worker": False}
    assert y.requires_grad


def test_fast_paths_follow_grad_mode_on_the_current_tape():
    """The forward fast paths test grad mode and the tape's thread in one comparison (``Tape.is_current``, kept by
    every grad-mode change): under no_grad, ops on results of the current tape append no row; enable_grad inside
    records again; after no_grad the same tape takes rows, and the gradient is right."""
    xs = np.array([0.5, 1.5])
    x = _leaf(*xs)
    y = x * 2.0
    tape = y._tape
    rows = tape.nrows
    with ad.no_grad():
        z = y.sin() * y + 1.0
        assert tape.nrows == rows and not z.requires_grad
        with ad.enable_grad():
            inner = y.tanh()
        assert inner.requires_grad and inner._tape is tape and tape.nrows == rows + 1
        w = y * y - y
        assert tape.nrows == rows + 1 and not w.requires_grad
    np.testing.assert_allclose(_np(z), np.sin(2 * xs) * 2 * xs + 1.0)
    np.testing.assert_allclose(_np(w), 4 * xs**2 - 2 * xs)
    u = (y.sin() * y + 1.0).sum()
    assert u._tape is tape and tape.nrows > rows + 1
    u.backward()
    np.testing.assert_allclose(_np(x.grad), 2 * (np.cos(2 * xs) * 2 * xs + np.sin(2 * xs)))


def test_no_grad_in_another_thread_leaves_this_threads_recording():
    entered = threading.Event()
    checked = threading.Event()

    def worker():
        with ad.no_grad():
            entered.set()
            checked.wait(timeout=10)

    x = _leaf(0.25, 0.75)
    y = x * 3.0
    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(timeout=10)
    z = (y.exp() * y).sum()  # the fast paths, on this thread's current tape, while the worker is in no_grad
    checked.set()
    thread.join(timeout=10)
    assert z.requires_grad and z._tape is y._tape
    z.backward()
    w = 3 * np.array([0.25, 0.75])
    np.testing.assert_allclose(_np(x.grad), 3 * (np.exp(w) * w + np.exp(w)))


def test_new_thread_starts_with_grad_enabled():
    seen = {}

    def worker():
        seen["enabled"] = ad.is_grad_enabled()
        seen["requires_grad"] = (_leaf(1.0) * 2.0).requires_grad

    with ad.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=10)
    assert seen == {"enabled": True, "requires_grad": True}


# --- backward and grad under no_grad ------------------------------------------------------------------------


def test_backward_under_no_grad_still_computes_gradients():
    x = _leaf(1.0, 2.0)
    y = (x * x).sum()
    with ad.no_grad():
        y.backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])


def test_create_graph_under_no_grad_still_builds_graph():
    x = _leaf(1.0, 2.0)
    y = (x**3).sum()
    with ad.no_grad():
        (g,) = ad.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    (g2,) = ad.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(_np(g2), [6.0, 12.0])


# --- leaves created or updated under no_grad ----------------------------------------------------------------


def test_leaf_created_under_no_grad_can_require_grad():
    with ad.no_grad():
        p = ad.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert p.requires_grad
    assert p.is_leaf
    (p * p).sum().backward()
    np.testing.assert_allclose(_np(p.grad), [2.0, 4.0])


def test_sgd_step_in_place_under_no_grad():
    p = _leaf(1.0, 2.0)
    (p * p).sum().backward()
    with ad.no_grad():
        p -= 0.1 * p.grad
    assert p.is_leaf
    assert p.requires_grad
    assert p.grad_fn is None
    np.testing.assert_allclose(_np(p), [0.8, 1.6])
    p.grad = None
    (p * p).sum().backward()
    np.testing.assert_allclose(_np(p.grad), [1.6, 3.2])


@pytest.mark.parametrize(
    "update, expected",
    [
        (lambda p: p.add_(1.0), [2.0, 3.0]),
        (lambda p: p.mul_(2.0), [2.0, 4.0]),
        (lambda p: p.zero_(), [0.0, 0.0]),
    ],
    ids=["add_", "mul_", "zero_"],
)
def test_in_place_methods_on_leaf_under_no_grad(update, expected):
    p = _leaf(1.0, 2.0)
    with ad.no_grad():
        out = update(p)
    assert out is p
    assert p.is_leaf
    assert p.requires_grad
    np.testing.assert_allclose(_np(p), expected)


def test_in_place_sub_on_leaf_requiring_grad_raises():
    p = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match=LEAF_INPLACE):
        p -= 1.0
    np.testing.assert_allclose(_np(p), [1.0, 2.0])


@pytest.mark.parametrize(
    "update",
    [lambda p: p.add_(1.0), lambda p: p.mul_(2.0), lambda p: p.zero_()],
    ids=["add_", "mul_", "zero_"],
)
def test_in_place_methods_on_leaf_requiring_grad_raise(update):
    p = _leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match=LEAF_INPLACE):
        update(p)
    np.testing.assert_allclose(_np(p), [1.0, 2.0])
    assert p.grad_fn is None


def test_in_place_on_leaf_without_grad_is_allowed():
    c = ad.tensor(np.array([1.0, 2.0]))
    c.add_(1.0)
    c -= 0.5
    np.testing.assert_allclose(c.numpy(), [1.5, 2.5])
    assert c.requires_grad is False


def test_in_place_on_nonleaf_is_recorded():
    x = _leaf(1.0, 2.0)
    y = x * 2.0
    y.add_(1.0)
    assert y.requires_grad
    assert not y.is_leaf
    (y * y).sum().backward()
    # y = 2x + 1 ; d/dx sum(y^2) = 2 y * 2
    np.testing.assert_allclose(_np(x.grad), [12.0, 20.0])
