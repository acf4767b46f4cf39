"""Minimax-Bayes AHT on any env, reported as the paper's Table 3 (rqe_wrappers.experiments.aht_table)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rqe_wrappers.envs.ipd import ipd_env
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.population import evaluate_population
from rqe_wrappers.experiments import aht_table as at
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.partners.ipd import best_response_value, training_partners

torch.set_num_threads(1)
ROUNDS = 3


def env_fn():
    return ipd_env(rounds=ROUNDS)


PARTNERS = training_partners(ROUNDS)
TRAIN = {k: PARTNERS[k] for k in list(PARTNERS)[:3]}
TEST = {k: PARTNERS[k] for k in list(PARTNERS)[3:5]}
EXACT = {
    "train": {k: best_response_value(p, ROUNDS) for k, p in TRAIN.items()},
    "test": {k: best_response_value(p, ROUNDS) for k, p in TEST.items()},
}


def small(**kw) -> at.AHTTable:
    ppo = PPOSettings(n_copies=4, n_steps=16, batch_size=64, n_epochs=1, net_arch=(16,))
    return at.AHTTable(**{"priors": ("MU", "SP"), "seeds": (0,), "steps": 128, "episodes": 8, "ppo": ppo, **kw})


def test_each_row_is_the_trained_learners_evaluation_on_that_population():
    settings = small()
    rows = at.run_table(env_fn, TRAIN, TEST, settings, member_best_responses=EXACT)
    assert [(r["prior"], r["population"]) for r in rows] == [
        ("MU", "train"),
        ("MU", "test"),
        ("SP", "train"),
        ("SP", "test"),
    ]
    model = at.train_learner(env_fn, TRAIN, "MU", 0, settings)  # one seed trains one learner
    for key, pop in (("train", TRAIN), ("test", TEST)):
        want = evaluate_population(model, pop, env_fn, best_responses=EXACT[key], episodes=8, seed=0, reps=200).summary
        row = next(r for r in rows if r["prior"] == "MU" and r["population"] == key)
        assert row["mean"] == want["mean"] and row["worst_case"] == want["worst_case"]
        assert row["worst_case_regret"] == pytest.approx(want["worst_case_regret"])
        assert row["worst_case_regret"] >= 0 - 1e-9  # the exact best response bounds every utility
    table = at.format_table(rows)
    assert table.splitlines()[0].startswith("| learner | mean utility (train)") and "| SP |" in table


def test_self_play_and_fictitious_play_train_without_the_population(monkeypatch):
    seen = {}
    real = at.aht_wrap

    def spy(env, population, prior, **kw):
        seen[prior] = sorted(population)
        return real(env, population, prior, **kw)

    monkeypatch.setattr(at, "aht_wrap", spy)
    for prior in ("SP", "FP", "PBR"):
        at.train_learner(env_fn, TRAIN, prior, 0, small(steps=64))
    assert seen == {"self-play": [], "fictitious-play": [], "uniform": sorted(TRAIN)}


def test_estimated_best_responses_give_the_regret_when_none_are_given():
    brs = at.best_responses(env_fn, TEST, small(best_response_steps=64))
    assert set(brs) == set(TEST) and all(np.isfinite(v) for v in brs.values())
    rows = at.run_table(env_fn, TRAIN, TEST, small(priors=("PBR",), best_response_steps=64))
    assert all(r["worst_case_regret"] is not None for r in rows)
    no_brs = at.run_table(env_fn, TRAIN, TEST, small(priors=("PBR",)))
    assert all(r["worst_case_regret"] is None for r in no_brs)  # unknown, not invented


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="priors"):
        at.AHTTable(priors=("XX",))
    with pytest.raises(ConfigError, match="seeds"):
        at.AHTTable(seeds=())
    with pytest.raises(ConfigError, match="best_response_steps"):
        at.best_responses(env_fn, TEST, small())


def test_a_learner_takes_policy_kwargs_and_stops_at_its_time_limit():
    settings = at.AHTTable(priors=("PBR",), steps=4096, ppo=PPOSettings(n_copies=4, n_steps=8, batch_size=32))
    pop = dict(list(training_partners().items())[:2])
    model = at.train_learner(ipd_env, pop, "PBR", 0, settings, policy_kwargs={"net_arch": [5]}, seconds=0.0)
    assert 0 < model.num_timesteps < 4096  # cut at the first step past the limit
    assert model.policy.mlp_extractor.policy_net[0].out_features == 5


def test_the_cooking_table_takes_regret_against_the_best_learner_in_each_scenario(monkeypatch, tmp_path):
    from rqe_wrappers.experiments import meltingpot_cooking as mc

    utilities = {  # (prior, seed) -> the learner's utility per member of each population
        ("MU", 0): {"train": {"a": 3.0, "b": 1.0}, "test": {"c": 2.0}},
        ("MU", 1): {"train": {"a": 1.0, "b": 2.0}, "test": {"c": 0.0}},
        ("SP", 0): {"train": {"a": 4.0, "b": 0.0}, "test": {"c": 1.0}},
    }

    def fake(layout, prior, seed, train, test, settings, device, seconds):
        assert (layout, train, test, device, seconds) == ("cramped", "ipd/train", "ipd/test", "cpu", 9.0)
        return {"layout": layout, "prior": prior, "seed": seed, "utilities": utilities[prior, seed], "seconds": 1.0}

    monkeypatch.setattr(mc, "_learner_job", fake)
    settings = at.AHTTable(priors=("MU", "SP"), seeds=(0, 1), ppo=PPOSettings(n_copies=2))
    utilities[("SP", 1)] = {"train": {"a": 0.0, "b": 0.5}, "test": {"c": 1.5}}
    report = mc.run_cooking_table(tmp_path, {"cramped": ("ipd/train", "ipd/test")}, settings, learner_seconds=9.0)
    rows = {(r["prior"], r["seed"], r["population"]): r for r in report["rows"]}
    # best per scenario over the four learners: train a 4, b 2; test c 2
    assert rows["MU", 0, "train"] == {
        "layout": "cramped",
        "prior": "MU",
        "seed": 0,
        "population": "train",
        "mean": 2.0,
        "worst_case": 1.0,
        "worst_scenario": "b",
        "worst_case_regret": 1.0,
    }
    assert rows["SP", 0, "train"]["worst_case_regret"] == 2.0 and rows["MU", 1, "test"]["worst_case_regret"] == 2.0
    assert "| MU | 1.75 ± 0.25 |" in (tmp_path / "table.md").read_text()
    assert json.loads((tmp_path / "table.json").read_text())["rows"] == report["rows"]
