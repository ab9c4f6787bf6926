import time, numpy as np, ad, torch
from ad.autograd.functional import hessian, jacobian
torch.set_num_threads(1)
rng = np.random.default_rng(0)
A = rng.standard_normal((256, 256)) / 16; x0 = rng.standard_normal(256)
def med(f, n=15):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return np.median(ts) * 1e3
At, xt = ad.tensor(A), ad.tensor(x0)
Tt, Txt = torch.tensor(A), torch.tensor(x0)
H1 = hessian(lambda x: (At @ x).tanh().sum(), xt, vectorize=True, outer_jacobian_strategy="forward-mode")
H2 = torch.autograd.functional.hessian(lambda x: (Tt @ x).tanh().sum(), Txt, vectorize=True)
print("hess diff", np.abs(H1.numpy() - H2.numpy()).max())
print("ad hessian fwd-over-rev ms", med(lambda: hessian(lambda x: (At @ x).tanh().sum(), xt, vectorize=True, outer_jacobian_strategy="forward-mode")))
print("ad hessian rev vec ms", med(lambda: hessian(lambda x: (At @ x).tanh().sum(), xt, vectorize=True)))
print("torch hessian vec ms", med(lambda: torch.autograd.functional.hessian(lambda x: (Tt @ x).tanh().sum(), Txt, vectorize=True)))
# item 3: batched create_graph grad, 64 cotangents through a small MLP
W1 = ad.tensor(rng.standard_normal((128, 64)) / 8); W2 = ad.tensor(rng.standard_normal((64, 128)) / 11)
xx = ad.tensor(rng.standard_normal(64), requires_grad=True)
G = ad.tensor(rng.standard_normal((64, 64)))
def batched():
    out = W2 @ (W1 @ xx).tanh()
    return ad.autograd.grad(out, xx, G, is_grads_batched=True, create_graph=True)
def looped():
    out = W2 @ (W1 @ xx).tanh()
    return [ad.autograd.grad(out, xx, G[b], create_graph=True, retain_graph=True) for b in range(64)]
print("diff", np.abs(batched()[0].detach().numpy() - np.stack([l[0].detach().numpy() for l in looped()])).max())
print("create_graph batched ms", med(batched), "looped ms", med(looped, 5))
