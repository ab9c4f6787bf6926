"""Convolutions' fast paths against torch and against the differentiable (composite) form, and the memory
of a graph with Python-swept rows (custom Functions) freed by reference counting, without the collector."""

import gc
import weakref

import numpy as np
import pytest

import ad


class _Double(ad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_function_graph_freed_without_gc():
    """A custom Function's record and its outputs form no reference cycle: dropping the loss frees the graph
    (and its arena) at once, as torch's, so a training loop reuses its buffers instead of mapping new ones."""
    x = ad.randn(64, requires_grad=True)
    gc.disable()
    try:
        y = _Double.apply(x)
        loss = ad.tanh(y).sum()
        record = weakref.ref(y._ctx)
        arena = weakref.ref(y._tape)
        del y
        loss.backward()
        assert record() is not None  # kept by the loss's graph until the loss goes
        del loss
        assert record() is None and arena() is None
    finally:
        gc.enable()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh(2 * x.detach().numpy()) ** 2))


def test_function_dropped_output_gets_zero_cotangent():
    """An output dropped by the user (held weakly by the record) reaches backward as zeros, as torch's."""

    class _Split(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3, x * 5

        @staticmethod
        def backward(ctx, g0, g1):
            return 3 * g0 + 5 * g1

    x = ad.randn(5, requires_grad=True)
    a, b = _Split.apply(x)
    del b
    gc.collect()
    a.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(5, 3.0))


if __name__ == "__main__":
    pytest.main([__file__])
