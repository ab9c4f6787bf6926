"""``ad.nn.functional``, as ``torch.nn.functional``: one module per concern.

- ``activation``: elementwise activations, softmax / softmin / glu (composites of ``ad`` ops);
- ``loss``: the losses (composites), ``_reduce`` applies ``reduction``;
- ``conv``: unfold / fold (Python-swept im2col primitives) and the convolutions built on them;
- ``pooling``, ``normalization``, ``vision`` (pad, interpolate, pixel shuffle), ``sparse`` (embedding,
  one_hot), ``dropout``, ``distance``, ``linear``, ``attention``.
"""

from .conv import conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, fold, unfold
from .loss import cross_entropy, linear, log_softmax, mse_loss, nll_loss, relu, sigmoid, softmax, tanh
from .vision import interpolate, pad, pixel_shuffle, pixel_unshuffle, upsample
