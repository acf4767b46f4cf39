"""The population manifest and the zoo index: schema, parsing and validation (no torch, no SB3).

A population lives in ``<root>/<id>/<version>/``: ``manifest.json`` plus one ``.safetensors`` file per
member that has weights or arrays. ``<root>/index.json`` lists every id and version with the
sha256 of its manifest. docs/zoo.md describes both formats field by field.

Everything read from a file is checked here, before anything is built from it: unknown or malformed
fields raise :class:`~rqe_wrappers.errors.PopulationError` naming the file and the field. SB3 policy
specs are checked against allow-lists of *names* (the classes they map to live in
:mod:`rqe_wrappers.zoo.members`); nothing in a manifest is ever used as an import path.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rqe_wrappers.errors import ConfigError, PopulationError, UnsupportedSpaceError
from rqe_wrappers.zoo.spaces import space_from_json, space_to_json

#: manifest / index schema this library writes and reads
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.json"

#: population ids: lowercase path segments, e.g. ``tag/runners``, ``ipd/train``
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")
#: member names (also their file stems)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: member files: a bare file name next to manifest.json, safetensors only
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.safetensors$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{7,64}$")

KINDS = ("sb3", "scripted")

# ---- SB3 allow-lists (names only; members.py maps them to classes) --------------------------------
#: algorithm -> policy class names it may use (the algorithm's own ``policy_aliases``)
SB3_ALGOS: dict[str, tuple[str, ...]] = {
    "PPO": ("MlpPolicy", "CnnPolicy", "MultiInputPolicy"),
    "MaskablePPO": ("MlpPolicy", "CnnPolicy", "MultiInputPolicy"),  # sb3-contrib
    "RecurrentPPO": ("MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy"),  # sb3-contrib
}
ACTIVATIONS = ("Tanh", "ReLU", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Identity")
FEATURES_EXTRACTORS = ("FlattenExtractor", "NatureCNN", "CombinedExtractor")
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x):
    return (_is_int(x) or isinstance(x, float)) and math.isfinite(x)


def _check_net_arch(x):
    def ints(v):
        return isinstance(v, list) and all(_is_int(i) and i > 0 for i in v)

    if ints(x):
        return None
    if isinstance(x, dict) and set(x) <= {"pi", "vf", "qf"} and all(ints(v) for v in x.values()):
        return None
    return "expected a list of layer sizes or {'pi': [...], 'vf': [...]}"


def _one_of(names):
    return lambda x: None if x in names else f"expected one of {list(names)}"


def _type(pred, what):
    return lambda x: None if pred(x) else f"expected {what}"


def _scalar_dict(x):
    if not isinstance(x, dict):
        return "expected an object"
    for k, v in x.items():
        ok = v is None or isinstance(v, (bool, str)) or _is_num(v)
        ok = ok or (isinstance(v, list) and all(_is_num(e) for e in v))
        if not ok:
            return f"key {k!r}: expected a number, string, bool, null or list of numbers"
    return None


_BOOL = _type(lambda x: isinstance(x, bool), "true or false")
_NUM = _type(_is_num, "a finite number")
_NUM_OR_NULL = _type(lambda x: x is None or _is_num(x), "a finite number or null")
_POS_INT = _type(lambda x: _is_int(x) and x > 0, "a positive integer")
_INT = _type(_is_int, "an integer")

#: policy_kwargs an SB3 member may carry, each with its check (JSON values only)
POLICY_KWARGS: dict[str, Any] = {
    "net_arch": _check_net_arch,
    "activation_fn": _one_of(ACTIVATIONS),
    "ortho_init": _BOOL,
    "log_std_init": _NUM,
    "full_std": _BOOL,
    "use_expln": _BOOL,
    "squash_output": _BOOL,
    "share_features_extractor": _BOOL,
    "normalize_images": _BOOL,
    "features_extractor_class": _one_of(FEATURES_EXTRACTORS),
    "features_extractor_kwargs": _scalar_dict,
    "optimizer_class": _one_of(OPTIMIZERS),
    "optimizer_kwargs": _scalar_dict,
    # RecurrentPPO
    "lstm_hidden_size": _POS_INT,
    "n_lstm_layers": _POS_INT,
    "shared_lstm": _BOOL,
    "enable_critic_lstm": _BOOL,
    "lstm_kwargs": _scalar_dict,
}

#: algorithm constructor arguments kept so that ``to_sb3()`` can continue training as before
ALGO_KWARGS: dict[str, Any] = {
    "learning_rate": _NUM,
    "n_steps": _POS_INT,
    "batch_size": _POS_INT,
    "n_epochs": _POS_INT,
    "gamma": _NUM,
    "gae_lambda": _NUM,
    "clip_range": _NUM,
    "clip_range_vf": _NUM_OR_NULL,
    "normalize_advantage": _BOOL,
    "ent_coef": _NUM,
    "vf_coef": _NUM,
    "max_grad_norm": _NUM,
    "use_sde": _BOOL,
    "sde_sample_freq": _INT,
    "target_kl": _NUM_OR_NULL,
    "stats_window_size": _POS_INT,
}


# ---- ids and versions ---------------------------------------------------------------------------
def check_id(pid: Any, where: str = "id") -> str:
    """Return ``pid`` if it is a valid population id, else raise :class:`PopulationError`."""
    if not isinstance(pid, str) or not ID_RE.match(pid):
        raise PopulationError(
            f"{where}: {pid!r} is not a population id; ids are lowercase path segments of letters, digits, "
            "'-' and '_', e.g. 'tag/runners' or 'ipd/train'"
        )
    return pid


def check_version(version: Any, where: str = "version") -> int:
    """Versions are positive integers (``1``, ``2``, ...); strings of digits are accepted on input."""
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not _is_int(version) or version < 1:
        raise PopulationError(f"{where}: {version!r} is not a version; versions are integers >= 1")
    return version


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"tag/runners@2"`` -> ``("tag/runners", 2)``; ``"tag/runners"`` -> ``("tag/runners", None)``."""
    pid, sep, version = ref.partition("@")
    return check_id(pid, "population id"), (check_version(version, f"version in {ref!r}") if sep else None)


def format_ref(pid: str, version: int) -> str:
    return f"{pid}@{version}"


# ---- generic checks -----------------------------------------------------------------------------
def _fail(source: str, where: str, msg: str) -> PopulationError:
    return PopulationError(f"{source}: field '{where}': {msg}")


def check_json_value(x: Any, where: str) -> Any:
    """JSON-safe values only: null, bool, int, finite float, str, lists and string-keyed objects."""
    if x is None or isinstance(x, (bool, str)) or _is_int(x):
        return x
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ConfigError(f"{where}: {x} is not a finite number (JSON has no NaN/inf)")
        return x
    if isinstance(x, (list, tuple)):
        return [check_json_value(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, Mapping):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: keys must be strings, got {k!r}")
            out[k] = check_json_value(v, f"{where}.{k}")
        return out
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:  # numpy scalar
        return check_json_value(x.item(), where)
    raise ConfigError(f"{where}: {type(x).__name__} is not JSON (numbers, strings, lists, objects only)")


class _Obj:
    """Reads one JSON object, tracking the field path and rejecting unknown fields."""

    def __init__(self, data: Any, where: str, source: str):
        if not isinstance(data, dict):
            raise _fail(source, where or "(top level)", f"expected an object, got {type(data).__name__}")
        self.data, self.where, self.source = data, where, source
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, check=None, default: Any = dataclasses.MISSING) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is dataclasses.MISSING:
                raise _fail(self.source, self.path(key), "missing")
            return default
        value = self.data[key]
        if check is not None:
            problem = check(value)
            if problem:
                raise _fail(self.source, self.path(key), f"{problem}, got {_short(value)}")
        return value

    def json(self, key: str, default: Any = dataclasses.MISSING) -> Any:
        value = self.get(key, default=default)
        try:
            return check_json_value(value, self.path(key))
        except ConfigError as e:
            raise PopulationError(f"{self.source}: field {e}") from None

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise _fail(self.source, self.path(extra[0]), f"unknown field (known here: {sorted(self.seen)})")


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


_STR = _type(lambda x: isinstance(x, str), "a string")
_STR_OR_NULL = _type(lambda x: x is None or isinstance(x, str), "a string or null")
_INT_OR_NULL = _type(lambda x: x is None or _is_int(x), "an integer or null")


# ---- manifest pieces ----------------------------------------------------------------------------
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
        r = _Obj(data, where, source)
        env = cls(
            id=r.get("id", _type(lambda x: isinstance(x, str) and x != "", "a non-empty string")),
            version=r.get("version", _STR_OR_NULL, None),
            kwargs=r.json("kwargs", {}),
            seats=tuple(r.get("seats", _type(lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x), "a list of seat names"), [])),
        )
        if not isinstance(env.kwargs, dict):
            raise _fail(source, r.path("kwargs"), "expected an object")
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
        r = _Obj(data, where, source)
        ref = cls(
            path=r.get("path", _STR),
            commit=r.get("commit", _type(lambda x: x is None or (isinstance(x, str) and bool(COMMIT_RE.match(x))), "a git commit (hex) or null"), None),
            dirty=r.get("dirty", _type(lambda x: x is None or isinstance(x, bool), "true, false or null"), None),
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
        r = _Obj(data, where, source)
        name = r.get("name", _type(lambda x: isinstance(x, str) and bool(NAME_RE.match(x)), "a name of letters, digits, '.', '-', '_'"))
        kind = r.get("kind", _one_of(KINDS))
        file = r.get("file", _type(lambda x: x is None or (isinstance(x, str) and bool(FILE_RE.match(x))), "null or a bare file name ending in .safetensors (no directories; pickles are refused)"), None)
        sha = r.get("sha256", _type(lambda x: x is None or (isinstance(x, str) and bool(SHA256_RE.match(x))), "null or 64 lowercase hex digits"), None)
        if (file is None) != (sha is None):
            raise _fail(source, r.path("sha256" if file else "file"), "'file' and 'sha256' go together")
        sb3 = scripted = None
        if kind == "sb3":
            if file is None:
                raise _fail(source, r.path("file"), "an sb3 member needs its weights file")
            sb3 = check_sb3_spec(r.get("sb3"), r.path("sb3"), source)
        else:
            scripted = _check_scripted(r.get("scripted"), r.path("scripted"), source)
        metrics = r.json("metrics", {})
        if not isinstance(metrics, dict):
            raise _fail(source, r.path("metrics"), "expected an object of metric name -> value")
        entry = cls(
            name=name,
            kind=kind,
            file=file,
            sha256=sha,
            seed=r.get("seed", _INT_OR_NULL, None),
            metrics=metrics,
            recipe=RecipeRef.from_json(r.get("recipe", default=None), r.path("recipe"), source),
            sb3=sb3,
            scripted=scripted,
        )
        r.done()
        return entry


def _check_scripted(data: Any, where: str, source: str) -> dict[str, Any]:
    r = _Obj(data, where, source)
    name = r.get("name", _type(lambda x: isinstance(x, str) and x != "", "a scripted-policy registry name"))
    kwargs = r.json("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _fail(source, r.path("kwargs"), "expected an object of keyword arguments")
    if "arrays" in kwargs:
        raise _fail(source, r.path("kwargs.arrays"), "arrays come from the member's safetensors file, not from kwargs")
    r.done()
    return {"name": name, "kwargs": kwargs}


def check_sb3_spec(data: Any, where: str, source: str) -> dict[str, Any]:
    """Validate an SB3 policy spec against the allow-lists; return it as a plain dict."""
    r = _Obj(data, where, source)
    algo = r.get("algo", _one_of(tuple(SB3_ALGOS)))
    policy = r.get("policy", _one_of(SB3_ALGOS[algo]))
    spec: dict[str, Any] = {"algo": algo, "policy": policy}
    for key, checks in (("policy_kwargs", POLICY_KWARGS), ("algo_kwargs", ALGO_KWARGS)):
        kw = r.get(key, default={})
        if not isinstance(kw, dict):
            raise _fail(source, r.path(key), "expected an object")
        for k, v in kw.items():
            if k not in checks:
                raise _fail(source, f"{r.path(key)}.{k}", f"not an allowed key (allowed: {sorted(checks)})")
            problem = checks[k](v)
            if problem:
                raise _fail(source, f"{r.path(key)}.{k}", f"{problem}, got {_short(v)}")
        spec[key] = dict(kw)
    spec["sb3_version"] = r.get("sb3_version", _STR_OR_NULL, None)
    for key in ("observation_space", "action_space"):
        if key in r.data:
            spec[key] = _space(r.get(key), r.path(key), source)
    r.done()
    return spec


def _space(data: Any, where: str, source: str) -> gym.Space:
    try:
        return space_from_json(data, where)
    except (ConfigError, UnsupportedSpaceError) as e:
        raise PopulationError(f"{source}: field {e}") from None


# ---- the manifest -------------------------------------------------------------------------------
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
                entry["sb3"] = {
                    k: (space_to_json(v) if isinstance(v, gym.Space) else v) for k, v in m.sb3.items()
                }
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
        r = _Obj(data, "", source)
        schema = r.get("schema_version", _INT)
        if schema != SCHEMA_VERSION:
            newer = " (written by a newer rqe-wrappers: upgrade it)" if schema > SCHEMA_VERSION else ""
            raise _fail(source, "schema_version", f"this library reads schema {SCHEMA_VERSION}, got {schema}{newer}")
        pid = check_id(r.get("id"), f"{source}: field 'id'")
        version = check_version(r.get("version"), f"{source}: field 'version'")
        members_data = r.get("members", _type(lambda x: isinstance(x, list) and len(x) > 0, "a non-empty list of members"))
        members = tuple(MemberEntry.from_json(m, f"members[{i}]", source) for i, m in enumerate(members_data))
        seen: set[str] = set()
        for i, m in enumerate(members):
            if m.name in seen:
                raise _fail(source, f"members[{i}].name", f"duplicate member name {m.name!r}")
            seen.add(m.name)
        files = [m.file for m in members if m.file]
        if len(set(files)) != len(files):
            raise _fail(source, "members", "two members share one file")
        best = r.json("best_responses", None)
        if best is not None and not (
            isinstance(best, dict) and all(_is_num(v) or isinstance(v, dict) for v in best.values())
        ):
            raise _fail(source, "best_responses", "expected an object of scenario -> utility (number or object)")
        manifest = cls(
            id=pid,
            version=version,
            description=r.get("description", _STR, ""),
            env=EnvInfo.from_json(r.get("env"), "env", source),
            observation_space=_space(r.get("observation_space"), "observation_space", source),
            action_space=_space(r.get("action_space"), "action_space", source),
            members=members,
            best_responses=best,
            library_version=r.get("library_version", _STR_OR_NULL, None),
        )
        r.done()
        return manifest

    @classmethod
    def loads(cls, text: str | bytes, source: str = MANIFEST_NAME) -> Manifest:
        return cls.from_json(load_json(text, source), source)


def load_json(text: str | bytes, source: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise PopulationError(f"{source}: not valid JSON ({e}); the file may be truncated or corrupt") from None


def dumps(data: Any) -> str:
    """Canonical JSON as this library writes it (indented, no NaN, trailing newline)."""
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


# ---- the index ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexEntry:
    """One published version as listed in ``index.json``."""

    manifest_sha256: str
    env: str
    members: int
    description: str = ""
    recipe: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Index:
    """``index.json``: every population id and version of one zoo root, plus renamed ids."""

    populations: dict[str, dict[int, IndexEntry]]
    renamed: dict[str, str] = field(default_factory=dict)

    def versions(self, pid: str) -> list[int]:
        return sorted(self.populations.get(pid, {}))

    def latest(self, pid: str) -> int:
        return max(self.populations[pid])

    def describe(self) -> str:
        """``"tag/runners (versions 1, 2), ipd/train (version 1)"`` or ``"no populations"``."""
        if not self.populations:
            return "no populations"
        parts = []
        for pid in sorted(self.populations):
            vs = self.versions(pid)
            parts.append(f"{pid} (version{'s' if len(vs) > 1 else ''} {', '.join(map(str, vs))})")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "populations": {
                pid: {
                    "latest": max(vs),
                    "versions": {str(v): vs[v].to_json() for v in sorted(vs)},
                }
                for pid, vs in sorted(self.populations.items())
            },
            "renamed": dict(sorted(self.renamed.items())),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = INDEX_NAME) -> Index:
        r = _Obj(data, "", source)
        schema = r.get("schema_version", _INT)
        if schema != SCHEMA_VERSION:
            raise _fail(source, "schema_version", f"this library reads schema {SCHEMA_VERSION}, got {schema}")
        pops_data = r.get("populations", _type(lambda x: isinstance(x, dict), "an object"))
        pops: dict[str, dict[int, IndexEntry]] = {}
        for pid, pdata in pops_data.items():
            check_id(pid, f"{source}: field 'populations.{pid}'")
            pr = _Obj(pdata, f"populations.{pid}", source)
            pr.get("latest", _INT)
            versions: dict[int, IndexEntry] = {}
            for vkey, vdata in pr.get("versions", _type(lambda x: isinstance(x, dict) and x, "a non-empty object")).items():
                v = check_version(vkey, f"{source}: field 'populations.{pid}.versions.{vkey}'")
                vr = _Obj(vdata, f"populations.{pid}.versions.{vkey}", source)
                versions[v] = IndexEntry(
                    manifest_sha256=vr.get("manifest_sha256", _type(lambda x: isinstance(x, str) and bool(SHA256_RE.match(x)), "64 lowercase hex digits")),
                    env=vr.get("env", _STR),
                    members=vr.get("members", _INT),
                    description=vr.get("description", _STR, ""),
                    recipe=vr.get("recipe", _STR_OR_NULL, None),
                )
                vr.done()
            pr.done()
            pops[pid] = versions
        renamed = r.get("renamed", _type(lambda x: isinstance(x, dict) and all(isinstance(v, str) for v in x.values()), "an object of old id -> new id"), {})
        r.done()
        return cls(populations=pops, renamed=dict(renamed))

    @classmethod
    def loads(cls, text: str | bytes, source: str = INDEX_NAME) -> Index:
        return cls.from_json(load_json(text, source), source)
