"""A torch training loop ported by renaming ``torch`` to ``ad``: an LSTM and a linear head, a DataLoader over a
TensorDataset, NAdam with a StepLR schedule, a checkpointed head, gradient clipping; every loss equals torch's
(float64, same initial weights). The pieces are tested one by one elsewhere; this checks that they compose."""

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")


def _train(L, lstm_state, head_state, x, y):
    lstm = L.nn.LSTM(3, 4, num_layers=2, batch_first=True, dtype=L.float64)
    head = L.nn.Linear(4, 2, dtype=L.float64)
    lstm.load_state_dict({k: L.tensor(v) for k, v in lstm_state.items()})
    head.load_state_dict({k: L.tensor(v) for k, v in head_state.items()})
    params = list(lstm.parameters()) + list(head.parameters())
    opt = L.optim.NAdam(params, lr=1e-2)
    sched = L.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    data = L.utils.data.TensorDataset(L.tensor(x), L.tensor(y))
    losses = []
    for _ in range(3):
        for xb, yb in L.utils.data.DataLoader(data, batch_size=8):
            opt.zero_grad()
            out, _ = lstm(xb)
            pred = L.utils.checkpoint.checkpoint(head, out[:, -1], use_reentrant=False)
            loss = L.nn.functional.mse_loss(pred, yb)
            loss.backward()
            L.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(loss.item())
        sched.step()
    return np.array(losses), [p.detach().numpy() for p in params]


def test_ported_lstm_training_loop_matches_torch():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 5, 3)), rng.standard_normal((32, 2))
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, 2, batch_first=True)
    lstm_state = {k: v.detach().double().numpy() for k, v in lstm.state_dict().items()}
    head_state = {k: v.detach().double().numpy() for k, v in torch.nn.Linear(4, 2).state_dict().items()}
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # (NAdam's scalar state in float64, as ad keeps it)
    try:
        want_losses, want_params = _train(torch, lstm_state, head_state, x, y)
    finally:
        torch.set_default_dtype(default)
    got_losses, got_params = _train(ad, lstm_state, head_state, x, y)
    assert len(got_losses) == 12 and got_losses[-4:].mean() < got_losses[:4].mean()  # (epochs of 4 batches)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-12)
    for g, w in zip(got_params, want_params):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
