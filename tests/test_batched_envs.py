"""Batched envs against their PettingZoo envs, step for step on seeded traces with random actions
(observations, rewards, terminations, truncations, infos), across episode ends; per-copy seeding
and the batched API's typed errors."""

import numpy as np
import pytest

from rqe_wrappers import ConfigError, SeatError
from rqe_wrappers.envs.batched import copy_keys, expand_seeds, mix, uniforms
from rqe_wrappers.envs.cooking import BatchedCooking, cooking_env
from rqe_wrappers.envs.ipd import BatchedIPD, IPDEnv
from rqe_wrappers.envs.matrix import BatchedMatrixGame, MatrixGameEnv, coordination_payoffs


def _lockstep(core, envs, seeds, steps, action_rng):
    """Step ``core`` and one PettingZoo env per copy with the same random actions; reset finished
    copies (the batched side with ``copies=``, the PettingZoo side with ``reset()``); compare all."""
    agents = core.possible_agents
    sizes = [core.action_space(a).n for a in agents]
    obs = core.reset(seeds=seeds)
    for k, env in enumerate(envs):
        single, infos = env.reset(seed=seeds[k])
        assert infos == {a: {} for a in agents}
        for i, a in enumerate(agents):
            np.testing.assert_array_equal(obs[k, i], single[a])
    ends = 0
    for _ in range(steps):
        actions = np.stack([action_rng.integers(0, n, len(envs)) for n in sizes], axis=1)
        out = core.step(actions)
        for k, env in enumerate(envs):
            o, r, te, tr, info = env.step({a: int(actions[k, i]) for i, a in enumerate(agents)})
            for i, a in enumerate(agents):
                np.testing.assert_array_equal(out.obs[k, i], o[a])
                assert out.rewards[k, i] == r[a]
                assert (bool(out.terminated[k]), bool(out.truncated[k])) == (te[a], tr[a])
                expected = {} if out.costs is None else {"cost": out.costs[k, i]}
                assert info[a] == expected
        done = out.terminated | out.truncated
        ends += int(done.sum())
        if done.any():
            obs = core.reset(copies=np.flatnonzero(done))
            for k in np.flatnonzero(done):
                single, _ = envs[k].reset()
                for i, a in enumerate(agents):
                    np.testing.assert_array_equal(obs[k, i], single[a])
    return ends


@pytest.mark.parametrize("layout", ["train", "test"])
def test_cooking_batched_equals_pettingzoo_envs(layout):
    seeds = [3, 9, 12, 100, 101, 7, 0, 5]
    core = BatchedCooking(n_copies=8, layout=layout, max_steps=25)
    envs = [cooking_env(layout, max_steps=25) for _ in seeds]
    ends = _lockstep(core, envs, seeds, 120, np.random.default_rng(1))
    assert ends == 8 * 4  # every copy went through four episode ends (reset without a seed continues)


def test_ipd_batched_equals_pettingzoo_envs():
    assert _lockstep(
        BatchedIPD(6, rounds=3), [IPDEnv(3) for _ in range(6)], list(range(6)), 30, np.random.default_rng(2)
    )
    assert BatchedIPD(1, rounds=2).reset()[0, 1].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("time_limit", [True, False])
def test_matrix_batched_equals_pettingzoo_envs(time_limit):
    payoffs = np.random.default_rng(0).normal(size=(3, 2, 2))
    core = BatchedMatrixGame(payoffs, n_copies=5, rounds=4, time_limit=time_limit)
    envs = [MatrixGameEnv(payoffs, rounds=4, time_limit=time_limit) for _ in range(5)]
    assert _lockstep(core, envs, list(range(5)), 21, np.random.default_rng(3)) == 25
    out = BatchedMatrixGame(coordination_payoffs(0.5), n_copies=4)
    out.reset()
    step = out.step(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert step.rewards.tolist() == [[0.0, 0.0], [1.0, 0.5], [0.5, 1.0], [0.5, 0.5]]


def test_copy_k_of_a_batch_plays_as_a_single_copy_with_its_seed():
    """The draws of one copy do not depend on the batch around it: copy 2 of a batch seeded 40
    (seeds 40, 41, 42, ...) is a one-copy core seeded 42."""
    big, one = BatchedCooking(n_copies=16), BatchedCooking(n_copies=1)
    obs_big, obs_one = big.reset(seeds=40), one.reset(seeds=[42])
    rng = np.random.default_rng(0)
    for _ in range(60):
        acts = rng.integers(0, 5, (16, 2))
        a, b = big.step(acts), one.step(acts[2:3])
        np.testing.assert_array_equal(a.obs[2], b.obs[0])
        np.testing.assert_array_equal(a.rewards[2], b.rewards[0])
    np.testing.assert_array_equal(obs_big[2], obs_one[0])


def test_seeding_helpers():
    assert expand_seeds(5, 3) == [5, 6, 7]
    assert expand_seeds(None, 2) == [None, None]
    keys = copy_keys([1, 1, 2], np.zeros(3, np.uint64), "x")
    assert keys[0] == keys[1] != keys[2]
    assert not np.array_equal(copy_keys([1], np.zeros(1, np.uint64), "y"), keys[:1])  # streams differ by name
    after = copy_keys([None], keys[:1], "x")  # continues: same key -> same next key
    assert after[0] == copy_keys([None], keys[:1], "x")[0] != keys[0]
    u = uniforms(np.arange(1, 2001, dtype=np.uint64), np.zeros(2000), 3)
    assert u.shape == (2000, 3) and 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.05


def test_uniforms_are_splitmix_of_key_plus_mixed_counter_inside_and_beyond_the_counter_table():
    """Counters below the table's reach are looked up, others mixed directly: one stream either way."""
    rng = np.random.default_rng(0)
    keys = rng.integers(1, 2**63, 300, dtype=np.uint64)
    counters = np.concatenate([rng.integers(0, 200, 100), rng.integers(4000, 5000, 100), rng.integers(0, 2**40, 100)])
    for width in (1, 3, 10):
        c = counters.astype(np.uint64)[:, None] * np.uint64(width) + np.arange(width, dtype=np.uint64)
        with np.errstate(over="ignore"):
            bits = mix(keys[:, None] + mix(c + np.uint64(0x9E3779B97F4A7C15)))
        expected = (bits >> np.uint64(11)).astype(np.float64) / 2**53
        np.testing.assert_array_equal(uniforms(keys, counters, width), expected)  # all three ranges at once
        for part in np.split(np.arange(300), 3):  # and each range alone (the table or the direct path)
            np.testing.assert_array_equal(uniforms(keys[part], counters[part], width), expected[part])


def test_batched_typed_errors():
    core = BatchedCooking(n_copies=3)
    with pytest.raises(ConfigError, match="first reset"):
        core.reset(copies=[0])
    core.reset(seeds=0)
    with pytest.raises(ConfigError, match=r"shape \(3, 2\)"):
        core.step(np.zeros((2, 2), np.int64))
    with pytest.raises(ConfigError, match="integer array"):
        core.step(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="up, down, left, right, stay"):
        core.step(np.full((3, 2), 5))
    with pytest.raises(ConfigError, match="distinct indices"):
        core.reset(copies=[0, 3])
    with pytest.raises(ConfigError, match="one per copy"):
        core.reset(seeds=[1, 2], copies=[0])
    with pytest.raises(ConfigError, match="seed must be None or a whole number"):
        core.reset(seeds=[-1, 0, 0])
    with pytest.raises(SeatError, match="unknown seat 'player_2'"):
        core.action_space("player_2")
    with pytest.raises(ConfigError, match="n_copies"):
        BatchedIPD(n_copies=0)
    ipd = BatchedIPD(n_copies=2, rounds=1)
    ipd.reset()
    ipd.step(np.zeros((2, 2), np.int64))
    with pytest.raises(ConfigError, match="finished"):
        ipd.step(np.zeros((2, 2), np.int64))
    ipd.reset(copies=np.array([True, True]))
    with pytest.raises(ConfigError, match="cooperate"):
        ipd.step(np.full((2, 2), 2))
    with pytest.raises(ConfigError, match=r"player_1: action must be an integer in 0\.\.1"):
        env = MatrixGameEnv(np.zeros((3, 2, 2)))
        env.reset()
        env.step({"player_0": 2, "player_1": 2})
