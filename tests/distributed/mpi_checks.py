"""Checks run by every rank under ``mpiexec -n N python tests/distributed/mpi_checks.py MODE`` (launched by
test_mpi.py). Each rank makes every rank's inputs itself (seeded by the rank), so numpy computes the expected
result of each collective without trusting any collective. Modes:

- ``checks``: every collective against numpy; differentiable collectives against their analytic gradients;
  DataParallel against single-process full-batch gradients and against a blocking all-reduce after backward;
  SyncBatchNorm against BatchNorm on the whole batch. Prints ``ALL OK rank r``.
- ``raise``: rank 1 raises before an all-reduce the others are waiting in (failure notice path).
- ``hang``: rank 1 sleeps instead of calling the all-reduce (timeout path).
"""

import os
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # the checkout's ad, not an install

import numpy as np  # noqa: E402

import ad  # noqa: E402
import ad.distributed as dist  # noqa: E402
from ad import nn  # noqa: E402

TOL = 1e-12


def inputs(r, shape, dtype=np.float64, salt=0):
    """Rank ``r``'s input for a check (every rank can make every rank's)."""
    rng = np.random.default_rng(1000 * salt + r)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)


def check_collectives(rank, ws):
    shape = (3, 4)
    every = [inputs(r, shape) for r in range(ws)]
    # all_reduce, every op
    ints = [inputs(r, shape, np.int64, 1) for r in range(ws)]
    for op, ref, data in [
        (dist.ReduceOp.SUM, np.sum(every, 0), every),
        (dist.ReduceOp.AVG, np.mean(every, 0), every),
        (dist.ReduceOp.MAX, np.max(every, 0), every),
        (dist.ReduceOp.MIN, np.min(every, 0), every),
        (dist.ReduceOp.PRODUCT, np.prod(every, 0), every),
        (dist.ReduceOp.BAND, np.bitwise_and.reduce(ints, 0), ints),
        (dist.ReduceOp.BOR, np.bitwise_or.reduce(ints, 0), ints),
        (dist.ReduceOp.BXOR, np.bitwise_xor.reduce(ints, 0), ints),
    ]:
        t = ad.tensor(data[rank])
        assert dist.all_reduce(t, op=op) is None
        np.testing.assert_allclose(t.detach().numpy(), ref, rtol=TOL, atol=TOL, err_msg=f"all_reduce {op}")
    # async, on a non-contiguous view (written back through the view)
    base = ad.tensor(np.stack([every[rank], every[rank]], axis=1))  # (3, 2, 4)
    view = base[:, 1, :]
    work = dist.all_reduce(view, async_op=True)
    while not work.is_completed():  # results land in the tensor once it reports completion
        pass
    assert work.wait(timeout=timedelta(seconds=30))
    np.testing.assert_allclose(base.detach().numpy()[:, 1, :], np.sum(every, 0), rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(base.detach().numpy()[:, 0, :], every[rank])
    # broadcast from the last rank (not rank 0)
    src = ws - 1
    t = ad.tensor(every[rank])
    dist.broadcast(t, src)
    np.testing.assert_array_equal(t.detach().numpy(), every[src])
    # all_gather, all_gather_into_tensor
    outs = [ad.zeros(shape, dtype=ad.float64) for _ in range(ws)]
    dist.all_gather(outs, ad.tensor(every[rank]))
    for r in range(ws):
        np.testing.assert_array_equal(outs[r].detach().numpy(), every[r])
    out = ad.zeros((ws * 3, 4), dtype=ad.float64)
    dist.all_gather_into_tensor(out, ad.tensor(every[rank]))
    np.testing.assert_array_equal(out.detach().numpy(), np.concatenate(every))
    # reduce_scatter: rank r gets sum over q of q's r-th input
    lists = [[inputs(q, shape, salt=10 + r) for r in range(ws)] for q in range(ws)]
    out = ad.zeros(shape, dtype=ad.float64)
    dist.reduce_scatter(out, [ad.tensor(a) for a in lists[rank]])
    np.testing.assert_allclose(out.detach().numpy(), sum(lists[q][rank] for q in range(ws)), rtol=TOL, atol=TOL)
    out = ad.zeros(shape, dtype=ad.float64)
    dist.reduce_scatter_tensor(out, ad.tensor(np.concatenate(lists[rank])), op=dist.ReduceOp.MAX)
    np.testing.assert_array_equal(out.detach().numpy(), np.max([lists[q][rank] for q in range(ws)], 0))
    # reduce to the last rank: the others keep their input
    t = ad.tensor(every[rank])
    dist.reduce(t, dst=src, op=dist.ReduceOp.SUM)
    np.testing.assert_allclose(t.detach().numpy(), np.sum(every, 0) if rank == src else every[rank], rtol=TOL, atol=TOL)
    # gather to rank 0, scatter from the last rank
    gl = [ad.zeros(shape, dtype=ad.float64) for _ in range(ws)] if rank == 0 else None
    dist.gather(ad.tensor(every[rank]), gl, dst=0)
    if rank == 0:
        for r in range(ws):
            np.testing.assert_array_equal(gl[r].detach().numpy(), every[r])
    t = ad.zeros(shape, dtype=ad.float64)
    dist.scatter(t, [ad.tensor(lists[src][r]) for r in range(ws)] if rank == src else None, src=src)
    np.testing.assert_array_equal(t.detach().numpy(), lists[src][rank])
    dist.barrier()
    # bad arguments raise torch's classes
    for call, exc in [
        (lambda: dist.all_reduce([1.0]), TypeError),
        (lambda: dist.broadcast(ad.zeros(2), ws), ValueError),
        (lambda: dist.all_gather([ad.zeros(2)] * (ws + 1), ad.zeros(2)), ValueError),
        (lambda: dist.all_reduce(ad.zeros(2, dtype=ad.int64), op=dist.ReduceOp.AVG), ValueError),
        (lambda: dist.init_process_group("mpi"), ValueError),
    ]:
        try:
            call()
        except exc:
            pass
        else:
            raise AssertionError(f"{call} did not raise {exc.__name__}")


def check_differentiable(rank, ws):
    x0 = inputs(rank, (2, 3), salt=20)
    w = [inputs(r, (2, 3), salt=21) for r in range(ws)]  # rank r's loss weights
    # all_reduce: y = sum_q x_q on every rank; loss_r = sum(w_r * y) -> d(sum of losses)/dx_r = sum_q w_q
    x = ad.tensor(x0, requires_grad=True)
    y = dist.nn.all_reduce(x)
    np.testing.assert_allclose(
        y.detach().numpy(), sum(inputs(r, (2, 3), salt=20) for r in range(ws)), rtol=TOL, atol=TOL
    )
    (y * ad.tensor(w[rank])).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), np.sum(w, 0), rtol=TOL, atol=TOL)
    # all_gather: out_k = x_k; loss_r = sum_k sum(v_{r,k} * out_k) -> dL/dx_r = sum_q v_{q,r}
    v = [[inputs(q, (2, 3), salt=30 + k) for k in range(ws)] for q in range(ws)]
    x = ad.tensor(x0, requires_grad=True)
    outs = dist.nn.all_gather(x)
    sum(((o * ad.tensor(v[rank][k])).sum() for k, o in enumerate(outs)), ad.tensor(0.0)).backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), sum(v[q][rank] for q in range(ws)), rtol=TOL, atol=TOL)
    # broadcast from the last rank: only src's input gets a gradient, the sum of every rank's weights
    x = ad.tensor(x0, requires_grad=True)
    (dist.nn.broadcast(x, ws - 1) * ad.tensor(w[rank])).sum().backward()
    expected = np.sum(w, 0) if rank == ws - 1 else np.zeros((2, 3))
    np.testing.assert_allclose(x.grad.detach().numpy(), expected, rtol=TOL, atol=TOL)


def check_sync_batch_norm(rank, ws):
    """SyncBatchNorm on each rank's part (ranks hold different N) against BatchNorm on the whole batch: the
    outputs, the input gradients of the summed losses, the summed parameter gradients, the running stats."""
    sizes = [2 + r for r in range(ws)]
    parts = [inputs(r, (sizes[r], 3, 4), salt=40) for r in range(ws)]
    weights = [inputs(r, (sizes[r], 3, 4), salt=41) for r in range(ws)]
    gamma, beta = inputs(0, 3, salt=42), inputs(0, 3, salt=43)
    full = nn.BatchNorm1d(3, momentum=None)  # cumulative average: the factor path of num_batches_tracked
    sync = nn.SyncBatchNorm(3, momentum=None)
    for m in (full, sync):
        m.weight.data = ad.tensor(gamma)
        m.bias.data = ad.tensor(beta)
    xf = ad.tensor(np.concatenate(parts), requires_grad=True)
    out_full = full(xf)
    (out_full * ad.tensor(np.concatenate(weights))).sum().backward()
    x = ad.tensor(parts[rank], requires_grad=True)
    out = sync(x)
    (out * ad.tensor(weights[rank])).sum().backward()
    lo = sum(sizes[:rank])
    np.testing.assert_allclose(
        out.detach().numpy(), out_full.detach().numpy()[lo : lo + sizes[rank]], rtol=1e-10, atol=TOL
    )
    np.testing.assert_allclose(x.grad.numpy(), xf.grad.numpy()[lo : lo + sizes[rank]], rtol=1e-10, atol=TOL)
    for p_sync, p_full in ((sync.weight, full.weight), (sync.bias, full.bias)):
        total = p_sync.grad.detach().clone()
        dist.all_reduce(total)  # each rank's gradient is of its own loss: their sum is the full batch's
        np.testing.assert_allclose(total.numpy(), p_full.grad.numpy(), rtol=1e-10, atol=TOL)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(sync, name).numpy(), getattr(full, name).numpy(), rtol=1e-10, atol=TOL)
    sync.eval()  # eval: the running statistics, no communication
    np.testing.assert_allclose(
        sync(ad.tensor(parts[rank])).detach().numpy(),
        full.eval()(ad.tensor(parts[rank])).detach().numpy(),
        rtol=1e-12,
        atol=TOL,
    )


def make_model(seed):
    ad.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2)).double()


def copy_params(dst, src):
    with ad.no_grad():
        for a, b in zip(dst.parameters(), src.parameters()):
            a.copy_(b)


def check_data_parallel(rank, ws):
    n = 4 * ws
    rng = np.random.default_rng(7)
    x_all, y_all = rng.standard_normal((n, 3)), rng.standard_normal((n, 2))
    shard = slice(rank * 4, rank * 4 + 4)
    x, y = ad.tensor(x_all[shard]), ad.tensor(y_all[shard])
    loss_fn = nn.MSELoss()

    model = make_model(seed=rank)  # different on each rank: DataParallel broadcasts rank 0's
    ddp = dist.DataParallel(model.parameters(), bucket_cap_mb=200e-6)  # ~200 bytes: several buckets
    assert len(ddp.buckets) >= 3, len(ddp.buckets)
    reference = make_model(seed=0)  # rank 0's initial values, trained here on the whole batch
    for a, b in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    blocking = make_model(seed=0)  # local gradients, then a blocking all-reduce after backward

    # one step: DataParallel == full batch (1e-12) == blocking all-reduce
    loss_fn(model(x), y).backward()
    assert ddp.launched_in_sweep >= len(ddp.buckets) - 1, (ddp.launched_in_sweep, len(ddp.buckets))
    loss_fn(reference(ad.tensor(x_all)), ad.tensor(y_all)).backward()
    loss_fn(blocking(x), y).backward()
    for p in blocking.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
    for a, b, c in zip(model.parameters(), reference.parameters(), blocking.parameters()):
        np.testing.assert_allclose(a.grad.detach().numpy(), b.grad.detach().numpy(), rtol=0, atol=TOL)
        np.testing.assert_allclose(a.grad.detach().numpy(), c.grad.detach().numpy(), rtol=0, atol=1e-15)
    # accumulation: a second backward without zero_grad adds the second mean
    loss_fn(model(x) * 2.0, y).backward()
    loss_fn(reference(ad.tensor(x_all)) * 2.0, ad.tensor(y_all)).backward()
    for a, b in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(a.grad.detach().numpy(), b.grad.detach().numpy(), rtol=0, atol=TOL)
    # a few Adam steps: parameters stay equal to the single process on the whole batch
    opt = ad.optim.Adam(model.parameters(), lr=0.01)
    opt_ref = ad.optim.Adam(reference.parameters(), lr=0.01)
    for _ in range(3):
        for o, m, xx, yy in ((opt, model, x, y), (opt_ref, reference, ad.tensor(x_all), ad.tensor(y_all))):
            o.zero_grad()
            loss_fn(m(xx), yy).backward()
            o.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=TOL)
    # a parameter unused on one rank only: its gradient is the mean with zeros from that rank
    used = ad.tensor(inputs(0, (3,), salt=40), requires_grad=True)
    rarely = ad.tensor(inputs(0, (3,), salt=41), requires_grad=True)
    ddp2 = dist.DataParallel([used, rarely])
    loss = (used * used).sum() + ((rarely * float(rank + 1)).sum() if rank == 0 else 0.0)
    loss.backward()
    np.testing.assert_allclose(used.grad.detach().numpy(), 2 * used.detach().numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(rarely.grad.detach().numpy(), np.full(3, 1.0 / ws), rtol=0, atol=TOL)
    ddp2.remove()


def main(mode):
    dist.init_process_group("mpi", timeout=timedelta(seconds=float(os.environ.get("AD_TEST_TIMEOUT", "60"))))
    rank, ws = dist.get_rank(), dist.get_world_size()
    if mode == "checks":
        check_collectives(rank, ws)
        check_differentiable(rank, ws)
        check_data_parallel(rank, ws)
        check_sync_batch_norm(rank, ws)
        dist.destroy_process_group()
        assert not dist.is_initialized()
        print(f"ALL OK rank {rank}", flush=True)
    elif mode == "raise":
        if rank == 1:
            raise ValueError("deliberate failure on rank 1")
        dist.all_reduce(ad.ones(3))
    elif mode == "hang":
        if rank == 1:
            time.sleep(3600)
        dist.all_reduce(ad.ones(3))


if __name__ == "__main__":
    main(sys.argv[1])
