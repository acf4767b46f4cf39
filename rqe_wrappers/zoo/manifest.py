"""The population manifest (``manifest.json``): its members, env and recipe records, parsed and validated.

A population lives in ``<root>/<id>/<version>/``: ``manifest.json`` plus one ``.safetensors`` file per
member that has weights or arrays. docs/zoo.md describes the format field by field.

Everything read from a file is checked here, before anything is built from it: unknown or malformed
fields raise :class:`~rqe_wrappers.errors.PopulationError` naming the file and the field. SB3 policy
specs are checked against allow-lists of *names* (:mod:`rqe_wrappers.zoo.sb3_spec`); nothing in a
manifest is ever used as an import path. No torch, no SB3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rqe_wrappers._compat import moved_names
from rqe_wrappers.zoo.refs import check_id, check_version, format_ref
from rqe_wrappers.zoo.sb3_spec import check_sb3_meaning, check_sb3_spec
from rqe_wrappers.zoo.schema import (
    INT,
    INT_OR_NULL,
    SCHEMA_VERSION,
    SHA256_RE,
    STR,
    STR_OR_NULL,
    ObjectReader,
    dumps,
    expect,
    field_error,
    is_num,
    load_json,
    one_of,
)
from rqe_wrappers.zoo.spaces import space_to_json

MANIFEST_NAME = "manifest.json"

#: member names (also their file stems)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: member files: a bare file name next to manifest.json, safetensors only
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.safetensors$")
COMMIT_RE = re.compile(r"^[0-9a-f]{7,64}$")

KINDS = ("sb3", "scripted")

_NON_EMPTY = expect(lambda x: isinstance(x, str) and x != "", "a non-empty string")
_SEATS = expect(lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x), "a list of seat names")
_COMMIT = expect(lambda x: x is None or (isinstance(x, str) and bool(COMMIT_RE.match(x))), "a git commit (hex) or null")
_BOOL_OR_NULL = expect(lambda x: x is None or isinstance(x, bool), "true, false or null")
_NAME = expect(lambda x: isinstance(x, str) and bool(NAME_RE.match(x)), "a name of letters, digits, '.', '-', '_'")
_FILE = expect(
    lambda x: x is None or (isinstance(x, str) and bool(FILE_RE.match(x))),
    "null or a bare file name ending in .safetensors (no directories; pickles are refused)",
)
_SHA256_OR_NULL = expect(
    lambda x: x is None or (isinstance(x, str) and bool(SHA256_RE.match(x))), "null or 64 lowercase hex digits"
)
_MEMBERS = expect(lambda x: isinstance(x, list) and len(x) > 0, "a non-empty list of members")


@dataclass(frozen=True)
class EnvInfo:
    """Which environment the population was trained on.

    ``id`` names the env and its own version suffix (``"mpe2/simple_tag_v3"``); ``version`` is the
    providing package's version (``"mpe2 1.1.1"``); ``kwargs`` the constructor arguments; ``seats``
    the agent names the members were trained to play (used as the default seats of space checks).
    """

    id: str
    version: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    seats: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "version": self.version, "kwargs": dict(self.kwargs)}
        if self.seats:
            out["seats"] = list(self.seats)
        return out

    @classmethod
    def coerce(cls, env: EnvInfo | Mapping[str, Any] | str) -> EnvInfo:
        """Accept an :class:`EnvInfo`, a dict with its fields, or just the env id."""
        if isinstance(env, EnvInfo):
            return env
        if isinstance(env, str):
            return cls(id=env)
        return cls.from_json(dict(env), "env", "env argument")

    @classmethod
    def from_json(cls, data: Any, where: str, source: str) -> EnvInfo:
        r = ObjectReader(data, where, source)
        env = cls(
            id=r.get("id", _NON_EMPTY),
            version=r.get("version", STR_OR_NULL, None),
            kwargs=r.json("kwargs", {}),
            seats=tuple(r.get("seats", _SEATS, [])),
        )
        if not isinstance(env.kwargs, dict):
            raise field_error(source, r.path("kwargs"), "expected an object")
        r.done()
        return env


@dataclass(frozen=True)
class RecipeRef:
    """Where a member came from: the recipe directory (``zoo/<name>``) and the git commit it was built at."""

    path: str
    commit: str | None = None
    dirty: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "commit": self.commit}
        if self.dirty is not None:
            out["dirty"] = self.dirty
        return out

    @classmethod
    def from_json(cls, data: Any, where: str, source: str) -> RecipeRef | None:
        if data is None:
            return None
        r = ObjectReader(data, where, source)
        ref = cls(
            path=r.get("path", STR),
            commit=r.get("commit", _COMMIT, None),
            dirty=r.get("dirty", _BOOL_OR_NULL, None),
        )
        r.done()
        return ref


@dataclass(frozen=True)
class MemberEntry:
    """One member as written in the manifest (see :class:`rqe_wrappers.zoo.Member` for the loaded form).

    ``sb3`` holds the policy spec of kind ``"sb3"`` members (``algo``, ``policy``, ``policy_kwargs``,
    ``algo_kwargs``, ...); ``scripted`` holds ``{"name": <registry name>, "kwargs": {...}}`` for kind
    ``"scripted"``. ``file``/``sha256`` name the safetensors file (required for sb3, optional for
    scripted members, whose tensors are passed as ``arrays=``).
    """

    name: str
    kind: str
    file: str | None = None
    sha256: str | None = None
    seed: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    recipe: RecipeRef | None = None
    sb3: dict[str, Any] | None = None
    scripted: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "file": self.file, "sha256": self.sha256}
        if self.kind == "sb3":
            out["sb3"] = self.sb3
        else:
            out["scripted"] = self.scripted
        out["seed"] = self.seed
        out["recipe"] = self.recipe.to_json() if self.recipe else None
        out["metrics"] = dict(self.metrics)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str, source: str) -> MemberEntry:
        r = ObjectReader(data, where, source)
        name = r.get("name", _NAME)
        kind = r.get("kind", one_of(KINDS))
        file = r.get("file", _FILE, None)
        sha = r.get("sha256", _SHA256_OR_NULL, None)
        if (file is None) != (sha is None):
            raise field_error(source, r.path("sha256" if file else "file"), "'file' and 'sha256' go together")
        sb3 = scripted = None
        if kind == "sb3":
            if file is None:
                raise field_error(source, r.path("file"), "an sb3 member needs its weights file")
            sb3 = check_sb3_spec(r.get("sb3"), r.path("sb3"), source)
        else:
            scripted = check_scripted_spec(r.get("scripted"), r.path("scripted"), source)
        metrics = r.json("metrics", {})
        if not isinstance(metrics, dict):
            raise field_error(source, r.path("metrics"), "expected an object of metric name -> value")
        entry = cls(
            name=name,
            kind=kind,
            file=file,
            sha256=sha,
            seed=r.get("seed", INT_OR_NULL, None),
            metrics=metrics,
            recipe=RecipeRef.from_json(r.get("recipe", default=None), r.path("recipe"), source),
            sb3=sb3,
            scripted=scripted,
        )
        r.done()
        return entry


def check_scripted_spec(data: Any, where: str, source: str) -> dict[str, Any]:
    """Validate a scripted member's ``{"name": ..., "kwargs": {...}}``; return it as a plain dict."""
    r = ObjectReader(data, where, source)
    name = r.get("name", expect(lambda x: isinstance(x, str) and x != "", "a scripted-policy registry name"))
    kwargs = r.json("kwargs", {})
    if not isinstance(kwargs, dict):
        raise field_error(source, r.path("kwargs"), "expected an object of keyword arguments")
    if "arrays" in kwargs:
        raise field_error(
            source, r.path("kwargs.arrays"), "arrays come from the member's safetensors file, not from kwargs"
        )
    r.done()
    return {"name": name, "kwargs": kwargs}


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated ``manifest.json`` (see docs/zoo.md)."""

    id: str
    version: int
    env: EnvInfo
    observation_space: gym.Space
    action_space: gym.Space
    members: tuple[MemberEntry, ...]
    description: str = ""
    best_responses: dict[str, Any] | None = None
    library_version: str | None = None

    @property
    def ref(self) -> str:
        return format_ref(self.id, self.version)

    def member(self, name: str) -> MemberEntry:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        members = []
        for m in self.members:
            entry = m.to_json()
            if m.sb3 is not None:
                entry["sb3"] = {k: (space_to_json(v) if isinstance(v, gym.Space) else v) for k, v in m.sb3.items()}
            members.append(entry)
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "version": self.version,
            "description": self.description,
            "env": self.env.to_json(),
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "members": members,
        }
        if self.best_responses is not None:
            out["best_responses"] = self.best_responses
        out["library_version"] = self.library_version
        return out

    def dumps(self) -> str:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Any, source: str = MANIFEST_NAME) -> Manifest:
        r = ObjectReader(data, "", source)
        schema = r.get("schema_version", INT)
        if schema != SCHEMA_VERSION:
            newer = " (written by a newer rqe-wrappers: upgrade it)" if schema > SCHEMA_VERSION else ""
            raise field_error(
                source, "schema_version", f"this library reads schema {SCHEMA_VERSION}, got {schema}{newer}"
            )
        pid = check_id(r.get("id"), f"{source}: field 'id'")
        version = check_version(r.get("version"), f"{source}: field 'version'")
        members_data = r.get("members", _MEMBERS)
        members = tuple(MemberEntry.from_json(m, f"members[{i}]", source) for i, m in enumerate(members_data))
        seen: set[str] = set()
        for i, m in enumerate(members):
            if m.name in seen:
                raise field_error(source, f"members[{i}].name", f"duplicate member name {m.name!r}")
            seen.add(m.name)
        files = [m.file for m in members if m.file]
        if len(set(files)) != len(files):
            raise field_error(source, "members", "two members share one file")
        best = r.json("best_responses", None)
        if best is not None and not (
            isinstance(best, dict) and all(is_num(v) or isinstance(v, dict) for v in best.values())
        ):
            raise field_error(source, "best_responses", "expected an object of scenario -> utility (number or object)")
        manifest = cls(
            id=pid,
            version=version,
            description=r.get("description", STR, ""),
            env=EnvInfo.from_json(r.get("env"), "env", source),
            observation_space=r.space("observation_space"),
            action_space=r.space("action_space"),
            members=members,
            best_responses=best,
            library_version=r.get("library_version", STR_OR_NULL, None),
        )
        r.done()
        for i, m in enumerate(members):
            if m.sb3 is not None:
                obs = m.sb3.get("observation_space", manifest.observation_space)
                act = m.sb3.get("action_space", manifest.action_space)
                check_sb3_meaning(m.sb3, obs, act, f"members[{i}].sb3", source)
        return manifest

    @classmethod
    def loads(cls, text: str | bytes, source: str = MANIFEST_NAME) -> Manifest:
        return cls.from_json(load_json(text, source), source)


_ZOO = "rqe_wrappers.zoo"
__getattr__ = moved_names(
    f"{_ZOO}.manifest",
    {
        **dict.fromkeys(("INDEX_NAME", "Index", "IndexEntry"), f"{_ZOO}.index"),
        **dict.fromkeys(("ID_RE", "parse_ref"), f"{_ZOO}.refs"),
        "check_json_value": f"{_ZOO}.schema",
        **dict.fromkeys(
            ("SB3_ALGOS", "ACTIVATIONS", "FEATURES_EXTRACTORS", "OPTIMIZERS", "POLICY_KWARGS", "ALGO_KWARGS"),
            f"{_ZOO}.sb3_spec",
        ),
    },
)
