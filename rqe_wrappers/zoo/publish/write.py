"""Writing a population: ``<root>/<id>/<version>/`` (member files + ``manifest.json`` + model card), then the index.

``write_population`` writes into a temporary directory and renames it into place, so a half-written
population is never visible. Published versions are immutable: writing an existing version needs
``overwrite=True``. docs/zoo.md ("Round trip: publishing your own population").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.registry import accepts_spaces
from rqe_wrappers.core.spaces import check_spaces_alike
from rqe_wrappers.errors import ConfigError, PopulationError, SpaceMismatchError
from rqe_wrappers.zoo.files import FLOAT_KINDS, NUMERIC_KINDS, check_tensors, sha256_file
from rqe_wrappers.zoo.manifest import MANIFEST_NAME, EnvInfo, Manifest, MemberEntry, RecipeRef
from rqe_wrappers.zoo.members import build_scripted
from rqe_wrappers.zoo.publish.card import CARD_NAME, model_card
from rqe_wrappers.zoo.publish.index import write_index
from rqe_wrappers.zoo.publish.members import NewMember
from rqe_wrappers.zoo.refs import check_id, check_version
from rqe_wrappers.zoo.schema import check_json_value
from rqe_wrappers.zoo.spaces import transposed_image


def _resolve_spaces(
    members: Sequence[NewMember], observation_space: gym.Space | None, action_space: gym.Space | None
) -> tuple[gym.Space, gym.Space]:
    if observation_space is None or action_space is None:
        obs: gym.Space | None
        act: gym.Space | None
        source = next((m for m in members if m.observation_space is not None), None)
        if source is None:
            first = members[0]
            if accepts_spaces(first.spec["name"]):
                raise ConfigError(
                    f"member {first.name!r}: scripted policy {first.spec['name']!r} takes its spaces as arguments; "
                    "pass observation_space and action_space to write_population"
                )
            policy = build_scripted(first.spec, None, None, first.tensors, f"member {first.name!r}", ConfigError)
            obs, act = policy.observation_space, policy.action_space
        else:
            obs, act = source.observation_space, source.action_space
        observation_space = obs if observation_space is None else observation_space
        action_space = act if action_space is None else action_space
    return _space("observation_space", observation_space), _space("action_space", action_space)


def _space(name: str, space: object) -> gym.Space:
    if not isinstance(space, gym.Space):
        raise ConfigError(f"{name} must be a gymnasium space, got {type(space).__name__}")
    return space


def _entry_for(
    member: NewMember, directory: Path, observation_space: gym.Space, action_space: gym.Space, recipe: RecipeRef | None
) -> MemberEntry:
    who = f"member {member.name!r}"
    file = sha = None
    if member.tensors is not None:
        from safetensors.numpy import save_file

        file = f"{member.name}.safetensors"
        tensors = {k: np.ascontiguousarray(v) for k, v in member.tensors.items()}
        save_file(tensors, str(directory / file), metadata={"rqe_wrappers.member": member.name})
        sha = sha256_file(directory / file)
    common: dict[str, Any] = dict(
        name=member.name, file=file, sha256=sha, seed=member.seed, metrics=dict(member.metrics),
        recipe=member.recipe or recipe,
    )  # fmt: skip
    if member.kind == "scripted":
        policy = build_scripted(member.spec, observation_space, action_space, member.tensors, who, ConfigError)
        check_spaces_alike(
            [(who, policy.observation_space, policy.action_space)],
            lambda m: (
                f"{who}: {m.kind} space mismatch: the population has {m.expected}, the scripted policy has {m.got}"
            ),
            reference=("the population", observation_space, action_space),
        )
        return MemberEntry(kind="scripted", scripted=dict(member.spec), **common)
    if member.kind != "sb3":
        raise ConfigError(f"{who}: unknown kind {member.kind!r}")
    if file is None:
        raise ConfigError(f"{who}: an sb3 member needs its weights")
    spec = dict(member.spec)
    for key, want, got in (
        ("observation_space", observation_space, member.observation_space),
        ("action_space", action_space, member.action_space),
    ):
        if got is None or got == want:
            continue
        if key == "observation_space" and transposed_image(got, want):
            spec[key] = got  # the policy network's own (channel-first) space
            continue
        kind = key.split("_")[0]
        raise SpaceMismatchError(f"{who}: {kind} space mismatch: the population has {want}, the model has {got}")
    return MemberEntry(kind="sb3", sb3=spec, **common)


def write_population(
    root: str | Path,
    *,
    id: str,
    version: int,
    env: EnvInfo | Mapping[str, Any] | str,
    members: Sequence[NewMember],
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    description: str = "",
    best_responses: Mapping[str, Any] | None = None,
    recipe: RecipeRef | None = None,
    overwrite: bool = False,
    update_index: bool = True,
) -> Path:
    """Write a population to ``<root>/<id>/<version>/`` and return that directory.

    Spaces default to the first SB3 member's (else the first scripted member's policy's); every
    member is checked against them, and scripted members are built once to check their registry
    name and kwargs. ``recipe`` is recorded for members that do not carry their own. With
    ``update_index`` the root's ``index.json`` is regenerated.

    Example:
        >>> from rqe_wrappers.zoo.publish import member_from_sb3, write_population   # doctest: +SKIP
        >>> write_population("populations", id="tag/runners", version=1,     # doctest: +SKIP
        ...                  env={"id": "mpe2/simple_tag_v3", "kwargs": {"continuous_actions": False}},
        ...                  members=[member_from_sb3(model, "runner-0")])
    """
    pid = check_id(id)
    version = check_version(version)
    env = EnvInfo.coerce(env)
    members = list(members)
    if not members:
        raise ConfigError("a population needs at least one member")
    for m in members:
        if not isinstance(m, NewMember):
            raise ConfigError(
                f"members must be made with member_from_sb3 / member_from_scripted, got {type(m).__name__}"
            )
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate member names {dupes}")
    best = None if best_responses is None else check_json_value(dict(best_responses), "best_responses")
    observation_space, action_space = _resolve_spaces(members, observation_space, action_space)
    for m in members:  # before anything is written
        if m.tensors is not None:
            kinds = FLOAT_KINDS if m.kind == "sb3" else NUMERIC_KINDS
            check_tensors(m.tensors, f"member {m.name!r}", kinds=kinds, error=ConfigError)

    root = Path(root)
    final = root / pid / str(version)
    if final.exists() and not overwrite:
        raise PopulationError(
            f"{final} already exists: published versions are immutable; bump the version (or pass overwrite=True)"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{version}.", suffix=".tmp"))
    try:
        entries = [_entry_for(m, tmp, observation_space, action_space, recipe) for m in members]
        import rqe_wrappers

        manifest = Manifest(
            id=pid,
            version=version,
            env=env,
            observation_space=observation_space,
            action_space=action_space,
            members=tuple(entries),
            description=description,
            best_responses=best,
            library_version=rqe_wrappers.__version__,
        )
        text = manifest.dumps()
        Manifest.loads(text, f"{final / MANIFEST_NAME} (being written)")  # what we write, we can read
        (tmp / MANIFEST_NAME).write_text(text, encoding="utf-8")
        (tmp / CARD_NAME).write_text(model_card(manifest), encoding="utf-8")  # not in the manifest: docs only
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if update_index:
        write_index(root)
    return final
