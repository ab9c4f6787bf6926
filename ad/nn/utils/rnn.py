"""Variable-length sequences for the recurrent layers, as ``torch.nn.utils.rnn``.

``PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices)``: the steps of a batch of sequences
sorted by decreasing length, time-major and without padding: ``data`` (``sum(lengths)``, ``*``) holds step 0
of every sequence, then step 1 of those still running, and so on; ``batch_sizes[t]`` (int64) is how many
sequences have a step ``t``. ``sorted_indices`` maps the sorted order back to the caller's batch order
(``None`` when the caller's batch was already sorted); ``unsorted_indices`` is its inverse. As torch's, the two
index tensors live on the data's device and ``batch_sizes`` on the host (it is read in Python to drive the steps).

Packing and padding are one integer-array gather each (``data = padded.reshape(T * B, ...)[rows]``), so
gradients flow through the existing indexing op and no new rule is needed.
"""

from collections import namedtuple

import numpy as np

from ... import cuda as _cuda
from ...creation import full
from ...ops import cat
from ...tensor import Tensor, wrap_array

__all__ = [
    "PackedSequence",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "pack_sequence",
    "unpad_sequence",
    "unpack_sequence",
    "invert_permutation",
]


def _int64(values, like=None):
    """An int64 tensor of ``values``, on ``like``'s device (the host when ``like`` is None or a host tensor)."""
    out = wrap_array(np.asarray(values, dtype=np.int64))
    return out if like is None or like._dev is None else out.to(like.device)


def _host_int64(t):
    return np.asarray(_cuda.host_copy(t._data) if isinstance(t, Tensor) else t, dtype=np.int64)


def invert_permutation(permutation):
    """The inverse of an index permutation (``None`` stays ``None``), on the permutation's device."""
    if permutation is None:
        return None
    p = _host_int64(permutation)
    out = np.empty_like(p)
    out[p] = np.arange(p.size, dtype=np.int64)
    return _int64(out, permutation if isinstance(permutation, Tensor) else None)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """A packed batch of variable-length sequences (see the module docstring); made by
    ``pack_padded_sequence`` or ``pack_sequence`` and accepted by ``RNN``, ``LSTM`` and ``GRU``."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            raise ValueError("PackedSequence needs batch_sizes (use pack_padded_sequence to make one)")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return False

    def to(self, *args, **kwargs):
        """``data.to(*args, **kwargs)``, with the sorted / unsorted indices moved to the new data's device
        (``batch_sizes`` stays on the host, as torch's). Returns ``self`` when ``data`` does not change."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(indices):
            return None if indices is None else indices.to(data.device)

        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def half(self):
        return self.to(np.float16)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def short(self):
        return self.to(np.int16)

    def char(self):
        return self.to(np.int8)

    def byte(self):
        return self.to(np.uint8)


def _as_lengths(lengths):
    if isinstance(lengths, Tensor):
        if lengths._dev is not None:  # torch's check: the lengths are read on the host, so they must live there
            raise RuntimeError(
                f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.ndim}D {lengths.device} "
                f"{'Long' if lengths.dtype == np.int64 else lengths.dtype} tensor"
            )
        return np.asarray(lengths._data).astype(np.int64).reshape(-1)
    return np.asarray(lengths, dtype=np.int64).reshape(-1)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):  # noqa: A002 - torch's name
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) of sequences of the given
    lengths.

    Args:
        input: the padded batch.
        lengths: each sequence's length (a list or a 1-D integer tensor).
        batch_first: whether ``input`` is ``(B, T, *)``.
        enforce_sorted: require ``lengths`` in decreasing order; with ``False`` the batch is sorted here and
            ``sorted_indices`` remembers how.

    Returns:
        a ``PackedSequence``.

    Raises:
        RuntimeError: lengths not sorted (with ``enforce_sorted``), a length <= 0, more lengths than batch
            entries, or a length longer than ``input``.

    Example:
        >>> packed = pack_padded_sequence(x, [5, 3, 2])
        >>> out, h = ad.nn.GRU(4, 8)(packed)
    """
    lengths = _as_lengths(lengths)
    if enforce_sorted:
        if np.any(lengths[:-1] < lengths[1:]):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
                "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement "
                "if you do not need ONNX exportability."
            )
        sorted_indices = None
        order = np.arange(lengths.size)
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _int64(order, input)  # on the data's device (batch_sizes stays on the host, as torch's)
    if batch_first:
        input = input.transpose(0, 1)  # noqa: A001
    steps, batch = input.shape[0], input.shape[1]
    if lengths.size != batch:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {lengths.size} (batch_size={batch})"
        )
    if lengths.size and lengths[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    if lengths.size and lengths[0] > steps:
        raise RuntimeError(f"Expected sequence length to be at most {steps}, but got {int(lengths[0])}")
    batch_sizes = (lengths[None, :] > np.arange(int(lengths[0]) if lengths.size else 0)[:, None]).sum(1)
    # row t * B + order[j] of the flattened batch, for each step t and each sequence j still running
    rows = np.concatenate([t * batch + order[:n] for t, n in enumerate(batch_sizes)]) if batch_sizes.size else []
    data = input.reshape(steps * batch, *input.shape[2:])[np.asarray(rows, dtype=np.int64)]
    return PackedSequence(data, _int64(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo ``pack_padded_sequence``: returns ``(padded, lengths)`` with ``padded`` of shape ``(T, B, *)``
    (``(B, T, *)`` with ``batch_first``) in the caller's batch order and ``lengths`` an int64 tensor.

    Raises:
        ValueError: ``total_length`` shorter than the longest sequence.
    """
    data, batch_sizes = sequence.data, _host_int64(sequence.batch_sizes)
    max_len = batch_sizes.size
    if total_length is not None:
        if total_length < max_len:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in input, but got "
                f"total_length={total_length} and max sequence length being {max_len}"
            )
        steps = total_length
    else:
        steps = max_len
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(1)  # in sorted order
    order = np.arange(batch) if sequence.unsorted_indices is None else _host_int64(sequence.unsorted_indices)
    # for each output position (t, b): the packed row, or the padding row appended after the data
    n = data.shape[0]
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    index = np.full((steps, batch), n, dtype=np.int64)
    for t in range(max_len):
        index[t, : batch_sizes[t]] = offsets[t] + np.arange(batch_sizes[t])
    index = index[:, order]
    pad = full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    padded = cat([data, pad])[index.reshape(-1)].reshape(steps, batch, *data.shape[1:])
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, _int64(lengths[order])


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shapes ``(L_i, *)`` into ``(max L, B, *)`` (``(B, max L, *)`` with ``batch_first``),
    padding with ``padding_value`` on ``padding_side`` (``"right"`` or ``"left"``).

    Raises:
        RuntimeError (as torch): an unknown ``padding_side``, no sequences, or sequences whose trailing
        dimensions differ.
    """
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    lengths = [s.shape[0] for s in sequences]
    steps, batch = max(lengths), len(sequences)
    rest = sequences[0].shape[1:]
    for seq in sequences[1:]:
        for dim, (want, got) in enumerate(zip(rest, seq.shape[1:]), start=1):
            if want != got:
                raise RuntimeError(
                    f"The size of tensor a ({want}) must match the size of tensor b ({got}) at non-singleton "
                    f"dimension {dim}"
                )
    total = sum(lengths)
    index = np.full((steps, batch), total, dtype=np.int64)
    start = 0
    for b, n in enumerate(lengths):
        where = np.arange(n) if padding_side == "right" else np.arange(steps - n, steps)
        index[where, b] = start + np.arange(n)
        start += n
    pad = full((1, *rest), padding_value, dtype=sequences[0].dtype, device=sequences[0].device)
    out = cat([*sequences, pad])[index.reshape(-1)].reshape(steps, batch, *rest)
    return out.transpose(0, 1) if batch_first else out


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of tensors of shapes ``(L_i, *)``: ``pack_padded_sequence(pad_sequence(sequences), ...)``."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """Split a padded batch back into a list of tensors of the given lengths (``pad_sequence``'s inverse)."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[: int(n)] for seq, n in zip(padded_sequences.unbind(0), _as_lengths(lengths))]


def unpack_sequence(packed_sequences):
    """A list of the sequences of a ``PackedSequence``, in the caller's batch order (``pack_sequence``'s
    inverse)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
