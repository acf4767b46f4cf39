"""The zoo's layout: the read side works without the publish side, old names forward with a warning,
and the split modules read and write the published populations byte for byte as before."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rqe_wrappers.errors import SpaceMismatchError
from rqe_wrappers.zoo import Manifest, check_population_spaces, load_population, open_population
from rqe_wrappers.zoo.publish import build_index, readme_table

POPULATIONS = Path(__file__).resolve().parents[1] / "populations"
ZOO = POPULATIONS.parent / "rqe_wrappers" / "zoo"
READ_SIDE = sorted(f"rqe_wrappers.zoo.{p.stem}" for p in ZOO.glob("*.py") if p.stem != "__init__")


def test_read_side_loads_and_verifies_without_publish_training_or_torch():
    """Import every read-side module, load, verify and play a published population: nothing else loads."""
    code = f"""
import importlib, sys
for name in {READ_SIDE!r}:
    importlib.import_module(name)
from rqe_wrappers.zoo import load_population
from rqe_wrappers.zoo.population import verify_directory
pop = load_population({str(POPULATIONS / "ipd" / "train" / "1")!r})
assert verify_directory(pop.path, load=True)[1] is None
assert len(pop.policies()) == 9
loaded = [m for m in sys.modules if m.startswith(("rqe_wrappers.zoo.publish", "rqe_wrappers.experiments",
          "rqe_wrappers.cli", "torch", "stable_baselines3", "sb3_contrib"))]
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)


WRITE_NAMES = [
    "BuildResult", "NewMember", "Recipe", "build_recipe", "member_from_sb3", "member_from_scripted",
    "register_builder", "write_index", "write_population", "write_readme",
]  # fmt: skip


@pytest.mark.parametrize("name", WRITE_NAMES)
def test_write_names_from_the_read_package_warn_and_point_to_publish(name):
    import rqe_wrappers.zoo as zoo
    import rqe_wrappers.zoo.publish as publish

    assert name not in zoo.__all__
    with pytest.warns(DeprecationWarning, match=rf"from rqe_wrappers\.zoo\.publish import {name}`"):
        old = getattr(zoo, name)
    assert old is getattr(publish, name)


@pytest.mark.parametrize(
    ("old", "name", "new", "new_name"),
    [
        ("rqe_wrappers.zoo.manifest", "Index", "rqe_wrappers.zoo.index", "Index"),
        ("rqe_wrappers.zoo.manifest", "IndexEntry", "rqe_wrappers.zoo.index", "IndexEntry"),
        ("rqe_wrappers.zoo.manifest", "parse_ref", "rqe_wrappers.zoo.refs", "parse_ref"),
        ("rqe_wrappers.zoo.manifest", "SB3_ALGOS", "rqe_wrappers.zoo.sb3_spec", "SB3_ALGOS"),
        ("rqe_wrappers.zoo.manifest", "check_json_value", "rqe_wrappers.zoo.schema", "check_json_value"),
        ("rqe_wrappers.zoo.client", "config_path", "rqe_wrappers.zoo.config", "config_path"),
        ("rqe_wrappers.zoo.client", "LOCK_TIMEOUT", "rqe_wrappers.zoo.cache", "LOCK_TIMEOUT"),
        ("rqe_wrappers.zoo.client", "FileDownloader", "rqe_wrappers.zoo.remotes", "FileDownloader"),
        ("rqe_wrappers.zoo.members", "NewMember", "rqe_wrappers.zoo.publish.members", "NewMember"),
        ("rqe_wrappers.zoo.members", "member_from_sb3", "rqe_wrappers.zoo.publish.members", "member_from_sb3"),
        ("rqe_wrappers.zoo.members", "sha256_file", "rqe_wrappers.zoo.files", "sha256_file"),
        ("rqe_wrappers.zoo.members", "scripted_accepts_spaces", "rqe_wrappers.core.registry", "accepts_spaces"),
        ("rqe_wrappers.zoo.publish", "TABLE_START", "rqe_wrappers.zoo.publish.index", "TABLE_START"),
    ],
)
def test_moved_module_attributes_warn_and_name_the_new_place(old, name, new, new_name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"from {new} import {new_name}`"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), new_name)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


#: every public name of the 0.1 zoo modules (git ad801fd); each must still import from its old module
NAMES_01 = {
    "client": "ENV_URL ENV_CACHE ENV_OFFLINE ENV_TIMEOUT DEFAULT_TIMEOUT LOCK_TIMEOUT PopulationWarning "
    "checkout_populations ENV_CONFIG config_path config_url default_url normalize_url default_cache_dir "
    "ZooUnreachableError FileDownloader Remote ZooClient verify_directory load_population",
    "manifest": "SCHEMA_VERSION MANIFEST_NAME INDEX_NAME ID_RE NAME_RE FILE_RE SHA256_RE COMMIT_RE KINDS SB3_ALGOS "
    "ACTIVATIONS FEATURES_EXTRACTORS OPTIMIZERS POLICY_KWARGS ALGO_KWARGS check_id check_version parse_ref "
    "format_ref check_json_value EnvInfo RecipeRef MemberEntry check_sb3_spec Manifest load_json dumps IndexEntry "
    "Index",
    "members": "sha256_file check_safetensors_bytes read_verified decode_policy_kwargs encode_policy_kwargs NewMember "
    "member_from_sb3 member_from_scripted scripted_accepts_spaces build_scripted Member",
    "population": "UnknownMemberError Population read_manifest find_bad_files open_population check_population_spaces",
    "publish": "README_NAME TABLE_START TABLE_END write_population scan_populations build_index write_index "
    "readme_table write_readme",
}


@pytest.mark.parametrize("module", sorted(NAMES_01))
def test_every_0_1_name_still_imports_from_its_old_module(module):
    mod = importlib.import_module(f"rqe_wrappers.zoo.{module}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        missing = [n for n in NAMES_01[module].split() if not hasattr(mod, n)]
    assert not missing


def test_published_populations_read_and_rewrite_byte_for_byte(tmp_path):
    """Manifests parse and serialise to the same bytes; the index and README table regenerate unchanged."""
    manifests = sorted(POPULATIONS.rglob("manifest.json"))
    assert len(manifests) >= 4
    for path in manifests:
        text = path.read_text(encoding="utf-8")
        assert Manifest.loads(text, str(path)).dumps() == text, path
        open_population(path.parent)  # every sha256 checked
    index = json.loads((POPULATIONS / "index.json").read_text(encoding="utf-8"))
    assert build_index(POPULATIONS).to_json() == index
    assert readme_table(POPULATIONS) in (POPULATIONS / "README.md").read_text(encoding="utf-8")

    from rqe_wrappers.cli import main

    copy = tmp_path / "populations"
    shutil.copytree(POPULATIONS, copy)
    assert main(["zoo", "index", str(copy)]) == 0
    for name in ("index.json", "README.md"):
        assert (copy / name).read_bytes() == (POPULATIONS / name).read_bytes(), name


def test_space_check_names_population_member_seat_and_training_env():
    from rqe_wrappers.envs.ipd import ipd_env
    from rqe_wrappers.envs.matrix import MatrixGameEnv

    pop = load_population(POPULATIONS / "ipd" / "train" / "1")
    pop.check_env(ipd_env(3))  # the env it was trained on fits every seat
    env = MatrixGameEnv(np.zeros((2, 2, 2)), rounds=3)
    with pytest.raises(SpaceMismatchError) as info:
        check_population_spaces(pop, env, seats=["player_1"])
    msg = str(info.value)
    assert msg.startswith("population ipd/train@1, member 'always-cooperate' in seat 'player_1': observation space")
    assert str(env.observation_space("player_1")) in msg and str(pop.observation_space) in msg
    assert "trained on 'rqe_wrappers/ipd_v0' with kwargs {'rounds': 3}" in msg
    with pytest.raises(SpaceMismatchError, match=r"member 'always-cooperate': observation space mismatch"):
        pop.check_env(gym.make("CartPole-v1"))  # a gymnasium env: no seat in the message
