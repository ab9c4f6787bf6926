"""Device-to-host copies of whole CUDA training steps, listed by call site: each model of the list below (an MLP,
a conv net, an LSTM, a transformer encoder layer, an embedding bag) and each loss, norm and optimizer that training
loops reach for, one step each (forward, loss, backward, gradient clipping, optimizer step, ``zero_grad``), after a
warm-up step (compiles, pools). Built on ``scripts/cuda_host_traffic.py``; tiny sizes, so it runs under the
simulator (``NUMBA_ENABLE_CUDASIM=1``) as on a GPU.

Run from the repository root::

    NUMBA_ENABLE_CUDASIM=1 python -m scripts.cuda_step_audit            # every step
    NUMBA_ENABLE_CUDASIM=1 python -m scripts.cuda_step_audit --depth 4 lstm conv  # some, with their callers

A step's copies back are the sweep's two (its state and visited flags, ``tests/cuda/test_host_traffic.py``) plus
what the step reads into Python: reads that torch makes too (a data-dependent shape or a Python number:
``nonzero``, ``item``, boolean masks) and, by ad's design, index maps, which are host data (class indices, an
embedding bag's indices and offsets). ``tests/cuda/test_step_traffic.py`` holds the MLP step to its three copies,
and clipping, cross entropy, the convolutions and the pooling / transposed convolution step (``pools_deconv``) to
theirs; ``tests/cuda/test_cuda_max_pool.py`` and ``test_cuda_host_ops20.py`` max pooling.
"""

import collections
import importlib.util
import os
import sys

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "cuda_host_traffic", os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda_host_traffic.py")
)
traffic_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(traffic_tool)

SWEEP_D2H = 2  # a backward's own copies back: the sweep's state and visited flags at its end


def _data(ad, *shape, seed=0):
    return ad.tensor(np.random.default_rng(seed).standard_normal(shape), device="cuda")


def _targets(ad, n, classes, seed=1):
    return ad.tensor(np.random.default_rng(seed).integers(0, classes, n), device="cuda")


def _trainer(model, loss_of, optimizer, clip=None):
    """One step as a function: ``zero_grad``, the loss, backward, optional clipping, the optimizer's step."""

    def step():
        optimizer.zero_grad()
        loss = loss_of(model)
        loss.backward()
        if clip is not None:
            clip(model.parameters())
        optimizer.step()
        return loss

    return step


def _steps():
    """name -> a function building (model and data on CUDA) and returning one training step."""
    import ad
    import ad.nn as nn
    import ad.nn.functional as F

    def mlp_sgd():
        ad.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 3)).cuda()
        x, t = _data(ad, 4, 6), _targets(ad, 4, 3)
        return _trainer(model, lambda m: F.cross_entropy(m(x), t), ad.optim.SGD(model.parameters(), 0.1,
                                                                                 momentum=0.9))

    def conv_adam():
        ad.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3),
        ).cuda()
        x, t = _data(ad, 2, 1, 4, 4), _targets(ad, 2, 3)
        return _trainer(model, lambda m: F.cross_entropy(m(x), t), ad.optim.Adam(model.parameters(), 1e-3))

    def lstm_adamw_clip():
        ad.manual_seed(0)
        lstm = nn.LSTM(3, 4, batch_first=True).cuda()
        head = nn.Linear(4, 2).cuda()
        model = nn.ModuleList([lstm, head])
        x, y = _data(ad, 2, 3, 3), _data(ad, 2, 2, seed=2)
        return _trainer(model, lambda m: F.mse_loss(m[1](m[0](x)[0][:, -1]), y),
                        ad.optim.AdamW(model.parameters(), 1e-3),
                        clip=lambda ps: nn.utils.clip_grad_norm_(ps, 1.0))

    def transformer_adamw():
        ad.manual_seed(0)
        model = nn.TransformerEncoderLayer(8, 2, dim_feedforward=8, dropout=0.1, batch_first=True).cuda()
        x = _data(ad, 2, 3, 8)
        return _trainer(model, lambda m: m(x).pow(2).mean(), ad.optim.AdamW(model.parameters(), 1e-3),
                        clip=lambda ps: nn.utils.clip_grad_value_(ps, 0.5))

    def embedding_bag_sgd():
        ad.manual_seed(0)
        model = nn.EmbeddingBag(10, 4, mode="mean").cuda()
        idx = ad.tensor(np.array([1, 2, 4, 5, 4, 3, 2, 9]), device="cuda")
        offsets = ad.tensor(np.array([0, 4]), device="cuda")
        return _trainer(model, lambda m: m(idx, offsets).pow(2).sum(), ad.optim.SGD(model.parameters(), 0.1))

    def cross_entropy_smoothing_ignore():
        ad.manual_seed(0)
        model = nn.Linear(5, 4).cuda()
        x = _data(ad, 6, 5)
        t = ad.tensor(np.array([0, 3, -100, 1, 2, -100]), device="cuda")
        return _trainer(model, lambda m: F.cross_entropy(m(x), t, label_smoothing=0.1, ignore_index=-100),
                        ad.optim.SGD(model.parameters(), 0.1))

    def losses_norms():
        ad.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.GELU(), nn.Linear(6, 4), nn.GroupNorm(2, 4)).cuda()
        x, y = _data(ad, 3, 5), _data(ad, 3, 4, seed=3)
        p = ad.tensor(np.random.default_rng(4).uniform(0.1, 0.9, (3, 4)), device="cuda")

        def loss(m):
            out = m(x)
            return (F.smooth_l1_loss(out, y) + F.l1_loss(out, y) + F.huber_loss(out, y)
                    + F.binary_cross_entropy_with_logits(out, p) + F.kl_div(F.log_softmax(out, -1), p.softmax(-1),
                                                                            reduction="batchmean"))

        return _trainer(model, loss, ad.optim.Adam(model.parameters(), 1e-3, amsgrad=True))

    def pools_deconv_adam():
        # the ops that went through the host until session 20: max pooling with indices, max unpooling,
        # a transposed convolution, adaptive and fractional max pooling
        ad.manual_seed(0)
        model = nn.ModuleList([nn.Conv2d(1, 2, 3, padding=1), nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1,
                                                                                 output_padding=1)]).cuda()
        pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
        adaptive, fractional = nn.AdaptiveMaxPool2d((3, 2)), nn.FractionalMaxPool2d(2, output_size=(3, 3))
        x = _data(ad, 2, 1, 4, 6)

        def loss(m):
            y = m[1](unpool(*pool(m[0](x))))
            return adaptive(y).pow(2).mean() + fractional(y).pow(2).mean()

        return _trainer(model, loss, ad.optim.Adam(model.parameters(), 1e-3))

    return {
        "mlp": mlp_sgd,
        "conv": conv_adam,
        "lstm": lstm_adamw_clip,
        "transformer": transformer_adamw,
        "embedding_bag": embedding_bag_sgd,
        "cross_entropy": cross_entropy_smoothing_ignore,
        "losses_norms": losses_norms,
        "pools_deconv": pools_deconv_adam,
    }


STEPS = ("mlp", "conv", "lstm", "transformer", "embedding_bag", "cross_entropy", "losses_norms", "pools_deconv")


def _chain(depth=4):
    """The innermost ``depth`` frames of the repository's code outside the traffic tools, innermost first: who
    asked for the copy, not only where it happened."""
    import kernels

    root = os.path.dirname(os.path.dirname(os.path.abspath(kernels.__file__)))
    tools = (os.path.abspath(traffic_tool.__file__), os.path.abspath(__file__))
    sites = []
    f = sys._getframe(2)
    while f is not None and len(sites) < depth:
        path = os.path.abspath(f.f_code.co_filename)
        if path not in tools and path.startswith(root) and not path.endswith(traffic_tool._SKIP):
            sites.append(f"{os.path.relpath(path, root)}:{f.f_lineno} {f.f_code.co_name}")
        f = f.f_back
    return " < ".join(sites) or "?"


def d2h_by_site(name, depth=1):
    """The device-to-host copies of one step of ``name`` (after a warm-up step): {site: count}, and the traffic."""
    from ad.cuda import tape

    tape.reset_current()
    step = _steps()[name]()
    site = traffic_tool._site
    if depth > 1:
        traffic_tool._site = lambda: _chain(depth)
    try:
        traffic = traffic_tool.measure(step)
    finally:
        traffic_tool._site = site
    return collections.Counter(e.site for e in traffic.of("d2h")), traffic


def main(argv=None):
    args = list(argv if argv is not None else sys.argv[1:])
    depth = 1
    if "--depth" in args:
        at = args.index("--depth")
        depth = int(args[at + 1])
        del args[at : at + 2]
    print("simulator" if traffic_tool._simulated() else "GPU")
    for name in args or STEPS:
        sites, traffic = d2h_by_site(name, depth)
        print(f"\n== {name}: {sum(sites.values())} device-to-host copies, {traffic.count('launch')} launches")
        for site, count in sites.most_common():
            print(f"    {count:4d} x {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
