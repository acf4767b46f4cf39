"""Background seats of several env copies in one process share one forward pass per policy per step
(PettingZooVecEnv -> seats.background.batch_background), with the draws each copy makes alone."""

import itertools

import numpy as np
import pytest
from mpe2 import simple_tag_v3

from rqe_wrappers import aht_wrap, background_seats
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.core.policy import FunctionPolicy, Policy, RandomPolicy
from rqe_wrappers.sb3 import PettingZooVecEnv

_names = itertools.count()


class Counted(FunctionPolicy):
    """Probabilities that depend on the observation (so rows sent to the wrong copy would show); counts calls."""

    def __init__(self, obs_space, act_space, scale: float):
        super().__init__(obs_space, act_space, self._probs, name=f"counted{scale}")
        self.scale = scale
        self.calls: list[int] = []

    def _probs(self, obs):
        self.calls.append(len(obs))
        z = self.scale * np.asarray(obs, np.float64)[:, :5]
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


class ActCounted(Policy):
    """A policy with its own ``act`` (no probabilities): never batched, called once per copy."""

    def __init__(self, obs_space, act_space):
        super().__init__(obs_space, act_space)
        self.calls: list[int] = []

    def act(self, obs, *, rng, mask=None, state=None):
        self.calls.append(len(obs))
        return (rng.random(len(obs)) * self.action_space.n).astype(np.int64), state


def _tag():
    env = simple_tag_v3.parallel_env(num_good=1, num_adversaries=3, num_obstacles=2, max_cycles=25)
    runner = RandomPolicy(env.observation_space("agent_0"), env.action_space("agent_0"))
    return background_seats(env, {"agent_0": runner})


class _Factory:
    def __init__(self, members):
        self.members = members
        self.snapshot = f"batching-{next(_names)}"

    def __call__(self):
        env = _tag()
        scenarios = ScenarioSet.all(3, list(self.members), focal_counts=[1])
        return aht_wrap(env, self.members, "uniform", scenarios=scenarios, snapshot_name=self.snapshot)


def _members(cls=Counted):
    env = _tag()
    spaces = env.observation_space("adversary_0"), env.action_space("adversary_0")
    if cls is Counted:
        return {"a": Counted(*spaces, 3.0), "b": Counted(*spaces, -2.0)}
    return {"a": cls(*spaces), "b": cls(*spaces)}


def _run(venv, steps: int, seed: int = 7, copies: slice = slice(None)):
    """The trace of ``steps`` steps; the learner's actions are column ``copies`` of one fixed table."""
    venv.seed(seed)
    obs = venv.reset()
    actions = np.random.default_rng(0).integers(5, size=(steps, 8))[:, copies]
    trace = [obs.copy()]
    for t in range(steps):
        obs, rew, done, infos = venv.step(actions[t, : venv.num_envs])
        trace.append((obs.copy(), rew.copy(), done.copy(), [i.get("scenario") for i in infos]))
    return trace


def test_copies_draw_what_each_would_draw_alone():
    n, steps = 5, 60  # 60 steps: two episodes end (25 steps) and new scenarios are drawn
    together = _run(PettingZooVecEnv(_Factory(_members()), n), steps)
    for k in range(n):
        alone = _run(PettingZooVecEnv(_Factory(_members()), 1), steps, seed=7 + k, copies=slice(k, k + 1))
        np.testing.assert_array_equal(together[0][k], alone[0][0])
        for t in range(1, steps + 1):
            obs, rew, done, scen = together[t]
            obs1, rew1, done1, scen1 = alone[t]
            np.testing.assert_array_equal(obs[k], obs1[0], err_msg=f"copy {k} step {t}")
            assert (rew[k], done[k], scen[k]) == (rew1[0], done1[0], scen1[0])


def test_one_forward_pass_per_member_per_step():
    members = _members()
    venv = PettingZooVecEnv(_Factory(members), 6)
    venv.seed(0)
    venv.reset()
    for m in members.values():
        m.calls.clear()
    steps = 10  # within the first episode: every copy plays two background seats
    for _ in range(steps):
        venv.step(np.zeros(venv.num_envs, np.int64))
    calls = members["a"].calls + members["b"].calls
    assert len(members["a"].calls) <= steps and len(members["b"].calls) <= steps
    assert sum(calls) == steps * 6 * 2  # every background seat of every copy, once a step
    assert max(calls) > 2  # rows of several copies in one call (a copy has two background seats)


def test_a_policy_without_probabilities_still_acts_once_per_copy():
    members = _members(ActCounted)
    venv = PettingZooVecEnv(_Factory(members), 4)
    venv.seed(0)
    venv.reset()
    for m in members.values():
        m.calls.clear()
    venv.step(np.zeros(venv.num_envs, np.int64))
    calls = members["a"].calls + members["b"].calls
    assert sum(calls) == 4 * 2 and all(c <= 2 for c in calls)  # per copy, as before


@pytest.mark.parametrize("deterministic", [False, True])
def test_an_sb3_policys_sampler_is_its_act(deterministic):
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import SB3Policy

    venv = PettingZooVecEnv(_tag, 1)
    policy = SB3Policy.from_model(PPO("MlpPolicy", venv, seed=0, device="cpu"), deterministic=deterministic)
    obs = np.random.default_rng(1).normal(size=(64, venv.observation_space.shape[0])).astype(np.float32)
    mask = np.random.default_rng(2).random((64, 5)) < 0.6
    mask[:, 0] = True
    for m in (None, mask):
        acts, _ = policy.act(obs, rng=np.random.default_rng(3), mask=m)
        drawn = policy.probs_sampler()(policy.action_probs(obs), np.random.default_rng(3), m)
        np.testing.assert_array_equal(acts, drawn)
    assert SB3Policy.probs_sampler(policy) is not None
    assert RandomPolicy(venv.observation_space, venv.action_space).probs_sampler() is None  # its own act


def test_a_single_draw_is_the_draw_of_a_one_row_batch():
    """``categorical``'s one-row path (one per seat and step in the per-copy path) draws what the general
    path draws for that row from the same stream position, zeros and unnormalised rows included."""
    from rqe_wrappers.core.seeding import categorical

    gen = np.random.default_rng(7)
    rows = [
        gen.random(8),
        np.array([0.0, 0.5, 0.0, 0.5]),
        np.array([0.0, 0.0, 3.0]),
        np.array([1.0]),
        5 * gen.random(8),
    ]
    for k, p in enumerate(rows * 200):
        single, batch = np.random.default_rng(k), np.random.default_rng(k)
        a = categorical(p, single)
        b = categorical(np.stack([p, p[::-1]]), batch)  # the general path, two rows
        assert isinstance(a, int) and a == int(b[0]) and p[a] > 0
        one = categorical(p[None], np.random.default_rng(k))  # a one-row batch
        assert one.shape == (1,) and one.dtype == np.int64 and int(one[0]) == a
        batch, single = np.random.default_rng(k), np.random.default_rng(k)
        categorical(np.stack([p, p]), batch), categorical(p, single), categorical(p, single)
        assert single.random() == batch.random()  # one number consumed per row
