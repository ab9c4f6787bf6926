"""``F.multi_margin_loss``, ``F.soft_margin_loss`` (and their modules) against finite differences and analytic
values, and the distribution-free properties of ``F.gumbel_softmax`` (torch's values, gradients and errors for
the losses: ``test_parity_sweep``'s nn_functional section)."""

import math

import numpy as np
import pytest

import ad
from ad.autograd import gradcheck, gradgradcheck

F = ad.nn.functional


def _inputs(shape, seed):
    # away from the hinges' kinks: finite differences straddling one would disagree with either side
    return ad.tensor(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), requires_grad=True)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_multi_margin_loss_finite_differences(p, weighted, reduction):
    x = _inputs((3, 4), 7)
    target = ad.tensor([0, 3, 1])
    weight = ad.tensor([0.5, 1.0, 2.0, 0.25]) if weighted else None
    assert gradcheck(lambda x: F.multi_margin_loss(x, target, p, 0.4, weight, reduction=reduction), (x,))
    if p == 2:
        assert gradgradcheck(lambda x: F.multi_margin_loss(x, target, p, 0.4, weight, reduction=reduction), (x,))


def test_multi_margin_loss_value():
    x = ad.tensor([[0.1, 0.8, 0.3], [0.2, 0.2, 0.9]])
    loss = F.multi_margin_loss(x, ad.tensor([1, 0]), reduction="none")
    # row 0: max(0, 1 - 0.8 + 0.1) + max(0, 1 - 0.8 + 0.3); row 1: (1 - 0.2 + 0.2) + (1 - 0.2 + 0.9)
    np.testing.assert_allclose(loss.numpy(), [(0.3 + 0.5) / 3, (1.0 + 1.7) / 3])
    squared = F.multi_margin_loss(x, ad.tensor([1, 0]), p=2, weight=ad.tensor([2.0, 1.0, 1.0]), reduction="sum")
    np.testing.assert_allclose(squared.item(), (0.09 + 0.25) / 3 + 2.0 * (1.0 + 1.7**2) / 3)
    module = ad.nn.MultiMarginLoss(p=2, weight=ad.tensor([2.0, 1.0, 1.0]), reduction="sum")
    np.testing.assert_allclose(module(x, ad.tensor([1, 0])).item(), squared.item())


def test_soft_margin_loss_finite_differences_and_value():
    x = _inputs((2, 3), 3)
    y = ad.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    assert gradcheck(lambda x: F.soft_margin_loss(x, y), (x,))
    assert gradgradcheck(lambda x: F.soft_margin_loss(x, y, reduction="sum"), (x,))
    expected = np.log1p(np.exp(-y.numpy() * x.detach().numpy()))
    np.testing.assert_allclose(F.soft_margin_loss(x, y, reduction="none").detach().numpy(), expected)
    np.testing.assert_allclose(ad.nn.SoftMarginLoss()(x, y).item(), expected.mean())
    # no overflow: log(1 + exp(800)) is 800
    assert F.soft_margin_loss(ad.tensor([-800.0]), ad.tensor([1.0])).item() == 800.0


def test_gumbel_softmax_soft_sample():
    logits = _inputs((4, 5), 1)
    ad.manual_seed(11)
    y = F.gumbel_softmax(logits, tau=0.7, dim=0)
    ad.manual_seed(11)
    again = F.gumbel_softmax(logits, tau=0.7, dim=0)
    np.testing.assert_array_equal(y.detach().numpy(), again.detach().numpy())  # reproducible under manual_seed
    np.testing.assert_allclose(y.detach().numpy().sum(0), np.ones(5))
    assert np.all(y.detach().numpy() > 0)
    # the same noise (the same seed, one draw of exponential_ of the logits' shape) through softmax by hand
    ad.manual_seed(11)
    gumbels = -ad.log(ad.empty_like(logits).exponential_())
    by_hand = ad.softmax((logits + gumbels) / 0.7, 0)
    w = ad.tensor(np.cos(np.arange(20.0)).reshape(4, 5))
    (g,) = ad.autograd.grad((y * w).sum(), logits)
    (g_hand,) = ad.autograd.grad((by_hand * w).sum(), logits)
    np.testing.assert_allclose(g.numpy(), g_hand.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y.detach().numpy(), by_hand.detach().numpy(), rtol=1e-12)


def test_gumbel_softmax_hard_is_one_hot_with_the_soft_gradient():
    logits = _inputs((3, 6), 2)
    w = ad.tensor(np.sin(np.arange(18.0)).reshape(3, 6))
    ad.manual_seed(5)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    ad.manual_seed(5)
    soft = F.gumbel_softmax(logits, tau=0.5)
    h = hard.detach().numpy()
    np.testing.assert_array_equal(np.sort(h, -1), np.tile([0, 0, 0, 0, 0, 1.0], (3, 1)))
    np.testing.assert_array_equal(h.argmax(-1), soft.detach().numpy().argmax(-1))
    (g_hard,) = ad.autograd.grad((hard * w).sum(), logits)
    (g_soft,) = ad.autograd.grad((soft * w).sum(), logits)
    np.testing.assert_allclose(g_hard.numpy(), g_soft.numpy(), rtol=1e-12, atol=1e-14)


def test_gumbel_softmax_eps_is_deprecated():
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        y = F.gumbel_softmax(ad.zeros(2, 3), eps=1e-3)
    assert math.isclose(y.sum().item(), 2.0)
