"""``ad.utils.data`` against ``torch.utils.data``: batch structures, lengths, orders, the samplers' contracts, the
workers (threads here) and torch's errors."""

import collections
import math

import numpy as np
import pytest

import ad
from ad.utils import data as D

torch = pytest.importorskip("torch")
T = torch.utils.data


def _np(x):
    if isinstance(x, (ad.Tensor, torch.Tensor)):
        return ("tensor", str(x.dtype).split(".")[-1].replace("float32", "float64"), x.numpy().tolist())
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_np(v) for v in x])
    return x


def _batches(lib_data, dataset, **kw):
    return [_np(b) for b in lib_data.DataLoader(dataset, **kw)]


X = np.arange(14.0).reshape(7, 2)
Y = np.arange(7)


@pytest.mark.parametrize("kw", [{}, {"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": None},
                                {"batch_size": 7}, {"batch_size": 10}])
def test_tensor_dataset_batches_as_torch(kw):
    got = _batches(D, D.TensorDataset(ad.tensor(X), ad.tensor(Y)), **kw)
    want = _batches(T, T.TensorDataset(torch.tensor(X), torch.tensor(Y)), **kw)
    assert got == want
    assert len(D.DataLoader(D.TensorDataset(ad.tensor(X), ad.tensor(Y)), **kw)) == len(
        T.DataLoader(T.TensorDataset(torch.tensor(X), torch.tensor(Y)), **kw)
    )


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize(
    "samples",
    [
        [{"a": 1.0, "b": np.ones(2), "s": "u"}, {"a": 2.0, "b": np.zeros(2), "s": "v"}],
        [(1, 2.5, True), (3, 4.5, False)],
        [[np.float64(1.5), np.int64(2)], [np.float64(3.5), np.int64(4)]],
        [Point(1.0, np.arange(3)), Point(2.0, np.arange(3) * 2)],
    ],
)
def test_default_collate_structures_as_torch(samples):
    got = _np(D.default_collate(samples))
    want = _np(T.default_collate(samples))
    assert got == want


def test_collate_errors_as_torch():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        D.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError):
        D.default_collate([object(), object()])


def test_shuffle_is_a_permutation_reproducible_with_the_seed_and_a_generator():
    ds = D.TensorDataset(ad.arange(50))
    ad.manual_seed(3)
    first = [b[0].tolist() for b in D.DataLoader(ds, batch_size=8, shuffle=True)]
    ad.manual_seed(3)
    again = [b[0].tolist() for b in D.DataLoader(ds, batch_size=8, shuffle=True)]
    assert first == again and sorted(sum(first, [])) == list(range(50)) and sum(first, []) != list(range(50))
    g = ad.Generator().manual_seed(1)
    a = [b[0].tolist() for b in D.DataLoader(ds, batch_size=8, shuffle=True, generator=g)]
    g.manual_seed(1)
    assert a == [b[0].tolist() for b in D.DataLoader(ds, batch_size=8, shuffle=True, generator=g)]


def test_samplers():
    assert list(D.SequentialSampler(range(4))) == [0, 1, 2, 3]
    r = list(D.RandomSampler(range(5), replacement=True, num_samples=40))
    assert len(r) == 40 and set(r) <= set(range(5))
    r = list(D.RandomSampler(range(5), num_samples=12))  # without replacement: whole permutations, then a part
    assert len(r) == 12 and sorted(r[:5]) == sorted(r[5:10]) == list(range(5)) and len(set(r[10:])) == 2
    assert sorted(D.SubsetRandomSampler([3, 7, 9])) == [3, 7, 9]
    assert list(D.BatchSampler(range(7), 3, False)) == list(T.BatchSampler(range(7), 3, False))
    assert list(D.BatchSampler(range(7), 3, True)) == list(T.BatchSampler(range(7), 3, True))
    assert len(D.BatchSampler(range(7), 3, False)) == 3 and len(D.BatchSampler(range(7), 3, True)) == 2
    ad.manual_seed(0)
    w = list(D.WeightedRandomSampler([0.0, 1.0, 3.0], 4000))
    counts = np.bincount(w, minlength=3)
    assert counts[0] == 0 and abs(counts[2] / counts[1] - 3.0) < 0.4
    assert sorted(D.WeightedRandomSampler([1.0, 1.0, 5.0], 3, replacement=False)) == [0, 1, 2]


@pytest.mark.parametrize(
    "make",
    [
        lambda L: L.BatchSampler(range(3), 0, False),
        lambda L: L.BatchSampler(range(3), 2, 1),
        lambda L: L.RandomSampler(range(3), num_samples=0),
        lambda L: L.RandomSampler(range(3), replacement=1),
        lambda L: L.WeightedRandomSampler([1.0, 2.0], 0),
        lambda L: L.DataLoader(range(3), num_workers=-1),
        lambda L: L.DataLoader(range(3), shuffle=True, sampler=L.SequentialSampler(range(3))),
        lambda L: L.DataLoader(range(3), batch_sampler=L.BatchSampler(range(3), 2, False), batch_size=2),
        lambda L: L.DataLoader(range(3), batch_size=None, drop_last=True),
        lambda L: L.DataLoader(range(3), prefetch_factor=2),
        lambda L: L.DataLoader(range(3), persistent_workers=True),
        lambda L: L.random_split(range(5), [2, 2]),
    ],
)
def test_argument_errors_as_torch(make):
    with pytest.raises(Exception) as want:
        make(T)
    with pytest.raises(type(want.value)):
        make(D)


def test_iterable_dataset_rejects_shuffle_and_samplers():
    class Stream(D.IterableDataset):
        def __iter__(self):
            return iter(range(5))

    for kw in ({"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0]]}):
        with pytest.raises(ValueError, match="IterableDataset"):
            D.DataLoader(Stream(), **kw)


def test_random_split_fractions_and_subsets():
    parts = D.random_split(range(10), [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [len(p) for p in T.random_split(range(10), [0.5, 0.3, 0.2])] == [5, 3, 2]
    assert sorted(sum((list(p) for p in parts), [])) == list(range(10))
    parts = D.random_split(range(7), [0.5, 0.5])
    assert [len(p) for p in parts] == [len(p) for p in T.random_split(range(7), [0.5, 0.5])]
    sub = D.Subset(list("abcdef"), [5, 0, 2])
    assert [sub[i] for i in range(3)] == ["f", "a", "c"] and len(sub) == 3


def test_concat_and_stack_datasets_as_torch():
    a, b = list(range(3)), list(range(10, 15))
    got, want = D.ConcatDataset([a, b]), T.ConcatDataset([a, b])
    assert len(got) == len(want) == 8
    assert [got[i] for i in range(-8, 8)] == [want[i] for i in range(-8, 8)]
    s = D.StackDataset(x=a, y=[4, 5, 6])
    assert s[1] == {"x": 1, "y": 5} and len(s) == 3
    with pytest.raises(ValueError):
        D.StackDataset(a, b)


class _Stream(D.IterableDataset):
    """0..n-1, split across workers as torch's documentation shows."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = D.get_worker_info()
        if info is None:
            return iter(range(self.n))
        per = math.ceil(self.n / info.num_workers)
        return iter(range(info.id * per, min(self.n, (info.id + 1) * per)))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("num_workers", [0, 1, 3])
def test_workers_give_the_same_batches_in_order(num_workers):
    ds = D.TensorDataset(ad.arange(23.0), ad.arange(23))
    got = [_np(b) for b in D.DataLoader(ds, batch_size=4, num_workers=num_workers)]
    want = [_np(b) for b in D.DataLoader(ds, batch_size=4)]
    assert got == want
    seen = []
    loader = D.DataLoader(_Stream(10), batch_size=3, num_workers=num_workers,
                          worker_init_fn=lambda wid: seen.append(D.get_worker_info().id))
    values = sorted(sum((b.tolist() for b in loader), []))
    assert values == list(range(10)) and sorted(seen) == list(range(num_workers))
    assert D.get_worker_info() is None


def test_worker_exception_reaches_the_caller():
    class Bad(D.Dataset):
        def __getitem__(self, i):
            if i == 5:
                raise KeyError("sample 5 is broken")
            return np.float64(i)

        def __len__(self):
            return 8

    with pytest.raises(KeyError, match="sample 5 is broken"):
        list(D.DataLoader(Bad(), batch_size=2, num_workers=2))


def test_training_loop_over_a_loader_matches_full_batch_gradient():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    w = ad.zeros(3, requires_grad=True)
    for xb, yb in D.DataLoader(D.TensorDataset(ad.tensor(x), ad.tensor(y)), batch_size=4):
        ((xb @ w - yb) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), -2 * x.T @ y)
