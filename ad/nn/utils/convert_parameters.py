"""``ad.nn.utils.convert_parameters``: torch's module path of ``parameters_to_vector`` and
``vector_to_parameters`` (defined in ``clip_grad.py`` beside the other whole-model gradient utilities)."""

from .clip_grad import parameters_to_vector, vector_to_parameters

__all__ = ["parameters_to_vector", "vector_to_parameters"]
