"""``ad.optim``: optimizers and learning-rate schedulers with torch's names, signatures and state dicts.

Start with ``optimizer.py`` (``param_groups``, ``state``, state dicts); each algorithm is one small module
(``adamax.py`` holds Adamax, NAdam and RAdam; ``adadelta.py`` Adadelta, ASGD and Rprop; ``lbfgs.py`` LBFGS;
``adafactor.py`` Adafactor and Muon); ``swa_utils`` weight averaging; ``swap_state`` runs an optimizer against
swapped-in parameters and state.
"""

from . import lr_scheduler, swa_utils
from .adadelta import ASGD, Adadelta, Rprop
from .adafactor import Adafactor, Muon
from .adam import Adam, AdamW
from .adamax import Adamax, NAdam, RAdam
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD
from .swap_state import swap_in_optimizer_params_and_state

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adamax",
    "NAdam",
    "RAdam",
    "Adadelta",
    "ASGD",
    "Rprop",
    "LBFGS",
    "Adafactor",
    "Muon",
    "lr_scheduler",
    "swa_utils",
    "swap_in_optimizer_params_and_state",
]
