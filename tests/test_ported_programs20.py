"""Torch programs ported by renaming ``torch`` to ``ad``: each program is written once, the way a torch user writes
it, and run with ``L = torch`` and ``L = ad`` from the same initial weights on the same data in float64; losses,
parameters and gradients must agree at every step.

Where a program draws random numbers (a VAE's ``rsample``, a policy's ``Categorical.sample``) the two libraries'
streams differ, so the ad run replays the draws the torch run made (``_replay``), which keeps ad's own
distribution code in the path; sampling that cannot be replayed is checked by its statistics instead.
"""

import io
import math

import numpy as np
import pytest

import ad

torch = pytest.importorskip("torch")

RTOL = 1e-10


def _in_torch_float64(program, *args):
    """``program(torch, *args)`` with torch's default dtype float64 (ad's default), so that modules, optimizer
    state and ``zeros(...)`` are float64 in both runs; on one thread (these tiny ops gain nothing from more, and
    torch's spinning workers cost seconds on a busy machine)."""
    default, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    try:
        return program(torch, *args)
    finally:
        torch.set_default_dtype(default)
        torch.set_num_threads(threads)


def _both(program, *args):
    return program(ad, *args), _in_torch_float64(program, *args)


def _initial_state(make):
    """A torch module's freshly initialized state as float64 numpy arrays (seeded), to load into both runs."""
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return {k: v.detach().numpy().copy() for k, v in make(torch).state_dict().items()}
    finally:
        torch.set_default_dtype(default)


def _load(L, module, state):
    module.load_state_dict({k: L.tensor(v) for k, v in state.items()})
    return module


def _numpy(x):
    return x.detach().numpy().copy()


def _snapshot(module):
    """Every parameter and its gradient, by name."""
    out = {}
    for name, p in module.named_parameters():
        out[name] = _numpy(p)
        out[name + ".grad"] = None if p.grad is None else _numpy(p.grad)
    return out


def _assert_same(got, want, path="", rtol=RTOL):
    """Nested lists/tuples/dicts of arrays and numbers, equal to ``rtol``, with an absolute floor of ``10 * rtol`` times
    the array's largest magnitude: entries that are zero up to rounding (the gradient of attention's key bias, say)
    differ by rounding on the array's scale, and Adam's steps carry that into the parameters."""
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), path
        for k in want:
            _assert_same(got[k], want[k], f"{path}.{k}", rtol)
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, f"{path}[{i}]", rtol)
    elif want is None:
        assert got is None, path
    else:
        scale = float(np.max(np.abs(want), initial=0.0))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=max(10 * rtol * scale, 1e-14), err_msg=path)


def _replay(monkeypatch, name, draws, make):
    """Make ``ad.<name>`` return the recorded ``draws`` one after the other (through ``make(draw, *args)``)."""
    queue = list(draws)

    def replayed(*args, **kwargs):
        return make(queue.pop(0), *args, **kwargs)

    monkeypatch.setattr(ad, name, replayed)
    return queue


# 1. A physics-informed network for Burgers' equation: u_t + u u_x - nu u_xx = 0, u(x, 0) = -sin(pi x).


def _pinn_net(L):
    nn = L.nn
    return nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 1))


def _pinn(L, state, x, t, x0, method):
    F = L.nn.functional
    net = _load(L, _pinn_net(L), state)
    x = L.tensor(x, requires_grad=True)
    t = L.tensor(t, requires_grad=True)
    x0 = L.tensor(x0)
    nu = 0.01 / math.pi

    def pde_loss():
        u = net(L.cat([x, t], dim=1))
        u_x, u_t = L.autograd.grad(u, [x, t], grad_outputs=L.ones_like(u), create_graph=True)
        (u_xx,) = L.autograd.grad(u_x, x, grad_outputs=L.ones_like(u_x), create_graph=True)
        residual = u_t + u * u_x - nu * u_xx
        u_initial = net(L.cat([x0, L.zeros_like(x0)], dim=1))
        return L.mean(residual**2) + F.mse_loss(u_initial, -L.sin(math.pi * x0))

    if method == "adam":
        opt = L.optim.Adam(net.parameters(), lr=1e-2)
    else:
        opt = L.optim.LBFGS(net.parameters(), lr=1.0, max_iter=4, history_size=4, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = pde_loss()
        loss.backward()
        return loss

    trace = []
    for _ in range(3):
        loss = opt.step(closure)
        trace.append((loss.item(), _snapshot(net)))
    return trace


@pytest.mark.parametrize("method", ["adam", "lbfgs"])
def test_pinn_burgers_matches_torch(method):
    rng = np.random.default_rng(1)
    x, t, x0 = rng.uniform(-1, 1, (16, 1)), rng.uniform(0, 1, (16, 1)), rng.uniform(-1, 1, (8, 1))
    got, want = _both(_pinn, _initial_state(_pinn_net), x, t, x0, method)
    _assert_same(got, want)
    assert got[-1][0] < got[0][0]


# 2. A convolutional VAE: Normal posterior with rsample, KL to the prior, BCE-with-logits reconstruction.


def _vae_net(L):
    nn, D = L.nn, L.distributions

    class VAE(nn.Module):
        def __init__(self, latent=2):
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            )  # fmt: skip
            self.to_mu = nn.Linear(32, latent)
            self.to_logvar = nn.Linear(32, latent)
            self.decoder = nn.Sequential(
                nn.Linear(latent, 32), nn.ReLU(), nn.Unflatten(1, (8, 2, 2)),
                nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1),
            )  # fmt: skip

        def forward(self, x):
            h = self.encoder(x)
            posterior = D.Normal(self.to_mu(h), L.exp(0.5 * self.to_logvar(h)))
            z = posterior.rsample()
            return self.decoder(z), posterior, z

    return VAE()


def _vae(L, state, images):
    F, D = L.nn.functional, L.distributions
    model = _load(L, _vae_net(L), state)
    opt = L.optim.Adam(model.parameters(), lr=2e-2)
    sched = L.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.05)
    loader = L.utils.data.DataLoader(L.utils.data.TensorDataset(L.tensor(images)), batch_size=4)
    trace, noise = [], []
    for _ in range(3):
        epoch_loss = 0.0
        for (batch,) in loader:
            opt.zero_grad()
            logits, posterior, z = model(batch)
            prior = D.Normal(L.zeros_like(posterior.loc), L.ones_like(posterior.scale))
            recon = F.binary_cross_entropy_with_logits(logits, batch, reduction="sum")
            kl = D.kl_divergence(posterior, prior).sum()
            loss = (recon + kl) / batch.shape[0]
            loss.backward()
            opt.step()
            epoch_loss += loss.item()
            noise.append(_numpy((z - posterior.loc) / posterior.scale))
            trace.append((loss.item(), _snapshot(model)))
        sched.step(epoch_loss)
        trace.append(opt.param_groups[0]["lr"])
    return trace, noise


def test_vae_matches_torch(monkeypatch):
    images = (np.random.default_rng(2).random((8, 1, 8, 8)) > 0.5).astype(np.float64)
    state = _initial_state(_vae_net)
    torch.manual_seed(0)
    want, torch_noise = _in_torch_float64(_vae, state, images)
    left = _replay(monkeypatch, "randn", torch_noise, lambda draw, *a, **k: ad.tensor(draw))
    got, noise = _vae(ad, state, images)
    assert not left
    _assert_same(noise, torch_noise)
    _assert_same(got, want)
    assert want[-1] < 2e-2  # (the plateau schedule fired)


# 3. A one-block GPT: causal TransformerEncoderLayer (norm_first), tied embedding/head weights, label-smoothed
#    cross entropy with padding, AdamW with parameter groups, warmup schedules, clipping, top-k generation.

VOCAB, BLOCK = 11, 6


def _gpt_net(L):
    nn = L.nn

    class TinyGPT(nn.Module):
        def __init__(self, d_model=16, nhead=2):
            super().__init__()
            self.tok_emb = nn.Embedding(VOCAB, d_model)
            self.pos_emb = nn.Parameter(0.02 * L.randn(1, BLOCK, d_model))
            self.block = nn.TransformerEncoderLayer(
                d_model, nhead, dim_feedforward=32, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            self.ln_f = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, VOCAB, bias=False)
            self.head.weight = self.tok_emb.weight  # weight tying
            self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(BLOCK), persistent=False)

        def forward(self, idx):
            T = idx.size(1)
            h = self.tok_emb(idx) + self.pos_emb[:, :T]
            h = self.block(h, src_mask=self.causal_mask[:T, :T], is_causal=True)
            return self.head(self.ln_f(h))

    return TinyGPT()


def _generate(L, model, idx, new_tokens, top_k, generator=None):
    F = L.nn.functional
    model.eval()
    with L.no_grad():
        for _ in range(new_tokens):
            logits = model(idx[:, -BLOCK:])[:, -1, :] / 0.8
            kth, _ = L.topk(logits, top_k)
            logits[logits < kth[:, [-1]]] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            next_token = L.multinomial(probs, num_samples=1, generator=generator)
            idx = L.cat((idx, next_token), dim=1)
    return idx


def _gpt(L, state, tokens, targets, schedule):
    F = L.nn.functional
    model = _gpt_net(L)
    model.load_state_dict({k: L.tensor(v) for k, v in state.items()})
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    opt = L.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-2, betas=(0.9, 0.95)
    )
    steps, warmup = 4, 2
    if schedule == "onecycle":
        sched = L.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    else:
        sched = L.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))
        )
    x, y = L.tensor(tokens), L.tensor(targets)
    trace = []
    for _ in range(steps):
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-1, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = L.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        sched.step()
        trace.append((loss.item(), norm.item(), sched.get_last_lr(), _snapshot(model)))
    assert model.head.weight is model.tok_emb.weight
    greedy = _generate(L, model, x[:1, :3], new_tokens=5, top_k=1)
    return trace, greedy.tolist(), model


@pytest.mark.parametrize("schedule", ["onecycle", "warmup_cosine"])
def test_gpt_block_matches_torch(schedule):
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, VOCAB, (3, BLOCK))
    targets = np.concatenate([tokens[:, 1:], rng.integers(0, VOCAB, (3, 1))], axis=1)
    targets[2, 4:] = -1  # padding
    state = _initial_state(_gpt_net)
    (got, got_text, model), (want, want_text, _) = _both(_gpt, state, tokens, targets, schedule)
    _assert_same(got, want)
    assert got_text == want_text
    # Sampled generation: ad's stream is not torch's; a seeded generator repeats itself, and every token is one of
    # the top 3 of its step.
    prompt = ad.tensor(tokens[:2, :2])
    first = _generate(ad, model, prompt, 6, top_k=3, generator=ad.Generator().manual_seed(5))
    again = _generate(ad, model, prompt, 6, top_k=3, generator=ad.Generator().manual_seed(5))
    assert first.tolist() == again.tolist()
    with ad.no_grad():
        for i in range(2, first.shape[1]):
            logits = model(first[:, max(0, i - BLOCK) : i])[:, -1, :]
            top3 = ad.topk(logits, 3).indices
            assert bool((top3 == first[:, i : i + 1]).any(dim=1).all())


# 4. GANs: a spectral-normalized discriminator with BCEWithLogitsLoss, and a WGAN-GP critic whose gradient
#    penalty differentiates autograd.grad(create_graph=True).


def _generator(L):
    nn = L.nn
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 2))


def _discriminator(L):
    nn = L.nn
    sn = nn.utils.spectral_norm
    return nn.Sequential(sn(nn.Linear(2, 16)), nn.LeakyReLU(0.2), sn(nn.Linear(16, 1)))


def _critic(L):
    nn = L.nn
    sn = nn.utils.parametrizations.spectral_norm
    return nn.Sequential(sn(nn.Linear(2, 16)), nn.Tanh(), nn.Linear(16, 1))


def _gradient_penalty(L, critic, real, fake, alpha):
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(mixed)
    (grads,) = L.autograd.grad(score, mixed, grad_outputs=L.ones_like(score), create_graph=True, retain_graph=True)
    return ((grads.norm(2, dim=1) - 1) ** 2).mean()


def _gan(L, g_state, d_state, real, noise, alphas, kind):
    G = _load(L, _generator(L), g_state)
    D = _load(L, (_discriminator if kind == "bce" else _critic)(L), d_state)
    opt_g = L.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = L.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    criterion = L.nn.BCEWithLogitsLoss()
    trace = []
    for step in range(len(real)):
        x, z = L.tensor(real[step]), L.tensor(noise[step])
        fake = G(z)
        opt_d.zero_grad()
        if kind == "bce":
            ones, zeros = L.ones(x.size(0), 1), L.zeros(x.size(0), 1)
            d_loss = criterion(D(x), ones) + criterion(D(fake.detach()), zeros)
        else:
            gp = _gradient_penalty(L, D, x, fake.detach(), L.tensor(alphas[step]))
            d_loss = D(fake.detach()).mean() - D(x).mean() + 10.0 * gp
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = criterion(D(fake), L.ones(x.size(0), 1)) if kind == "bce" else -D(fake).mean()
        g_loss.backward()
        opt_g.step()
        trace.append((d_loss.item(), g_loss.item(), _snapshot(G), _snapshot(D)))
    D.eval()
    with L.no_grad():
        trace.append(_numpy(D(L.tensor(real[0]))))
    return trace, {k: _numpy(v) for k, v in D.state_dict().items()}


@pytest.mark.parametrize("kind", ["bce", "wgan_gp"])
def test_gan_matches_torch(kind):
    rng = np.random.default_rng(4)
    real = rng.standard_normal((3, 8, 2)) * 0.5 + 2.0
    noise = rng.standard_normal((3, 8, 2))
    alphas = rng.random((3, 8, 1))
    g_state = _initial_state(_generator)
    d_state = _initial_state(_discriminator if kind == "bce" else _critic)
    got, want = _both(_gan, g_state, d_state, real, noise, alphas, kind)
    _assert_same(got, want)


# 5. Actor-critic policy gradient: Categorical policy, log_prob and entropy, discounted returns, normalized
#    advantages, a value head trained with smooth_l1_loss.


def _actor_critic(L):
    nn = L.nn

    class ActorCritic(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(5, 16), nn.Tanh())
            self.policy = nn.Linear(16, 3)
            self.value = nn.Linear(16, 1)

        def forward(self, obs):
            h = self.body(obs)
            return self.policy(h), self.value(h).squeeze(-1)

    return ActorCritic()


def _policy_gradient(L, state, episodes=3, envs=4, horizon=5, gamma=0.9):
    F = L.nn.functional
    model = _load(L, _actor_critic(L), state)
    opt = L.optim.Adam(model.parameters(), lr=1e-2)
    trace, actions = [], []
    for _ in range(episodes):
        pos = L.zeros(envs, dtype=L.long)
        log_probs, values, rewards, entropies = [], [], [], []
        for _ in range(horizon):
            logits, value = model(F.one_hot(pos, 5).to(L.float64))
            dist = L.distributions.Categorical(logits=logits)
            action = dist.sample()
            actions.append(action.numpy().copy())
            log_probs.append(dist.log_prob(action))
            entropies.append(dist.entropy())
            values.append(value)
            pos = (pos + action - 1).clamp(0, 4)
            rewards.append(L.where(pos == 4, 1.0, -0.1))
        R, returns = L.zeros(envs), []
        for r in reversed(rewards):
            R = r + gamma * R
            returns.insert(0, R)
        returns, values = L.stack(returns), L.stack(values)
        advantage = returns - values.detach()
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        policy_loss = -(L.stack(log_probs) * advantage).mean()
        value_loss = F.smooth_l1_loss(values, returns)
        loss = policy_loss + 0.5 * value_loss - 0.01 * L.stack(entropies).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        trace.append((loss.item(), value_loss.item(), _snapshot(model)))
    return trace, actions


def test_policy_gradient_matches_torch(monkeypatch):
    state = _initial_state(_actor_critic)
    torch.manual_seed(0)
    want, torch_actions = _in_torch_float64(_policy_gradient, state)
    # Categorical.sample draws through ad.multinomial(probs_2d, n, True) (rows, n): replay torch's actions.
    left = _replay(monkeypatch, "multinomial", torch_actions, lambda draw, *a, **k: ad.tensor(draw).reshape(-1, 1))
    got, actions = _policy_gradient(ad, state)
    assert not left
    _assert_same(actions, torch_actions)
    _assert_same(got, want)


# 6. MAML: an inner loop of functional_call steps differentiated with create_graph, an outer Adam step.


def _maml_net(L):
    nn = L.nn
    return nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))


def _maml(L, state, tasks, grads_as, inner_steps=2, inner_lr=0.1):
    F = L.nn.functional
    model = _load(L, _maml_net(L), state)
    meta_opt = L.optim.Adam(model.parameters(), lr=1e-2)
    trace = []
    for batch in tasks:
        meta_opt.zero_grad()
        meta_loss = 0.0
        for x_support, y_support, x_query, y_query in (map(L.tensor, task) for task in batch):
            params = dict(model.named_parameters())
            for _ in range(inner_steps):
                support_loss = F.mse_loss(L.func.functional_call(model, params, (x_support,)), y_support)
                if grads_as == "tuple":
                    grads = L.autograd.grad(support_loss, params.values(), create_graph=True)
                    params = {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads)}
                else:  # torch 2.13: a dict of inputs gives a dict of gradients
                    grads = L.autograd.grad(support_loss, params, create_graph=True)
                    params = {name: p - inner_lr * grads[name] for name, p in params.items()}
            meta_loss = meta_loss + F.mse_loss(L.func.functional_call(model, params, (x_query,)), y_query)
        meta_loss = meta_loss / len(batch)
        meta_loss.backward()
        meta_opt.step()
        trace.append((meta_loss.item(), _snapshot(model)))
    return trace


@pytest.mark.parametrize("grads_as", ["tuple", "dict"])
def test_maml_matches_torch(grads_as):
    rng = np.random.default_rng(6)

    def task():
        amplitude, phase = rng.uniform(0.5, 2), rng.uniform(0, math.pi)
        xs = rng.uniform(-3, 3, (4, 2, 5, 1))  # (support|query, ..., 5 points)
        ys = amplitude * np.sin(xs + phase)
        return xs[0, 0], ys[0, 0], xs[0, 1], ys[0, 1]

    tasks = [[task() for _ in range(2)] for _ in range(3)]
    got, want = _both(_maml, _initial_state(_maml_net), tasks, grads_as)
    _assert_same(got, want)


# 7. torch.func: per-sample gradients by vmap(grad(...)) over functional_call (a DP-SGD step with per-sample
#    clipping), and jacrev / jacfwd / hessian of a small model.


def _func_net(L):
    nn = L.nn
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))


def _per_sample(L, state, x, y, max_norm=0.5):
    F = L.nn.functional
    from_func = L.func
    model = _load(L, _func_net(L), state)
    opt = L.optim.SGD(model.parameters(), lr=0.5)
    x, y = L.tensor(x), L.tensor(y)

    def sample_loss(params, buffers, xi, yi):
        logits = from_func.functional_call(model, (params, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_sample_grad = from_func.vmap(from_func.grad(sample_loss), in_dims=(None, None, 0, 0))
    trace = []
    for _ in range(3):
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = {k: v.detach() for k, v in model.named_buffers()}
        grads = per_sample_grad(params, buffers, x, y)
        norms = L.stack([g.flatten(1).norm(dim=1) for g in grads.values()]).norm(dim=0)
        factor = 1.0 / (norms / max_norm).clamp(min=1.0)
        for name, p in model.named_parameters():
            p.grad = (grads[name] * factor.view(-1, *[1] * (p.dim()))).mean(0)
        opt.step()
        trace.append((_numpy(norms), {k: _numpy(g) for k, g in grads.items()}, _snapshot(model)))

    x0 = x[0]
    params = {k: v.detach() for k, v in model.named_parameters()}
    derivatives = {
        "jacrev": from_func.jacrev(model)(x0),
        "jacfwd": from_func.jacfwd(model)(x0),
        "hessian": from_func.hessian(lambda v: model(v).logsumexp(-1))(x0),
        "jacrev_params": from_func.jacrev(lambda p: from_func.functional_call(model, p, (x,)))(params),
        "hessian_params": from_func.hessian(lambda p: sample_loss(p, {}, x0, y[0]))(params),
    }
    # The same per-sample gradients by a loop over the batch.
    looped = []
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        looped.append([_numpy(p.grad) for p in model.parameters()])
    return trace, _to_numpy_tree(derivatives), looped, _to_numpy_tree(per_sample_grad(params, {}, x, y))


def _to_numpy_tree(tree):
    if isinstance(tree, dict):
        return {k: _to_numpy_tree(v) for k, v in tree.items()}
    return _numpy(tree)


def test_per_sample_grads_and_jacobians_match_torch():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 4, 5)
    got, want = _both(_per_sample, _initial_state(_func_net), x, y)
    _assert_same(got, want)
    trace, derivatives, looped, per_sample = got
    for i, grads in enumerate(looped):
        for g, name in zip(grads, per_sample):
            np.testing.assert_allclose(per_sample[name][i], g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(derivatives["jacrev"], derivatives["jacfwd"], rtol=1e-12)


# 8. Checkpointing mid-training: ad.save/ad.load of model, optimizer and scheduler state; resuming gives the
#    uninterrupted trajectory; BatchNorm's running statistics and train()/eval() with Dropout.


def _bn_net(L, p=0.0):
    nn = L.nn
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, 2))


def _resumed_training(L, state, x, y, save_at, compiled=False):
    nn = L.nn

    def fresh():
        model = _load(L, _bn_net(L), state)
        opt = L.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        sched = L.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
        return model, opt, sched, L.compile(model) if compiled else model

    model, opt, sched, net = fresh()
    loss_fn = nn.CrossEntropyLoss()
    x, y = L.tensor(x), L.tensor(y)
    trace = []
    for step in range(6):
        net.train()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        net.eval()
        eval_out = net(x)  # (with grad: a compiled eval step replays)
        trace.append((loss.item(), _numpy(eval_out), _snapshot(model)))
        if step + 1 == save_at:
            buffer = io.BytesIO()
            L.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "step": step}, buffer)  # fmt: skip
            buffer.seek(0)
            checkpoint = L.load(buffer)
            model, opt, sched, net = fresh()
            model.load_state_dict(checkpoint["model"])
            opt.load_state_dict(checkpoint["optimizer"])
            sched.load_state_dict(checkpoint["scheduler"])
            assert checkpoint["step"] == step
    buffers = {k: _numpy(v) for k, v in model.named_buffers()}
    return trace, buffers


@pytest.mark.filterwarnings("ignore:ad.compile")  # (BatchNorm's steps run eagerly, with the warning that says why)
def test_checkpoint_resume_matches_torch_and_the_uninterrupted_run():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 2, 10)
    state = _initial_state(_bn_net)
    got, want = _both(_resumed_training, state, x, y, 3)
    _assert_same(got, want)
    _assert_same(_resumed_training(ad, state, x, y, None), got, rtol=1e-14)
    # ``model = torch.compile(model)`` (only in ad: torch's compiles for seconds); train steps run eagerly (BatchNorm
    # writes its running statistics), eval steps replay, each mode its own recording
    _assert_same(_resumed_training(ad, state, x, y, 3, True), got, rtol=1e-14)
    assert got[1]["1.num_batches_tracked"] == 6


def test_dropout_train_and_eval_statistics():
    model = _bn_net(ad, p=0.4)
    x = ad.randn(4000, 4)
    dropout, head_input = model[3], ad.relu(model[1](model[0](x)))
    ad.manual_seed(11)
    first = dropout(head_input)
    ad.manual_seed(11)
    assert bool((dropout(head_input) == first).all())  # seeded: the same mask
    kept = first != 0
    alive = head_input != 0
    fraction_dropped = 1 - (kept & alive).sum().item() / alive.sum().item()
    assert abs(fraction_dropped - 0.4) < 0.02
    np.testing.assert_allclose(_numpy(first[kept]), _numpy(head_input[kept]) / 0.6, rtol=1e-12)
    model.eval()
    assert bool((dropout(head_input) == head_input).all())


# Focused tests of what the programs needed fixed in ad.


def test_grad_inputs_as_any_iterable_and_as_a_dict():
    for L in (ad, torch):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        z = L.tensor([3.0], dtype=L.float64, requires_grad=True)
        y = (x * x).sum()
        params = {"x": x, "z": z}
        (g,) = L.autograd.grad(y, {"x": x}.values(), retain_graph=True)
        np.testing.assert_allclose(_numpy(g), [2.0, 4.0])
        seed = iter([L.tensor(2.0)])
        (g,) = L.autograd.grad((o for o in [y]), (t for t in [x]), grad_outputs=seed, retain_graph=True)
        np.testing.assert_allclose(_numpy(g), [4.0, 8.0])
        grads = L.autograd.grad(y, params, allow_unused=True, retain_graph=True)
        assert list(grads) == ["x", "z"] and grads["z"] is None
        np.testing.assert_allclose(_numpy(grads["x"]), [2.0, 4.0])
        grads = L.autograd.grad(y, params, materialize_grads=True, retain_graph=True)
        np.testing.assert_allclose(_numpy(grads["z"]), [0.0])
        grads = L.autograd.grad(y, {"x": x}, grad_outputs=L.ones(3, dtype=L.float64), is_grads_batched=True,
                                retain_graph=True)  # fmt: skip
        np.testing.assert_allclose(_numpy(grads["x"]), [[2.0, 4.0]] * 3)
        with pytest.raises(RuntimeError, match="appears to not have been used"):
            L.autograd.grad(y, params, retain_graph=True)
        with pytest.raises(RuntimeError, match="cannot be empty"):
            L.autograd.grad(y, {}, retain_graph=True)
        with pytest.raises(TypeError, match="not iterable"):
            L.autograd.grad(y, 3, retain_graph=True)
        L.autograd.backward([y], inputs=(t for t in [x]))  # (a generator, read once)
        np.testing.assert_allclose(_numpy(x.grad), [2.0, 4.0])
        assert z.grad is None


@pytest.mark.parametrize("first_use", ["sample", "no_grad"])
def test_distribution_parameter_first_derived_under_no_grad_keeps_its_gradient(first_use):
    """Categorical(logits=...) derives probs on first use; when that use is sample()'s (under no_grad), the kept
    probs must still carry the graph, or entropy() gets a silent zero gradient."""
    grads = []
    for L in (ad, torch):
        logits = L.tensor([[0.1, 0.5, -0.3], [1.0, -1.0, 0.0]], dtype=L.float64, requires_grad=True)
        bern_logits = L.tensor([0.3, -0.2], dtype=L.float64, requires_grad=True)
        dist, bern = L.distributions.Categorical(logits=logits), L.distributions.Bernoulli(logits=bern_logits)
        if first_use == "sample":
            dist.sample(), bern.sample()
        else:
            with L.no_grad():
                dist.probs, bern.probs  # noqa: B018
        (dist.entropy().sum() + bern.entropy().sum() + (dist.probs**2).sum()).backward()
        grads.append((_numpy(logits.grad), _numpy(bern_logits.grad)))
    _assert_same(grads[0], grads[1])
    assert np.abs(grads[0][0]).max() > 1e-3
    with ad.inference_mode():  # (inference mode records nothing, as torch's)
        probs = ad.distributions.Categorical(logits=ad.zeros(3, requires_grad=True)).probs
    assert not probs.requires_grad


class _TrainScaled:
    """A module whose forward branches on ``self.training`` (no random draw, no in-place write: nothing else tells
    a compiled call that the mode changed)."""

    @staticmethod
    def make(L):
        class TrainScaled(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = L.nn.Linear(3, 2)
                self.act = L.nn.Tanh()

            def forward(self, x):
                y = self.act(self.lin(x))
                return y * 2 if self.act.training else y

        return TrainScaled()


@pytest.mark.parametrize("how", ["ad.compile(model)", "model.compile()"])
def test_compiled_module_is_keyed_by_training_mode(how):
    model = _load(ad, _TrainScaled.make(ad), _initial_state(_TrainScaled.make))
    compiled = ad.compile(model) if how == "ad.compile(model)" else model
    if compiled is model:
        model.compile()
    x = ad.tensor(np.random.default_rng(9).standard_normal((4, 3)))
    want_eval = ad.tanh(model.lin(x))
    for mode in ["train", "train", "train", "eval", "eval", "eval", "train", "train"]:
        getattr(compiled, mode)()
        model.act.training = mode == "train"  # (a submodule's flag set directly counts too)
        out = compiled(x)
        np.testing.assert_allclose(_numpy(out), _numpy(want_eval) * (2 if mode == "train" else 1), rtol=1e-15)
        (g,) = ad.autograd.grad(out.sum(), model.lin.weight)
        np.testing.assert_allclose(
            _numpy(g), _numpy(ad.autograd.grad(want_eval.sum(), model.lin.weight, retain_graph=True)[0])
            * (2 if mode == "train" else 1), rtol=1e-13,
        )  # fmt: skip


@pytest.mark.filterwarnings("ignore:ad.compile")
def test_compiled_module_names_as_torch():
    """``model = torch.compile(model)``: a module holding the original as ``_orig_mod``, so that parameter names and
    state-dict keys start with ``_orig_mod.`` (as torch 2.13's OptimizedModule: not built here, importing
    torch._dynamo costs seconds), other attributes the original's, train()/eval() reaching it."""
    model = _bn_net(ad)
    compiled = ad.compile(model)
    assert isinstance(compiled, ad.nn.Module) and type(compiled).__name__ == "OptimizedModule"
    assert compiled._orig_mod is model and ad.compile(ad.nn.Linear(2, 1)).in_features == 2
    compiled.eval()
    assert not model.training and not model[1].training
    plain = _bn_net(torch)
    assert [n for n, _ in compiled.named_parameters()] == ["_orig_mod." + n for n, _ in plain.named_parameters()]
    assert list(compiled.state_dict()) == ["_orig_mod." + k for k in plain.state_dict()]
    model = _load(ad, _bn_net(ad), _initial_state(_bn_net))
    compiled = ad.compile(model)
    x = ad.tensor(np.random.default_rng(10).standard_normal((6, 4)))
    compiled.eval()
    with ad.no_grad():
        want = model(x)
    for _ in range(3):
        np.testing.assert_allclose(_numpy(compiled(x)), _numpy(want), rtol=1e-14)
    compiled.load_state_dict(compiled.state_dict())


def test_consume_prefix_in_state_dict_if_present_as_torch():
    """nanoGPT's resume: a compiled model's state dict (``_orig_mod.`` keys) loads into the bare model once the
    prefix is consumed; keys and ``_metadata`` renamed as torch renames them."""
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present as torch_consume

    from ad.nn.modules.utils import consume_prefix_in_state_dict_if_present as ad_consume

    results = []
    for consume in (ad_consume, torch_consume):
        sd = dict.fromkeys(["_orig_mod.a", "b", "_orig_mod.c", "_orig_mod", "x_orig_mod.d"], 1)
        sd = type(ad.nn.Linear(1, 1).state_dict())(sd)
        sd._metadata = {"": {"version": 1}, "_orig_mod": {"v": 2}, "_orig_mod.sub": {"v": 3}, "other": {}}
        consume(sd, "_orig_mod.")
        results.append((list(sd), list(sd._metadata.items())))
    assert results[0] == results[1]
    model = _bn_net(ad)
    state = ad.compile(model).state_dict()
    ad_consume(state, "_orig_mod.")
    fresh = _bn_net(ad)
    fresh.load_state_dict(state)
    _assert_same({k: _numpy(v) for k, v in fresh.state_dict().items()},
                 {k: _numpy(v) for k, v in model.state_dict().items()})  # fmt: skip


@pytest.mark.parametrize("how", ["ad.compile(model)", "model.compile()"])
def test_deepcopy_of_a_compiled_module_calls_the_copy(how):
    """``copy.deepcopy(model)`` (an EMA or an early-stopping snapshot of a compiled model): the copy's calls, new
    signatures included, compute with the copy's parameters."""
    import copy

    model = _load(ad, _TrainScaled.make(ad), _initial_state(_TrainScaled.make))
    if how == "model.compile()":
        model.compile()
        compiled = model
    else:
        compiled = ad.compile(model)
    x, y = ad.ones(3, 3), ad.ones(5, 3)
    for _ in range(3):
        compiled(x)
    twin = copy.deepcopy(compiled)
    twin_model = twin._orig_mod if how == "ad.compile(model)" else twin
    with ad.no_grad():
        twin_model.lin.weight.mul_(3.0)
    for inputs in (x, x, y, y, y):
        want = 2 * ad.tanh(twin_model.lin(inputs))
        np.testing.assert_allclose(_numpy(twin(inputs)), _numpy(want), rtol=1e-14)
        np.testing.assert_allclose(_numpy(compiled(inputs)), _numpy(2 * ad.tanh(model.lin(inputs))), rtol=1e-14)
