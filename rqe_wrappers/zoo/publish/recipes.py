"""Recipes: how each published population is built (``zoo/<name>/recipe.json`` + a registered builder).

A recipe file is data only. Its ``builder`` field is a *name* looked up in :data:`BUILDERS` (or
registered in-process with :func:`register_builder`); the table maps names to functions inside this
package, so a recipe file can never make the build import anything else.

A builder is ``def builder(recipe: Recipe) -> BuildResult``: it trains or assembles the members
(one per seed, typically), measures their metrics, and returns them; :func:`build_recipe` writes the
population into ``populations/<id>/<version>/`` with the recipe's path and git commit recorded in
every member, then regenerates ``index.json`` and the README table.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from rqe_wrappers.errors import ConfigError, PopulationError
from rqe_wrappers.zoo.manifest import EnvInfo, RecipeRef
from rqe_wrappers.zoo.publish.members import NewMember
from rqe_wrappers.zoo.refs import check_id, check_version
from rqe_wrappers.zoo.schema import SCHEMA_VERSION, ObjectReader, expect, read_json_file

RECIPE_NAME = "recipe.json"

#: builder name -> "module:function" inside this package. Recipe files name a key of this table.
BUILDERS: dict[str, str] = {
    "scripted": "rqe_wrappers.zoo.publish.builders:scripted_population",
    "ipd-partners": "rqe_wrappers.zoo.publish.builders:ipd_partners",
    "ipd-test-partners": "rqe_wrappers.zoo.publish.builders:ipd_test_partners",
    "tag-runners": "rqe_wrappers.zoo.publish.builders:tag_runners",
    "cooking-agents": "rqe_wrappers.zoo.publish.builders:cooking_agents",
    "tag-chasers": "rqe_wrappers.zoo.publish.builders:tag_chasers",
    "hanabi-agents": "rqe_wrappers.zoo.publish.builders:hanabi_agents",
    "meltingpot-cooking": "rqe_wrappers.zoo.publish.builders:meltingpot_cooking",
}
_REGISTERED: dict[str, Callable[[Recipe], BuildResult]] = {}
_SEEDS = expect(
    lambda x: isinstance(x, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in x),
    "a list of integer seeds",
)


@dataclass(frozen=True)
class Recipe:
    """A parsed ``recipe.json``. ``params`` holds the builder's own settings (JSON)."""

    path: Path
    id: str
    version: int
    builder: str
    env: EnvInfo
    seeds: tuple[int, ...] = ()
    budget: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def load(cls, directory: str | Path) -> Recipe:
        directory = Path(directory)
        path = directory / RECIPE_NAME
        if not path.is_file():
            raise ConfigError(f"{directory} is not a recipe: it has no {RECIPE_NAME}")
        source = str(path)
        r = ObjectReader(read_json_file(path, source), "", source)
        r.get("schema_version", expect(lambda x: x == SCHEMA_VERSION, f"schema version {SCHEMA_VERSION}"))
        pid = check_id(r.get("id"), f"{source}: field 'id'")
        version = check_version(r.get("version"), f"{source}: field 'version'")
        builder = r.get("builder", expect(lambda x: isinstance(x, str) and x != "", "a builder name"))
        seeds = r.get("seeds", _SEEDS, [])
        recipe = cls(
            path=directory.resolve(),
            id=pid,
            version=version,
            builder=builder,
            env=EnvInfo.from_json(r.get("env"), "env", source),
            seeds=tuple(seeds),
            budget=r.json("budget", {}),
            params=r.json("params", {}),
            description=r.get("description", expect(lambda x: isinstance(x, str), "a string"), ""),
        )
        if not isinstance(recipe.budget, dict) or not isinstance(recipe.params, dict):
            raise PopulationError(f"{source}: fields 'budget' and 'params' must be objects")
        r.done()
        get_builder(builder)  # fail early on an unknown builder
        return recipe


@dataclass
class BuildResult:
    """What a builder returns. Spaces default to the members' own; ``env`` overrides the recipe's
    (e.g. to record the package version actually used)."""

    members: Sequence[NewMember]
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None
    best_responses: Mapping[str, Any] | None = None
    env: EnvInfo | None = None
    description: str | None = None


def register_builder(name: str) -> Callable[[Callable[[Recipe], BuildResult]], Callable[[Recipe], BuildResult]]:
    """Decorator: make a builder function usable from recipe files by ``name`` (in this process)."""

    def deco(fn: Callable[[Recipe], BuildResult]) -> Callable[[Recipe], BuildResult]:
        if name in _REGISTERED or name in BUILDERS:
            raise ConfigError(f"builder {name!r} is registered twice")
        _REGISTERED[name] = fn
        return fn

    return deco


def builder_names() -> list[str]:
    return sorted(set(BUILDERS) | set(_REGISTERED))


def get_builder(name: str) -> Callable[[Recipe], BuildResult]:
    """The builder registered under ``name``. Import paths are not accepted, only registered names
    (or the exact ``module:function`` value of a :data:`BUILDERS` entry)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = BUILDERS.get(name)
    if target is None and name in BUILDERS.values():
        target = name
    if target is None:
        raise ConfigError(
            f"unknown builder {name!r}; registered builders: {builder_names()}. Recipe files name a builder "
            "registered in rqe_wrappers.zoo.publish.recipes.BUILDERS; import paths are not accepted"
        )
    module_name, _, attr = target.partition(":")
    assert module_name.startswith("rqe_wrappers."), target  # our own table: an invariant, not input
    return getattr(importlib.import_module(module_name), attr)


def _git(directory: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def recipe_ref(directory: Path) -> RecipeRef:
    """The recipe's path relative to its repository (``zoo/<name>``), the commit and whether it has local changes."""
    directory = directory.resolve()
    top = _git(directory, "rev-parse", "--show-toplevel")
    commit = _git(directory, "rev-parse", "HEAD") if top else None
    if top:
        rel = directory.relative_to(Path(top).resolve()).as_posix()
        dirty = bool(_git(directory, "status", "--porcelain", "--", ".")) if commit else None
    else:
        rel = f"{directory.parent.name}/{directory.name}" if directory.parent.name == "zoo" else directory.name
        dirty = None
    if not commit:  # a copy without git history (e.g. a build machine): the caller names the commit it copied
        commit = os.environ.get("RQE_RECIPE_COMMIT") or None
    return RecipeRef(path=rel, commit=commit or None, dirty=dirty)


def default_output(recipe_dir: Path) -> Path:
    """``<repo>/populations`` for a recipe in ``<repo>/zoo/<name>``."""
    recipe_dir = recipe_dir.resolve()
    if recipe_dir.parent.name != "zoo":
        raise ConfigError(f"{recipe_dir} is not in a zoo/ folder: say where to write the population (--out)")
    return recipe_dir.parent.parent / "populations"


def build_recipe(recipe_dir: str | Path, out: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Run a recipe's builder and publish the result; returns the population directory.

    Example:
        >>> build_recipe("zoo/ipd-partners")  # writes populations/ipd/train/1/  # doctest: +SKIP
    """
    recipe = Recipe.load(recipe_dir)
    out = Path(out) if out is not None else default_output(recipe.path)
    target = out.joinpath(*recipe.id.split("/"), str(recipe.version))
    if target.exists() and not overwrite:
        raise PopulationError(
            f"{target} already exists: published versions are immutable; bump 'version' in the recipe (or overwrite)"
        )
    result = get_builder(recipe.builder)(recipe)
    if not isinstance(result, BuildResult):
        raise ConfigError(f"builder {recipe.builder!r} returned {type(result).__name__}, not a BuildResult")
    ref = recipe_ref(recipe.path)
    members = [m.replace(recipe=ref) for m in result.members]
    from rqe_wrappers.zoo.publish.index import write_readme
    from rqe_wrappers.zoo.publish.write import write_population

    path = write_population(
        out,
        id=recipe.id,
        version=recipe.version,
        env=result.env or recipe.env,
        members=members,
        observation_space=result.observation_space,
        action_space=result.action_space,
        description=result.description if result.description is not None else recipe.description,
        best_responses=result.best_responses,
        recipe=ref,
        overwrite=overwrite,
    )
    write_readme(out)
    return path
