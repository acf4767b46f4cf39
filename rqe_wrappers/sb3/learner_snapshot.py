"""The learner's snapshot for the seats it plays inside the envs, shared by the training callbacks.

Both callbacks share a fresh CPU copy of the learner at training start and at every rollout end,
just before PPO's update, so the seats it plays lag the learner by one update. See docs/adapter.md.
"""

from __future__ import annotations

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecEnvWrapper

from rqe_wrappers.core import snapshot
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3.sb3_policy import SB3Policy


def base_venv(env: VecEnv) -> VecEnv:
    """``env`` without its ``VecEnvWrapper`` layers (VecNormalize, VecMonitor, ...)."""
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    return env


def check_snapshots_reach(env: VecEnv, who: str) -> None:
    """Refuse a VecEnv whose worker processes a shared snapshot cannot reach."""
    if isinstance(base_venv(env), SubprocVecEnv) and not hasattr(env, "share_snapshot"):
        raise ConfigError(
            f"{who}: learner snapshots cannot reach SubprocVecEnv workers; use rqe_wrappers.sb3.PettingZooVecEnv"
            " (its share_snapshot reaches them), or an in-process VecEnv"
        )


def share_policy(env: VecEnv, name: str, policy: Policy) -> None:
    """Share ``policy`` as snapshot ``name`` in this process and in every worker of ``env``."""
    share = getattr(env, "share_snapshot", None)
    if callable(share):
        share(name, policy)
    else:
        snapshot.share(name, policy)


def share_learner(env: VecEnv, name: str, model: BaseAlgorithm) -> SB3Policy:
    """Share a frozen CPU copy of ``model``'s policy as snapshot ``name``; returns the copy."""
    policy = SB3Policy.from_model(model)
    share_policy(env, name, policy)
    return policy
