"""SB3's time-limit bootstrap in one forward pass per step instead of one per truncated slot.

On-policy SB3 (``collect_rollouts``) adds ``gamma * V(terminal_observation)`` to the reward of
every slot whose episode was truncated, with one ``predict_values`` call *per slot*. When thousands
of copies hit their time limit on the same step (the batched path: cooking's 100-step episodes,
Tag's 25) that loop costs seconds per episode, on a GPU more than the whole PPO update. The
callback does the same addition for all of a step's truncated slots in one batch, before SB3's loop
runs, and marks those slots so the loop skips them. Docs: docs/batched.md, "Throughput".
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy

#: the info key SB3's loop reads; set to False on the slots already bootstrapped here
TRUNCATED = "TimeLimit.truncated"
#: the info key that keeps the truncation visible once :class:`TimeLimitBootstrap` has done it
BOOTSTRAPPED = "TimeLimit.bootstrapped"


def _stack(observations: list[Any]) -> Any:
    """One batch from per-slot observations (arrays, or dicts of arrays)."""
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


class TimeLimitBootstrap(BaseCallback):
    """``rewards[i] += gamma * V(terminal_observation_i)`` for every truncated slot ``i``, in one forward pass.

    The value SB3 would add, computed in one batch; each such slot's info then says
    ``TimeLimit.truncated = False`` (so SB3 does not add it again) and ``TimeLimit.bootstrapped = True``.
    Put it last in the callback list (callbacks after it see the changed flag). On-policy algorithms
    only (PPO, A2C, MaskablePPO); the rewards of the rollout buffer are the same up to the float
    rounding of a batched matrix product.

    Example:
        >>> from stable_baselines3 import PPO
        >>> from rqe_wrappers.batched import batched_vec_env
        >>> from rqe_wrappers.envs.cooking import BatchedCooking
        >>> from rqe_wrappers.sb3 import SRPOCallback, TimeLimitBootstrap
        >>> venv = batched_vec_env(BatchedCooking(16, max_steps=8), tau=1.0, seed=0)
        >>> model = PPO("MlpPolicy", venv, n_steps=8, batch_size=64, normalize_advantage=False, seed=0)
        >>> _ = model.learn(256, callback=[SRPOCallback(), TimeLimitBootstrap()])
        >>> venv.close()
    """

    def __init__(self, verbose: int = 0):
        super().__init__(verbose)
        #: slots bootstrapped so far (all steps)
        self.bootstrapped = 0

    def _on_step(self) -> bool:
        rewards, dones, infos = (self.locals.get(k) for k in ("rewards", "dones", "infos"))
        if rewards is None or dones is None or infos is None:
            raise RuntimeError("TimeLimitBootstrap expects SB3's rollout locals 'rewards', 'dones' and 'infos'")
        slots = [
            i
            for i in np.flatnonzero(dones).tolist()
            if infos[i].get(TRUNCATED, False) and infos[i].get("terminal_observation") is not None
        ]
        if not slots:
            return True
        policy = cast(ActorCriticPolicy, self.model.policy)
        obs = policy.obs_to_tensor(_stack([infos[i]["terminal_observation"] for i in slots]))[0]
        with th.no_grad():
            values = policy.predict_values(obs).reshape(-1)
        gamma = float(getattr(self.model, "gamma", 0.99))
        rewards[slots] += (gamma * values).cpu().numpy().astype(rewards.dtype)
        for i in slots:
            infos[i][TRUNCATED] = False
            infos[i][BOOTSTRAPPED] = True
        self.bootstrapped += len(slots)
        return True
