"""AHTCallback: exact seeded traces, states saved by 0.1 still resume, the deprecated csv_path and plot_beta."""

import csv
import json
import warnings

import pytest

from rqe_wrappers import ConfigError, ConstantPolicy
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.sb3.aht_state import STATE_VERSION, read_state, state_paths

pytest.importorskip("stable_baselines3")
pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")

#: what 0.1 wrote after model.learn(256) in make_model() with uniform_mix (then "eps") 0.1
V1_STATE = {
    "format": "rqe-wrappers/aht-callback",
    "version": 1,
    "prior": "maximin-utility",
    "config": {
        "prior": "maximin-utility",
        "lr": 0.5,
        "eps": 0.1,
        "nature_step": "projected",
        "best_responses": None,
        "scenarios": {
            "format": "rqe-wrappers/scenario-set",
            "version": 1,
            "n_seats": 2,
            "members": ["free-rider", "helper"],
            "scenarios": [
                {"id": "c1:free-rider", "n_focal": 1, "background": ["free-rider"]},
                {"id": "c1:helper", "n_focal": 1, "background": ["helper"]},
                {"id": "c2", "n_focal": 2, "background": []},
            ],
        },
        "snapshot_name": "learner",
        "fp_members": {},
        "focal_name": "focal",
    },
    "utility_ema": 0.1,
    "num_timesteps": 256,
    "nature": {
        "format": "rqe_wrappers.aht.nature/1",
        "n_scenarios": 3,
        "prior": "maximin-utility",
        "step": "projected",
        "lr": 0.5,
        "eps": 0.1,
        "best_responses": None,
        "self_play_scenario": None,
        "n_updates": 2,
        "weights": [0.5645303764698963, 0.12405294363443199, 0.31141667989567173],
        "best_seen": [None, None, None],
    },
    "beta": [0.5414106721562401, 0.14498098260432213, 0.31360834523943787],
    "utilities": [0.2807141104496489, 0.7473832618348631, 0.5406045072611017],
    "counts": [106, 68, 82],
    "fictitious_play": None,
}


def make_model(prior="maximin-utility", **settings):
    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import make_vec_env

    torch.set_num_threads(1)
    g = coordination_game(cost=0.5)
    space = g.observation_space("player_0"), g.action_space("player_0")
    pop = (
        {}
        if prior == "fictitious-play"
        else {"free-rider": ConstantPolicy(*space, 0), "helper": ConstantPolicy(*space, 1)}
    )
    settings.setdefault("uniform_mix", 0.1)
    venv = make_vec_env(
        lambda: aht_wrap(coordination_game(cost=0.5), pop, prior, lr=0.5, **settings), n_copies=2, seed=0
    )
    return PPO(
        "MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu", policy_kwargs={"net_arch": [8]}
    )


def test_seeded_training_and_a_state_saved_by_0_1_give_the_traces_of_0_1(tmp_path):
    from rqe_wrappers.sb3 import AHTCallback

    model, cb = make_model(), AHTCallback()
    model.learn(256, callback=cb)
    assert cb.beta.tolist() == V1_STATE["beta"]  # bit for bit what 0.1 computed
    assert cb.utilities.tolist() == V1_STATE["utilities"] and cb.counts.tolist() == V1_STATE["counts"]
    json_path, _ = cb.save(tmp_path / "new")
    new = json.loads(json_path.read_text())
    assert new["version"] == STATE_VERSION == 3 and new["config"]["uniform_mix"] == 0.1
    assert new["nature"]["weights"] == V1_STATE["nature"]["weights"]

    old_json, _ = state_paths(tmp_path / "old")
    old_json.write_text(json.dumps(V1_STATE))
    restored = AHTCallback.load(tmp_path / "old.zip")
    assert restored.config == new["config"]  # read as the current version
    assert restored.nature.uniform_mix == 0.1 and restored.beta.tolist() == V1_STATE["beta"]
    make_model().learn(128, callback=restored)
    assert restored.beta.tolist() == [0.6409570642841091, 0.06352385035886596, 0.2955190853570248]  # as 0.1 did
    assert restored.nature.n_updates == 3


def test_a_fictitious_play_state_of_version_1_resumes(tmp_path):
    from rqe_wrappers.sb3 import AHTCallback

    # 0.1 seated the past snapshots as background partners (fp_focal=False) and wrote no fp_focal
    model, cb = make_model("fictitious-play", fp_capacity=4, fp_focal=False), AHTCallback()
    model.learn(128, callback=cb)
    json_path, npz_path = cb.save(tmp_path / "fp")
    state = json.loads(json_path.read_text())
    dropped = ("uniform_mix", "fp_capacity", "fp_focal", "max_scenarios")
    config = {k: v for k, v in state["config"].items() if k not in dropped}
    nature = {k: v for k, v in state["nature"].items() if k != "uniform_mix"}
    v1 = state | {
        "version": 1,
        "config": config | {"eps": 0.1},
        "nature": nature | {"format": "rqe_wrappers.aht.nature/1", "eps": 0.1},
    }
    json_path.write_text(json.dumps(v1))
    upgraded, weights = read_state(tmp_path / "fp")
    assert upgraded["config"] == state["config"] and upgraded["config"]["fp_capacity"] == 4
    assert sorted(weights) == [0, 1]
    restored = AHTCallback.load(tmp_path / "fp")
    model.learn(128, callback=restored, reset_num_timesteps=False)
    assert restored.fp_seen == 3 and restored.fp_filled.tolist() == [True, True, True, False]
    npz_path.unlink()
    with pytest.raises(ConfigError, match="missing"):
        AHTCallback.load(tmp_path / "fp")
    json_path.write_text(json.dumps(state | {"version": 7}))
    with pytest.raises(ConfigError, match="version 7"):
        AHTCallback.load(tmp_path / "fp")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_path_is_deprecated_and_writes_through_sb3s_csv_logger(tmp_path):
    from rqe_wrappers.sb3 import AHTCallback

    path = tmp_path / "logs" / "beta.csv"
    with pytest.warns(DeprecationWarning, match="'csv' format"):
        cb = AHTCallback(csv_path=path)
    model = make_model()
    model.learn(256, callback=cb)
    rows = read_csv(path)
    ids = cb.scenarios.ids
    assert [int(r["time/total_timesteps"]) for r in rows] == [128, 256]  # one row per rollout, SB3's columns
    assert [float(rows[-1][f"aht/beta/{s}"]) for s in ids] == cb.beta.tolist()
    assert "time/fps" in rows[-1]  # the whole logger, not a private writer
    assert cb._csv_format is None and not any(
        getattr(f, "file", None) is not None and getattr(f.file, "name", "") == str(path)
        for f in model.logger.output_formats
    )  # detached when training ends
    model.learn(128, callback=cb, reset_num_timesteps=False)  # SB3 makes a new logger: the file continues
    rows = read_csv(path)
    assert [int(r["time/total_timesteps"]) for r in rows] == [128, 256, 384]
    assert [float(rows[-1][f"aht/beta/{s}"]) for s in ids] == cb.beta.tolist()


def test_the_old_plot_beta_warns_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    from rqe_wrappers.sb3.aht_callback import plot_beta

    progress = tmp_path / "progress.csv"
    progress.write_text("time/total_timesteps,aht/beta/c1:a,aht/beta/c2\n128,0.5,0.5\n256,0.75,0.25\n")
    with pytest.warns(DeprecationWarning, match="rqe_wrappers.plots.plot_beta"):
        out = plot_beta(progress, tmp_path / "beta.png", title="t")
    assert out == tmp_path / "beta.png" and out.stat().st_size > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from rqe_wrappers.plots import plot_beta as new  # the new home does not warn

        new(progress, tmp_path / "again.png")
