"""Tag as set up in the SRPO paper (appendix D.3): mpe2 ``simple_tag_v3``, 1 runner, 2 chasers.

Settings: 1 runner (``"agent_0"``, the prey), 2 chasers (``"adversary_0"``, ``"adversary_1"``),
2 static obstacles, discrete actions, 100 cycles per episode, every reward multiplied by 0.1.

Rewards (after scaling): each chaser gets +1 per (chaser, runner) collision of *either* chaser
at that step (a shared team reward); the runner gets -1 per collision and a penalty for leaving
the ``[-0.9, 0.9]`` square. With no early termination (mpe2's default) every episode lasts exactly
``max_cycles`` steps and ends by truncation, so a chaser's episode return is the number of
collision-steps of the team.

Observation layouts (mpe2 1.1.1 ``Scenario.observation``, full observability, checked in the tests):

- chaser, ``Box(14,)``: ``[0:2]`` own velocity, ``[2:4]`` own position, ``[4:8]`` the two obstacles
  relative to itself, ``[8:10]`` the other chaser relative, ``[10:12]`` the runner relative,
  ``[12:14]`` the runner's velocity;
- runner, ``Box(12,)``: ``[0:2]`` own velocity, ``[2:4]`` own position, ``[4:8]`` obstacles relative,
  ``[8:10]`` ``adversary_0`` relative, ``[10:12]`` ``adversary_1`` relative.

Actions, ``Discrete(5)``: 0 no-op, 1 move -x, 2 move +x, 3 move -y, 4 move +y.

mpe2 is imported only when an env is built; the spaces are available without it. The same game
over N copies as arrays (checked against mpe2 step for step): :mod:`rqe_wrappers.envs.tag_batched`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper, BaseWrapper

from rqe_wrappers.core.checks import is_integer
from rqe_wrappers.core.dispatch import by_api
from rqe_wrappers.errors import ConfigError

ENV_ID = "mpe2/simple_tag_v3"
RUNNER = "agent_0"
CHASERS = ("adversary_0", "adversary_1")
MAX_CYCLES = 100
REWARD_SCALE = 0.1
#: The paper's simple_tag settings (``max_cycles`` and action kind are arguments of :func:`tag_env`).
PAPER_SETTINGS = {"num_good": 1, "num_adversaries": 2, "num_obstacles": 2}

#: Observation slices (see the module docstring).
CHASER_RUNNER_REL = slice(10, 12)
CHASER_OTHER_CHASER_REL = slice(8, 10)
RUNNER_POS = slice(2, 4)
RUNNER_CHASERS_REL = (slice(8, 10), slice(10, 12))
NOOP, LEFT, RIGHT, DOWN, UP = range(5)
#: Unit movement of each action in the plane (row = action).
ACTION_DIRECTIONS = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def chaser_observation_space() -> gym.spaces.Box:
    """A chaser's observation space in the paper's Tag (``Box(-inf, inf, (14,), float32)``)."""
    return gym.spaces.Box(-np.inf, np.inf, (14,), np.float32)


def runner_observation_space() -> gym.spaces.Box:
    """The runner's observation space in the paper's Tag (``Box(-inf, inf, (12,), float32)``)."""
    return gym.spaces.Box(-np.inf, np.inf, (12,), np.float32)


def action_space() -> gym.spaces.Discrete:
    """Every seat's action space (``Discrete(5)``)."""
    return gym.spaces.Discrete(5)


def seat_spaces(seat: str) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """``(observation_space, action_space)`` of ``seat`` in the paper's Tag."""
    if seat == RUNNER:
        return runner_observation_space(), action_space()
    if seat in CHASERS:
        return chaser_observation_space(), action_space()
    raise ConfigError(f"unknown Tag seat {seat!r}; the seats are {[*CHASERS, RUNNER]}")


# ---- reward scaling ----------------------------------------------------------------------------
def check_reward_scale(scale: Any) -> float:
    """``scale`` as a finite float, or :class:`ConfigError`."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"reward scale must be a finite number, got {scale!r}") from None
    if not np.isfinite(value):
        raise ConfigError(f"reward scale must be a finite number, got {scale!r}")
    return value


class ScaledRewardsParallel(BaseParallelWrapper):
    """Parallel env whose rewards are multiplied by ``scale``."""

    def __init__(self, env: ParallelEnv, scale: float):
        super().__init__(env)
        self.scale = check_reward_scale(scale)

    def step(self, actions):
        obs, rew, term, trunc, infos = self.env.step(actions)
        return obs, {a: float(r) * self.scale for a, r in rew.items()}, term, trunc, infos


class ScaledRewardsAEC(BaseWrapper):
    """AEC env whose ``rewards`` (and so ``last()``'s reward) are multiplied by ``scale``."""

    def __init__(self, env: AECEnv, scale: float):
        super().__init__(env)
        self.scale = check_reward_scale(scale)

    @property
    def rewards(self):
        return {a: float(r) * self.scale for a, r in self.env.rewards.items()}

    @property
    def _cumulative_rewards(self):
        return {a: float(r) * self.scale for a, r in self.env._cumulative_rewards.items()}


def scale_rewards(env, scale: float):
    """Multiply every reward of an AEC or parallel env by ``scale``; returns the same API kind."""
    return by_api(
        env,
        parallel=lambda e: ScaledRewardsParallel(e, scale),
        aec=lambda e: ScaledRewardsAEC(e, scale),
        what="scale_rewards",
    )


# ---- the env -----------------------------------------------------------------------------------
def tag_env(parallel: bool = True, max_cycles: int = MAX_CYCLES, reward_scale: float = REWARD_SCALE, **kw: Any):
    """The SRPO paper's Tag: ``simple_tag_v3`` with 1 runner, 2 chasers, 2 obstacles, rewards x0.1.

    Args:
        parallel: a ``ParallelEnv`` (default) or an ``AECEnv``.
        max_cycles: episode length (the paper: 100).
        reward_scale: multiplies every reward (the paper: 0.1).
        **kw: passed to ``simple_tag_v3`` (e.g. ``render_mode="rgb_array"``); ``num_good``,
            ``num_adversaries``, ``num_obstacles`` and ``continuous_actions`` are fixed to the paper's.

    Example:
        >>> env = tag_env()
        >>> env.possible_agents
        ['adversary_0', 'adversary_1', 'agent_0']
        >>> env.observation_space(RUNNER).shape, env.action_space(RUNNER)
        ((12,), Discrete(5))
    """
    if not is_integer(max_cycles) or max_cycles < 1:
        raise ConfigError(f"max_cycles must be an integer >= 1 (the paper uses {MAX_CYCLES}), got {max_cycles!r}")
    fixed = {**PAPER_SETTINGS, "continuous_actions": False}
    clash = {k: kw[k] for k in fixed if k in kw and kw[k] != fixed[k]}
    if clash:
        raise ConfigError(
            f"tag_env fixes {fixed} (the SRPO paper's Tag), got {clash}; build other set-ups with "
            "mpe2.simple_tag_v3 directly (and rqe_wrappers.envs.tag.scale_rewards)"
        )
    kw = {**kw, **fixed}
    from mpe2 import simple_tag_v3

    make = simple_tag_v3.parallel_env if parallel else simple_tag_v3.env
    return scale_rewards(make(max_cycles=int(max_cycles), **kw), reward_scale)
