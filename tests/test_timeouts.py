"""TimeLimitBootstrap: SB3's time-limit bootstrap in one forward pass, the same rewards in the buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.envs.cooking import BatchedCooking
from rqe_wrappers.envs.matrix import MatrixGameEnv, coordination_payoffs
from rqe_wrappers.sb3 import PettingZooVecEnv, RoleVecMonitor, SRPOCallback, TimeLimitBootstrap
from rqe_wrappers.srpo.shadow import srpo_wrap

torch.set_num_threads(1)


class Truncations(BaseCallback):
    """Records, per step, the slots SB3's own loop will bootstrap (truncated, with a terminal observation)."""

    def __init__(self) -> None:
        super().__init__()
        self.per_step: list[list[int]] = []

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        self.per_step.append(
            [
                i
                for i in np.flatnonzero(dones)
                if infos[i].get("TimeLimit.truncated") and "terminal_observation" in infos[i]
            ]
        )
        return True


def venvs():
    return {
        "batched cooking": lambda: batched_vec_env(BatchedCooking(6, max_steps=5), 1.0, seed=2),
        "per-copy matrix game": lambda: _seeded(
            RoleVecMonitor(
                PettingZooVecEnv(lambda: srpo_wrap(MatrixGameEnv(coordination_payoffs(0.3), rounds=3), 1.0), 4)
            )
        ),
    }


def _seeded(venv):
    venv.seed(2)
    return venv


def one_rollout(make, bootstrap: bool):
    venv = make()
    model = PPO("MlpPolicy", venv, n_steps=12, batch_size=48, n_epochs=1, normalize_advantage=False, seed=5)
    seen, ours = Truncations(), TimeLimitBootstrap()
    callbacks = [SRPOCallback(), ours, seen] if bootstrap else [SRPOCallback(), seen]
    model.learn(12 * venv.num_envs, callback=callbacks)
    return model.rollout_buffer.rewards.copy(), seen.per_step, ours.bootstrapped


@pytest.mark.parametrize("name", sorted(venvs()))
def test_the_buffer_gets_the_rewards_sb3_gives_and_sb3_adds_nothing_twice(name):
    make = venvs()[name]
    sb3, truncated, _ = one_rollout(make, bootstrap=False)
    ours, left, count = one_rollout(make, bootstrap=True)
    assert sum(map(len, truncated)) == count > 0  # every truncated slot, by our callback
    assert all(not slots for slots in left)  # none left for SB3's per-slot loop
    np.testing.assert_allclose(ours, sb3, rtol=0, atol=1e-6)
    # and the bootstrap mattered: without any, the truncated steps' rewards differ
    steps = [(t, i) for t, slots in enumerate(truncated) for i in slots]
    assert max(abs(float(sb3[t, i])) for t, i in steps) > 0


def test_a_bootstrapped_slot_says_so_and_untruncated_ends_are_left_alone():
    class Look(BaseCallback):
        def _on_step(self) -> bool:
            for i in np.flatnonzero(self.locals["dones"]):
                info = self.locals["infos"][i]
                self.flags.append((info.get("TimeLimit.truncated"), info.get("TimeLimit.bootstrapped", False)))
            return True

    look = Look()
    look.flags = []
    venv = batched_vec_env(BatchedCooking(4, max_steps=3), 0.0, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=6, batch_size=48, n_epochs=1, seed=0)
    model.learn(48, callback=[TimeLimitBootstrap(), look])
    assert look.flags and set(look.flags) == {(False, True)}


def test_without_rollout_locals_it_says_what_it_needs():
    cb = TimeLimitBootstrap()
    cb.locals = {"rewards": np.zeros(2)}
    with pytest.raises(RuntimeError, match="TimeLimitBootstrap expects"):
        cb._on_step()
