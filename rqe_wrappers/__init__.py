"""rqe-wrappers: PettingZoo wrappers that make stock SB3 PPO train robust collaborators.

Public API (imports stay light; SB3 and torch load only from :mod:`rqe_wrappers.sb3`):

- :func:`srpo_wrap`: SRPO's adversarial shadow (strategic risk aversion).
- :func:`aht_wrap`: minimax-Bayes ad hoc teamwork (scenarios over a background population).
- :func:`background_seats`: fix some seats to given policies.
- :class:`Policy`: the partner interface shared by wrappers, nature and the zoo.
"""

from rqe_wrappers.errors import (
    ConfigError,
    PopulationError,
    RQEError,
    SeatError,
    SpaceMismatchError,
    UnsupportedSpaceError,
)
from rqe_wrappers.policy import ConstantPolicy, DiscretePolicy, FunctionPolicy, Policy, RandomPolicy, make_scripted
from rqe_wrappers.wrappers.aht import aht_wrap
from rqe_wrappers.wrappers.background import background_seats
from rqe_wrappers.wrappers.shadow import srpo_wrap

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ConstantPolicy",
    "DiscretePolicy",
    "FunctionPolicy",
    "Policy",
    "PopulationError",
    "RQEError",
    "RandomPolicy",
    "SeatError",
    "SpaceMismatchError",
    "UnsupportedSpaceError",
    "aht_wrap",
    "background_seats",
    "make_scripted",
    "srpo_wrap",
]
