"""Build a seeded :class:`~rqe_wrappers.sb3.vec_env.PettingZooVecEnv` in one call (like SB3's ``env_util``).

See docs/adapter.md.
"""

from __future__ import annotations

from typing import Any

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.sb3.vec_env.copies import EnvFn
from rqe_wrappers.sb3.vec_env.pettingzoo_vec_env import PettingZooVecEnv


def make_vec_env(
    env_fn: EnvFn,
    n_copies: int = 1,
    n_workers: int = 0,
    seed: int | None = None,
    n_envs: int | None = None,
    **kwargs: Any,
) -> PettingZooVecEnv:
    """:class:`PettingZooVecEnv` seeded with ``seed`` (copy ``j``'s first reset uses ``seed + j``).

    Example:
        >>> from mpe2 import simple_tag_v3
        >>> from rqe_wrappers import srpo_wrap, RandomPolicy
        >>> def tag():
        ...     env = simple_tag_v3.parallel_env(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=25)
        ...     runner = RandomPolicy(env.observation_space("agent_0"), env.action_space("agent_0"))
        ...     return srpo_wrap(env, tau=1.0, fixed={"agent_0": runner})
        >>> venv = make_vec_env(tag, n_copies=2, seed=0)
        >>> venv.num_envs, venv.slot_seats
        (4, ['adversary_0', 'adversary_1', 'adversary_0', 'adversary_1'])
        >>> venv.close()
    """
    n_copies = renamed_argument("n_envs", n_envs, "n_copies", n_copies, default=1)
    venv = PettingZooVecEnv(env_fn, n_copies, n_workers=n_workers, **kwargs)
    if seed is not None:
        venv.seed(seed)
    return venv
