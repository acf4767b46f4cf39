"""Tag chasers on the batched path (``train_chasers_batched``) and the ``rqe tag shift`` sweep, at tiny budgets."""

import json

import numpy as np
import pytest

from rqe_wrappers import ConfigError
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.envs.tag import seat_spaces
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag import BATCHED_CHASER_PPO, ShiftSweep, opponents, train_chasers_batched
from rqe_wrappers.experiments.tag.shift import NO_FREE_RIDING, runner_shift, runner_shift_table

TINY = PPOSettings(n_copies=4, n_steps=8, batch_size=32, n_epochs=1, net_arch=(8,))  # 64 agent-steps per rollout


class StepRunner(Policy):
    """A stateless runner that always moves +x and records the observations it is given."""

    def __init__(self):
        super().__init__(*seat_spaces("agent_0"))
        self.seen: list[tuple[int, ...]] = []

    def act(self, obs, *, rng, mask=None, state=None):
        self.seen.append(np.shape(obs))
        return np.full(len(obs), 2), None


def _params(model):
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def test_trains_with_the_runner_in_agent_0():
    """PPO's weights move, the runner plays agent_0 once per env-step on every copy, the metrics are complete."""
    from stable_baselines3 import PPO

    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.envs.tag_batched import BatchedTag

    runner = StepRunner()
    model, m = train_chasers_batched(1.0, 128, runner, seed=3, settings=TINY, eval_episodes=1)
    training_calls = [s for s in runner.seen if s == (4, 12)]  # training: one batched act over the 4 copies
    assert len(training_calls) == 128 // (4 * 2)  # 2 chaser slots per copy: 16 env-steps
    assert all(s[1] == 12 for s in runner.seen)  # always the runner's 12-entry observation
    assert model.observation_space.shape == (14 + 2 + 2,)  # chaser obs, seat one-hot, role
    assert model.action_space.n == 5 and model.num_timesteps == 128
    assert set(m) == {
        "tau",
        "path",
        "seed",
        "steps",
        "device",
        "seconds",
        "cpu_seconds",
        "agent_steps_per_s",
        "eval_episodes",
        "eval_seed",
        "chaser_return",
        "chaser_return_std",
        "settings",
        "curve",
    }
    assert m["path"] == "batched" and m["tau"] == 1.0 and m["steps"] == 128
    assert m["curve"] == [[64, None], [128, None]]  # one point per rollout; no 100-step episode has ended yet
    assert m["settings"] == TINY.to_json()
    venv = batched_vec_env(BatchedTag(4), 1.0, seed=3, seat_id=True, background={"agent_0": runner})
    from rqe_wrappers.sb3.role_policy import RolePolicy

    assert isinstance(model.policy, RolePolicy)  # SRPO: separate partner and shadow networks
    fresh = PPO(RolePolicy, venv, seed=3, **TINY.ppo_kwargs())  # the same initial weights
    before, after = _params(fresh), _params(model)
    assert before.keys() == after.keys()
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before)


def test_seeded_runs_reproduce():
    a, ma = train_chasers_batched(0.0, 64, "tag/evasive-runner", seed=0, settings=TINY, eval_episodes=2)
    b, mb = train_chasers_batched(0.0, 64, "tag/evasive-runner", seed=0, settings=TINY, eval_episodes=2)
    c, _ = train_chasers_batched(0.0, 64, "tag/evasive-runner", seed=1, settings=TINY, eval_episodes=2)
    pa, pb, pc = _params(a), _params(b), _params(c)
    assert all(np.array_equal(pa[k].numpy(), pb[k].numpy()) for k in pa)
    assert any(not np.array_equal(pa[k].numpy(), pc[k].numpy()) for k in pa)
    assert (ma["chaser_return"], ma["curve"]) == (mb["chaser_return"], mb["curve"])


def test_bad_arguments_raise_typed_errors():
    with pytest.raises(ConfigError, match="n_workers must be 0"):
        train_chasers_batched(1.0, 64, "tag/still", settings=PPOSettings(n_workers=2))
    with pytest.raises(ConfigError, match="steps"):
        train_chasers_batched(1.0, 0, "tag/still", settings=TINY)
    with pytest.raises(ConfigError, match="tau"):
        train_chasers_batched(-1.0, 64, "tag/still", settings=TINY)
    with pytest.raises(ConfigError, match="PPOSettings"):
        train_chasers_batched(1.0, 64, "tag/still", settings={"n_copies": 4})
    with pytest.raises(ConfigError, match="tau"):
        ShiftSweep(tau=(0.0, -1.0))
    with pytest.raises(ConfigError, match="tau"):
        ShiftSweep(tau=())
    with pytest.raises(ConfigError, match="crossplay_episodes"):
        ShiftSweep(crossplay_episodes=0)
    with pytest.raises(ConfigError, match="distinct"):
        ShiftSweep(seeds=(1, 1))
    with pytest.raises(ConfigError, match="runner-0"):
        opponents("runner-9")


def test_opponents_cover_every_runner():
    ops = opponents("runner-2")
    assert next(iter(ops)) == "runner-2" and ops["runner-2"] == {"agent": "tag/runners:runner-2", "group": "train"}
    groups = {g: sorted(n for n, o in ops.items() if o["group"] == g) for g in ("train-set", "held-out", "scripted")}
    assert groups == {
        "train-set": ["runner-0", "runner-1", "runner-3", "runner-4"],
        "held-out": ["runner-100", "runner-101", "runner-102"],
        "scripted": ["tag/evasive-runner", "tag/still"],
    }


def test_runner_shift_means_and_kept_fractions():
    groups = {"r0": "train", "r1": "held-out", "r2": "held-out"}
    rows = [
        {"method": "IPPO", "eval": {"per_runner": {"r0": 10.0, "r1": 5.0, "r2": 1.0}}},
        {"method": "IPPO", "eval": {"per_runner": {"r0": 6.0, "r1": 3.0, "r2": 3.0}}},
        {"method": "SRPO tau=1", "eval": {"per_runner": {"r0": 0.0, "r1": 1.0, "r2": 1.0}}},
    ]
    shift = runner_shift(rows, groups, "r0")
    ippo = shift["IPPO"]
    assert ippo["seeds"] == 2
    assert ippo["runners"]["r0"] == {"mean": 8.0, "std": 2.0, "kept": 1.0, "seeds": [10.0, 6.0]}
    assert ippo["runners"]["r1"] == {"mean": 4.0, "std": 1.0, "kept": 0.5, "seeds": [5.0, 3.0]}
    assert ippo["groups"]["held-out"] == {"mean": 3.0, "std": 0.0, "kept": 0.375, "seeds": [3.0, 3.0]}
    assert shift["SRPO tau=1"]["runners"]["r1"]["kept"] is None  # no training-runner score to keep
    table = runner_shift_table(shift, groups)
    assert "| r1 | held-out | 4.00 ± 1.00 (50 %) | 1.00 ± 0.00 |" in table
    assert "| *all held-out* | held-out | 3.00 ± 0.00 (38 %) |" in table


def test_cli_sweep_writes_models_results_and_crossplay(tmp_path):
    """``rqe tag shift`` at a tiny budget: models, results.json with both shifts, the table and the heatmap."""
    from rqe_wrappers.cli import main

    tiny = ["--n-copies", "4", "--n-steps", "8", "--batch-size", "32", "--n-epochs", "1", "--net-arch", "8"]
    args = ["tag", "shift", "--tau", "0", "1", "--seeds", "5", "--steps", "64", "--eval-episodes", "1"]
    assert main([*args, "--crossplay-episodes", "1", "--out", str(tmp_path), *tiny]) == 0
    names = {"chasers-tau0-seed5.zip", "chasers-tau1-seed5.zip", "results.json", "runner-shift.md"}
    names |= {f"crossplay.{ext}" for ext in ("json", "csv", "png", "svg")}
    assert names <= {p.name for p in tmp_path.iterdir()}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [(r["agent"], r["method"]) for r in saved["rows"]] == [("ippo-s5", "IPPO"), ("srpo1-s5", "SRPO tau=1")]
    flags = {"n_copies": 4, "n_steps": 8, "batch_size": 32, "n_epochs": 1, "net_arch": [8]}
    assert saved["settings"] == {**BATCHED_CHASER_PPO.to_json(), **flags} and saved["steps"] == 64  # the rest: defaults
    for row in saved["rows"]:
        assert set(row["eval"]["per_runner"]) == set(opponents())  # every runner, the evasive and still included
        assert row["eval"]["per_runner"]["runner-0"] == row["chaser_return"]  # the same seeded episodes
    assert set(saved["runner_shift"]) == {"IPPO", "SRPO tau=1"}
    assert set(saved["runner_shift"]["IPPO"]["runners"]) == set(opponents())
    ts = saved["teammate_shift"]
    assert ts["free_riding"] == NO_FREE_RIDING
    assert ts["matrix"]["agents"] == ["ippo-s5", "srpo1-s5"]
    assert ts["per_method"]["IPPO"]["agents"] == ["ippo-s5"]
    assert ts["self_play"]["pairings"] == 2 and ts["cross_play"]["pairings"] == 2
    assert "| tag/evasive-runner | scripted |" in (tmp_path / "runner-shift.md").read_text()
