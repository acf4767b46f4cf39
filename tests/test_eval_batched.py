"""Cross-play on a batched twin of the env (crossplay(batched=...)): the same table where the twin's
copies play as the seeded PettingZoo env, the same statistics on Tag, typed errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rqe_wrappers.core.policy import ConstantPolicy, DiscretePolicy
from rqe_wrappers.envs.cooking import BatchedCooking, cooking_env
from rqe_wrappers.envs.ipd import BatchedIPD, ipd_env
from rqe_wrappers.envs.tag import tag_env
from rqe_wrappers.envs.tag_batched import BatchedTag
from rqe_wrappers.errors import ConfigError, SeatError, SpaceMismatchError
from rqe_wrappers.eval import crossplay
from rqe_wrappers.eval.episodes import play_batched

COOK_OBS = cooking_env().observation_space("player_0")
FIVE = gym.spaces.Discrete(5)


class LinearSoftmax(DiscretePolicy):
    """A stochastic policy whose action probabilities depend on the observation (a fixed random map)."""

    def __init__(self, seed: int):
        super().__init__(COOK_OBS, FIVE)
        self.w = np.random.default_rng(seed).normal(0, 2, (COOK_OBS.shape[0], 5))

    def action_probs(self, obs, *, state=None):
        z = np.asarray(obs, np.float64) @ self.w
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("layout", ["train", "test"])
def test_cooking_table_is_the_per_copy_table(layout):
    agents = {"a": LinearSoftmax(0), "stay": ConstantPolicy(COOK_OBS, FIVE, 4)}
    kw = dict(episodes=5, seed=3, batch=3)
    slow = crossplay(agents, lambda: cooking_env(layout), **kw)
    fast = crossplay(agents, lambda: cooking_env(layout), batched=lambda n: BatchedCooking(n, layout), **kw)
    assert fast.meta["batched"] and not slow.meta["batched"]
    assert len(fast.rows) == len(slow.rows) == 2 * 5 * (2 * 2)
    for mine, ref in zip(fast.rows, slow.rows, strict=True):
        assert mine == ref  # bit for bit: returns, costs, lengths, seats
    costs = fast.matrix("agent_cost")
    assert costs[0, 0] > 0 and costs[0, 1] > 0 and np.all(costs[1] == 0)  # the stayer pays nothing


def test_ipd_twin_and_worker_processes_give_the_same_table():
    agents = {"tft": "ipd/tit-for-tat", "rand": "ipd/random", "alld": "ipd/always-defect"}
    slow = crossplay(agents, ipd_env, episodes=5, seed=0, batch=2)
    fast = crossplay(agents, ipd_env, episodes=5, seed=0, batch=2, batched=BatchedIPD, n_workers=2)
    assert [r["agent_return"] for r in fast.rows] == [r["agent_return"] for r in slow.rows]


def test_tag_twin_reproduces_the_per_copy_scores():
    """BatchedTag draws other start states than mpe2 for a seed: compare statistics (docs/tag.md: 29.5, 2.1)."""
    out = {}
    for runner in ("tag/still", "tag/evasive-runner"):
        res = crossplay(
            {"greedy": "tag/greedy-chaser"},
            tag_env,
            seats=("adversary_0", "adversary_1"),
            background={"agent_0": runner},
            episodes=64,
            seed=1_000_000,
            batch=64,
            batched=BatchedTag,
        )
        v = res.values("greedy", "greedy")
        out[runner] = (v.mean(), v.std() / np.sqrt(len(v)))
    assert abs(out["tag/still"][0] - 29.5) < 4 * out["tag/still"][1]
    assert abs(out["tag/evasive-runner"][0] - 2.1) < 4 * out["tag/evasive-runner"][1] + 0.3


def test_play_batched_checks_its_input():
    env = BatchedCooking(3)
    pol = {s: LinearSoftmax(0) for s in env.possible_agents}
    rngs = {s: np.random.default_rng(0) for s in env.possible_agents}
    with pytest.raises(ConfigError, match="3 copies for 2 seeds"):
        play_batched(env, pol, [0, 1], rngs)
    stats = play_batched(env, pol, [0, 1, 2], rngs)
    assert [s.length for s in stats] == [100, 100, 100]


@pytest.mark.parametrize(
    "batched, error, match",
    [
        ("cooking", ConfigError, "batched must build a batched env"),
        (lambda n: cooking_env(), ConfigError, "not a batched env"),
        (lambda n: BatchedTag(n), SeatError, "seats"),
        (lambda n: BatchedIPD(n), SpaceMismatchError, "observation_space"),
        (lambda n: BatchedCooking(n, max_steps=5), None, None),
    ],
)
def test_bad_twins_are_typed_errors(batched, error, match):
    agents = {"stay": ConstantPolicy(COOK_OBS, FIVE, 4)}
    if error is None:
        res = crossplay(agents, cooking_env, episodes=2, batched=batched)
        assert {r["length"] for r in res.rows} == {5}  # the twin's own time limit is what plays
        return
    with pytest.raises(error, match=match):
        crossplay(agents, cooking_env, episodes=2, batched=batched)


def test_a_twin_with_other_spaces_is_refused():
    class Wider(BatchedCooking):
        def observation_space(self, agent):
            return gym.spaces.Box(0, 1, (55,), np.float32)

    with pytest.raises(SpaceMismatchError, match="observation_space"):
        crossplay({"stay": ConstantPolicy(COOK_OBS, FIVE, 4)}, cooking_env, episodes=1, batched=Wider)
