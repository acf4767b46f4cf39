"""Everything that imports Stable-Baselines3: the VecEnv adapter, callbacks and SB3-backed policies."""

from rqe_wrappers.sb3.policy import SB3Policy

__all__ = ["SB3Policy"]
