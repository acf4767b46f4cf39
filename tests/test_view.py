"""The trainer's view of an observation (rqe_wrappers.core.view) and the snapshot fed that view."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo.classic import tictactoe_v3

from rqe_wrappers import ConstantPolicy, Policy, SpaceMismatchError, UnsupportedSpaceError
from rqe_wrappers.core.snapshot import SnapshotPolicy, share
from rqe_wrappers.core.view import TrainerView, ViewedPolicy, learner_snapshot, zero_observation

BOX = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
MASK = gym.spaces.Box(0, 1, (4,), np.int8)
ACT = gym.spaces.Discrete(4)


class Recorder(Policy):
    """Plays the last legal action and records what it was shown."""

    def __init__(self, observation_space, action_space):
        super().__init__(observation_space, action_space)
        self.seen = []

    def act(self, obs, *, rng, mask=None, state=None):
        self.seen.append((obs, mask))
        legal = np.asarray(mask, dtype=bool)
        return legal.shape[1] - 1 - legal[:, ::-1].argmax(axis=1), state


def test_lone_observation_is_unwrapped_and_the_mask_found_in_obs():
    view = TrainerView(gym.spaces.Dict({"observation": BOX, "action_mask": MASK}), ACT)
    assert view.space == BOX and not view.identity and view.mask_in_obs and view.mask_width == 4
    obs = {"observation": np.full(3, 0.5, np.float32), "action_mask": np.array([1, 0, 1, 0], np.int8)}
    assert np.array_equal(view(obs), obs["observation"])
    assert np.array_equal(view.mask_of(obs, {"action_mask": "ignored"}), obs["action_mask"])
    assert np.array_equal(view.zero, np.zeros(3, np.float32))


def test_other_keys_are_kept_as_a_dict():
    raw = gym.spaces.Dict({"pos": BOX, "id": gym.spaces.Discrete(2), "action_mask": MASK})
    view = TrainerView(raw, ACT)
    assert view.space == gym.spaces.Dict({"pos": BOX, "id": gym.spaces.Discrete(2)})
    batch = {"pos": np.zeros((2, 3)), "id": np.array([0, 1]), "action_mask": np.ones((2, 4))}
    assert sorted(view(batch)) == ["id", "pos"]  # one observation or a batch alike
    assert set(view.zero) == {"pos", "id"}


def test_plain_observations_pass_through_and_the_mask_comes_from_info():
    view = TrainerView(BOX, ACT)
    obs = np.ones(3, np.float32)
    assert view.identity and view(obs) is obs and view.space is BOX
    assert view.mask_of(obs, {"action_mask": [1, 1, 0, 0]}) == [1, 1, 0, 0]
    assert view.mask_of(obs, {}) is None and view.mask_of(obs, None) is None
    assert TrainerView(BOX, gym.spaces.Box(-1, 1, (2,))).mask_width is None


def test_unusable_observations_say_the_fix():
    with pytest.raises(UnsupportedSpaceError, match="only an action mask"):
        TrainerView(gym.spaces.Dict({"action_mask": MASK}), ACT)
    with pytest.raises(UnsupportedSpaceError, match="flatten"):
        zero_observation(gym.spaces.Text(5))


def test_snapshot_plays_on_what_the_trainer_sees():
    env = tictactoe_v3.env()
    raw, act = env.observation_space("player_1"), env.action_space("player_1")
    snap = learner_snapshot(raw, act, "test-view-recorder")
    assert snap.observation_space == raw and snap.view.space == raw["observation"]
    rec = Recorder(snap.view.space, act)
    share("test-view-recorder", rec)
    env.reset(seed=0)
    obs = env.observe("player_1")
    batch = {k: v[None] for k, v in obs.items()}
    actions, _ = snap.act(batch, rng=np.random.default_rng(0), mask=batch["action_mask"])
    seen, mask = rec.seen[0]
    assert seen.shape == (1, 3, 3, 2) and mask.shape == (1, 9) and actions.tolist() == [8]


def test_before_the_first_share_it_plays_a_legal_move_at_random():
    snap = learner_snapshot(gym.spaces.Dict({"observation": BOX, "action_mask": MASK}), ACT, "test-view-unshared")
    batch = {"observation": np.zeros((50, 3), np.float32), "action_mask": np.tile([0, 1, 0, 1], (50, 1))}
    actions, _ = snap.act(batch, rng=np.random.default_rng(0), mask=batch["action_mask"])
    assert set(actions.tolist()) == {1, 3}


def test_a_stale_snapshot_with_other_spaces_fails_naming_who_and_a_fresh_one_is_checked_again():
    snap = learner_snapshot(BOX, ACT, "test-view-stale", who="the partner snapshot")
    rng = np.random.default_rng(0)
    share("test-view-stale", ConstantPolicy(gym.spaces.Box(0.0, 1.0, (1,), np.float32), ACT, 2))
    with pytest.raises(SpaceMismatchError, match=r"^the partner snapshot: observation space mismatch"):
        snap.act(np.zeros((1, 3), np.float32), rng=rng)
    share("test-view-stale", ConstantPolicy(BOX, ACT, 2))
    assert snap.act(np.zeros((1, 3), np.float32), rng=rng)[0].tolist() == [2]
    share("test-view-stale", ConstantPolicy(BOX, gym.spaces.Discrete(3), 2))
    with pytest.raises(SpaceMismatchError, match="action space mismatch"):
        snap.act(np.zeros((1, 3), np.float32), rng=rng)


def test_default_who_names_the_snapshot_and_check_false_skips_it():
    share("test-view-who", ConstantPolicy(gym.spaces.Box(0.0, 1.0, (1,), np.float32), ACT, 1))
    snap = learner_snapshot(BOX, ACT, "test-view-who")
    with pytest.raises(SpaceMismatchError, match=r"^the snapshot shared as 'test-view-who'"):
        snap.act(np.zeros((1, 3), np.float32), rng=np.random.default_rng(0))
    unchecked = ViewedPolicy(SnapshotPolicy(BOX, ACT, "test-view-who"), TrainerView(BOX, ACT), check=False)
    assert unchecked.act(np.zeros((1, 3), np.float32), rng=np.random.default_rng(0))[0].tolist() == [1]


def test_any_policy_can_be_viewed():
    raw = gym.spaces.Dict({"observation": BOX, "action_mask": MASK})
    view = TrainerView(raw, ACT)
    inner = ConstantPolicy(BOX, ACT, 3)
    viewed = ViewedPolicy(inner, view)
    batch = {"observation": np.zeros((2, 3), np.float32), "action_mask": np.ones((2, 4), np.int8)}
    assert viewed.act(batch, rng=np.random.default_rng(0))[0].tolist() == [3, 3]
    assert viewed.log_prob(batch, np.array([3, 0])).tolist() == [0.0, -np.inf]
    assert viewed.initial_state(2) is None and repr(viewed) == repr(inner)
