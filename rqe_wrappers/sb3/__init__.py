"""Everything that imports Stable-Baselines3: the VecEnv adapter, callbacks and SB3-backed policies."""

from rqe_wrappers.sb3.aht_callback import AHTCallback
from rqe_wrappers.sb3.checkpoint import StatefulCheckpointCallback, latest_checkpoint
from rqe_wrappers.sb3.env_util import make_vec_env
from rqe_wrappers.sb3.evaluation import evaluate_partner, partner_eval_env
from rqe_wrappers.sb3.monitor import RoleVecMonitor
from rqe_wrappers.sb3.normalize import RoleVecNormalize
from rqe_wrappers.sb3.rollout_device import RolloutDevice
from rqe_wrappers.sb3.sb3_policy import SB3Policy
from rqe_wrappers.sb3.srpo_callback import SRPOCallback
from rqe_wrappers.sb3.timeouts import TimeLimitBootstrap
from rqe_wrappers.sb3.vec_env import PettingZooVecEnv

__all__ = [
    "AHTCallback",
    "PettingZooVecEnv",
    "RoleVecMonitor",
    "RoleVecNormalize",
    "RolloutDevice",
    "SB3Policy",
    "SRPOCallback",
    "StatefulCheckpointCallback",
    "TimeLimitBootstrap",
    "evaluate_partner",
    "latest_checkpoint",
    "make_vec_env",
    "partner_eval_env",
]
