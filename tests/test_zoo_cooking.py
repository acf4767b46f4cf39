"""RolePolicy members in the zoo, the cooking-agents builder and the published ``cooking/agents`` population."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

th = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")
from stable_baselines3 import PPO  # noqa: E402

from rqe_wrappers.batched import batched_vec_env  # noqa: E402
from rqe_wrappers.envs.cooking import BatchedCooking, cooking_env  # noqa: E402
from rqe_wrappers.errors import ConfigError, PopulationError  # noqa: E402
from rqe_wrappers.eval import crossplay  # noqa: E402
from rqe_wrappers.sb3.role_policy import RolePolicy  # noqa: E402
from rqe_wrappers.zoo import load_population  # noqa: E402
from rqe_wrappers.zoo.population import read_manifest  # noqa: E402
from rqe_wrappers.zoo.publish import build_recipe, member_from_sb3, model_card, write_population  # noqa: E402
from rqe_wrappers.zoo.publish.builders import COOKING_EVAL_SEED  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "populations" / "cooking" / "agents" / "1"
RECIPE = ROOT / "zoo" / "cooking-agents"
ENV = {"id": "rqe_wrappers/cooking_v0", "version": None, "kwargs": {"layout": "train"}}


@pytest.fixture(scope="module")
def role_model():
    th.set_num_threads(1)
    venv = batched_vec_env(BatchedCooking(n_copies=2), 0.1, seed=0, seat_id=True, reward_infos=False)
    model = PPO(RolePolicy, venv, n_steps=8, batch_size=16, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})
    venv.close()
    return model


def _probs(policy, obs):
    with th.no_grad():
        return policy.get_distribution(th.as_tensor(obs)).distribution.probs.numpy()


def _role_obs(role: int) -> np.ndarray:
    obs = np.random.default_rng(1).random((16, 58)).astype(np.float32)
    obs[:, -2:] = (1.0, 0.0) if role == 0 else (0.0, 1.0)  # partner / shadow role (the last feature: shadow)
    return obs


def test_role_policy_member_round_trips(role_model, tmp_path):
    member = member_from_sb3(role_model, "srpo", seed=0)
    assert member.spec["policy"] == "RolePolicy" and member.spec["policy_kwargs"] == {"net_arch": [16]}
    pop = load_population(write_population(tmp_path, id="test/role", version=1, env=ENV, members=[member]))
    loaded = pop["srpo"]
    assert repr(loaded) == "Member('srpo', sb3: PPO/RolePolicy)"
    partner = _role_obs(0)
    # the wrappers' Policy acts in the partner role with the same probabilities
    assert np.array_equal(loaded.policy().action_probs(partner), _probs(role_model.policy, partner))
    back = loaded.to_sb3()
    assert type(back.policy) is RolePolicy
    for obs in (partner, _role_obs(1)):  # both networks came back
        assert np.array_equal(_probs(back.policy, obs), _probs(role_model.policy, obs))
    assert not np.allclose(_probs(back.policy, partner), _probs(back.policy, _role_obs(1)))


def test_subclass_of_role_policy_is_not_published(role_model):
    class MyPolicy(RolePolicy):
        pass

    model = PPO(MyPolicy, role_model.get_env(), n_steps=8, batch_size=16, device="cpu")
    with pytest.raises(ConfigError, match=r"MyPolicy is not one of PPO's .*RolePolicy"):
        member_from_sb3(model, "x")


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        ("MyPolicy", r"members\[0\]\.sb3\.policy.*expected one of"),
        ("rqe_wrappers.sb3.role_policy:RolePolicy", r"members\[0\]\.sb3\.policy.*expected one of"),
    ],
)
def test_manifest_naming_an_unknown_policy_class_is_refused(role_model, tmp_path, policy, match):
    path = write_population(tmp_path, id="test/role", version=1, env=ENV, members=[member_from_sb3(role_model, "a")])
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["members"][0]["sb3"]["policy"] = policy
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PopulationError, match=match):
        load_population(path)


def test_role_policy_on_a_non_vector_space_is_refused(role_model, tmp_path):
    path = write_population(tmp_path, id="test/role", version=1, env=ENV, members=[member_from_sb3(role_model, "a")])
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["observation_space"] = {"type": "Box", "shape": [2, 29], "dtype": "float32", "low": 0, "high": 1}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PopulationError, match=r"sb3\.policy.*RolePolicy needs a 1-D Box"):
        load_population(path)


# ---- the builder -------------------------------------------------------------------------------------
def _tiny_recipe(directory: Path, **params) -> Path:
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    recipe.update(id="cooking/tiny", seeds=[0, 1], budget={"steps": 512})
    recipe["params"] = {
        "taus": [0, 0.1],
        "jobs": 1,
        "settings": {"n_copies": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
        "eval_episodes": 2,
        **params,
    }
    path = directory / "zoo" / "tiny"
    path.mkdir(parents=True)
    (path / "recipe.json").write_text(json.dumps(recipe))
    return path


def _sha(path: Path) -> dict[str, str]:
    return {m["name"]: m["sha256"] for m in json.loads((path / "manifest.json").read_text())["members"]}


def test_builder_trains_members_that_load_and_play_and_reuses_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    recipe = _tiny_recipe(tmp_path, reuse_dir=str(sweep))
    first = build_recipe(recipe, tmp_path / "a")
    pop = load_population(first)
    assert list(pop) == ["ippo-s0", "ippo-s1", "srpo0.1-s0", "srpo0.1-s1"]
    assert [pop[n].entry.sb3["policy"] for n in pop] == ["MlpPolicy"] * 2 + ["RolePolicy"] * 2
    assert pop.env.seats == ("player_0", "player_1") and pop.observation_space.shape == (58,)
    m = pop["srpo0.1-s1"].metrics
    assert (m["method"], m["tau"], m["seed"], m["policy"]) == ("SRPO tau=0.1", 0.1, 1, "RolePolicy")
    assert m["eval_episodes"] == 2 and m["eval_seed"] == COOKING_EVAL_SEED
    assert m["steps"] >= 512 and m["agent_steps_per_s"] > 0
    assert m["train_free_riding"] == pytest.approx(abs(m["train_cost_player_0"] - m["train_cost_player_1"]))
    assert {"test_return", "test_cost_player_0", "test_cost_player_1"} <= set(m)
    assert "were not trained by this build" not in pop.description
    # the stored self-play is what the published weights play (same episodes, same sampling streams)
    res = crossplay(
        {"srpo0.1-s1": pop["srpo0.1-s1"], "ippo-s0": pop["ippo-s0"]},
        functools.partial(cooking_env, "train"),
        episodes=2,
        seed=COOKING_EVAL_SEED,
        batch=2,
        batched=functools.partial(BatchedCooking, layout="train"),
    )
    assert res.matrix()[0, 0] == pytest.approx(m["train_return"], abs=1e-9)
    assert np.isfinite(res.matrix()).all() and len(res.rows) == 4 * 2 * 2
    # a second build takes every agent from the sweep directory: the same weights, nothing trained
    second = build_recipe(recipe, tmp_path / "b")
    assert _sha(second) == _sha(first)
    assert "4 of the 4 agents were not trained by this build" in load_population(second).description


def test_builder_refuses_bad_params(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown params \['epochs'\]"):
        build_recipe(_tiny_recipe(tmp_path / "a", epochs=3), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"params\.reuse_dir must be null or an existing directory"):
        build_recipe(_tiny_recipe(tmp_path / "b", reuse_dir=str(tmp_path / "missing")), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"tau must be finite and >= 0"):
        build_recipe(_tiny_recipe(tmp_path / "c", taus=[-1]), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"params\.settings must be an object with keys among"):
        build_recipe(_tiny_recipe(tmp_path / "d", settings={"n_copy": 2}), tmp_path / "out")


# ---- the published population -------------------------------------------------------------------------
def test_committed_recipe_trains_from_scratch():
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    assert (recipe["id"], recipe["version"], recipe["builder"]) == ("cooking/agents", 1, "cooking-agents")
    assert recipe["params"].get("reuse_dir") is None
    assert recipe["seeds"] == list(range(8)) and recipe["budget"] == {"steps": 2_000_000}


def test_published_population_loads_and_its_card_says_where_it_came_from(tmp_path):
    pop = load_population(PUBLISHED)  # every sha256 checked
    assert list(pop) == [f"ippo-s{s}" for s in range(8)] + [f"srpo0.1-s{s}" for s in range(8)]
    assert {m.recipe.path for m in (pop[n] for n in pop)} == {"zoo/cooking-agents"}
    for name in pop:
        member = pop[name]
        assert member.policy().observation_space.shape == (58,)
        assert member.entry.sb3["policy"] == ("MlpPolicy" if name.startswith("ippo") else "RolePolicy")
        assert member.metrics["steps"] == 2_031_616 and member.metrics["eval_episodes"] == 100
    card = (PUBLISHED / "README.md").read_text(encoding="utf-8")
    assert card == model_card(read_manifest(PUBLISHED))
    assert "rqe cooking sweep --tau 0 0.1 --seeds 0 1 2 3 4 5 6 7 --steps 2000000 --jobs 16" in card
    assert "NVIDIA H200" in card and "`rqe zoo build zoo/cooking-agents` without reuse_dir" in card
    index = json.loads((ROOT / "populations" / "index.json").read_text())
    entry = index["populations"]["cooking/agents"]["versions"]["1"]
    assert entry["manifest_sha256"] == hashlib.sha256((PUBLISHED / "manifest.json").read_bytes()).hexdigest()
    copy = tmp_path / "cooking"  # a corrupt member is refused
    shutil.copytree(PUBLISHED, copy)
    (copy / "srpo0.1-s0.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(PopulationError):
        load_population(copy)


@pytest.mark.parametrize("name", ["ippo-s0", "srpo0.1-s0"])
def test_published_weights_replay_the_published_self_play(name):
    """100 seeded self-play episodes on the train layout from the loaded member give its stored metrics."""
    member = load_population(PUBLISHED)[name]
    res = crossplay(
        {name: member},
        functools.partial(cooking_env, "train"),
        episodes=100,
        seed=COOKING_EVAL_SEED,
        batch=100,
        batched=functools.partial(BatchedCooking, layout="train"),
    )
    m = member.metrics
    assert np.mean([r["agent_return"] for r in res.rows]) == pytest.approx(m["train_return"], abs=1e-9)
    for seat in ("player_0", "player_1"):
        cost = np.mean([r["agent_cost"] for r in res.rows if r["agent_seat"] == seat])
        assert cost == pytest.approx(m[f"train_cost_{seat}"], abs=1e-9)
