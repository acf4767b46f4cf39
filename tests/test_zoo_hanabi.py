"""The hanabi-agents builder and the published ``hanabi/agents-*`` populations (MaskablePPO members)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

th = pytest.importorskip("torch")
pytest.importorskip("sb3_contrib")
pytest.importorskip("pyspiel")  # open_spiel
pytest.importorskip("shimmy")
from sb3_contrib import MaskablePPO  # noqa: E402

from rqe_wrappers.errors import ConfigError, PopulationError  # noqa: E402
from rqe_wrappers.eval import as_policy  # noqa: E402
from rqe_wrappers.experiments.hanabi import (  # noqa: E402
    HANABI_PPO,
    HanabiSweep,
    hanabi_config,
    hanabi_crossplay,
    hanabi_env,
    run_sweep,
)
from rqe_wrappers.experiments.hanabi.evaluation import EVAL_SEED  # noqa: E402
from rqe_wrappers.zoo import load_population  # noqa: E402
from rqe_wrappers.zoo.population import read_manifest  # noqa: E402
from rqe_wrappers.zoo.publish import build_recipe, model_card  # noqa: E402
from rqe_wrappers.zoo.publish.builders import _hanabi_reusable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "zoo" / "hanabi-agents-2p"
TINY = dataclasses.replace(HANABI_PPO, n_copies=2, n_steps=16, batch_size=32, n_epochs=1, net_arch=(16,))
#: the published populations: (players, learner moves per agent)
PUBLISHED = {2: 40_000, 4: 50_000}


def _tiny_recipe(directory: Path, env_kwargs: dict | None = None, **params) -> Path:
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    recipe.update(id="hanabi/tiny", seeds=[0], budget={"steps": 64})
    recipe["env"]["kwargs"] = env_kwargs if env_kwargs is not None else {"players": 2, "colors": 3, "ranks": 3}
    recipe["params"] = {"taus": [0, 1], "jobs": 1, "settings": TINY.to_json(), "eval_episodes": 2, **params}
    path = directory / "zoo" / "tiny"
    path.mkdir(parents=True)
    (path / "recipe.json").write_text(json.dumps(recipe))
    return path


def _probs(policy, obs: np.ndarray) -> np.ndarray:
    with th.no_grad():
        return policy.get_distribution(th.as_tensor(obs)).distribution.probs.numpy()


# ---- the builder -------------------------------------------------------------------------------------
def test_builder_reuses_a_sweep_trains_the_rest_and_members_replay_their_metrics(tmp_path):
    th.set_num_threads(1)
    sweep_dir = tmp_path / "sweep"  # an `rqe hanabi sweep --tau 0 --seeds 0` run with the recipe's set-up
    run_sweep(HanabiSweep(players=2, tau=(0.0,), seeds=(0,), steps=64, episodes=1, out=sweep_dir), TINY)
    recipe = _tiny_recipe(tmp_path, reuse_dir=str(sweep_dir))
    pop = load_population(build_recipe(recipe, tmp_path / "out"))
    assert list(pop) == ["ippo-s0", "srpo1-s0"]
    assert pop.env.id == "open_spiel/hanabi" and pop.env.kwargs == hanabi_config(2)
    assert pop.env.seats == ("player_0", "player_1") and pop.env.version.startswith("open_spiel ")
    assert pop.observation_space.shape == (204,) and pop.action_space.n == 12  # 200 + seat one-hot + role
    assert {pop[n].entry.sb3["algo"] for n in pop} == {"MaskablePPO"}
    ippo, srpo = pop["ippo-s0"].metrics, pop["srpo1-s0"].metrics
    assert (srpo["method"], srpo["tau"], srpo["seed"], srpo["players"]) == ("SRPO tau=1", 1.0, 0, 2)
    assert ippo["method"] == "IPPO" and ippo["steps"] >= 64 and ippo["eval_seed"] == EVAL_SEED
    # the IPPO agent is the sweep's model as it was; the SRPO one was trained by the build
    swept = MaskablePPO.load(str(sweep_dir / "hanabi2p-tau0-seed0.zip"), device="cpu")
    obs = np.random.default_rng(0).random((8, 204)).astype(np.float32)
    assert np.array_equal(_probs(pop["ippo-s0"].to_sb3().policy, obs), _probs(swept.policy, obs))
    assert ippo["seconds"] == json.loads((sweep_dir / "results.json").read_text())["runs"][0]["seconds"]
    assert "1 of the 2 agents were not trained by this build" in pop.description
    assert (
        "`rqe hanabi sweep --players 2 --tau 0 --seeds 0 --steps 64 --jobs 1 --n-copies 2 --n-steps 16 "
        f"--batch-size 32 --n-epochs 1 --net-arch 16 --out {sweep_dir}`, on a "
    ) in pop.description
    # the stored scores are what the loaded members play (same deals, same sampling streams)
    for name in pop:
        table = hanabi_crossplay({name: pop[name]}, 2, episodes=2, seed=EVAL_SEED)
        assert table.matrix()[0, 0] == pytest.approx(pop[name].metrics["self_play_score"], abs=1e-12)
        assert 0 <= pop[name].metrics["random_partner_score"] <= 9


def test_reuse_needs_the_same_set_up_and_the_model_file(tmp_path):
    settings = HANABI_PPO.to_json()
    (tmp_path / "hanabi2p-tau0-seed0.zip").write_bytes(b"model")
    runs = [{"tau": 0.0, "seed": 0, "file": "hanabi2p-tau0-seed0.zip"}, {"tau": 1.0, "seed": 0, "file": "gone.zip"}]
    report = {"sweep": {"players": 2, "steps": 100, "seat_id": True}, "settings": settings, "runs": runs}
    (tmp_path / "results.json").write_text(json.dumps(report))
    assert list(_hanabi_reusable(tmp_path, 2, 100, True, settings)) == [(0.0, 0)]  # the other's file is missing
    assert _hanabi_reusable(tmp_path, 2, 200, True, settings) == {}  # other steps
    assert _hanabi_reusable(tmp_path, 4, 100, True, settings) == {}  # other players
    assert _hanabi_reusable(tmp_path, 2, 100, False, settings) == {}  # no seat identity
    assert _hanabi_reusable(tmp_path, 2, 100, True, {**settings, "n_copies": 4}) == {}
    assert _hanabi_reusable(tmp_path / "elsewhere", 2, 100, True, settings) == {}


@pytest.mark.parametrize(
    ("env_kwargs", "params", "match"),
    [
        (None, {"epochs": 3}, r"unknown params \['epochs'\]"),
        (None, {"reuse_dir": "/nonexistent/sweep"}, r"params\.reuse_dir must be null or an existing directory"),
        (None, {"taus": [-1]}, r"tau must be finite and >= 0"),
        (None, {"taus": "0 1"}, r"params\.taus must be a list of numbers"),
        (None, {"settings": {"n_copy": 2}}, r"params\.settings must be an object with keys among"),
        (None, {"seat_id": "yes"}, r"params\.seat_id must be true or false"),
        (None, {"jobs": 0}, r"jobs must be an integer >= 1"),
        ({"colors": 3}, {}, r"env\.kwargs must name players"),
        ({"players": 3}, {}, r"players must be one of \[2, 4\]"),
        ({"players": 2, "colors": 4}, {}, r"is not the game rqe hanabi sweep trains on"),
        ({"players": 2, "hand_sizes": 3}, {}, r"unknown parameter"),
    ],
)
def test_builder_refuses_bad_params(tmp_path, env_kwargs, params, match):
    recipe = _tiny_recipe(tmp_path, env_kwargs, **params)
    with pytest.raises(ConfigError, match=match):
        build_recipe(recipe, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_builder_refuses_a_missing_budget(tmp_path):
    recipe = _tiny_recipe(tmp_path)
    data = json.loads((recipe / "recipe.json").read_text())
    data["budget"] = {}
    (recipe / "recipe.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"steps must be an integer >= 1, got None"):
        build_recipe(recipe, tmp_path / "out")


# ---- the published populations ------------------------------------------------------------------------
@pytest.mark.parametrize(("players", "steps"), PUBLISHED.items())
def test_committed_recipe_trains_from_scratch(players, steps):
    recipe = json.loads((ROOT / "zoo" / f"hanabi-agents-{players}p" / "recipe.json").read_text())
    assert (recipe["id"], recipe["version"], recipe["builder"]) == (f"hanabi/agents-{players}p", 1, "hanabi-agents")
    assert recipe["params"].get("reuse_dir") is None and recipe["params"]["taus"] == [0, 1]
    assert recipe["seeds"] == list(range(5)) and recipe["budget"] == {"steps": steps}
    assert recipe["env"]["kwargs"] == {"players": players, "colors": 3, "ranks": 3}


@pytest.mark.parametrize(("players", "steps"), PUBLISHED.items())
def test_published_population_loads_and_its_card_says_where_it_came_from(tmp_path, players, steps):
    path = ROOT / "populations" / "hanabi" / f"agents-{players}p" / "1"
    pop = load_population(path)  # every sha256 checked
    manifest = read_manifest(path)
    assert (manifest.id, manifest.version) == (f"hanabi/agents-{players}p", 1)
    assert list(pop) == [f"ippo-s{s}" for s in range(5)] + [f"srpo1-s{s}" for s in range(5)]
    assert {pop[n].recipe.path for n in pop} == {f"zoo/hanabi-agents-{players}p"}
    assert pop.env.kwargs == hanabi_config(players) and pop.env.seats == tuple(f"player_{i}" for i in range(players))
    for name in pop:
        m = pop[name].metrics
        assert pop[name].entry.sb3["algo"] == "MaskablePPO" and m["players"] == players
        assert m["steps"] >= steps and m["eval_episodes"] == 32 and (m["tau"] == 0) == name.startswith("ippo")
    card = (path / "README.md").read_text(encoding="utf-8")
    assert card == model_card(manifest)
    assert f"rqe hanabi sweep --players {players} --tau 0 1 --seeds 0 1 2 3 4 --steps {steps} --jobs 1" in card
    assert "on a 2-core machine" in card and f"`rqe zoo build zoo/hanabi-agents-{players}p` without reuse_dir" in card
    index = json.loads((ROOT / "populations" / "index.json").read_text())
    entry = index["populations"][f"hanabi/agents-{players}p"]["versions"]["1"]
    assert entry["manifest_sha256"] == hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()
    copy = tmp_path / "hanabi"  # a corrupt member is refused
    shutil.copytree(path, copy)
    (copy / "srpo1-s0.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(PopulationError):
        load_population(copy)


@pytest.mark.parametrize("players", PUBLISHED)
def test_published_member_plays_only_legal_moves(players):
    """Through as_policy on the raw env, every seat: the policy would often pick illegal moves, the mask stops it."""
    pop = load_population(ROOT / "populations" / "hanabi" / f"agents-{players}p" / "1")
    env = hanabi_env(**pop.env.kwargs)
    seats = list(env.possible_agents)
    policies = {
        s: as_policy(pop["srpo1-s0"], env.observation_space(s), env.action_space(s), seat_index=i)
        for i, s in enumerate(seats)
    }
    rng = np.random.default_rng(0)
    moves = illegal_mass = 0
    for game in range(4):
        env.reset(seed=game)
        for seat in env.agent_iter():
            obs, _, term, trunc, info = env.last()
            if term or trunc:
                env.step(None)
                continue
            mask = np.asarray(info["action_mask"], dtype=bool)
            illegal_mass += policies[seat].action_probs(obs[None])[0][~mask].sum() > 0.05
            action = int(policies[seat].act(obs[None], rng=rng, mask=mask[None])[0][0])
            assert mask[action], (game, seat, action)
            moves += 1
            env.step(action)
    assert moves > 40 and illegal_mass > 0  # the mask had moves to forbid


@pytest.mark.parametrize("players", PUBLISHED)
def test_published_weights_replay_the_published_self_play(players):
    """32 seeded games per seating from the loaded member give its stored self-play score."""
    pop = load_population(ROOT / "populations" / "hanabi" / f"agents-{players}p" / "1")
    name = "ippo-s0"
    table = hanabi_crossplay({name: pop[name]}, players, episodes=32, seed=EVAL_SEED)
    assert table.matrix()[0, 0] == pytest.approx(pop[name].metrics["self_play_score"], abs=1e-12)
