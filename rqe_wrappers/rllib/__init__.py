"""The same wrappers on Ray RLlib (new API stack): SRPO and minimax-Bayes AHT with stock RLlib PPO.

- :mod:`~rqe_wrappers.rllib.env`: a wrapped PettingZoo parallel env as an RLlib ``MultiAgentEnv``,
  its registration, and the one shared module every learning seat maps to.
- :mod:`~rqe_wrappers.rllib.srpo`: SRPO's KL(shadow || partner) shaping as a Learner connector
  before GAE, and :func:`srpo_ppo` (PPO set up as the SB3 path: no advantage standardisation).
- :mod:`~rqe_wrappers.rllib.aht`: nature's prior and the learner snapshot as RLlib callbacks.
- :mod:`~rqe_wrappers.rllib.state`: their state saved and restored beside an RLlib checkpoint.
- :mod:`~rqe_wrappers.rllib.policy`: an RLModule as the project's ``Policy`` (for ``rqe_wrappers.eval``).

Needs ``ray[rllib]`` (docs/rllib.md); ``import rqe_wrappers`` never imports this package.
"""

from __future__ import annotations

from rqe_wrappers.rllib.aht import AHTCallbacks, aht_callbacks, aht_ppo
from rqe_wrappers.rllib.env import SHARED_MODULE, PettingZooMultiAgentEnv, find_attr, register_env, shared_policy
from rqe_wrappers.rllib.policy import RLModulePolicy
from rqe_wrappers.rllib.srpo import RawGAE, SRPOCallbacks, SRPOPPOTorchLearner, SRPOShaping, srpo_ppo
from rqe_wrappers.rllib.state import restore_checkpoint, save_checkpoint

__all__ = [
    "SHARED_MODULE",
    "AHTCallbacks",
    "PettingZooMultiAgentEnv",
    "RLModulePolicy",
    "RawGAE",
    "SRPOCallbacks",
    "SRPOPPOTorchLearner",
    "SRPOShaping",
    "aht_callbacks",
    "aht_ppo",
    "find_attr",
    "register_env",
    "restore_checkpoint",
    "save_checkpoint",
    "shared_policy",
    "srpo_ppo",
]
