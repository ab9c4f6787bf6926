"""``ad.nn.modules``: ``Module`` (``module.py``: registration, traversal, state dicts, hooks), the containers
(``container.py``) and the layers, one module per concern; every layer calls ``ad.nn.functional``."""

from . import activation, conv, distance, loss, padding, pooling, transformer, vision  # noqa: E402 - for their __all__
from .activation import *  # noqa: F403
from .adaptive import AdaptiveLogSoftmaxWithLoss
from .attention import MultiheadAttention
from .channelshuffle import ChannelShuffle
from .container import Container, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import *  # noqa: F403
from .distance import *  # noqa: F403
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from .lazy import LazyModuleMixin
from .linear import Bilinear, Flatten, Identity, LazyLinear, Linear, Unflatten
from .loss import *  # noqa: F403
from .module import Module
from .module_extras import bind as _bind_module_extras
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    CrossMapLRN2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
    LocalResponseNorm,
    RMSNorm,
    SyncBatchNorm,
)
from .padding import *  # noqa: F403
from .pooling import *  # noqa: F403
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .sparse import Embedding, EmbeddingBag
from .transformer import *  # noqa: F403
from .vision import *  # noqa: F403

__all__ = [
    *activation.__all__,
    *loss.__all__,
    *pooling.__all__,
    *padding.__all__,
    *vision.__all__,
    *distance.__all__,
    *transformer.__all__,
    "Module",
    "Container",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Identity",
    "Linear",
    "Bilinear",
    "Flatten",
    "Unflatten",
    *conv.__all__,
    "LazyModuleMixin",
    "LazyLinear",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "LocalResponseNorm",
    "CrossMapLRN2d",
    "SyncBatchNorm",
    "Embedding",
    "EmbeddingBag",
    "MultiheadAttention",
    "AdaptiveLogSoftmaxWithLoss",
    "ChannelShuffle",
    "RNNBase",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
]

_bind_module_extras(Module)
