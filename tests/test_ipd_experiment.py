"""The IPD experiment driver (rqe_wrappers.experiments.ipd) and the ipd-test-partners recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rqe_wrappers.core.registry import make_scripted
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments import ipd as exp
from rqe_wrappers.partners.ipd import IPDTablePolicy, best_response_value, training_partners

REPO = Path(__file__).resolve().parents[1]
TINY = exp.IPDSettings(n_copies=4, n_steps=32, batch_size=64, n_epochs=2, net_arch=(16,))


# ---- exact evaluation of scripted learners (values by hand) ------------------------------------
def test_always_defect_learner():
    # vs AC 15, AD 3, TfT 5+1+1, TatFT 15, TfT-d 3, TatFT-d 1+5+5, CUD 7, DUC 3, random 9; self-play 3
    r = exp.evaluate_policy(make_scripted("ipd/always-defect"), widths=[0.5], test_count=64)
    u = r["utilities"]
    assert u["c1:ipd/tat-for-tit-d"] == pytest.approx(11.0)
    assert r["self_play"] == pytest.approx(3.0)
    t = r["train"]
    assert t["mean_utility"] == pytest.approx(76 / 10)
    assert t["worst_utility"] == pytest.approx(3.0)
    assert t["worst_utility_scenario"] == "c1:ipd/always-defect"
    assert t["worst_regret"] == pytest.approx(9.0)  # self-play: 12 - 3
    assert t["worst_regret_scenario"] == "c2"
    assert t["n_scenarios"] == 10
    test = r["test"]["0.5"]
    assert test["n_scenarios"] == 65  # 64 partners + self-play
    assert test["worst_utility"] == pytest.approx(3.0)  # D gets >= 1 a round; self-play gives exactly 3
    assert test["worst_utility_scenario"] == "c2"


def test_always_cooperate_and_random_learners():
    c = exp.evaluate_policy(make_scripted("ipd/always-cooperate"), widths=[])["train"]
    # vs AC 12, AD 0, TfT 12, TatFT 4, TfT-d 8, TatFT-d 0, CUD 12, DUC 8, random 6; self-play 12
    assert c["mean_utility"] == pytest.approx(7.4)
    assert c["worst_utility"] == pytest.approx(0.0)
    assert c["worst_regret"] == pytest.approx(11.0)  # tat-for-tit: 15 - 4
    assert c["worst_regret_scenario"] == "c1:ipd/tat-for-tit"
    r = exp.evaluate_policy(make_scripted("ipd/random"), widths=[])["train"]
    assert (r["mean_utility"], r["worst_utility"], r["worst_regret"]) == pytest.approx((7.5, 1.5, 5.5))


def test_train_best_responses():
    best = exp.train_best_responses()
    assert list(best) == [f"c1:{n}" for n in training_partners()] + ["c2"]
    assert best["c2"] == 12.0 and best["c1:ipd/always-cooperate"] == 15.0 and best["c1:ipd/always-defect"] == 3.0


# ---- the test set ----------------------------------------------------------------------------
def test_test_set_is_seeded_and_prefix_stable():
    a = exp.test_partners(0.5, 16)
    b = exp.test_partners(0.5, 16)
    assert [p.name for p in a] == [p.name for p in b]
    assert all(np.array_equal(p.table, q.table) for p, q in zip(a, b, strict=True))
    first = exp.test_partners(0.5, 8)
    assert all(np.array_equal(p.table, q.table) for p, q in zip(first, a[:8], strict=True))
    other_seed = exp.test_partners(0.5, 16, seed=exp.TEST_SEED + 1)
    assert not all(np.array_equal(p.table, q.table) for p, q in zip(a, other_seed, strict=True))
    other_width = exp.test_partners(1.0, 16)
    assert not all(np.array_equal(p.table, q.table) for p, q in zip(a, other_width, strict=True))
    # every entry stays within w/2 of its base partner's defect probability
    bases = {n: IPDTablePolicy.from_policy(p).table for n, p in training_partners().items()}
    for p in a:
        base = p.name.split("(", 1)[1].split(",", 1)[0]
        assert np.all(np.abs(p.table - bases[base]) <= 0.25 + 1e-12)


# ---- tabulating a learner ----------------------------------------------------------------------
def test_as_table_of_sb3_model_and_greedy():
    pytest.importorskip("stable_baselines3")
    from rqe_wrappers.envs.ipd import history_observations
    from rqe_wrappers.sb3.sb3_policy import SB3Policy

    model, _, info = exp.train_learner("PBR", 0, 128, TINY)
    assert info["steps"] >= 128 and set(info["final_beta"]) == set(exp.train_scenarios())
    table = exp.as_table(model)
    want = SB3Policy.from_model(model).action_probs(history_observations(3))[:, 1]
    np.testing.assert_allclose(table.table, want)
    greedy = exp.as_table(model, greedy=True)
    np.testing.assert_array_equal(greedy.table, (want > 0.5).astype(float))
    with pytest.raises(ConfigError):
        exp.as_table(object())


def test_train_learner_logs_beta_through_sb3(tmp_path):
    pytest.importorskip("stable_baselines3")
    from rqe_wrappers.plots import read_beta_log

    _, _, info = exp.train_learner("MU", 0, 256, TINY, log_dir=tmp_path / "run")
    xcol, x, ids, beta = read_beta_log(tmp_path / "run" / "progress.csv")
    assert xcol == "time/total_timesteps" and x.tolist() == [128, 256]  # one row per rollout
    assert ids == sorted(exp.train_scenarios())  # sorted: SB3's column order depends on the hash seed
    np.testing.assert_allclose(beta.sum(axis=0), 1.0)
    assert dict(zip(ids, beta[:, -1].tolist(), strict=True)) == pytest.approx(info["final_beta"])


def test_training_is_reproducible():
    pytest.importorskip("stable_baselines3")
    tables = [exp.as_table(exp.train_learner("MU", 3, 256, TINY)[0]).table for _ in range(2)]
    np.testing.assert_array_equal(tables[0], tables[1])


def test_fictitious_play_seats_past_snapshots_as_focal_players_unless_told_otherwise():
    from dataclasses import replace

    env = exp.make_env_fn("FP", TINY)()
    assert env.scenarios.ids[:2] == ("c2@fp/0", "c2@fp/1") and len(env.scenarios) == TINY.fp_capacity
    assert exp.make_env_fn("FP", replace(TINY, fp_focal=False))().scenarios.ids[0] == "c1:fp/0"
    assert exp.IPDSettings.from_json({**TINY.to_json(), "fp_focal": False}).fp_focal is False


def test_prior_names():
    assert exp.prior_name("MR") == "minimax-regret" and exp.prior_abbrev("uniform") == "PBR"
    with pytest.raises(ConfigError):
        exp.prior_name("best")


# ---- the driver end to end -------------------------------------------------------------------
def test_run_experiment_writes_results_and_table(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    from rqe_wrappers.cli import main

    out = tmp_path / "run"
    rc = main(
        [
            "ipd",
            "--priors",
            "MU",
            "--seeds",
            "0",
            "--steps",
            "256",
            "--n-copies",
            "4",
            "--n-steps",
            "32",
            "--batch-size",
            "64",
            "--n-epochs",
            "2",
            "--net-arch",
            "16",
            "--widths",
            "0.5",
            "--test-count",
            "16",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == exp.FORMAT
    for key in (
        "priors",
        "seeds",
        "steps",
        "settings",
        "evaluation",
        "paper_table2",
        "machine",
        "runs",
        "summary",
        "reference",
        "wall_seconds",
        "plots",
    ):
        assert key in results, key
    run = results["runs"]["MU"]["0"]
    for key in (
        "prior",
        "seed",
        "steps",
        "seconds",
        "steps_per_s",
        "final_beta",
        "p_defect",
        "train",
        "test",
        "utilities",
        "self_play",
        "greedy",
    ):
        assert key in run, key
    assert len(run["p_defect"]) == 21
    for m in exp.METRICS:
        assert run["train"][m] == results["summary"]["MU"]["train"][m]["mean"]
        assert m in run["test"]["0.5"] and m in run["greedy"]["test"]["0.5"]
    assert results["evaluation"]["test"]["seed"] == exp.TEST_SEED and results["evaluation"]["test"]["count"] == 16
    assert results["reference"]["Random"]["train"]["worst_utility"] == pytest.approx(1.5)
    table = (out / "table.md").read_text()
    assert "| MU |" in table and "(7.69)" in table and "Random (scripted)" in table
    assert "| MU |" in printed
    progress = out / "logs" / "MU-seed0" / "progress.csv"  # SB3's CSV logger, one row per rollout
    header = progress.read_text().splitlines()[0].split(",")
    assert "time/total_timesteps" in header
    assert {f"aht/beta/{sid}" for sid in exp.train_scenarios()} <= set(header)
    assert (out / "logs" / "MU-mean.csv").exists() and (out / "beta-MU.png").exists()
    assert results["plots"] == ["beta-MU.png"]  # one width: no test-widths.png
    assert (out / "models" / "MU-seed0.zip").exists()


def test_run_experiment_rejects_bad_input(tmp_path):
    with pytest.raises(ConfigError):
        exp.run_experiment(["MU", "maximin-utility"], [0], 10, tmp_path)
    with pytest.raises(ConfigError):
        exp.run_experiment(["MU"], [], 10, tmp_path)
    with pytest.raises(ConfigError, match="jobs"):
        exp.run_experiment(["MU"], [0], 10, tmp_path, jobs=0)
    with pytest.raises(ConfigError):
        exp.IPDSettings(n_copies=0)
    with pytest.raises(ConfigError, match="unknown prior"):
        exp.IPDSweep(priors=("best",))


def test_run_experiment_workers_is_the_deprecated_name_of_jobs(tmp_path):
    with pytest.warns(DeprecationWarning, match="workers= is renamed jobs="):
        with pytest.raises(ConfigError, match="jobs"):  # the old name reaches the same check
            exp.run_experiment(["MU"], [0], 10, tmp_path, workers=0)


def test_progress_logs_are_averaged_over_seeds(tmp_path):
    """average_beta_logs reads SB3's progress.csv (empty cells skipped) and the legacy CSV alike."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(
        "time/total_timesteps,aht/beta/c1,aht/beta/c2,train/loss\n64,0.5,0.5,\n128,0.25,0.75,1.0\n192,0.0,1.0,2.0\n"
    )
    b.write_text("timesteps,aht/beta/c2,aht/beta/c1\n64,0.3,0.7\n128,0.25,0.75\n")  # other column order
    out = exp.average_beta_logs([a, b], tmp_path / "mean.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "time/total_timesteps,aht/beta/c1,aht/beta/c2"
    assert len(lines) == 3  # the shorter log sets the length
    assert [float(v) for v in lines[1].split(",")] == pytest.approx([64, 0.6, 0.4])
    assert [float(v) for v in lines[2].split(",")] == pytest.approx([128, 0.5, 0.5])
    empty = tmp_path / "empty.csv"
    empty.write_text("time/total_timesteps,train/loss\n64,1.0\n")
    assert exp.average_beta_logs([empty], tmp_path / "none.csv") is None


# ---- the zoo recipe ----------------------------------------------------------------------------
def test_test_partners_recipe_builds(tmp_path):
    from rqe_wrappers.zoo import load_population
    from rqe_wrappers.zoo.publish import build_recipe
    from rqe_wrappers.zoo.publish.recipes import Recipe

    recipe = Recipe.load(REPO / "zoo" / "ipd-test-partners")
    assert recipe.seeds == (exp.TEST_SEED,)
    path = build_recipe(REPO / "zoo" / "ipd-test-partners", out=tmp_path)
    pop = load_population(path)
    widths, count = recipe.params["widths"], recipe.params["count"]
    assert len(pop.manifest.members) == len(widths) * count
    policies = pop.policies()
    for w in widths:
        want = exp.test_partners(float(w), count)
        for k in (0, count - 1):
            got = policies[f"w{float(w):g}-{k:03d}"]
            assert isinstance(got, IPDTablePolicy)
            np.testing.assert_array_equal(got.table, want[k].table)
    entry = next(m for m in pop.manifest.members if m.name == "w0.5-000")
    assert entry.metrics["best_response_value"] == pytest.approx(best_response_value(exp.test_partners(0.5, 1)[0]))
    assert entry.metrics["base"] in training_partners()
    assert pop.manifest.best_responses["c2"] == 12.0
