"""Error paths: torch's exception classes and wording, and the rule that a failed call changes no ``.grad``.

Op errors (shapes that don't match or broadcast) and autograd errors (freed graphs, bad gradients, in-place
modification of saved values). Each ``match`` is a short distinctive substring of torch 2.13's message,
checked with ``ad`` aliased to ``torch`` (default dtype float64, as in ``ad``). Type promotion between float32
and float64 follows numpy in ``ad`` by design, so dtype mixes are not errors here and are not tested as such.

The atomicity rule: a call that raises leaves ``.grad`` of every leaf as it was before the call. torch checks
the arguments before it runs anything, and accumulates into a leaf only once all of its incoming gradients are
summed, so the cases below hold for torch too.

Where to start: ``test_matmul_incompatible_shapes``; the atomicity tests follow the op errors.
"""

import numpy as np
import pytest

import ad

FREED = "Trying to backward through the graph a second time"


def _np(t):
    return t.detach().numpy()


def _leaf(*values):
    return ad.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def _ones(*shape, requires_grad=False):
    return ad.tensor(np.ones(shape), requires_grad=requires_grad)


# --- op errors ----------------------------------------------------------------------------------------------


def test_matmul_incompatible_shapes():
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _ones(2, 3) @ _ones(2, 3)


def test_mm_incompatible_shapes():
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        ad.mm(_ones(2, 3), _ones(4, 2))


@pytest.mark.parametrize(
    "a, b",
    [((4, 2, 3), (4, 2, 3)), ((3,), (2,)), ((2, 3), (2,)), ((2,), (3, 2))],
    ids=["batched", "vector_vector", "matrix_vector", "vector_matrix"],
)
def test_matmul_incompatible_shapes_other_ranks(a, b):
    # torch's wording differs by rank; the class is always RuntimeError (numpy's ValueError must not leak).
    with pytest.raises(RuntimeError):
        _ones(*a) @ _ones(*b)


def test_matmul_incompatible_shapes_with_grad_records_nothing():
    x = _ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        x @ x
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.full((2, 3), 2.0))


@pytest.mark.parametrize(
    "op",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b, lambda a, b: b * a],
    ids=["add", "sub", "mul", "div", "rmul"],
)
def test_broadcast_failure(op):
    with pytest.raises(RuntimeError, match="must match the size of tensor b"):
        op(_ones(2, 3, requires_grad=True), _ones(4))


def test_broadcast_failure_names_the_dimension():
    with pytest.raises(RuntimeError, match="at non-singleton dimension 1"):
        _ones(2, 3) + _ones(2)


def test_reshape_to_wrong_size():
    with pytest.raises(RuntimeError, match="is invalid for input of size 6"):
        _ones(2, 3, requires_grad=True).reshape(4)


def test_reduction_over_missing_dim_raises_index_error():
    with pytest.raises(IndexError, match="Dimension out of range"):
        _ones(2, 3, requires_grad=True).sum(dim=2)


# --- autograd errors ----------------------------------------------------------------------------------------


def test_use_of_value_modified_in_place_after_it_was_saved():
    x = _leaf(1.0, 2.0)
    y = x * 2.0
    z = y.sin()  # saves y
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    assert x.grad is None


def test_leaf_modified_under_no_grad_after_it_was_saved():
    p = _leaf(1.0, 2.0)
    y = (p * p).sum()
    with ad.no_grad():
        p.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    assert p.grad is None


def test_hook_changing_the_gradient_shape_raises():
    x = _leaf(1.0, 2.0)
    x.register_hook(lambda g: ad.tensor(np.ones(3)))
    with pytest.raises(RuntimeError, match="has changed the size of value"):
        (x * x).sum().backward()
    assert x.grad is None


# --- a failed call changes no .grad -------------------------------------------------------------------------


def _trained_leaves():
    x = _leaf(1.0, 2.0)
    w = _leaf(3.0, 4.0)
    (x * w).sum().backward()
    return x, w


def _assert_unchanged(x, w):
    np.testing.assert_allclose(_np(x.grad), [3.0, 4.0])
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])


def test_wrong_gradient_shape_leaves_grad_unchanged():
    x, w = _trained_leaves()
    y = x * w
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        y.backward(ad.tensor(np.ones(3)))
    _assert_unchanged(x, w)


def test_missing_gradient_leaves_grad_unchanged():
    x, w = _trained_leaves()
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * w).backward()
    _assert_unchanged(x, w)


def test_error_in_second_output_leaves_grad_unchanged():
    # The first output alone would be fine; the call fails as a whole. (The second output has one element only
    # because torch 2.13 builds this message with list.index, which compares tensors with ==.)
    x, w = _trained_leaves()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        ad.autograd.backward(
            [(x * w).sum(), (x * w).sum(dim=0, keepdim=True)], [None, ad.tensor(np.ones((1, 1)))]
        )
    _assert_unchanged(x, w)


def test_grad_tensors_count_mismatch_leaves_grad_unchanged():
    x, w = _trained_leaves()
    with pytest.raises(RuntimeError, match="got 2 tensors and 1 gradients"):
        ad.autograd.backward([(x * w).sum(), (x * 3.0).sum()], [ad.tensor(1.0)])
    _assert_unchanged(x, w)


def test_empty_inputs_leaves_grad_unchanged():
    x, w = _trained_leaves()
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * w).sum().backward(inputs=[])
    _assert_unchanged(x, w)


def test_freed_graph_with_a_branch_that_saves_nothing_leaves_grad_unchanged():
    # sum(x) + sum(sin x): the sum branch could run, the sin branch cannot: x.grad must not get sum's part.
    x = _leaf(1.0, 2.0)
    y = x.sin().sum() + x.sum()
    y.backward()
    before = _np(x.grad).copy()
    np.testing.assert_allclose(before, np.cos([1.0, 2.0]) + 1.0)
    with pytest.raises(RuntimeError, match=FREED):
        y.backward()
    np.testing.assert_allclose(_np(x.grad), before)


@pytest.mark.parametrize("freed_first", [True, False])
def test_freed_graph_among_several_outputs_leaves_every_grad_unchanged(freed_first):
    a = _leaf(1.0, 2.0)
    b = _leaf(3.0, 4.0)
    kept = a.sin().sum()
    freed = b.sin().sum()
    kept.backward(retain_graph=True)
    freed.backward()
    outputs = [freed, kept] if freed_first else [kept, freed]
    with pytest.raises(RuntimeError, match=FREED):
        ad.autograd.backward(outputs)
    np.testing.assert_allclose(_np(a.grad), np.cos([1.0, 2.0]))
    np.testing.assert_allclose(_np(b.grad), np.cos([3.0, 4.0]))


def test_unused_input_in_grad_leaves_grad_unchanged():
    x, w = _trained_leaves()
    u = _leaf(5.0)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        ad.autograd.grad((x * w).sum(), [x, u])
    _assert_unchanged(x, w)
    assert u.grad is None


def test_grad_setter_with_wrong_shape_leaves_grad_unchanged():
    x, w = _trained_leaves()
    with pytest.raises(RuntimeError, match="attempting to assign a gradient of size"):
        x.grad = ad.tensor(np.ones(5))
    _assert_unchanged(x, w)


def test_backward_still_works_after_a_failed_call():
    x, w = _trained_leaves()
    y = (x * w).sum()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        y.backward(ad.tensor(np.ones(2)))
    y.backward()
    np.testing.assert_allclose(_np(x.grad), [6.0, 8.0])
    np.testing.assert_allclose(_np(w.grad), [2.0, 4.0])
