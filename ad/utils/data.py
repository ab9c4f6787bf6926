"""``ad.utils.data``: datasets, samplers and ``DataLoader``, as ``torch.utils.data``.

A training loop ported from torch keeps its data pipeline: ``TensorDataset``, ``random_split``, ``Subset``,
``ConcatDataset``, the samplers (``DistributedSampler``: each rank of ``ad.distributed`` its share),
``default_collate`` and ``DataLoader`` (batching, shuffling, ``drop_last``,
``collate_fn``, ``batch_sampler``, iterable datasets) take torch's arguments, give torch's batch structure and raise
torch's errors. Shuffles draw from ``ad``'s random stream (``ad.manual_seed``) or from ``generator=`` (an
``ad.Generator``), so a seeded run repeats; the numbers are not torch's (its generator differs).

Workers: with ``num_workers > 0`` the batches are fetched by that many worker threads of this process (torch
forks processes), ``prefetch_factor`` batches ahead each, and delivered in the sampler's order (``in_order``);
``worker_init_fn(worker_id)`` runs once in each worker, where ``get_worker_info()`` describes it (an
``IterableDataset`` splits its stream with it as under torch). numpy releases the GIL in its copies and
arithmetic, so threads overlap loading with the training step without pickling the dataset.
"""

import bisect
import collections.abc
import itertools
import math
import queue
import threading
import warnings

import numpy as np

from ..tensor import Tensor

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]


# ---------------------------------------------------------------------------------------------------------
# datasets


class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and (usually) ``__len__``; ``a + b`` concatenates."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: ``__iter__``. Under worker threads each worker iterates its own copy of the stream;
    split it with ``get_worker_info()`` as under torch, or every sample comes once per worker."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples ``tuple(t[index] for t in tensors)``; the tensors share their first dimension."""

    def __init__(self, *tensors):
        if not tensors or any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class StackDataset(Dataset):
    """Samples zipped from several datasets of one length: a tuple (positional) or a dict (keyword)."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError(
                "Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like input/output, but both"
                " types are given."
            )
        datasets = args or tuple(kwargs.values())
        if not datasets:
            raise ValueError("At least one dataset should be passed")
        self._length = len(datasets[0])
        if any(self._length != len(d) for d in datasets):
            raise ValueError("Size mismatch between datasets")
        self.datasets = args if args else kwargs

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self):
        return self._length


class ConcatDataset(Dataset):
    """The samples of several map-style datasets, one after the other (negative indices count from the end)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """The streams of several iterable datasets, one after the other."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self):
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(d)
        return total


class Subset(Dataset):
    """``dataset`` at the given ``indices``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        inner = getattr(self.dataset, "__getitems__", None)
        if callable(inner):
            return inner([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping ``Subset``s of the given lengths, or of the given fractions of its
    length (summing to 1; the remainder goes round-robin to the first subsets, as torch's)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(
                    f"Length of split at index {i} is 0. This might result in an empty dataset.", stacklevel=2
                )
        lengths = counts
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = _rng(generator).permutation(n).tolist()
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start : start + length]))
        start += length
    return out


def _rng(generator):
    from ..random import _rng_of

    return _rng_of(generator)


# ---------------------------------------------------------------------------------------------------------
# samplers


class Sampler:
    """An iterable of dataset indices (or of index lists, for a batch sampler)."""

    def __init__(self, data_source=None):
        if data_source is not None:
            warnings.warn(
                "`data_source` argument is not used and will be removed in 2.2.0."
                "You may still have custom implementation that utilizes it.",
                stacklevel=2,
            )

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices each epoch, or ``num_samples`` draws with ``replacement=True``."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = _rng(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self):
        return self.num_samples


class DistributedSampler(Sampler):
    """Each of ``num_replicas`` processes (ranks of ``ad.distributed``) its own share of the dataset's indices:
    the indices (shuffled by epoch, the same permutation on every rank) padded with their first ones to a
    multiple of ``num_replicas`` (or, with ``drop_last``, cut to one), then every ``num_replicas``-th from
    ``rank`` on. Call ``set_epoch(epoch)`` before each epoch so the shuffle changes.

    The permutation is drawn from an ``ad.Generator`` seeded with ``seed + epoch``: deterministic and equal on
    every rank, as torch's, but not torch's numbers.

    Args:
        dataset: a dataset with ``len()``.
        num_replicas: the number of processes; defaults to ``ad.distributed.get_world_size()``.
        rank: this process's rank; defaults to ``ad.distributed.get_rank()``.
        shuffle: permute the indices each epoch.
        seed: the shuffle's seed, the same on every rank.
        drop_last: drop the tail so that every rank gets the same count without padding.

    Raises:
        ValueError: ``num_replicas`` or ``rank`` left out while ``ad.distributed`` is not initialized, or a
            rank outside ``[0, num_replicas - 1]`` (torch's messages).

    Example:
        >>> sampler = ad.utils.data.DistributedSampler(dataset, num_replicas=2, rank=0)
        >>> loader = ad.utils.data.DataLoader(dataset, batch_size=8, sampler=sampler)
        >>> for epoch in range(3):
        ...     sampler.set_epoch(epoch)
        ...     for batch in loader: ...
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        from .. import distributed

        if num_replicas is None:
            num_replicas = distributed.get_world_size()
        if rank is None:
            rank = distributed.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)  # (the largest share all ranks have)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            from ..random import Generator, randperm

            g = Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:  # (fewer indices than ranks: repeat them)
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Use ``epoch`` for the next shuffle (each epoch then sees another permutation, the same on all ranks)."""
        self.epoch = epoch


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in _rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        w = np.asarray(weights._data if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not replacement and num_samples > np.count_nonzero(w):
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        p = self.weights / self.weights.sum()
        draws = _rng(self.generator).choice(len(p), self.num_samples, replace=self.replacement, p=p)
        yield from draws.tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler``; the last shorter one unless ``drop_last``."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


# ---------------------------------------------------------------------------------------------------------
# collation


_COLLATE_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def default_convert(data):
    """numpy arrays (of numbers) to tensors, inside mappings and sequences; everything else as it is."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return _as_tensor(data) if data.dtype.kind in "biuf" else data
    if isinstance(data, np.generic) and data.dtype.kind in "biuf":
        return _as_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()}) if _rebuildable(data) else {
            k: default_convert(v) for k, v in data.items()
        }
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(d) for d in data]
    return data


def _rebuildable(mapping):
    try:
        type(mapping)()
        return True
    except TypeError:
        return False


def _as_tensor(array):
    from ..creation import as_tensor

    return as_tensor(array)


def default_collate(batch):
    """Stack a list of samples into a batch, as torch's: tensors and numpy arrays are stacked along a new first
    dimension, Python floats become a float64 tensor, ints an int64 one, bools a bool one, strings stay a list,
    and mappings, named tuples and sequences are collated field by field."""
    from .. import stack, tensor

    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind not in "biuf":
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        return stack([_as_tensor(b) for b in batch], 0)
    if isinstance(elem, np.generic):
        return _as_tensor(np.asarray(batch))
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, float):
        return tensor(batch, dtype=np.float64)
    if isinstance(elem, int):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        fields = {key: default_collate([d[key] for d in batch]) for key in elem}
        return type(elem)(fields) if _rebuildable(elem) else fields
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        size = len(next(it))
        if not all(len(e) == size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(samples) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise TypeError(_COLLATE_ERROR.format(type(elem)))


# ---------------------------------------------------------------------------------------------------------
# workers


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: ``id``, ``num_workers``, ``seed``, ``dataset``."""

    def __init__(self, id, num_workers, seed, dataset):  # noqa: A002
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_worker = threading.local()


def get_worker_info():
    """The calling worker's ``WorkerInfo``; ``None`` in the main thread."""
    return getattr(_worker, "info", None)


class _Fetcher:
    """Turns an index list (map-style) or a count (iterable) into a collated batch."""

    def __init__(self, loader, iterator=None):
        self.dataset = loader.dataset
        self.collate = loader.collate_fn
        self.batched = loader._auto_collation
        self.drop_last = loader.drop_last
        self.iterator = iterator
        self.ended = False

    def map_style(self, index):
        if not self.batched:
            return self.collate(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        samples = getitems(index) if callable(getitems) else [self.dataset[i] for i in index]
        return self.collate(samples)

    def stream(self, batch_size):
        """The next batch of the stream (``batch_size`` None: the next sample); raises StopIteration at its end."""
        if self.ended:
            raise StopIteration
        if batch_size is None:
            return self.collate(next(self.iterator))
        samples = list(itertools.islice(self.iterator, batch_size))
        if not samples or (self.drop_last and len(samples) < batch_size):
            self.ended = True
            raise StopIteration
        if len(samples) < batch_size:
            self.ended = True
        return self.collate(samples)


# ---------------------------------------------------------------------------------------------------------
# DataLoader


class DataLoader:
    """Batches of ``dataset``, as ``torch.utils.data.DataLoader`` (see the module docstring for workers)."""

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=None,
        sampler=None,
        batch_sampler=None,
        num_workers=0,
        collate_fn=None,
        pin_memory=False,
        drop_last=False,
        timeout=0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor=None,
        persistent_workers=False,
        pin_memory_device="",
        in_order=True,
    ):
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 to enable "
                "multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if isinstance(dataset, IterableDataset):
            if shuffle not in (None, False):
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler option, but got "
                    f"batch_sampler={batch_sampler}"
                )
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
            )
        if sampler is None and not isinstance(dataset, IterableDataset):
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not isinstance(dataset, IterableDataset):
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._auto_collation = batch_sampler is not None or (
            isinstance(dataset, IterableDataset) and batch_size is not None
        )
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._initialized = True

    def __setattr__(self, name, value):
        if getattr(self, "_initialized", False) and name in (
            "batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers"
        ):
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
            return n
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return self._single_process()
        return self._threaded()

    def _single_process(self):
        if isinstance(self.dataset, IterableDataset):
            fetch = _Fetcher(self, iter(self.dataset))
            while True:
                try:
                    yield fetch.stream(self.batch_size if self._auto_collation else None)
                except StopIteration:
                    return
        fetch = _Fetcher(self)
        for index in self._index_sampler:
            yield fetch.map_style(index)

    def _threaded(self):
        """Batches fetched by ``num_workers`` threads, delivered in order: a map-style dataset's index lists go
        round-robin to the workers (``prefetch_factor`` outstanding each); an iterable dataset's workers each
        stream their copy and their batches are interleaved round-robin, as torch's."""
        n = self.num_workers
        base_seed = int(_rng(self.generator).integers(0, 2**63))
        tasks = [queue.Queue() for _ in range(n)]
        results = [queue.Queue() for _ in range(n)]
        stop = threading.Event()
        iterable = isinstance(self.dataset, IterableDataset)

        def work(wid):
            _worker.info = WorkerInfo(wid, n, base_seed + wid, self.dataset)
            try:
                if self.worker_init_fn is not None:
                    self.worker_init_fn(wid)
                fetch = _Fetcher(self, iter(self.dataset) if iterable else None)
                while not stop.is_set():
                    index = tasks[wid].get()
                    if index is None:
                        return
                    try:
                        batch = (
                            fetch.stream(self.batch_size if self._auto_collation else None)
                            if iterable
                            else fetch.map_style(index)
                        )
                        results[wid].put((True, batch))
                    except StopIteration:
                        results[wid].put((False, StopIteration()))
                        return
                    except BaseException as e:  # re-raised in the main thread, as torch re-raises a worker's
                        results[wid].put((False, e))
            except BaseException as e:
                results[wid].put((False, e))

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(n)]
        for t in threads:
            t.start()
        order = collections.deque()  # worker ids of the outstanding requests, oldest first
        live = set(range(n))
        try:
            if iterable:
                for _ in range(self.prefetch_factor or 1):
                    for w in range(n):
                        tasks[w].put(0)
                        order.append(w)
                while order:
                    w = order.popleft()
                    if w not in live:
                        continue
                    ok, batch = self._get(results[w])
                    if not ok:
                        if isinstance(batch, StopIteration):
                            live.discard(w)
                            continue
                        raise batch
                    tasks[w].put(0)
                    order.append(w)
                    yield batch
                return
            indices = iter(self._index_sampler)
            w_next = 0

            def request():
                nonlocal w_next
                index = next(indices, None)
                if index is None:
                    return False
                tasks[w_next].put(index)
                order.append(w_next)
                w_next = (w_next + 1) % n
                return True

            for _ in range(n * (self.prefetch_factor or 1)):
                if not request():
                    break
            while order:
                w = order.popleft()
                ok, batch = self._get(results[w])
                if not ok:
                    raise batch
                request()
                yield batch
        finally:
            stop.set()
            for q in tasks:
                q.put(None)

    def _get(self, results):
        try:
            return results.get(timeout=self.timeout if self.timeout > 0 else None)
        except queue.Empty:
            raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds") from None
