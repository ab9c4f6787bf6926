"""Recurrent layers: ``RNN`` (tanh / relu), ``LSTM`` (with ``proj_size``), ``GRU`` and their single-step
cells ``RNNCell``, ``LSTMCell``, ``GRUCell``, as ``torch.nn``.

Parameters carry torch's names, shapes, order and init (U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))):
``weight_ih_l{k}`` (gates * hidden, layer input), ``weight_hh_l{k}`` (gates * hidden, hidden or proj_size),
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}`` (LSTM projections), with ``_reverse`` for the second
direction; the gates are stacked in torch's order (LSTM: i, f, g, o; GRU: r, z, n). A state dict copies
across from torch unchanged.

Where to start: ``RNNBase.forward`` turns a padded batch or a ``PackedSequence`` into one time-major ``data``
matrix (``(sum of batch sizes, features)``, step ``t`` in rows ``offsets[t]:offsets[t + 1]``) and runs
``ad/nn/functional/recurrent.py``'s ``layer`` per layer and direction: one ``linear`` row projects every step's
input, then the recurrence is one Python-swept row (numpy forward, compiled backward through time) or, for
CUDA tensors and forward-mode tangents, a composite of differentiable ops; a padded batch is the packed case
with every batch size equal, so both share one path. A cell's step is a layer of one step.
"""

import math
import numbers
import warnings

import numpy as np

from ... import creation
from ...ops import cat, stack
from .. import functional as F
from .. import init
from ..functional.recurrent import GATES as _GATES
from ..functional.recurrent import layer as _layer
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module
from .utils import _factory

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNBase(Module):
    """The multi-layer recurrent network behind ``RNN``, ``LSTM`` and ``GRU`` (``mode`` one of ``"RNN_TANH"``,
    ``"RNN_RELU"``, ``"LSTM"``, ``"GRU"``), with torch's arguments and checks."""

    def __init__(
        self,
        mode,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        if not isinstance(input_size, int):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
            for direction in range(num_directions):
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input_size)), ("weight_hh", (gate_size, real_hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for stem, shape in shapes:
                    name = f"{stem}_l{layer}{suffix}"
                    setattr(self, name, Parameter(_factory(shape, dtype, device)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self):
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        """The parameters, one list per layer and direction (torch's order)."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self):
        """A no-op (cuDNN's weight packing in torch)."""

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------------ torch's checks
    def check_input(self, input, batch_sizes):  # noqa: A002 - torch's name
        weight = self._flat_weights[0]
        if input.dtype != weight.dtype:
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). Convert input: "
                f"input.to({weight.dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.size(-1)}"
            )

    def get_expected_hidden_size(self, input, batch_sizes):  # noqa: A002
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (self.num_layers * num_directions, mini_batch, size)

    def get_expected_cell_size(self, input, batch_sizes):  # noqa: A002
        expected = self.get_expected_hidden_size(input, batch_sizes)
        return (expected[0], expected[1], self.hidden_size)

    def check_hidden_size(self, hx, expected_hidden_size, msg="Expected hidden size {}, got {}"):
        if tuple(hx.shape) != tuple(expected_hidden_size):
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.shape)))

    def check_forward_args(self, input, hidden, batch_sizes):  # noqa: A002
        self.check_input(input, batch_sizes)
        if self.mode == "LSTM":
            self.check_hidden_size(
                hidden[0], self.get_expected_hidden_size(input, batch_sizes), "Expected hidden[0] size {}, got {}"
            )
            self.check_hidden_size(
                hidden[1], self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
            )
        else:
            self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    # ------------------------------------------------------------------ forward
    def forward(self, input, hx=None):  # noqa: A002
        lstm = self.mode == "LSTM"
        name = {"LSTM": "LSTM", "GRU": "GRU"}.get(self.mode, "RNN")
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes_t, sorted_indices, unsorted_indices = input
            batch_sizes = np.asarray(batch_sizes_t._data, dtype=np.int64)
            is_batched, checked = True, data
        else:
            if input.dim() not in (2, 3):
                tensor = " tensor" if name == "RNN" else ""
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D{tensor} instead")
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            sorted_indices = unsorted_indices = batch_sizes = None
            if not is_batched:
                input = input.unsqueeze(batch_dim)  # noqa: A001
            if hx is not None:
                dims = (hx[0].dim(), hx[1].dim()) if lstm else (hx.dim(),)
                want = 3 if is_batched else 2
                if any(d != want for d in dims):
                    kind = "batched 3-D" if is_batched else "unbatched 2-D"
                    if lstm:
                        raise RuntimeError(
                            f"For {kind} input, hx and cx should also be {want}-D but got "
                            f"({dims[0]}-D, {dims[1]}-D) tensors"
                        )
                    raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got {dims[0]}-D tensor")
                if not is_batched:
                    hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1)) if lstm else hx.unsqueeze(1)
            checked = input
        num_directions = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        self.check_input(checked, batch_sizes)  # batch_sizes: None unless packed
        max_batch = int(batch_sizes[0]) if packed else (checked.size(0) if self.batch_first else checked.size(1))
        if hx is None:
            shape = (self.num_layers * num_directions, max_batch)
            h0 = creation.zeros(*shape, real_hidden, dtype=checked.dtype, device=checked.device)
            c0 = creation.zeros(*shape, self.hidden_size, dtype=checked.dtype, device=checked.device) if lstm else None
        else:
            self.check_forward_args(checked, hx, batch_sizes)
            h0, c0 = hx if lstm else (hx, None)
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = None if c0 is None else c0.index_select(1, sorted_indices)

        if not packed:
            x = input.transpose(0, 1) if self.batch_first else input
            steps, batch = x.shape[0], x.shape[1]
            data = x.reshape(steps * batch, x.shape[2])
            batch_sizes = np.full(steps, batch, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                names = self._all_weights[k]
                w = {n.split("_l")[0]: getattr(self, n) for n in names}
                weights = (w["weight_ih"], w["weight_hh"], w.get("bias_ih"), w.get("bias_hh"), w.get("weight_hr"))
                out, h, c = _layer(
                    self.mode, data, offsets, batch_sizes, h0[k], None if c0 is None else c0[k], weights, direction == 1
                )
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            data = cat(outs, 1) if num_directions == 2 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                data = F.dropout(data, self.dropout, True)
        h_n = stack(h_n)
        c_n = stack(c_n) if lstm else None
        if packed:
            if unsorted_indices is not None:
                h_n = h_n.index_select(1, unsorted_indices)
                c_n = None if c_n is None else c_n.index_select(1, unsorted_indices)
            output = PackedSequence(data, batch_sizes_t, sorted_indices, unsorted_indices)
            return output, ((h_n, c_n) if lstm else h_n)
        output = data.reshape(steps, batch, data.shape[1])
        if self.batch_first:
            output = output.transpose(0, 1)
        if not is_batched:
            output = output.squeeze(batch_dim)
            h_n = h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return output, ((h_n, c_n) if lstm else h_n)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu), as ``torch.nn.RNN``.

    Args:
        input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None (torch's, positionally in torch's order).

    Returns (from ``forward(input, hx=None)``): ``(output, h_n)``; ``output`` is a ``PackedSequence`` when
    ``input`` is one.

    Raises:
        ValueError: bad arguments, an input that is not 2-D or 3-D. RuntimeError: sizes that do not match.

    Example:
        >>> rnn = ad.nn.RNN(10, 20, num_layers=2)
        >>> out, h_n = rnn(ad.randn(5, 3, 10))
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:  # torch's positional order puts nonlinearity fourth
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, as ``torch.nn.LSTM``; ``proj_size > 0`` projects ``h_t`` to that size
    (``weight_hr_l{k}``). ``forward(input, (h_0, c_0)=None)`` returns ``(output, (h_n, c_n))``.

    Example:
        >>> lstm = ad.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
        >>> out, (h_n, c_n) = lstm(ad.randn(3, 5, 10))
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit, as ``torch.nn.GRU`` (gates r, z, n; ``h' = (1 - z) * n + z * h``).

    Example:
        >>> gru = ad.nn.GRU(10, 20, num_layers=2, dropout=0.1)
        >>> out, h_n = gru(ad.randn(5, 3, 10))
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


# ---------------------------------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """One step: ``weight_ih`` (chunks * hidden, input), ``weight_hh`` (chunks * hidden, hidden), biases."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(_factory((num_chunks * hidden_size, input_size), dtype, device))
        self.weight_hh = Parameter(_factory((num_chunks * hidden_size, hidden_size), dtype, device))
        if bias:
            self.bias_ih = Parameter(_factory((num_chunks * hidden_size,), dtype, device))
            self.bias_hh = Parameter(_factory((num_chunks * hidden_size,), dtype, device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _prepare(self, name, input, hx):  # noqa: A002
        """torch's checks; returns the batched input, the batched states (zeros if ``None``) and
        whether the input was batched."""
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        states = hx if isinstance(hx, tuple | list) else (hx,)
        for idx, value in enumerate(states):
            if value is not None and value.dim() not in (1, 2):
                which = f"hx[{idx}]" if isinstance(hx, tuple | list) else "hidden"
                raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got {value.dim()}D instead")
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)  # noqa: A001
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}")
        out = []
        for idx, value in enumerate(states):
            if value is None:
                value = creation.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
            elif not is_batched:
                value = value.unsqueeze(0)
            if value.size(0) != input.size(0):
                raise RuntimeError(
                    f"Input batch size {input.size(0)} doesn't match hidden{idx} batch size {value.size(0)}"
                )
            if value.size(1) != self.hidden_size:
                raise RuntimeError(
                    f"hidden{idx} has inconsistent hidden_size: got {value.size(1)}, expected {self.hidden_size}"
                )
            out.append(value)
        return input, out, is_batched

    def _step(self, mode, input, h, c):  # noqa: A002
        """One step as a layer of one step (``recurrent.layer``: one row on the CPU, the composite elsewhere)."""
        batch = input.shape[0]
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, None)
        _, h, c = _layer(mode, input, np.array([0, batch]), np.array([batch]), h, c, weights, False)
        return h, c


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu), as ``torch.nn.RNNCell``.

    Example:
        >>> cell = ad.nn.RNNCell(10, 20)
        >>> h = cell(ad.randn(3, 10))
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        input, (h,), is_batched = self._prepare("RNNCell", input, hx)  # noqa: A001
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        h, _ = self._step(mode, input, h, None)
        return h if is_batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step, as ``torch.nn.LSTMCell``: ``forward(input, (h, c)=None)`` returns ``(h', c')``.

    Example:
        >>> cell = ad.nn.LSTMCell(10, 20)
        >>> h, c = cell(ad.randn(3, 10))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):  # noqa: A002
        input, (h, c), is_batched = self._prepare("LSTMCell", input, (None, None) if hx is None else tuple(hx))  # noqa: A001
        h, c = self._step("LSTM", input, h, c)
        return (h, c) if is_batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step, as ``torch.nn.GRUCell``.

    Example:
        >>> cell = ad.nn.GRUCell(10, 20)
        >>> h = cell(ad.randn(3, 10))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):  # noqa: A002
        input, (h,), is_batched = self._prepare("GRUCell", input, hx)  # noqa: A001
        h, _ = self._step("GRU", input, h, None)
        return h if is_batched else h.squeeze(0)
