"""The shadow-adversary wrapper: API conformance, seeding, rewards, roles and bad input."""

import gymnasium as gym
import numpy as np
import pytest
from mpe2 import simple_tag_v3
from pettingzoo.classic import tictactoe_v3
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from rqe_wrappers import (
    ConfigError,
    ConstantPolicy,
    RandomPolicy,
    SeatError,
    SpaceMismatchError,
    UnsupportedSpaceError,
    srpo_wrap,
)
from rqe_wrappers.envs.matrix import MatrixGameEnv, coordination_game
from rqe_wrappers.errors import MissingCallbackWarning
from rqe_wrappers.srpo.roles import role_of

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")


def tag(parallel=True, **kw):
    make = simple_tag_v3.parallel_env if parallel else simple_tag_v3.env
    return make(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=kw.pop("max_cycles", 25), **kw)


def runner_policy():
    e = tag()
    return RandomPolicy(e.observation_space("agent_0"), e.action_space("agent_0"))


@pytest.mark.parametrize("tau", [0.0, 1.5])
def test_parallel_api(tau):
    parallel_api_test(srpo_wrap(coordination_game(rounds=4), tau=tau), num_cycles=12)
    parallel_api_test(srpo_wrap(tag(), tau=tau, fixed={"agent_0": runner_policy()}), num_cycles=30)


@pytest.mark.parametrize("tau", [0.0, 1.5])
def test_aec_api(tau):
    api_test(srpo_wrap(tictactoe_v3.env(), tau=tau), num_cycles=30)
    api_test(srpo_wrap(tag(parallel=False), tau=tau, fixed={"agent_0": runner_policy()}), num_cycles=30)


def test_pettingzoo_seed_tests():
    seed_test(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0))
    parallel_seed_test(lambda: srpo_wrap(tag(), tau=1.0, fixed={"agent_0": runner_policy()}))
    parallel_seed_test(lambda: srpo_wrap(coordination_game(rounds=3), tau=1.0))


def rollout(env, seed, episodes=4):
    """Trajectory of a seeded run with actions drawn from a Generator seeded alike."""
    rng = np.random.default_rng(seed)
    trace = []
    for ep in range(episodes):
        obs, infos = env.reset(seed=seed if ep == 0 else None)
        trace.append(sorted((a, i["role"]) for a, i in infos.items()))
        while env.agents:
            acts = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
            obs, rew, _term, _trunc, infos = env.step(acts)
            trace.append([(a, np.round(obs[a], 6).tolist(), rew[a]) for a in sorted(obs)])
    return trace


def test_same_seed_same_trajectory_and_roles():
    make = lambda: srpo_wrap(tag(), tau=1.0, fixed={"agent_0": runner_policy()})  # noqa: E731
    assert rollout(make(), 7) == rollout(make(), 7)
    assert rollout(make(), 7) != rollout(make(), 8)
    # the shadow seat is re-drawn per episode from the seeded stream: over many episodes both seats get it
    env = make()
    env.reset(seed=3)
    seen = set()
    for _ in range(20):
        env.reset()
        seen |= env.shadows
    assert seen == {"adversary_0", "adversary_1"}


def test_shadow_reward_is_negated_mean_of_partners():
    payoffs = np.zeros((2, 2, 2))
    payoffs[1, 1] = (3.0, 5.0)
    payoffs[1, 0] = (-1.0, 2.0)
    env = srpo_wrap(MatrixGameEnv(payoffs), tau=2.0)
    for seed in range(6):
        _, infos = env.reset(seed=seed)
        shadow = next(a for a, i in infos.items() if i["role"] == "shadow")
        partner = next(a for a in env.agents if a != shadow)
        _, rew, _, _, infos = env.step({"player_0": 1, "player_1": 0})
        raw = infos[partner]["raw_rewards"]
        assert raw == {"player_0": -1.0, "player_1": 2.0}
        assert rew[partner] == raw[partner]
        assert rew[shadow] == -raw[partner]


def test_shadow_reward_mean_over_several_partners():
    env = srpo_wrap(tag(), tau=1.0, fixed={"agent_0": runner_policy()})
    env.reset(seed=0)
    (shadow,) = env.shadows
    for _ in range(10):
        _, rew, _, _, infos = env.step({a: 1 for a in env.agents})
        raw = infos[shadow]["raw_rewards"]
        partners = [a for a in env.agents if a != shadow]
        assert rew[shadow] == pytest.approx(-np.mean([raw[a] for a in partners]))


def test_role_feature_box_and_dict():
    env = srpo_wrap(coordination_game(), tau=1.0)
    obs, infos = env.reset(seed=0)
    for a in env.agents:
        assert env.observation_space(a).shape == (3,)
        assert role_of(obs[a]) == (1 if infos[a]["role"] == "shadow" else 0)
    aec = srpo_wrap(tictactoe_v3.env(), tau=1.0)
    aec.reset(seed=0)
    o = aec.observe(aec.agent_selection)
    assert set(o) == {"observation", "action_mask", "role"}
    assert aec.observation_space(aec.agent_selection)["role"].contains(o["role"])


def test_tau_zero_is_plain_ippo():
    env = srpo_wrap(coordination_game(), tau=0.0)
    for seed in range(5):
        _obs, infos = env.reset(seed=seed)
        assert env.shadows == set()
        assert all(i["role"] == "partner" for i in infos.values())
        _, rew, _, _, infos = env.step({"player_0": 1, "player_1": 0})
        assert rew == infos["player_0"]["raw_rewards"]


def test_fixed_seat_is_played_by_its_policy():
    calls = []

    class Recording(ConstantPolicy):
        def act(self, obs, **kw):
            calls.append(np.shape(obs))
            return super().act(obs, **kw)

    e = tag()
    pol = Recording(e.observation_space("agent_0"), e.action_space("agent_0"), action=0)
    env = srpo_wrap(e, tau=1.0, fixed={"agent_0": pol})
    env.reset(seed=0)
    assert "agent_0" not in env.agents and "agent_0" not in env.possible_agents
    env.step({a: 0 for a in env.agents})
    assert calls == [(1, 12)]


def test_warns_without_callback():
    env = srpo_wrap(coordination_game(), tau=1.0)
    env.reset(seed=0)
    with pytest.warns(MissingCallbackWarning, match="SRPOCallback"):
        env.step({"player_0": 0, "player_1": 0})
    env.srpo_callback_attached = True  # what SRPOCallback does through VecEnv.set_attr
    env2 = srpo_wrap(coordination_game(), tau=1.0)
    env2.srpo_callback_attached = True
    env2.reset(seed=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingCallbackWarning)
        env2.step({"player_0": 0, "player_1": 0})


# ---- bad input: one test each ------------------------------------------------------------------
@pytest.mark.parametrize("tau", [-0.1, float("nan"), float("inf"), "high"])
def test_bad_tau(tau):
    with pytest.raises(ConfigError, match="tau"):
        srpo_wrap(coordination_game(), tau=tau)


def test_one_agent_env():
    solo = MatrixGameEnv(np.zeros((2, 2, 2)))
    solo.possible_agents = ["player_0"]
    with pytest.raises(SeatError, match="partner"):
        srpo_wrap(solo, tau=1.0)


def test_seats_that_do_not_exist():
    with pytest.raises(SeatError, match="do not exist"):
        srpo_wrap(coordination_game(), tau=1.0, learning_seats=["player_0", "player_9"])
    with pytest.raises(SeatError, match="do not exist"):
        srpo_wrap(coordination_game(), tau=1.0, fixed={"nobody": runner_policy()})


def test_no_learning_seats():
    with pytest.raises(SeatError, match="at least two learning seats"):
        srpo_wrap(coordination_game(), tau=1.0, learning_seats=[])
    env = coordination_game()
    fixed = {a: ConstantPolicy(env.observation_space(a), env.action_space(a), 0) for a in env.possible_agents}
    with pytest.raises(SeatError, match="leave at least one seat"):
        srpo_wrap(env, tau=1.0, fixed=fixed)


def test_bad_n_shadows():
    with pytest.raises(ConfigError, match="n_shadows"):
        srpo_wrap(coordination_game(), tau=1.0, n_shadows=2)


def test_unsupported_observation_space():
    env = coordination_game()
    env.observation_space = lambda agent: gym.spaces.Tuple((gym.spaces.Discrete(4), gym.spaces.Discrete(2)))
    with pytest.raises(UnsupportedSpaceError, match="flatten"):
        srpo_wrap(env, tau=1.0)
    img = coordination_game()
    img.observation_space = lambda agent: gym.spaces.Box(0, 1, (4, 4, 3))
    with pytest.raises(UnsupportedSpaceError, match="1-D Box"):
        srpo_wrap(img, tau=1.0)


def test_mismatched_policy_spaces():
    e = tag()
    wrong = RandomPolicy(e.observation_space("adversary_0"), e.action_space("agent_0"))
    with pytest.raises(SpaceMismatchError, match=r"agent_0.*observation space mismatch.*\(12,\).*\(14,\)"):
        srpo_wrap(e, tau=1.0, fixed={"agent_0": wrong})


def test_not_a_pettingzoo_env():
    with pytest.raises(TypeError, match="PettingZoo"):
        srpo_wrap(gym.make("CartPole-v1"), tau=1.0)


def test_aec_infos_keep_the_final_raw_rewards():
    """After the winning move the loser's dead step clears env.rewards; infos still show the win."""
    env = srpo_wrap(tictactoe_v3.env(), tau=1.0)
    env.reset(seed=0)
    for move in (0, 3, 1, 4, 2):  # player_1 (X) wins on the top row
        env.step(move)
    _, _reward, term, _, info = env.last()
    assert term and info["raw_rewards"] == {"player_1": 1.0, "player_2": -1.0}
    env.step(None)
    _, _, _, _, info = env.last()
    assert info["raw_rewards"]["player_1"] == 1.0
