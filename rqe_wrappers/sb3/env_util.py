"""Build a seeded, monitored :class:`~rqe_wrappers.sb3.vec_env.PettingZooVecEnv` in one call (like SB3's ``env_util``).

See docs/adapter.md.
"""

from __future__ import annotations

from typing import Any

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.sb3.monitor import RoleVecMonitor
from rqe_wrappers.sb3.vec_env.copies import EnvFn
from rqe_wrappers.sb3.vec_env.pettingzoo_vec_env import PettingZooVecEnv


def make_vec_env(
    env_fn: EnvFn,
    n_copies: int = 1,
    n_workers: int = 0,
    seed: int | None = None,
    n_envs: int | None = None,
    *,
    monitor: bool = True,
    monitor_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> PettingZooVecEnv | RoleVecMonitor:
    """:class:`PettingZooVecEnv` seeded with ``seed`` (copy ``j``'s first reset uses ``seed + j``), monitored.

    Like SB3's ``make_vec_env`` (which wraps every env in ``Monitor``), the VecEnv is wrapped in a
    :class:`~rqe_wrappers.sb3.monitor.RoleVecMonitor` (``monitor_kwargs`` go to it, e.g.
    ``{"filename": "run/monitor.csv"}``), so PPO logs ``rollout/ep_rew_mean`` (the partner-role
    return under SRPO) and ``evaluate_policy`` reads episode returns from it. ``monitor=False``
    returns the bare :class:`PettingZooVecEnv`. The wrapper forwards attribute lookups
    (``venv.slot_seats``, ``venv.share_snapshot``, ``venv.uses_snapshot``, ...) to it.

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
    return RoleVecMonitor(venv, **(monitor_kwargs or {})) if monitor else venv
