"""``rqe eval crossplay`` and ``rqe eval population`` on tiny budgets, and their typed errors."""

from __future__ import annotations

import json

import pytest

from rqe_wrappers.cli import main
from rqe_wrappers.partners.ipd import expected_return, make_partner


@pytest.fixture(autouse=True)
def own_zoo_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RQE_ZOO_CACHE", str(tmp_path / "cache"))


def test_crossplay_writes_the_table_summary_and_heatmap(tmp_path, capsys):
    out = tmp_path / "xp"
    args = ["eval", "crossplay", "--env", "ipd", "--agents", "ipd/tit-for-tat", "ad=ipd/always-defect"]
    assert main([*args, "--episodes", "2", "--out", str(out), "--quiet", "--method", "ad=mean"]) == 0
    table = json.loads((out / "crossplay.json").read_text())
    assert table["agents"] == ["ipd/tit-for-tat", "ad"] and table["methods"]["ad"] == "mean"
    summary = json.loads((out / "summary.json").read_text())
    tft, ad = make_partner("ipd/tit-for-tat"), make_partner("ipd/always-defect")
    assert summary["worst_pairing"]["value"] == pytest.approx(expected_return(tft, ad)[0])
    assert (out / "crossplay.csv").is_file() and (out / "crossplay.png").is_file() and (out / "crossplay.svg").is_file()
    assert "worst pairing ipd/tit-for-tat with ad" in capsys.readouterr().out


def test_population_on_a_zoo_population(tmp_path, capsys):
    out = tmp_path / "pop"
    args = ["eval", "population", "--agent", "ipd/always-defect", "--population", "ipd/train", "--episodes", "1"]
    assert main([*args, "--out", str(out), "--quiet", "--scenarios", "c1:tit-for-tat", "c1:always-cooperate"]) == 0
    data = json.loads((out / "population.json").read_text())
    assert {s["scenario"]: s["utility"] for s in data["scenarios"]} == {
        "c1:tit-for-tat": 7.0,
        "c1:always-cooperate": 15.0,
    }
    assert data["summary"]["worst_case_regret"] == pytest.approx(13.0 - 7.0)  # BR to tit-for-tat: C, C, D
    assert (out / "population.png").is_file()
    assert "worst case 7 (c1:tit-for-tat)" in capsys.readouterr().out


def test_a_population_expands_to_its_members_grouped_as_one_method(tmp_path):
    out = tmp_path / "xp"
    agents = ["--agents", "ipd/train", "--env", "ipd", "--episodes", "1", "--no-plot", "--quiet"]
    assert main(["eval", "crossplay", *agents, "--out", str(out)]) == 0
    table = json.loads((out / "crossplay.json").read_text())
    assert len(table["agents"]) == 9 and set(table["methods"].values()) == {"ipd/train@1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crossplay", "--env", "ipd", "--agents", "no/such"], "unknown agent 'no/such'"),
        (["crossplay", "--env", "ipd", "--agents", "ipd/random", "--seats", "player_0", "x"], "not seats of the env"),
        (["crossplay", "--env", "ipd", "--agents", "ipd/random", "--episodes", "0"], "episodes must be"),
        (["crossplay", "--env", "tag", "--agents", "tag/still"], r"missing \['agent_0'\]"),
        (["crossplay", "--env", "tag", "--agents", "tag/still", "--background", "agent_0"], "KEY=VALUE"),
        (["crossplay", "--env", "ipd", "--agents", "ipd/random", "r=ipd/random", "r=ipd/random"], "given twice"),
        (["population", "--agent", "ipd/random", "--population", "no/pop"], "unknown population"),
    ],
)
def test_bad_input_exits_2_with_the_message(tmp_path, capsys, args, message):
    assert main(["eval", *args, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rqe eval ") and __import__("re").search(message, err), err


def test_robustness_writes_curves_that_match_the_exact_audit(tmp_path, capsys):
    from rqe_wrappers.envs.ipd import ipd_env
    from rqe_wrappers.eval import robustness_audit

    out = tmp_path / "rob"
    args = ["eval", "robustness", "--env", "ipd", "--agents", "ipd/tit-for-tat", "ipd/always-cooperate"]
    args += ["--partner", "ipd/tit-for-tat", "--smoothing", "0.1", "--taus", "0,1,inf", "--out", str(out)]
    assert main(args) == 0
    data = json.loads((out / "robustness.json").read_text())
    got = {c["agent"]: c["returns"] for c in data["curves"]}
    want = robustness_audit(
        ipd_env,
        {"ipd/tit-for-tat": "ipd/tit-for-tat", "ipd/always-cooperate": "ipd/always-cooperate"},
        "ipd/tit-for-tat",
        smoothing=0.1,
        taus=(0.0, 1.0, float("inf")),
    )
    assert got == {c.agent: list(c.returns) for c in want.curves}
    assert got["ipd/always-cooperate"][-1] == pytest.approx(0.0)  # the worst case exploits it fully
    assert all(c["taus"] == [0.0, 1.0, "inf"] for c in data["curves"])
    assert (out / "robustness.csv").is_file() and (out / "robustness.png").is_file()
    assert "summary (mean over log tau)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--taus", "0,one"], "--taus takes comma-separated numbers"),
        (["--partner", "ipd/train"], "--partner names one"),
    ],
)
def test_robustness_bad_input_is_a_typed_error(tmp_path, capsys, extra, words):
    args = ["eval", "robustness", "--env", "ipd", "--agents", "ipd/tit-for-tat", "--out", str(tmp_path), *extra]
    assert main(args) == 2
    assert words in capsys.readouterr().err
