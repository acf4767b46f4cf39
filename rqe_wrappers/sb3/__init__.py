"""Everything that imports Stable-Baselines3: the VecEnv adapter, callbacks and SB3-backed policies."""

from rqe_wrappers.sb3.aht_callback import AHTCallback
from rqe_wrappers.sb3.env_util import make_vec_env
from rqe_wrappers.sb3.sb3_policy import SB3Policy
from rqe_wrappers.sb3.srpo_callback import SRPOCallback
from rqe_wrappers.sb3.vec_env import PettingZooVecEnv

__all__ = ["AHTCallback", "PettingZooVecEnv", "SB3Policy", "SRPOCallback", "make_vec_env"]
