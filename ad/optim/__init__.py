"""``ad.optim``: optimizers and learning-rate schedulers with torch's names, signatures and state dicts.

Start with ``optimizer.py`` (``param_groups``, ``state``, state dicts); each algorithm is one small module.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
