"""Seat identity and the role feature on every observation space (srpo.features), Discrete observations."""

import functools

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo import ParallelEnv
from pettingzoo.classic import tictactoe_v3
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

from rqe_wrappers import FunctionPolicy, SpaceMismatchError, srpo_wrap
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.srpo.features import ObsFeatures, role_features, set_role
from rqe_wrappers.srpo.roles import PARTNER, SHADOW, PartnerRole, as_partner, role_of

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")


class CountGame(ParallelEnv):
    """Two players see the step count as a Discrete(4) observation; both paid 1 when both pick 1."""

    metadata = {"name": "count_game_v0"}

    def __init__(self):
        self.possible_agents = ["player_0", "player_1"]
        self.t = 0

    @functools.cache  # PettingZoo's idiom: one space object per seat
    def observation_space(self, agent):
        return gym.spaces.Discrete(4)

    @functools.cache
    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return {a: 0 for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        r = float(actions["player_0"] == 1 and actions["player_1"] == 1)
        done = self.t >= 3
        obs = {a: self.t for a in self.agents}
        out = (obs, dict.fromkeys(self.agents, r), dict.fromkeys(self.agents, False), dict.fromkeys(self.agents, done))
        if done:
            self.agents = []
        return (*out, {a: {} for a in self.possible_agents if a in obs})


def test_seat_identity_goes_before_the_role():
    env = srpo_wrap(coordination_game(), tau=1.0, seat_id=True)
    obs, infos = env.reset(seed=0)
    assert env.observation_space("player_0").shape == (1 + 2 + 2,)
    assert env.srpo_feature_width == 4
    for k, seat in enumerate(env.learning_seats):
        seat_hot = obs[seat][1:3]
        assert seat_hot.tolist() == [float(k == 0), float(k == 1)]
        assert role_of(obs[seat]) == (SHADOW if infos[seat]["role"] == "shadow" else PARTNER)
        # the callback's convention holds: the role is the last two entries
        assert obs[seat][-2:].tolist() == [
            float(infos[seat]["role"] == "partner"),
            float(infos[seat]["role"] == "shadow"),
        ]


def test_seat_identity_on_dicts_and_off_by_default():
    aec = srpo_wrap(tictactoe_v3.env(), tau=1.0, seat_id=True)
    aec.reset(seed=0)
    o = aec.observe("player_2")
    assert set(o) == {"observation", "action_mask", "seat", "role"} and o["seat"].tolist() == [0.0, 1.0]
    assert srpo_wrap(coordination_game()).observation_space("player_0").shape == (3,)


@pytest.mark.parametrize("seat_id", [False, True])
def test_api_and_seed_tests_with_features(seat_id):
    parallel_api_test(srpo_wrap(coordination_game(rounds=4), tau=1.0, seat_id=seat_id), num_cycles=12)
    api_test(srpo_wrap(tictactoe_v3.env(), tau=1.0, seat_id=seat_id), num_cycles=30)
    parallel_api_test(srpo_wrap(CountGame(), tau=1.0, seat_id=seat_id), num_cycles=10)
    parallel_seed_test(lambda: srpo_wrap(CountGame(), tau=1.0, seat_id=seat_id))


def test_discrete_observations_are_one_hot():
    env = srpo_wrap(CountGame(), tau=1.0)
    assert env.observation_space("player_0") == gym.spaces.Box(0.0, 1.0, (4 + 2,), np.float32)
    env.reset(seed=0)
    obs, *_ = env.step({"player_0": 1, "player_1": 1})
    for a in env.agents:
        assert obs[a][:4].tolist() == [0, 1, 0, 0] and env.observation_space(a).contains(obs[a])


def test_multidiscrete_and_multibinary_encodings():
    md = ObsFeatures(gym.spaces.MultiDiscrete([2, 3]), n_seats=2)
    assert md.add(np.array([1, 2]), SHADOW, seat=0).tolist() == [0, 1, 0, 0, 1, 1, 0, 0, 1]
    mb = ObsFeatures(gym.spaces.MultiBinary(3))
    assert mb.add(np.array([1, 0, 1], np.int8), PARTNER).tolist() == [1, 0, 1, 1, 0]
    assert mb.space.contains(mb.add(np.array([1, 0, 1], np.int8), PARTNER))


@pytest.mark.filterwarnings("ignore:SRPO with normalize_advantage")
def test_discrete_observation_env_trains_with_srpo():
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback

    venv = PettingZooVecEnv(lambda: srpo_wrap(CountGame(), tau=1.0, seat_id=True), n_copies=4)
    model = PPO("MlpPolicy", venv, n_steps=24, batch_size=64, n_epochs=2, policy_kwargs=dict(net_arch=[8]), seed=0)
    model.learn(384, callback=SRPOCallback())
    assert model.observation_space.shape == (4 + 2 + 2,)
    venv.close()


def test_set_role_and_role_features_on_every_layout():
    box = np.array([[0.5, 1.0, 0.0], [0.2, 0.0, 1.0]], np.float32)
    assert role_features(box).tolist() == [[1, 0], [0, 1]]
    assert role_features(set_role(box, SHADOW)).tolist() == [[0, 1], [0, 1]]
    d = {"x": np.zeros((2, 1)), "role": np.array([[1.0, 0.0], [0.0, 1.0]])}
    assert set_role(d, PARTNER)["role"].tolist() == [[1, 0], [1, 0]]
    assert role_features(box).tolist() == [[1, 0], [0, 1]] and d["role"].tolist() == [[1, 0], [0, 1]]  # copies
    same = set_role(box, SHADOW, copy=False)  # in place: the array itself, its other features kept
    assert same is box
    np.testing.assert_array_equal(box, np.array([[0.5, 0.0, 1.0], [0.2, 0.0, 1.0]], np.float32))
    assert set_role(d, PARTNER, copy=False) is d and d["role"].tolist() == [[1, 0], [1, 0]]


def test_set_role_in_place_on_torch_tensors_as_on_arrays():
    """SRPO's rollout sets the role on the device: copy=False on tensors writes what it writes on arrays."""
    import torch

    rng = np.random.default_rng(0)
    f = ObsFeatures(gym.spaces.Box(0, 255, (8, 8, 3), np.uint8))
    hwc = np.stack([f.add(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), r) for r in (PARTNER, SHADOW)])
    layouts = {
        "vector": np.array([[0.5, 1.0, 0.0], [0.2, 0.0, 1.0]], np.float32),
        "image-last": hwc,
        "image-first": np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)),
    }
    for name, arr in layouts.items():
        for role in (PARTNER, SHADOW):
            t = torch.as_tensor(arr.copy())
            assert set_role(t, role, copy=False) is t
            np.testing.assert_array_equal(t.numpy(), set_role(arr, role), err_msg=name)
    d = {"x": torch.zeros(2, 1), "role": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    assert set_role(d, SHADOW, copy=False) is d and d["role"].tolist() == [[0, 1], [0, 1]]


def test_partner_role_with_seat_identity():
    raw = gym.spaces.Box(-1, 1, (3,), np.float32)
    featured = ObsFeatures(raw, n_seats=2).space
    seen = []

    def probs(obs):
        seen.append(np.array(obs))
        return np.full((len(obs), 2), 0.5)

    policy = FunctionPolicy(featured, gym.spaces.Discrete(2), probs)
    seat1 = as_partner(policy, raw, seat=1)
    assert isinstance(seat1, PartnerRole) and seat1.seat == 1
    seat1.action_probs(np.zeros((2, 3), np.float32))
    assert seen[-1][:, 3:].tolist() == [[0, 1, 1, 0]] * 2  # seat 1, partner role
    with pytest.raises(SpaceMismatchError, match="seat identity"):
        as_partner(policy, raw)
    plain = FunctionPolicy(ObsFeatures(raw).space, gym.spaces.Discrete(2), probs)
    assert as_partner(plain, raw, seat=1).seat is None  # no seat identity: the seat is not needed
