"""The trained composition: the member's shadow, its training seat, the learner's KL bonus, train_composed."""

from __future__ import annotations

import functools
import itertools
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.composed.objective import smoothed_table
from rqe_wrappers.composed.shadow import ShadowBonus, ShadowPartner, ShadowSeat, kl_to_reference
from rqe_wrappers.composed.training import train_composed
from rqe_wrappers.core.policy import FunctionPolicy, RandomPolicy
from rqe_wrappers.core.snapshot import share
from rqe_wrappers.envs.cooking import STAY, cooking_env
from rqe_wrappers.envs.cooking import action_space as cooking_actions
from rqe_wrappers.envs.cooking import observation_space as cooking_obs
from rqe_wrappers.envs.ipd import PAYOFFS, encode_history, ipd_env, observation_space
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.partners.ipd import IPDTablePolicy, training_partners

R = 2
_names = itertools.count()


def unique(prefix: str = "composed-test") -> str:
    """A fresh snapshot name: shared snapshots are process-global."""
    return f"{prefix}-{next(_names)}"


def members(names=("ipd/tit-for-tat", "ipd/always-defect")) -> dict[str, IPDTablePolicy]:
    parts = training_partners(R)
    return {n.split("/")[1]: smoothed_table(parts[n], 0.2, R) for n in names}


def defector(p: float, extra: int = 2) -> FunctionPolicy:
    """A stand-in for the shadow network: defects with probability ``p`` whatever it sees (obs + log ref)."""
    space = observation_space(R)
    wide = gym.spaces.Box(-np.inf, np.inf, (space.shape[0] + extra,), np.float32)
    return FunctionPolicy(wide, gym.spaces.Discrete(2), lambda obs: np.tile([1 - p, p], (len(obs), 1)))


def test_shadow_partner_plays_the_reference_until_a_shadow_is_shared():
    ref = members()["tit-for-tat"]
    name = unique()
    partner = ShadowPartner(ref, name)
    obs = encode_history([], R)[None]  # the empty history
    assert np.allclose(partner.action_probs(obs), ref.action_probs(obs))
    assert partner.last_kl[0] == pytest.approx(0.0, abs=1e-7)  # log ref is float32
    share(name, defector(0.9))
    probs = partner.action_probs(obs)
    assert np.allclose(probs, [[0.1, 0.9]])
    m = ref.action_probs(obs)[0]  # (0.9, 0.1): TFT cooperates first, smoothed by 0.2
    assert partner.last_kl[0] == pytest.approx(0.1 * np.log(0.1 / m[0]) + 0.9 * np.log(0.9 / m[1]))
    assert kl_to_reference(np.array([[0.5, 0.5]]), np.log([[0.5, 0.5]]))[0] == 0.0


def test_shadow_seat_is_a_seeded_pettingzoo_env_paid_minus_the_learner():
    learner = unique()
    share(learner, IPDTablePolicy(np.zeros(5), R))  # the learner always cooperates
    env = ShadowSeat(ipd_env(R), members(), learner=learner, beta=[0.0, 1.0])
    parallel_api_test(env, num_cycles=10)
    obs, infos = env.reset(seed=3)
    assert infos["shadow"]["scenario"] == "c1:always-defect"  # beta is a point mass on it
    ref = members()["always-defect"]
    assert obs["shadow"].shape == (observation_space(R).shape[0] + 2,)
    assert np.allclose(obs["shadow"][-2:], np.log(ref.action_probs(obs["shadow"][None, :-2])[0]), atol=1e-6)
    _, rew, *_ = env.step({"shadow": 1})  # the shadow defects on a cooperator: the learner gets 0
    assert rew["shadow"] == -PAYOFFS[0, 1]
    again = ShadowSeat(ipd_env(R), members(), learner=learner)
    seats = [again.reset(seed=s)[1]["shadow"]["scenario"] for s in range(20)]
    assert seats == [again.reset(seed=s)[1]["shadow"]["scenario"] for s in range(20)]
    assert set(seats) == {"c1:tit-for-tat", "c1:always-defect"}


def test_shadow_bonus_pays_the_learner_the_shadows_kl():
    name, tau = unique(), 2.0
    share(name, defector(0.9))
    refs = members()
    env = ShadowBonus(aht_wrap(ipd_env(R), {n: ShadowPartner(m, name) for n, m in refs.items()}), tau)
    env.aht.aht_callback_attached = True
    _, infos = env.reset(seed=0, options={"scenario": "c1:tit-for-tat"})
    total = 0.0
    for _ in range(R):
        _, rew, term, _, infos = env.step({"focal": 0})
        info = infos["focal"]
        kl = info["shadow_kl"]
        assert kl > 0
        assert rew["focal"] == pytest.approx(info["raw_rewards"][info["seat"]] + kl / tau)
        total += rew["focal"]
    assert term["focal"] and info["focal_return"] == pytest.approx(total)


def test_wrong_use_raises():
    with pytest.raises(SeatError, match="two-seat"):
        from mpe2 import simple_tag_v3

        ShadowSeat(simple_tag_v3.parallel_env(), members())
    with pytest.raises(ConfigError, match="members"):
        ShadowSeat(ipd_env(R), {})
    with pytest.raises(TypeError, match="aht_wrap"):
        ShadowBonus(ipd_env(R), 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="tau = 0"):
        ShadowBonus(aht_wrap(ipd_env(R), members()), 0.0)
    with pytest.raises(ConfigError, match="prior"):
        train_composed(functools.partial(ipd_env, R), members(), 1.0, prior="self-play")
    with pytest.raises(ConfigError, match="ent_coef"):
        train_composed(functools.partial(ipd_env, R), members(), 1.0, shadow_kwargs={"ent_coef": 0.1})
    with pytest.raises(ConfigError, match="tau"):
        train_composed(functools.partial(ipd_env, R), members(), -1.0)


TINY = {"n_steps": 16, "batch_size": 64, "n_epochs": 2}


def tiny_ipd(seed: int, tau: float = 1.0):
    return train_composed(
        functools.partial(ipd_env, R),
        members(),
        tau,
        phases=2,
        learner_steps=128,
        shadow_steps=128,
        n_copies=4,
        seed=seed,
        learner_kwargs=TINY,
        shadow_kwargs=TINY,
    )


def table(model) -> np.ndarray:
    from rqe_wrappers.sb3.sb3_policy import SB3Policy

    pol = SB3Policy.from_model(model)
    fn = FunctionPolicy(observation_space(R), gym.spaces.Discrete(2), lambda obs: pol.action_probs(obs))
    return IPDTablePolicy.from_policy(fn, R).table


def test_train_composed_runs_on_the_ipd_and_reproduces():
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # e.g. a missing-callback warning
        first = tiny_ipd(seed=0)
    second = tiny_ipd(seed=0)
    assert sorted(first.scenario_ids) == ["c1:always-defect", "c1:tit-for-tat"]
    assert [row["phase"] for row in first.history] == [0, 1]
    assert first.history[-1]["steps"] == 256 and first.shadow is not None
    assert sum(first.beta.values()) == pytest.approx(1.0)
    assert np.array_equal(table(first.learner), table(second.learner))
    assert first.beta == second.beta
    plain = tiny_ipd(seed=0, tau=0.0)  # minimax-Bayes alone: the same path without a shadow
    assert plain.shadow is None and plain.history[-1]["steps"] == 256


def test_train_composed_runs_on_cooking_with_two_scripted_partners():
    obs_space, act_space = cooking_obs(), cooking_actions()
    mostly_stay = np.full(5, 0.05)
    mostly_stay[STAY] = 0.8
    partners = {
        "random": RandomPolicy(obs_space, act_space),
        "stayer": FunctionPolicy(obs_space, act_space, lambda obs: np.tile(mostly_stay, (len(obs), 1))),
    }
    result = train_composed(
        functools.partial(cooking_env, "train", 20),
        partners,
        2.0,
        phases=1,
        learner_steps=160,
        shadow_steps=160,
        n_copies=2,
        seed=0,
        learner_kwargs={"n_steps": 80, "batch_size": 80, "n_epochs": 1},
        shadow_kwargs={"n_steps": 80, "batch_size": 80, "n_epochs": 1},
    )
    assert sorted(result.scenario_ids) == ["c1:random", "c1:stayer"]
    assert result.learner.num_timesteps == 160 and result.shadow.num_timesteps == 160
    assert all(np.isfinite(v) for v in result.history[-1]["utilities"].values())


@pytest.mark.slow
def test_the_command_trains_and_scores_exactly_on_the_ipd(tmp_path):
    from rqe_wrappers.composed import run

    args = ["--phases", "1", "--learner-steps", "64", "--shadow-steps", "64", "--n-copies", "2", "--taus", "1"]
    assert run.main([*args, "--out", str(tmp_path)]) == 0
    (job,) = json.loads((tmp_path / "results.json").read_text())["jobs"]
    scores = job["scores"]
    assert scores["optimum@1"] == pytest.approx(3.150988734, abs=1e-6)  # the exact maximin-utility optimum
    assert scores["optimum@0"] == pytest.approx(3.6, abs=1e-6)
    assert scores["objective@1"] <= scores["optimum@1"] + 1e-9
    assert (tmp_path / "models" / "tau1-seed0-shadow.zip").exists()
    assert (tmp_path / "jobs" / "tau1-seed0.json").exists()
    assert set(scores["heldout"]) == {"mean", "worst_case", "mean_regret", "worst_case_regret"}
