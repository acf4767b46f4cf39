"""The SRPO paper's Hanabi (appendix D.4): 3 colours x 3 ranks, 2 and 4 players, SRPO vs IPPO, cross-play.

Docs: docs/hanabi.md.
"""

from rqe_wrappers.experiments.hanabi.driver import HanabiSweep, method_name, run_sweep
from rqe_wrappers.experiments.hanabi.env import hanabi_config, hanabi_env, max_score
from rqe_wrappers.experiments.hanabi.evaluation import alternating_seatings, hanabi_crossplay, random_score
from rqe_wrappers.experiments.hanabi.training import HANABI_PPO, make_model, train_env, train_hanabi

__all__ = [
    "HANABI_PPO",
    "HanabiSweep",
    "alternating_seatings",
    "hanabi_config",
    "hanabi_crossplay",
    "hanabi_env",
    "make_model",
    "max_score",
    "method_name",
    "random_score",
    "run_sweep",
    "train_env",
    "train_hanabi",
]
