"""``ad.nn.utils``: gradient clipping, parameter/vector conversion and (``rnn``) packed sequences, as
``torch.nn.utils``."""

from . import rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm, parameters_to_vector, vector_to_parameters

__all__ = [
    "rnn",
    "clip_grad_norm_",
    "clip_grad_value_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
]
