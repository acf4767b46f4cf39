"""Model cards: one per population version, generated from the manifest, in the Hugging Face format."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rqe_wrappers.zoo.index import Index
from rqe_wrappers.zoo.population import read_manifest
from rqe_wrappers.zoo.publish import (
    member_from_scripted,
    model_card,
    scan_populations,
    write_model_cards,
    write_population,
)

ROOT = Path(__file__).resolve().parent.parent
POPULATIONS = ROOT / "populations"


def _front_matter(text: str) -> dict:
    yaml = pytest.importorskip("yaml")
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


@pytest.mark.parametrize(
    "ref", ["cooking/agents/1", "ipd/test/1", "ipd/train/1", "tag/runners/1", "tag/runners-heldout/1"]
)
def test_published_populations_have_current_cards(ref):
    directory = POPULATIONS / ref
    manifest = read_manifest(directory)
    card = (directory / "README.md").read_text(encoding="utf-8")
    assert card == model_card(manifest), "stale model card: run `rqe zoo index populations/`"
    meta = _front_matter(card)
    assert meta["library_name"] == "rqe-wrappers" and "rqe-wrappers" in meta["tags"]
    assert (meta["rqe_population"], meta["rqe_population_version"]) == (manifest.id, manifest.version)
    assert (meta["env_id"], meta["env_version"], meta["env_kwargs"]) == (
        manifest.env.id,
        manifest.env.version,
        manifest.env.kwargs,
    )
    assert meta["members"] == len(manifest.members)
    assert ("stable-baselines3" in meta["tags"]) == any(m.kind == "sb3" for m in manifest.members)
    for m in manifest.members:  # every member, with its metrics as measured
        row = next(line for line in card.splitlines() if line.startswith(f"| `{m.name}` |"))
        for k, v in m.metrics.items():
            shown = f"{v:.4g}" if isinstance(v, float) else (v if isinstance(v, str) else json.dumps(v))
            assert f"{k}={shown}" in row
    for recipe in {m.recipe.path for m in manifest.members if m.recipe}:
        assert f"`{recipe}`" in card
    assert f'load_population("{manifest.ref}")' in card


def test_cards_change_no_verified_content():
    """The card is not in the manifest; the index's manifest sha256s are those of the files on disk."""
    index = Index.loads((POPULATIONS / "index.json").read_bytes(), "index.json")
    for directory, manifest in scan_populations(POPULATIONS):
        files = {m.file for m in manifest.members if m.file}
        assert "README.md" not in files
        sha = hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
        assert index.populations[manifest.id][manifest.version].manifest_sha256 == sha


def test_write_population_writes_a_card_and_regenerating_is_stable(tmp_path):
    members = [member_from_scripted("a", "ipd/always-cooperate", seed=3, metrics={"return": 1.25, "note": "x"})]
    path = write_population(
        tmp_path, id="zt/card", version=2, env={"id": "test/env", "version": "test 1.0"}, members=members,
        description="a card test",
        best_responses={"c1:a": 2.5},
    )  # fmt: skip
    card = (path / "README.md").read_text(encoding="utf-8")
    meta = _front_matter(card)
    assert (meta["rqe_population"], meta["rqe_population_version"], meta["env_version"]) == ("zt/card", 2, "test 1.0")
    assert "| `a` | scripted `ipd/always-cooperate` | 3 | return=1.25, note=x |" in card
    assert "| `c1:a` | 2.5 |" in card and "a card test" in card
    assert "stable-baselines3" not in meta["tags"]
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    assert write_model_cards(tmp_path) == [path / "README.md"]
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    hub_card = model_card(read_manifest(path), hub_repo="org/card")
    assert 'load_population("hf://org/card@2")' in hub_card


def test_a_box_whose_bounds_vary_by_entry_is_summarised_on_the_card():
    import gymnasium as gym
    import numpy as np

    from rqe_wrappers.zoo.publish.card import _space

    varied = gym.spaces.Box(np.array([-np.inf, 0.0, 0.0]), np.array([np.inf, 1.0, 1.0]), dtype=np.float32)
    assert _space(varied) == "Box(low in [-inf, 0], high in [1, inf], (3,), float32)"
    uniform = gym.spaces.Box(0.0, 1.0, (500,), np.float32)
    assert _space(uniform) == str(uniform)  # gymnasium's own repr is short already
    assert _space(gym.spaces.Discrete(4)) == "Discrete(4)"
    hanabi = (Path(__file__).resolve().parents[1] / "populations/hanabi/agents-2p/1/README.md").read_text(
        encoding="utf-8"
    )
    assert "| observation space | `Box(low in [-inf, 0], high in [1, inf], (204,), float64)` |" in hanabi
