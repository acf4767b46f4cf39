"""rqe-wrappers: PettingZoo wrappers that make stock SB3 PPO train robust collaborators.

Everything a training script writes is importable from here and loaded on first use, so
``import rqe_wrappers`` stays light (no torch, SB3 or matplotlib until you touch them). See
``docs/ARCHITECTURE.md`` for the data flow and the package map.

Example:
    >>> import rqe_wrappers
    >>> rqe_wrappers.srpo_wrap.__module__
    'rqe_wrappers.srpo.shadow'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rqe_wrappers import _compat
from rqe_wrappers.errors import (
    ActionError,
    CacheError,
    ChecksumError,
    ConfigError,
    NonFiniteError,
    PopulationError,
    RQEError,
    SeatError,
    SpaceMismatchError,
    UnsupportedSpaceError,
    VecEnvStateError,
    WorkerError,
    WorkerTimeoutError,
)

__version__ = "0.2.0"

#: public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # methods (PettingZoo -> PettingZoo wrappers)
    "srpo_wrap": "rqe_wrappers.srpo.shadow",
    "aht_wrap": "rqe_wrappers.aht.wrapper",
    "AHTConfig": "rqe_wrappers.aht.config",
    "background_seats": "rqe_wrappers.seats.background",
    # partners
    "Policy": "rqe_wrappers.core.policy",
    "DiscretePolicy": "rqe_wrappers.core.policy",
    "RandomPolicy": "rqe_wrappers.core.policy",
    "ConstantPolicy": "rqe_wrappers.core.policy",
    "FunctionPolicy": "rqe_wrappers.core.policy",
    "make_scripted": "rqe_wrappers.core.registry",
    "register_scripted": "rqe_wrappers.core.registry",
    # the zoo
    "load_population": "rqe_wrappers.zoo.client",
    # SB3 (loads torch and stable_baselines3)
    "PettingZooVecEnv": "rqe_wrappers.sb3.vec_env",
    "make_vec_env": "rqe_wrappers.sb3.env_util",
    "batched_vec_env": "rqe_wrappers.batched.vec_env",
    "SRPOCallback": "rqe_wrappers.sb3.srpo_callback",
    "AHTCallback": "rqe_wrappers.sb3.aht_callback",
    "SB3Policy": "rqe_wrappers.sb3.sb3_policy",
    "RoleVecNormalize": "rqe_wrappers.sb3.normalize",
    "StatefulCheckpointCallback": "rqe_wrappers.sb3.checkpoint",
    "partner_eval_env": "rqe_wrappers.sb3.evaluation",
    "evaluate_partner": "rqe_wrappers.sb3.evaluation",
}

__all__ = [  # the errors, __version__ and every name of _LAZY
    "AHTCallback",
    "AHTConfig",
    "ActionError",
    "CacheError",
    "ChecksumError",
    "ConfigError",
    "ConstantPolicy",
    "DiscretePolicy",
    "FunctionPolicy",
    "NonFiniteError",
    "PettingZooVecEnv",
    "Policy",
    "PopulationError",
    "RQEError",
    "RandomPolicy",
    "RoleVecNormalize",
    "SB3Policy",
    "SRPOCallback",
    "SeatError",
    "SpaceMismatchError",
    "StatefulCheckpointCallback",
    "UnsupportedSpaceError",
    "VecEnvStateError",
    "WorkerError",
    "WorkerTimeoutError",
    "__version__",
    "aht_wrap",
    "background_seats",
    "batched_vec_env",
    "evaluate_partner",
    "load_population",
    "make_scripted",
    "make_vec_env",
    "partner_eval_env",
    "register_scripted",
    "srpo_wrap",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rqe_wrappers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


_compat.install()

if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from rqe_wrappers.aht.config import AHTConfig
    from rqe_wrappers.aht.wrapper import aht_wrap
    from rqe_wrappers.core.policy import ConstantPolicy, DiscretePolicy, FunctionPolicy, Policy, RandomPolicy
    from rqe_wrappers.core.registry import make_scripted, register_scripted
    from rqe_wrappers.sb3.aht_callback import AHTCallback
    from rqe_wrappers.sb3.checkpoint import StatefulCheckpointCallback
    from rqe_wrappers.sb3.env_util import make_vec_env
    from rqe_wrappers.sb3.evaluation import evaluate_partner, partner_eval_env
    from rqe_wrappers.sb3.normalize import RoleVecNormalize
    from rqe_wrappers.sb3.sb3_policy import SB3Policy
    from rqe_wrappers.sb3.srpo_callback import SRPOCallback
    from rqe_wrappers.sb3.vec_env import PettingZooVecEnv
    from rqe_wrappers.seats.background import background_seats
    from rqe_wrappers.srpo.shadow import srpo_wrap
    from rqe_wrappers.zoo.client import load_population
