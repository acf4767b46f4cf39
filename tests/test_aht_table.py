"""Minimax-Bayes AHT on any env, reported as the paper's Table 3 (rqe_wrappers.experiments.aht_table)."""

from __future__ import annotations

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
