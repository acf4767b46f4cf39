"""RolePolicy: disjoint networks for the partner and the shadow role inside one SB3 policy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.envs.cooking import BatchedCooking
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3 import SRPOCallback
from rqe_wrappers.sb3.role_policy import RolePolicy
from rqe_wrappers.srpo.roles import PARTNER, SHADOW, set_role


def _model(tau=1.0, seed=0):
    venv = batched_vec_env(BatchedCooking(n_copies=4), tau, seed=seed, seat_id=True, reward_infos=False)
    return PPO(
        RolePolicy, venv, n_steps=16, batch_size=64, n_epochs=1, seed=seed, device="cpu", normalize_advantage=False
    )


def _obs(model, role):
    rng = np.random.default_rng(0)
    obs = rng.random((32, *model.observation_space.shape)).astype(np.float32)
    return set_role(obs, role)


def _logits(model, obs):
    with th.no_grad():
        dist = model.policy.get_distribution(th.as_tensor(obs))
        return dist.distribution.logits.numpy(), model.policy.predict_values(th.as_tensor(obs)).numpy()


@pytest.mark.parametrize("role, other", [(PARTNER, "shadow"), (SHADOW, "partner")])
def test_a_role_never_reads_the_other_roles_network(role, other):
    model = _model()
    obs = _obs(model, role)
    before = _logits(model, obs)
    with th.no_grad():  # scramble the other role's network: this role's outputs must not move
        for p in getattr(model.policy.mlp_extractor, other).parameters():
            p.add_(th.randn_like(p))
    after = _logits(model, obs)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_a_loss_on_shadow_rows_leaves_the_partner_network_alone():
    model = _model()
    obs = th.as_tensor(_obs(model, SHADOW))
    actions = th.zeros(len(obs), dtype=th.long)
    values, log_prob, _ = model.policy.evaluate_actions(obs, actions)
    (log_prob.sum() + values.sum()).backward()
    partner_grads = [p.grad for p in model.policy.mlp_extractor.partner.parameters()]
    shadow_grads = [p.grad for p in model.policy.mlp_extractor.shadow.parameters()]
    assert all(g is None or float(g.abs().sum()) == 0.0 for g in partner_grads)
    assert sum(float(g.abs().sum()) for g in shadow_grads if g is not None) > 0


def test_srpo_trains_and_round_trips(tmp_path):
    model = _model(seed=3)
    cb = SRPOCallback()
    partner = model.policy.mlp_extractor.partner
    start = [p.detach().clone() for p in partner.parameters()]
    model.learn(256, callback=cb)
    assert any(not th.equal(a, b) for a, b in zip(start, partner.parameters(), strict=True))
    assert cb.log_partner is not None and np.all(np.isfinite(cb.log_partner))
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    assert isinstance(loaded.policy, RolePolicy)
    obs = _obs(model, PARTNER)
    np.testing.assert_allclose(_logits(model, obs)[0], _logits(loaded, obs)[0], rtol=1e-6)


def test_other_observation_layouts_are_refused():
    with pytest.raises(ConfigError, match="1-D Box"):
        RolePolicy(gym.spaces.Box(0, 255, (8, 8, 3), np.uint8), gym.spaces.Discrete(2), lambda _: 3e-4)
