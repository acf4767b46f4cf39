"""Minimax-Bayes AHT on the batched path: scenario draws, partners, infos and AHTCallback, against aht_wrap.

The IPD with the nine scripted partners of ``ipd/train``; the learner sits in ``player_0``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from rqe_wrappers.aht.config import AHTConfig
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.batched import BatchedVecEnv, batched_vec_env
from rqe_wrappers.core import snapshot
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.core.snapshot import SnapshotPolicy
from rqe_wrappers.envs.ipd import BatchedIPD, IPDEnv
from rqe_wrappers.errors import ConfigError, MissingCallbackWarning
from rqe_wrappers.partners.ipd import expected_return, make_partner
from rqe_wrappers.sb3 import AHTCallback, SB3Policy
from rqe_wrappers.zoo import load_population

ROUNDS = 3  # ipd/train's members play the 3-round IPD


@pytest.fixture(scope="module")
def members():
    return load_population("ipd/train").policies()


def _venv(members, n_copies: int, seed: int | None = 0, **kwargs) -> BatchedVecEnv:
    venv = batched_vec_env(BatchedIPD(n_copies, ROUNDS), population=members, seed=seed, monitor=False, **kwargs)
    assert isinstance(venv, BatchedVecEnv)
    venv.set_attr("aht_callback_attached", True)  # no warning: these tests push the prior themselves
    return venv


def _episode_ends(venv: BatchedVecEnv, episodes: int, learner=None) -> list[list[tuple[int, float]]]:
    """Per copy: ``(scenario_index, focal_return)`` of each of ``episodes`` episodes (IPD: all end together)."""
    obs = venv.reset()
    rng = stream(0, "test")
    out: list[list[tuple[int, float]]] = [[] for _ in range(venv.num_envs)]
    for _ in range(episodes * ROUNDS):
        acts = np.zeros(venv.num_envs, np.int64) if learner is None else learner.act(obs, rng=rng)[0]
        obs, _, dones, infos = venv.step(acts)
        for c in np.flatnonzero(dones).tolist():
            out[c].append((infos[c]["scenario_index"], infos[c]["focal_return"]))
    return out


def test_layout_and_attributes(members):
    venv = _venv(members, 4)
    ids = venv.get_attr("scenarios")[0].ids
    assert venv.num_envs == 4 and venv.learning_seats == ["player_0"]
    assert venv.observation_space == IPDEnv(ROUNDS).observation_space("player_0")  # aht_wrap's: no SRPO features
    assert ids == tuple(f"c1:{m}" for m in members)
    assert venv.get_attr("aht_config")[0]["scenarios"] == ScenarioSet.all(2, list(members), focal_counts=[1]).to_dict()
    np.testing.assert_allclose(venv.get_attr("beta")[0], np.full(9, 1 / 9))
    venv.env_method("set_prior", np.arange(1, 10))
    np.testing.assert_allclose(venv.get_attr("beta")[0], np.arange(1, 10) / 45)
    venv.reset()
    index = venv.aht.index
    assert [i["scenario_index"] for i in venv.reset_infos] == index.tolist()
    assert [i["scenario"] for i in venv.reset_infos] == [ids[i] for i in index.tolist()]
    # the background seat plays the drawn member: its table row indexes that member's policy
    policies = venv._background.policies
    assert [policies[venv._background.table[c, 1]] for c in range(4)] == [members[ids[i][3:]] for i in index.tolist()]


def test_frequencies_follow_beta(members):
    beta = np.array([0.3, 0.02, 0.1, 0.05, 0.2, 0.08, 0.1, 0.1, 0.05])
    n = 6000
    venv = _venv(members, n, seed=3)
    venv.env_method("set_prior", beta)
    draws = np.concatenate([np.array(ep)[:, 0] for ep in zip(*_episode_ends(venv, 2), strict=True)])
    draws = np.concatenate([draws, venv.aht.index])  # the third episode's scenarios, drawn at the last reset
    counts = np.bincount(draws.astype(np.int64), minlength=9)
    total = counts.sum()
    assert total == 3 * n
    se = np.sqrt(total * beta * (1 - beta))
    assert (np.abs(counts - total * beta) < 4 * se).all(), (counts, total * beta)


def test_copy_draws_depend_only_on_its_seed(members):
    big, small = _venv(members, 8, seed=10), _venv(members, 1, seed=13)
    big_runs, small_runs = _episode_ends(big, 5), _episode_ends(small, 5)
    assert big_runs[3] == small_runs[0]
    assert big.aht.index[3] == small.aht.index[0]  # the sixth episode's draw too


def test_seeded_runs_reproduce(members):
    a, b = _episode_ends(_venv(members, 16, seed=1), 4), _episode_ends(_venv(members, 16, seed=1), 4)
    assert a == b
    c = _episode_ends(_venv(members, 16, seed=2), 4)
    assert [i for run in a for i, _ in run] != [i for run in c for i, _ in run]


def test_focal_returns_match_aht_wrap_and_exact_values(members):
    """A fixed learner (tit-for-tat) against the eight deterministic partners: the returns nature sees."""
    det = {k: v for k, v in members.items() if k != "random"}
    scenarios = ScenarioSet.all(2, list(det), focal_counts=[1])
    learner = make_partner("ipd/tit-for-tat", rounds=ROUNDS)
    exact = {i: expected_return(learner, det[s.background[0]], ROUNDS)[0] for i, s in enumerate(scenarios)}
    # per-copy path: aht_wrap, each scenario forced once
    env = aht_wrap(IPDEnv(ROUNDS), det, scenarios=scenarios, prior="uniform")
    rng = stream(0, "test")
    per_copy = {}
    for i in range(len(scenarios)):
        obs, _ = env.reset(seed=i, options={"scenario": i})
        done, info = False, {}
        while not done:
            action = int(learner.act(obs["focal"][None], rng=rng)[0][0])
            obs, _, term, trunc, infos = env.step({"focal": action})
            done, info = term["focal"] or trunc["focal"], infos["focal"]
        per_copy[info["scenario_index"]] = info["focal_return"]
    assert per_copy == pytest.approx(exact)
    # batched path
    venv = _venv(members=det, n_copies=64, seed=0, aht=AHTConfig(prior="uniform"))
    ends = [e for run in _episode_ends(venv, 2, learner) for e in run]
    assert {i for i, _ in ends} == set(range(len(scenarios)))
    for i, ret in ends:
        assert ret == pytest.approx(exact[i]), scenarios.ids[i]


def test_self_play_scenarios_seat_the_shared_snapshot_and_pay_the_focal_mean(members):
    """c2 (the learner and its snapshot): the snapshot shared under the config's name plays the other seat,
    and the learner is paid the mean of both seats' rewards, as aht_wrap pays it."""
    det = {k: v for k, v in members.items() if k != "random"}
    scenarios = ScenarioSet.all(2, list(det))  # the eight c1 scenarios, then c2
    learner = make_partner("ipd/tit-for-tat", rounds=ROUNDS)
    shared_copy = make_partner("ipd/always-defect", rounds=ROUNDS)  # stands in for the learner's snapshot
    snapshot.share("learner", shared_copy)
    try:
        r_learner, r_copy = expected_return(learner, shared_copy, ROUNDS)
        venv = _venv(det, 32, seed=0, aht=AHTConfig(prior="uniform"), scenarios=scenarios)
        c2 = scenarios.ids.index("c2")
        assert isinstance(venv._background.policies[venv.aht.rows[c2, 1]], SnapshotPolicy)
        obs, rng, paid = venv.reset(), stream(0, "test"), []
        ends = []
        for _ in range(4 * ROUNDS):
            in_c2 = venv.aht.index == c2
            obs, rew, dones, infos = venv.step(learner.act(obs, rng=rng)[0])
            both = (venv.last_raw_rewards[:, 0] + venv.last_background_rewards[:, 0]) / 2
            paid.append((rew[in_c2], both[in_c2], rew[~in_c2], venv.last_raw_rewards[~in_c2, 0]))
            ends += [(infos[c]["scenario_index"], infos[c]["focal_return"]) for c in np.flatnonzero(dones)]
        for own_c2, mean_c2, own_c1, raw_c1 in paid:
            np.testing.assert_allclose(own_c2, mean_c2)  # c2: the focal per-capita reward
            np.testing.assert_allclose(own_c1, raw_c1)  # c1: the learner's own
        c2_returns = [ret for i, ret in ends if i == c2]
        assert c2_returns and all(r == pytest.approx((r_learner + r_copy) / 2) for r in c2_returns)
        for i, ret in ends:
            if i != c2:
                assert ret == pytest.approx(expected_return(learner, det[scenarios[i].background[0]], ROUNDS)[0])
    finally:
        snapshot.clear()


def test_the_self_play_prior_trains_against_the_learners_own_snapshot(members):
    venv = batched_vec_env(BatchedIPD(32, ROUNDS), population=members, aht=AHTConfig(prior="self-play"), seed=0)
    ids = venv.get_attr("scenarios")[0].ids
    assert ids[-1] == "c2" and len(ids) == 10  # the default set with the self-play prior: every focal count
    model = PPO("MlpPolicy", venv, n_steps=6, batch_size=96, n_epochs=1, policy_kwargs=dict(net_arch=[8]), seed=0)
    obs = np.random.default_rng(0).random((4, *venv.observation_space.shape)).astype(np.float32)

    class AtRolloutEnd(BaseCallback):  # after AHTCallback: the learner as it was shared (before PPO's update)
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.probs = SB3Policy.from_model(self.model).action_probs(obs)

    seen = AtRolloutEnd()
    try:
        model.learn(32 * 6 * 3, callback=CallbackList([AHTCallback(), seen]))
        beta = venv.get_attr("beta")[0]
        assert beta[-1] == 1.0 and beta[:-1].sum() == 0.0
        shared_now = snapshot.shared("learner")
        assert isinstance(shared_now, SB3Policy)  # AHTCallback shared the learner; the snapshot seat plays it
        np.testing.assert_allclose(shared_now.action_probs(obs), seen.probs, atol=1e-7)
        now = SB3Policy.from_model(model).action_probs(obs)
        assert not np.allclose(seen.probs, now, atol=1e-7)  # shared before the last update: one behind
        table = venv.venv._background.table
        assert {type(venv.venv._background.policies[j]) for j in table[:, 1]} == {SnapshotPolicy}
    finally:
        snapshot.clear()


def test_the_learner_is_shared_only_where_its_snapshot_plays_a_scenario(members):
    """Population-only scenarios (c1) seat no snapshot: AHTCallback copies the learner for nobody; with c2 it does."""
    for scenarios, plays in ((None, False), (ScenarioSet.all(2, list(members)), True)):
        venv = batched_vec_env(BatchedIPD(16, ROUNDS), population=members, scenarios=scenarios, seed=0)
        assert venv.get_attr("plays_learner_snapshot")[0] is plays
        model = PPO("MlpPolicy", venv, n_steps=3, batch_size=48, n_epochs=1, policy_kwargs=dict(net_arch=[8]), seed=0)
        snapshot.clear()
        try:
            model.learn(16 * 3 * 2, callback=AHTCallback())
            assert isinstance(snapshot.shared("learner"), SB3Policy) is plays
        finally:
            snapshot.clear()


def test_fictitious_play_seats_each_slots_past_snapshot(members):
    """prior='fictitious-play': scenario c2@fp/<k> seats the snapshot shared for slot k, paid per capita."""
    venv = _venv({}, 48, seed=0, aht=AHTConfig(prior="fictitious-play", fp_capacity=3))
    assert venv.get_attr("scenarios")[0].ids == ("c2@fp/0", "c2@fp/1", "c2@fp/2")
    np.testing.assert_array_equal(venv.get_attr("beta")[0], [1.0, 0.0, 0.0])  # slot 0 only, before training
    names = venv.get_attr("aht_config")[0]["fp_members"]
    assert names == {f"fp/{k}": f"learner/fp/{k}" for k in range(3)}
    learner = make_partner("ipd/tit-for-tat", rounds=ROUNDS)
    past = [make_partner(f"ipd/{m}", rounds=ROUNDS) for m in ("always-defect", "always-cooperate", "tat-for-tit")]
    for k, policy in enumerate(past):
        snapshot.share(names[f"fp/{k}"], policy)
    try:
        venv.env_method("set_prior", np.ones(3))
        ends = [e for run in _episode_ends(venv, 3, learner) for e in run]
        assert {i for i, _ in ends} == {0, 1, 2}
        for i, ret in ends:
            assert ret == pytest.approx(sum(expected_return(learner, past[i], ROUNDS)) / 2)
    finally:
        snapshot.clear()


def test_fictitious_play_trains_with_the_stock_callback():
    venv = batched_vec_env(BatchedIPD(16, ROUNDS), aht=AHTConfig(prior="fictitious-play", fp_capacity=2), seed=0)
    model = PPO("MlpPolicy", venv, n_steps=6, batch_size=48, n_epochs=1, policy_kwargs=dict(net_arch=[8]), seed=0)
    callback = AHTCallback()
    try:
        model.learn(16 * 6 * 3, callback=callback)
        assert callback.fp_seen == 4  # the initial policy and one per rollout, kept by reservoir sampling
        assert all(isinstance(snapshot.shared(f"learner/fp/{k}"), SB3Policy) for k in range(2))
        np.testing.assert_allclose(venv.get_attr("beta")[0], [0.5, 0.5])  # both slots filled: uniform over them
    finally:
        snapshot.clear()


class _Record(BaseCallback):
    def __init__(self):
        super().__init__()
        self.ends: list[tuple[int, float]] = []
        self.returns: np.ndarray | None = None
        self.summed: list[float] = []

    def _on_step(self) -> bool:
        rewards = np.asarray(self.locals["rewards"], np.float64)
        self.returns = rewards if self.returns is None else self.returns + rewards
        for slot, info in enumerate(self.locals["infos"]):
            if "focal_return" in info:
                self.ends.append((info["scenario_index"], info["focal_return"]))
                self.summed.append(float(self.returns[slot]))
                self.returns[slot] = 0.0
        return True


def _train(members) -> tuple[BatchedVecEnv, AHTCallback, _Record]:
    venv = batched_vec_env(BatchedIPD(16, ROUNDS), population=members, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=12, batch_size=96, n_epochs=1, seed=0, device="cpu")
    aht, record = AHTCallback(utility_ema=None), _Record()
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingCallbackWarning)
        model.learn(16 * 12 * 3, callback=CallbackList([aht, record]))
    return venv, aht, record


def test_ppo_with_aht_callback_updates_nature(members):
    venv, aht, record = _train(members)
    idx = np.array([i for i, _ in record.ends])
    ret = np.array([r for _, r in record.ends])
    assert len(record.ends) == 16 * 4 * 3  # 4 three-round episodes per slot and rollout
    np.testing.assert_allclose(ret, record.summed)  # focal_return = the learner's summed rewards
    np.testing.assert_array_equal(aht.counts, np.bincount(idx, minlength=9))
    means = [ret[idx == s].mean() if (idx == s).any() else np.nan for s in range(9)]
    np.testing.assert_allclose(aht.utilities, means)
    assert not np.allclose(aht.beta, 1 / 9)  # nature moved
    np.testing.assert_allclose(venv.get_attr("beta")[0], aht.beta)  # and the env samples from its prior
    _, again, record_again = _train(members)  # a seeded run reproduces
    assert record_again.ends == record.ends
    np.testing.assert_array_equal(again.beta, aht.beta)


def test_aht_callback_takes_the_batched_envs_finished_episodes_as_arrays(members, monkeypatch):
    """On the batched path AHTCallback reads each step's finished episodes as arrays (no per-slot pass over
    the infos); nature ends exactly where reading the infos slot by slot ends, and arrays that disagree with
    the infos are not trusted."""
    read = AHTCallback._episodes
    calls: list[int] = []

    def counted(self, found):
        calls.append(len(found))
        return read(self, found)

    monkeypatch.setattr(AHTCallback, "_episodes", counted)
    _, arrays, _ = _train(members)
    assert calls == []  # every step's episodes came as arrays
    finished = BatchedVecEnv.finished_episodes
    monkeypatch.setattr(BatchedVecEnv, "finished_episodes", None)  # no arrays: the infos, slot by slot
    _, infos, _ = _train(members)
    assert sum(calls) == 16 * 4 * 3
    monkeypatch.setattr(
        BatchedVecEnv, "finished_episodes", lambda self: (lambda s, i, r: (s, i, r + 1.0))(*finished(self))
    )
    calls.clear()
    _, wrong, _ = _train(members)
    assert sum(calls) == 16 * 4 * 3  # arrays that disagree with the infos: the infos are read
    for cb in (arrays, wrong):
        np.testing.assert_array_equal(cb.counts, infos.counts)
        np.testing.assert_array_equal(cb.utilities, infos.utilities)
        np.testing.assert_array_equal(cb.beta, infos.beta)


def test_unsupported_settings_are_refused(members):
    env = BatchedIPD(2, ROUNDS)
    with pytest.raises(ConfigError, match="past snapshots"):
        batched_vec_env(env, population=members, aht=AHTConfig(prior="fictitious-play"))
    with pytest.raises(ConfigError, match="tau"):
        batched_vec_env(env, 1.0, population=members)
    with pytest.raises(ConfigError, match="learn must be one seat"):
        batched_vec_env(env, population=members, learn="player_7")
    with pytest.raises(ConfigError, match="population of partners"):
        batched_vec_env(env, aht=AHTConfig())
    venv = _venv(members, 2)
    with pytest.raises(ConfigError, match="one entry per scenario"):
        venv.env_method("set_prior", [1.0, 2.0])


def test_warns_without_callback(members):
    venv = batched_vec_env(BatchedIPD(2, ROUNDS), population=members, seed=0, monitor=False)
    venv.reset()
    with pytest.warns(MissingCallbackWarning, match="AHTCallback"):
        for _ in range(ROUNDS):
            venv.step(np.zeros(2, np.int64))
