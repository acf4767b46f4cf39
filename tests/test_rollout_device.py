"""RolloutDevice: rollouts collected by a copy of the policy, PPO's update on the model's own policy."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3 import RolloutDevice


def _model(seed: int = 0) -> PPO:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=seed)
    return PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=2, seed=seed, device="cpu")


def _weights(model: PPO) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.policy.state_dict().items()}


class _Seen(BaseCallback):
    """Records which policy object acts during the rollouts and which one the rollout ends with."""

    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.acting: set[int] = set()
        self.ending: list[int] = []
        self.stop_at = stop_at

    def _on_step(self) -> bool:
        self.acting.add(id(self.model.policy))
        return self.stop_at is None or self.num_timesteps < self.stop_at

    def _on_rollout_end(self) -> None:
        self.ending.append(id(self.model.policy))


def test_same_device_gives_the_same_run_as_without_it():
    plain = _model().learn(256)  # one after the other: torch's global generator is seeded by each model
    copied = _model().learn(256, callback=RolloutDevice("cpu"))
    a, b = _weights(plain), _weights(copied)
    assert a.keys() == b.keys()
    for k in a:  # 4 rollouts and updates: every rollout acted with the weights of the update before it
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["action_net.weight"], _weights(_model())["action_net.weight"])  # it trained


def test_the_copy_acts_and_the_model_updates_its_own_policy():
    model = _model()
    own = model.policy
    seen = _Seen()
    model.learn(128, callback=[RolloutDevice("cpu"), seen])
    assert model.policy is own and model.device == th.device("cpu")
    assert seen.acting and id(own) not in seen.acting  # the copy stepped the env
    assert seen.ending and set(seen.ending) == {id(own)}  # callbacks after it see the model's own at the end


def test_a_rollout_stopped_early_gives_the_policy_back():
    model = _model()
    own = model.policy
    model.learn(1_000, callback=[RolloutDevice("cpu"), _Seen(stop_at=20)])
    assert model.policy is own


def test_a_bad_device_is_refused():
    with pytest.raises(ConfigError, match="not a torch device"):
        RolloutDevice("gpu-please")
