"""The tag-chasers builder (``rqe tag shift``'s chasers as a zoo population) and the published ``tag/chasers``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from rqe_wrappers.envs.tag import CHASERS, RUNNER, tag_env
from rqe_wrappers.envs.tag_batched import BatchedTag
from rqe_wrappers.errors import ConfigError, PopulationError
from rqe_wrappers.eval import crossplay
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag import BATCHED_CHASER_PPO, EVAL_SEED, as_tag_policy, run_shift
from rqe_wrappers.experiments.tag import shift as shift_module
from rqe_wrappers.zoo import load_population
from rqe_wrappers.zoo.population import read_manifest
from rqe_wrappers.zoo.publish import build_recipe, model_card

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "populations" / "tag" / "chasers" / "1"
RECIPE = ROOT / "zoo" / "tag-chasers"
TINY = {"n_copies": 4, "n_steps": 8, "batch_size": 32, "n_epochs": 1, "net_arch": [8]}  # 64 agent-steps a rollout
TIMING = {"seconds", "cpu_seconds", "agent_steps_per_s"}
HELDOUT = ("runner-100", "runner-101", "runner-102")


def _recipe(directory: Path, steps: int = 64, seeds: list | None = None, **params) -> Path:
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    recipe.update(id="tag/tiny", seeds=[5] if seeds is None else seeds, budget={"steps": steps})
    recipe["params"] = {"taus": [0, 1], "jobs": 1, "settings": TINY, "eval_episodes": 4, "mpe2_episodes": 2, **params}
    directory.mkdir(parents=True)
    (directory / "recipe.json").write_text(json.dumps(recipe))
    return directory


def _sha(path: Path) -> dict[str, str]:
    return {m["name"]: m["sha256"] for m in json.loads((path / "manifest.json").read_text())["members"]}


def _self_play(member, runner, episodes: int, name: str) -> float:
    """The chasers' mean return with ``member`` in both chaser seats, as the builder measures it."""
    result = crossplay(
        {name: member},
        tag_env,
        seats=CHASERS,
        background={RUNNER: runner},
        episodes=episodes,
        seed=EVAL_SEED,
        batch=episodes,
        batched=BatchedTag,
    )
    return float(np.mean([r["agent_return"] for r in result.rows]))


# ---- the builder -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epochs": 3}, r"unknown params \['epochs'\]"),
        ({"reuse_dir": "/nonexistent/shift"}, r"params\.reuse_dir must be null or an existing directory"),
        ({"taus": [-1]}, r"tau must be finite and >= 0"),
        ({"taus": [0, 0.0]}, r"params\.taus lists a tau twice"),
        ({"taus": "0 1"}, r"params\.taus must be a list of numbers"),
        ({"settings": {"n_copy": 2}}, r"params\.settings must be an object with keys among"),
        ({"settings": {**TINY, "n_workers": 2}}, r"params\.settings\.n_workers must be 0"),
        ({"settings": {**TINY, "learning_rate": "fast"}}, r"bad params\.settings"),
        ({"train_runner": "runner-9"}, r"params\.train_runner must be a member of tag/runners"),
        ({"eval_episodes": 0}, r"params\.eval_episodes must be an integer >= 1"),
        ({"jobs": 0}, r"jobs must be an integer >= 1"),
        ({"steps": 0}, r"steps .* must be an integer >= 1"),
        ({"seeds": []}, r"seeds must be integers, at least one"),
    ],
)
def test_builder_refuses_bad_params(tmp_path, change, match):
    steps, seeds = change.pop("steps", 64), change.pop("seeds", None)
    with pytest.raises(ConfigError, match=match):
        build_recipe(_recipe(tmp_path / "zoo" / "bad", steps, seeds, **change), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was trained or written


@pytest.fixture(scope="module")
def shift_run(tmp_path_factory):
    """A tiny ``rqe tag shift`` run (IPPO and SRPO, seed 5), scored on mpe2 against two runners only."""
    out = tmp_path_factory.mktemp("shift")
    runners = {
        "runner-0": {"agent": "tag/runners:runner-0", "group": "train"},
        "tag/evasive-runner": {"agent": "tag/evasive-runner", "group": "scripted"},
    }
    with pytest.MonkeyPatch.context() as mp:  # all ten runners of the runner shift would cost ~10 s more
        mp.setattr(shift_module, "opponents", lambda train_runner: runners)
        settings = PPOSettings.from_json({**BATCHED_CHASER_PPO.to_json(), **TINY})
        run_shift([0, 1], 64, out, seeds=[5], settings=settings, eval_episodes=2, crossplay_episodes=1)
    return out


def test_builder_trains_as_the_shift_does_and_adopts_its_models(tmp_path, shift_run):
    fresh = build_recipe(_recipe(tmp_path / "zoo" / "fresh"), tmp_path / "a")
    adopted = build_recipe(_recipe(tmp_path / "zoo" / "reuse", reuse_dir=str(shift_run)), tmp_path / "b")
    # the same seeds and settings give the shift's weights: the builder trains with the shift's code
    assert _sha(adopted) == _sha(fresh)
    a, b = load_population(fresh), load_population(adopted)
    assert "were not trained by this build" not in a.description
    assert "2 of the 2 chaser models were not trained by this build" in b.description
    assert "`rqe tag shift --tau 0 1 --seeds 5 --steps 64 --train-runner runner-0 --eval-episodes 2" in b.description
    assert "--n-copies 4 --n-steps 8 --batch-size 32 --n-epochs 1 --net-arch 8`" in b.description
    assert list(b) == ["ippo-s5", "srpo1-s5"]
    assert [b[n].entry.sb3["policy"] for n in b] == ["MlpPolicy", "RolePolicy"]
    assert b.env.seats == CHASERS and b.observation_space.shape == (14 + 2 + 2,)  # chaser obs, seat, role
    rows = {r["agent"]: r for r in json.loads((shift_run / "results.json").read_text())["rows"]}
    for name in b:
        m, row = b[name].metrics, rows[name]
        assert {k: v for k, v in m.items() if k not in TIMING} == {
            k: v for k, v in a[name].metrics.items() if k not in TIMING
        }
        assert (m["method"], m["seed"], m["steps"], m["seconds"]) == (row["method"], 5, 64, row["seconds"])
        assert (m["mpe2_return"], m["mpe2_episodes"]) == (row["chaser_return"], 2)
        assert m["train_runner"] == "tag/runners:runner-0"
        assert m["heldout_return"] == pytest.approx(np.mean([m[f"return_{r}"] for r in HELDOUT]))
        assert (m["eval_episodes"], m["eval_seed"]) == (4, EVAL_SEED)
    # the stored returns are what the published weights play (same episodes, same sampling streams)
    member = b["srpo1-s5"]
    assert _self_play(member, "tag/runners:runner-0", 4, "srpo1-s5") == member.metrics["train_return"]
    assert _self_play(member, "tag/evasive-runner", 4, "srpo1-s5") == member.metrics["evasive_return"]


@pytest.mark.parametrize("spoil", ["steps", "settings", "runner", "swap", "missing"])
def test_a_shift_model_is_adopted_only_when_the_run_vouches_for_it(tmp_path, shift_run, spoil):
    """Other steps, settings or training runner in results.json, or a model file that is not what it says: trained."""
    from rqe_wrappers.experiments.tag import ShiftSweep
    from rqe_wrappers.zoo.publish.builders import _adopt_shift_models

    settings = PPOSettings.from_json({**BATCHED_CHASER_PPO.to_json(), **TINY})
    wanted = [(0.0, 5), (1.0, 5)]
    sweep = ShiftSweep(tau=(0.0, 1.0), seeds=(5,), steps=64, eval_episodes=2)
    assert sorted(_adopt_shift_models(shift_run, wanted, sweep, settings)) == wanted  # as it is: both adopted
    run = tmp_path / "run"
    shutil.copytree(shift_run, run)
    if spoil == "steps":
        sweep = ShiftSweep(tau=(0.0, 1.0), seeds=(5,), steps=128, eval_episodes=2)
    elif spoil == "settings":
        settings = PPOSettings.from_json({**settings.to_json(), "n_epochs": 2})
    elif spoil == "runner":
        sweep = ShiftSweep(tau=(0.0, 1.0), seeds=(5,), steps=64, eval_episodes=2, train_runner="runner-1")
    elif spoil == "swap":  # the IPPO and SRPO files exchanged: their policy classes give them away
        (run / "chasers-tau0-seed5.zip").replace(run / "tmp.zip")
        (run / "chasers-tau1-seed5.zip").replace(run / "chasers-tau0-seed5.zip")
        (run / "tmp.zip").replace(run / "chasers-tau1-seed5.zip")
    else:
        (run / "chasers-tau1-seed5.zip").unlink()
    adopted = _adopt_shift_models(run, wanted, sweep, settings)
    assert sorted(adopted) == ([(0.0, 5)] if spoil == "missing" else [])


# ---- the published population -------------------------------------------------------------------------
def test_committed_recipe_trains_from_scratch():
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    assert (recipe["id"], recipe["version"], recipe["builder"]) == ("tag/chasers", 1, "tag-chasers")
    assert recipe["params"]["reuse_dir"] is None and recipe["params"]["taus"] == [0, 1]
    assert recipe["seeds"] == list(range(8)) and recipe["budget"] == {"steps": 1_000_000}


def test_published_population_loads_and_its_card_says_where_it_came_from(tmp_path):
    pop = load_population(PUBLISHED)  # every sha256 checked
    manifest = json.loads((PUBLISHED / "manifest.json").read_text())
    assert (manifest["id"], manifest["version"]) == ("tag/chasers", 1)
    assert list(pop) == [f"ippo-s{s}" for s in range(8)] + [f"srpo1-s{s}" for s in range(8)]
    assert {pop[n].recipe.path for n in pop} == {"zoo/tag-chasers"}
    assert pop.env.id == "mpe2/simple_tag_v3" and pop.env.seats == CHASERS
    for name in pop:
        member = pop[name]
        assert member.entry.sb3["policy"] == ("MlpPolicy" if name.startswith("ippo") else "RolePolicy")
        m = member.metrics
        assert (m["tau"], m["steps"], m["eval_episodes"], m["mpe2_episodes"]) == (
            0 if name.startswith("ippo") else 1,
            1_015_808,
            100,
            16,
        )
        assert m["heldout_return"] == pytest.approx(np.mean([m[f"return_{r}"] for r in HELDOUT]))
    card = (PUBLISHED / "README.md").read_text(encoding="utf-8")
    assert card == model_card(read_manifest(PUBLISHED))
    assert "rqe tag shift --tau 0 1 --seeds 0 1 2 3 4 5 6 7 --steps 1000000 --train-runner runner-0" in card
    assert "`rqe zoo build zoo/tag-chasers` without reuse_dir" in card
    index = json.loads((ROOT / "populations" / "index.json").read_text())
    entry = index["populations"]["tag/chasers"]["versions"]["1"]
    assert entry["manifest_sha256"] == hashlib.sha256((PUBLISHED / "manifest.json").read_bytes()).hexdigest()
    copy = tmp_path / "chasers"  # a corrupt member is refused
    shutil.copytree(PUBLISHED, copy)
    (copy / "srpo1-s3.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(PopulationError):
        load_population(copy)


@pytest.mark.parametrize("name", ["ippo-s0", "srpo1-s0"])
def test_published_weights_replay_the_published_returns(name):
    """100 seeded batched episodes from the loaded member give its stored returns (training and held-out runner)."""
    member = load_population(PUBLISHED)[name]
    m = member.metrics
    assert _self_play(member, "tag/runners:runner-0", 100, name) == pytest.approx(m["train_return"], abs=1e-9)
    assert _self_play(member, "tag/runners-heldout:runner-100", 100, name) == pytest.approx(
        m["return_runner-100"], abs=1e-9
    )


def test_a_users_chaser_cross_plays_with_ours():
    """A chaser of one's own (here the scripted greedy one) as teammate of a published member, both seatings."""
    ours = load_population(PUBLISHED)["srpo1-s0"]
    result = crossplay(
        {"mine": "tag/greedy-chaser", "ours": ours},
        tag_env,
        seats=CHASERS,
        background={RUNNER: "tag/runners:runner-0"},
        episodes=8,
        seed=0,
        batch=8,
        batched=BatchedTag,
    )
    assert len(result.rows) == 4 * 8 * 2  # (mine, mine), both mixed seatings, (ours, ours)
    assert all(r["agent_return"] == r["partner_return"] for r in result.rows)  # the chasers share the reward
    matrix = result.matrix()
    assert np.isfinite(matrix).all() and matrix[1, 1] > 0  # ours catch the trained runner
    # on the raw env: the member gets the chaser's 14 features; the seat and the partner role are added for it
    env = tag_env()
    obs, _ = env.reset(seed=3)
    for seat in CHASERS:
        policy = as_tag_policy(ours, seat)
        actions, _ = policy.act(obs[seat][None], rng=np.random.default_rng(0))
        assert obs[seat].shape == (14,) and actions.shape == (1,) and 0 <= int(actions[0]) < 5
    env.close()
