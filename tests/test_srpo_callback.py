"""SRPOCallback: the shaping formula on the buffer, misuse errors, and the learning path to the exact RQE."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from rqe_wrappers import srpo_wrap
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.errors import MissingCallbackError
from rqe_wrappers.experiments.coordination import CoordinationRun, train_coordination
from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback
from rqe_wrappers.srpo.roles import PARTNER, set_role

torch.set_num_threads(1)


class Capture(BaseCallback):
    """Copies the rollout buffer before and after SRPOCallback touches it."""

    def __init__(self, when):
        super().__init__()
        self.when, self.rewards, self.log_partner = when, None, None

    def _on_step(self):
        return True

    def _on_rollout_end(self):
        buf = self.model.rollout_buffer
        self.rewards = buf.rewards.copy()
        self.returns = buf.returns.copy()
        if self.when == "before":
            obs = torch.as_tensor(set_role(buf.observations, PARTNER).reshape(-1, 3))
            acts = torch.as_tensor(buf.actions.reshape(-1)).long()
            with torch.no_grad():
                _, lp, _ = self.model.policy.evaluate_actions(obs, acts)
            self.log_partner = lp.numpy().reshape(buf.rewards.shape)
            self.log_shadow = buf.log_probs.copy()
            self.shadow = buf.observations[..., -1] > 0.5


def make_model(tau, ent_coef=0.05, n_steps=8):
    venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5), tau=tau), n_copies=4)
    return PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=n_steps * 8,
        n_epochs=1,
        ent_coef=ent_coef,
        normalize_advantage=False,
        policy_kwargs=dict(net_arch=[8]),
        seed=0,
    )


def test_shaping_formula_on_shadow_rows_only():
    tau, ent = 2.0, 0.05
    model = make_model(tau, ent)
    before, after = Capture("before"), Capture("after")
    model.learn(64, callback=CallbackList([before, SRPOCallback(), after]))
    sh = before.shadow
    assert sh.any() and (~sh).any()
    expected = before.rewards.copy()
    expected[sh] += -(before.log_shadow[sh] - before.log_partner[sh]) / tau + ent * before.log_shadow[sh]
    np.testing.assert_allclose(after.rewards, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after.rewards[~sh], before.rewards[~sh])
    # returns were recomputed from the shaped rewards (one-step episodes: return == reward)
    np.testing.assert_allclose(after.returns, after.rewards, atol=1e-6)


def test_tau_zero_leaves_buffer_alone():
    model = make_model(0.0)
    before, after = Capture("before"), Capture("after")
    model.learn(64, callback=CallbackList([before, SRPOCallback(), after]))
    np.testing.assert_array_equal(before.rewards, after.rewards)


def test_callback_on_env_without_shadow_fails_clearly():
    venv = PettingZooVecEnv(lambda: coordination_game(0.5), n_copies=2)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=32, policy_kwargs=dict(net_arch=[8]))
    with pytest.raises(MissingCallbackError, match="srpo_wrap"):
        model.learn(32, callback=SRPOCallback())


def test_normalized_advantages_warn():
    venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5), tau=1.0), n_copies=2)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=32, policy_kwargs=dict(net_arch=[8]))
    with pytest.warns(UserWarning, match="normalize_advantage"):
        model.learn(32, callback=SRPOCallback())


def test_callback_marks_envs_so_no_missing_callback_warning():
    model = make_model(1.0)
    import warnings

    from rqe_wrappers.errors import MissingCallbackWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingCallbackWarning)
        model.learn(64, callback=SRPOCallback())
    assert all(model.get_env().get_attr("srpo_callback_attached"))


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.0, 3.0])
def test_learning_reaches_exact_rqe(tau):
    """SRPO with stock PPO ends within 0.05 of the exact symmetric RQE (tau=0: the logit QRE)."""
    _, learned, exact = train_coordination(CoordinationRun(tau=tau, eps=0.2, steps=120_000, seed=0))
    assert abs(learned - exact) < 0.05, (learned, exact)
    if tau > 0:
        assert exact > 0.6  # risk aversion raised collaboration above the tau=0 QRE (0.5)
