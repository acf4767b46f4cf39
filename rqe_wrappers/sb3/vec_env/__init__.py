"""PettingZoo -> Stable-Baselines3 ``VecEnv`` (laid out like SB3's ``common/vec_env``); see docs/adapter.md.

- :mod:`.pettingzoo_vec_env`: :class:`PettingZooVecEnv`, the ``VecEnv`` (one slot per learning seat).
- :mod:`.copies`: the engine, a group of env copies stepped in one process.
- :mod:`.worker`: the subprocess protocol and :func:`default_start_method`.

``make_vec_env`` lives in :mod:`rqe_wrappers.sb3.env_util` (like SB3's ``env_util``); it is
also reachable here, so ``from rqe_wrappers.sb3.vec_env import make_vec_env`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rqe_wrappers._compat import moved_names
from rqe_wrappers.sb3.vec_env.pettingzoo_vec_env import PettingZooVecEnv
from rqe_wrappers.sb3.vec_env.worker import default_start_method

if TYPE_CHECKING:
    from rqe_wrappers.sb3.env_util import make_vec_env

__all__ = ["PettingZooVecEnv", "default_start_method", "make_vec_env"]


__getattr__ = moved_names(__name__, {"make_vec_env": "rqe_wrappers.sb3.env_util"})
