"""Deploying an SRPO-trained policy in the partner role on the env's own observations (srpo.roles)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rqe_wrappers.core.policy import FunctionPolicy
from rqe_wrappers.errors import SpaceMismatchError
from rqe_wrappers.srpo.roles import PARTNER, ROLE_KEY, PartnerRole, as_partner, role_of, with_role_space


def recording_policy(space: gym.Space, seen: list):
    def probs(obs):
        seen.append(obs)
        first = obs[ROLE_KEY] if isinstance(obs, dict) else obs
        return np.tile([0.25, 0.75], (len(first), 1))

    return FunctionPolicy(with_role_space(space), gym.spaces.Discrete(2), probs)


def test_box_observations_get_the_partner_one_hot():
    raw = gym.spaces.Box(0, 5, (3,), np.int64)  # integer observations become float32 with the feature
    seen: list = []
    policy = PartnerRole(recording_policy(raw, seen), raw)
    assert policy.observation_space == raw and policy.action_space == gym.spaces.Discrete(2)
    obs = np.array([[1, 2, 3], [4, 5, 0]])
    np.testing.assert_allclose(policy.action_probs(obs), [[0.25, 0.75]] * 2)
    actions, _ = policy.act(obs, rng=np.random.default_rng(0))
    assert actions.shape == (2,)
    for batch in seen:
        assert batch.dtype == np.float32 and batch.shape == (2, 5)
        np.testing.assert_array_equal(batch[:, :3], obs)
        assert [role_of(row) for row in batch] == [PARTNER, PARTNER]
    assert len(policy.log_prob(obs, np.array([0, 1]))) == 2


def test_dict_observations_get_a_role_key():
    raw = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,), np.float32)})
    seen: list = []
    policy = PartnerRole(recording_policy(raw, seen), raw)
    policy.action_probs({"x": np.zeros((3, 2), np.float32)})
    np.testing.assert_array_equal(seen[0][ROLE_KEY], [[1, 0]] * 3)


def test_as_partner_wraps_only_role_featured_policies():
    raw = gym.spaces.Box(-1, 1, (4,), np.float32)
    plain = FunctionPolicy(raw, gym.spaces.Discrete(2), lambda obs: np.full((len(obs), 2), 0.5))
    assert as_partner(plain, raw) is plain
    featured = recording_policy(raw, [])
    wrapped = as_partner(featured, raw)
    assert isinstance(wrapped, PartnerRole) and wrapped.inner is featured
    other = gym.spaces.Box(-1, 1, (7,), np.float32)
    with pytest.raises(SpaceMismatchError, match="another seat"):
        as_partner(plain, other)
    with pytest.raises(SpaceMismatchError, match="role feature"):
        PartnerRole(plain, raw)  # a policy without the role feature needs no PartnerRole
