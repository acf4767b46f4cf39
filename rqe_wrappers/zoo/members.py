"""Population members: from an SB3 model or a scripted policy to files, and back to a :class:`Policy`.

Two kinds of member:

- ``"sb3"``: the policy's ``state_dict`` as safetensors plus a JSON spec (algorithm, policy class name,
  ``policy_kwargs``, algorithm hyper-parameters). On load the spec is checked against allow-lists of
  names and rebuilt into SB3's own classes; the weights go in with ``load_state_dict(strict=True)``.
  Nothing is unpickled, and no name from a file is ever imported.
- ``"scripted"``: a name from the library's scripted-policy registry
  (:func:`rqe_wrappers.core.policy.make_scripted`), JSON kwargs, and optionally a safetensors file whose
  tensors are passed as ``arrays=`` (tabular policies).

torch, SB3 and safetensors are imported only when a member is written or loaded.
"""

from __future__ import annotations

import hashlib
import inspect
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.errors import ConfigError, PopulationError, SpaceMismatchError
from rqe_wrappers.zoo.manifest import (
    ACTIVATIONS,
    ALGO_KWARGS,
    FEATURES_EXTRACTORS,
    NAME_RE,
    OPTIMIZERS,
    POLICY_KWARGS,
    SB3_ALGOS,
    MemberEntry,
    RecipeRef,
    check_json_value,
)

if TYPE_CHECKING:
    from rqe_wrappers.core.policy import Policy
    from rqe_wrappers.zoo.population import Population


# ---- files --------------------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_PICKLE_HINT = (
    "pickles (SB3 .zip, torch .pt/.pth, .pkl) can run arbitrary code when loaded and are refused; "
    "publish SB3 models with rqe_wrappers.zoo.member_from_sb3, which writes safetensors"
)


def check_safetensors_bytes(data: bytes, source: str) -> None:
    """Refuse anything that is not a safetensors file (pickles and zip archives in particular)."""
    if len(data) >= 10:
        (n,) = struct.unpack("<Q", data[:8])
        if n <= len(data) - 8 and data[8:9] == b"{":
            return  # a safetensors header: 8-byte little-endian length, then JSON
    if data[:1] == b"\x80":
        raise PopulationError(f"{source} is a Python pickle, not safetensors: {_PICKLE_HINT}")
    if data[:4] == b"PK\x03\x04":
        raise PopulationError(f"{source} is a zip archive (an SB3 .zip or torch.save file), not safetensors: {_PICKLE_HINT}")
    raise PopulationError(f"{source} is not a safetensors file; {_PICKLE_HINT}")


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, after checking them against ``sha256`` (what is parsed is what was verified)."""
    from rqe_wrappers.errors import ChecksumError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PopulationError(f"{path} is missing; re-download the population (rqe zoo pull)") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ChecksumError(f"{path}: sha256 is {got}, the manifest says {sha256}; the file is corrupt or was changed")
    return data


# ---- SB3 specs ----------------------------------------------------------------------------------
def _algo_class(algo: str):
    if algo not in SB3_ALGOS:  # manifests are validated before this; keep the invariant explicit
        raise PopulationError(f"unknown SB3 algorithm {algo!r}; allowed: {list(SB3_ALGOS)}")
    if algo == "PPO":
        from stable_baselines3 import PPO

        return PPO
    try:
        import sb3_contrib
    except ImportError:
        raise PopulationError(f"this member needs {algo} from sb3-contrib: pip install sb3-contrib") from None
    return getattr(sb3_contrib, algo)


def _class_maps() -> dict[str, dict[str, Any]]:
    """Allow-listed names -> classes, for the policy_kwargs that name a class."""
    import torch.nn as nn
    import torch.optim as optim
    from stable_baselines3.common import torch_layers

    return {
        "activation_fn": {n: getattr(nn, n) for n in ACTIVATIONS},
        "features_extractor_class": {n: getattr(torch_layers, n) for n in FEATURES_EXTRACTORS},
        "optimizer_class": {n: getattr(optim, n) for n in OPTIMIZERS},
    }


def decode_policy_kwargs(policy_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON policy_kwargs (validated names) -> the keyword arguments SB3's policy class takes."""
    maps = _class_maps()
    out = {}
    for k, v in policy_kwargs.items():
        out[k] = maps[k][v] if k in maps else v
    return out


def encode_policy_kwargs(policy_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SB3 policy_kwargs -> JSON, or :class:`ConfigError` naming the key that cannot be published."""
    maps = {k: {cls: name for name, cls in m.items()} for k, m in _class_maps().items()}
    out: dict[str, Any] = {}
    for k, v in (policy_kwargs or {}).items():
        if k not in POLICY_KWARGS:
            raise ConfigError(
                f"policy_kwargs[{k!r}] cannot be published: allowed keys are {sorted(POLICY_KWARGS)}"
            )
        if k in maps:
            if v not in maps[k]:
                raise ConfigError(
                    f"policy_kwargs[{k!r}] = {v!r} cannot be published: allowed are {sorted(maps[k].values())}"
                )
            v = maps[k][v]
        else:
            v = check_json_value(v, f"policy_kwargs[{k!r}]")
        problem = POLICY_KWARGS[k](v)
        if problem:
            raise ConfigError(f"policy_kwargs[{k!r}] = {v!r} cannot be published: {problem}")
        out[k] = v
    return out


def _accepted_kwargs(algo_cls) -> set[str]:
    return set(inspect.signature(algo_cls.__init__).parameters)


def _algo_kwargs_of(model) -> dict[str, Any]:
    out = {}
    accepted = _accepted_kwargs(type(model))
    for k in ALGO_KWARGS:
        if k not in accepted or not hasattr(model, k):
            continue
        v = getattr(model, k)
        if callable(v):  # schedules are stored as their value at the start of training
            v = float(v(1.0))
        if isinstance(v, (np.floating, np.integer, np.bool_)):
            v = v.item()
        if ALGO_KWARGS[k](v) is None:
            out[k] = v
    return out


# ---- members to be written ----------------------------------------------------------------------
@dataclass(frozen=True)
class NewMember:
    """A member ready to be written by :func:`rqe_wrappers.zoo.write_population`.

    Make one with :func:`member_from_sb3` or :func:`member_from_scripted`.
    """

    name: str
    kind: str
    spec: dict[str, Any]
    tensors: dict[str, np.ndarray] | None = None
    seed: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    recipe: RecipeRef | None = None
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ConfigError(f"member name {self.name!r}: use letters, digits, '.', '-', '_' (it also names the file)")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))):
            raise ConfigError(f"member {self.name!r}: seed must be an integer or None, got {self.seed!r}")
        if not isinstance(self.metrics, Mapping):
            raise ConfigError(f"member {self.name!r}: metrics must be a dict of name -> value")
        object.__setattr__(self, "metrics", check_json_value(dict(self.metrics), f"member {self.name!r} metrics"))
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))

    def replace(self, **changes: Any) -> NewMember:
        import dataclasses

        return dataclasses.replace(self, **changes)


def member_from_sb3(
    model: Any,
    name: str,
    *,
    seed: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    recipe: RecipeRef | None = None,
) -> NewMember:
    """Capture an SB3 ``PPO`` (or sb3-contrib ``MaskablePPO`` / ``RecurrentPPO``) model as a member.

    Stores the policy weights, the policy class *name*, JSON-safe ``policy_kwargs`` and the
    algorithm's hyper-parameters (schedules as their initial value). Raises :class:`ConfigError`
    when something cannot be published without pickling (a custom class in ``policy_kwargs``).
    ``seed`` defaults to the model's seed. Observation normalisation (``VecNormalize``) is not part
    of the policy and is not stored.
    """
    algo = type(model).__name__
    if algo not in SB3_ALGOS or _algo_class(algo) is not type(model):
        raise ConfigError(f"member {name!r}: only {list(SB3_ALGOS)} models can be published, got {type(model).__name__}")
    aliases = {cls: alias for alias, cls in type(model).policy_aliases.items() if alias in SB3_ALGOS[algo]}
    policy_name = aliases.get(type(model.policy))
    if policy_name is None:
        raise ConfigError(
            f"member {name!r}: policy class {type(model.policy).__name__} is not one of {algo}'s "
            f"{list(SB3_ALGOS[algo])}; custom policy classes cannot be loaded without importing code"
        )
    spec = {
        "algo": algo,
        "policy": policy_name,
        "policy_kwargs": encode_policy_kwargs(model.policy_kwargs),
        "algo_kwargs": _algo_kwargs_of(model),
        "sb3_version": _sb3_version(),
    }
    tensors = {k: v.detach().cpu().numpy().copy() for k, v in model.policy.state_dict().items()}
    return NewMember(
        name=name,
        kind="sb3",
        spec=spec,
        tensors=tensors,
        seed=model.seed if seed is None else seed,
        metrics=dict(metrics or {}),
        recipe=recipe,
        observation_space=model.observation_space,
        action_space=model.action_space,
    )


def member_from_scripted(
    name: str,
    registry_name: str,
    *,
    arrays: Mapping[str, np.ndarray] | None = None,
    seed: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    recipe: RecipeRef | None = None,
    **kwargs: Any,
) -> NewMember:
    """A scripted member: ``make_scripted(registry_name, **kwargs, arrays=arrays)`` when loaded.

    ``kwargs`` must be JSON values; ``arrays`` (tabular policies) are written to a safetensors file.
    The registry name is checked when the population is written (the policy is built once then).
    """
    spec = {"name": registry_name, "kwargs": check_json_value(dict(kwargs), f"member {name!r} kwargs")}
    tensors = None
    if arrays is not None:
        tensors = {}
        for k, v in arrays.items():
            arr = np.asarray(v)
            if arr.dtype == object:
                raise ConfigError(f"member {name!r}: arrays[{k!r}] has dtype object; use numeric arrays")
            tensors[str(k)] = np.ascontiguousarray(arr)
    return NewMember(name=name, kind="scripted", spec=spec, tensors=tensors, seed=seed, metrics=dict(metrics or {}), recipe=recipe)


def _sb3_version() -> str | None:
    try:
        import stable_baselines3

        return stable_baselines3.__version__
    except ImportError:  # pragma: no cover
        return None


def build_scripted(
    spec: Mapping[str, Any], observation_space, action_space, arrays=None, who: str = "member", error: type[Exception] = PopulationError
) -> Policy:
    """``make_scripted`` from a member spec; the manifest's spaces are passed if the factory takes them.

    Failures raise ``error`` (:class:`PopulationError` when loading, :class:`ConfigError` when publishing).
    """
    from rqe_wrappers.core.policy import Policy
    from rqe_wrappers.core.registry import accepts_spaces, make_scripted

    kwargs = dict(spec.get("kwargs", {}))
    if arrays is not None:
        kwargs["arrays"] = arrays
    if observation_space is not None and accepts_spaces(spec["name"]):
        kwargs.setdefault("observation_space", observation_space)
        kwargs.setdefault("action_space", action_space)
    try:
        policy = make_scripted(spec["name"], **kwargs)
    except ConfigError as e:
        raise error(f"{who}: {e}") from None
    except TypeError as e:
        raise error(f"{who}: scripted policy {spec['name']!r} rejected its kwargs: {e}") from None
    if not isinstance(policy, Policy):
        raise error(f"{who}: scripted factory {spec['name']!r} returned {type(policy).__name__}, not a Policy")
    return policy


# ---- loaded members -----------------------------------------------------------------------------
class Member:
    """One member of a loaded :class:`~rqe_wrappers.zoo.Population`.

    Attributes mirror the manifest entry: ``name``, ``kind``, ``seed``, ``metrics``, ``recipe``,
    ``file`` (path or ``None``), ``sha256``. Use :meth:`policy` for the wrappers and :meth:`to_sb3`
    for a stock SB3 model.
    """

    def __init__(self, entry: MemberEntry, population: Population):
        self.entry = entry
        self.population = population

    name = property(lambda self: self.entry.name)
    kind = property(lambda self: self.entry.kind)
    seed = property(lambda self: self.entry.seed)
    metrics = property(lambda self: dict(self.entry.metrics))
    recipe = property(lambda self: self.entry.recipe)
    sha256 = property(lambda self: self.entry.sha256)

    @property
    def file(self) -> Path | None:
        return self.population.path / self.entry.file if self.entry.file else None

    @property
    def observation_space(self) -> gym.Space:
        """The space the member's policy acts on (the population's, unless an SB3 image policy transposed it)."""
        return (self.entry.sb3 or {}).get("observation_space", self.population.observation_space)

    @property
    def action_space(self) -> gym.Space:
        return (self.entry.sb3 or {}).get("action_space", self.population.action_space)

    def _who(self) -> str:
        return f"population {self.population.ref}, member {self.name!r}"

    def _bytes(self) -> bytes:
        if self.entry.file is None:
            raise PopulationError(f"{self._who()} has no file")
        data = read_verified(self.file, self.entry.sha256)
        check_safetensors_bytes(data, str(self.file))
        return data

    def arrays(self) -> dict[str, np.ndarray] | None:
        """The member's tensors as numpy arrays (``None`` for scripted members without a file)."""
        if self.entry.file is None:
            return None
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            return load(self._bytes())
        except SafetensorError as e:
            raise PopulationError(f"{self.file}: unreadable safetensors file ({e})") from None

    def _state_dict(self):
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            return load(self._bytes())
        except SafetensorError as e:
            raise PopulationError(f"{self.file}: unreadable safetensors file ({e})") from None

    def _load_weights(self, module) -> None:
        try:
            module.load_state_dict(self._state_dict(), strict=True)
        except RuntimeError as e:
            raise PopulationError(f"{self._who()}: the weights do not fit the policy its spec describes: {e}") from None

    def policy(self, *, deterministic: bool = False) -> Policy:
        """A :class:`rqe_wrappers.Policy` (an :class:`rqe_wrappers.sb3.SB3Policy` for sb3 members)."""
        if self.kind == "scripted":
            policy = build_scripted(
                self.entry.scripted, self.observation_space, self.action_space, self.arrays(), self._who()
            )
            _check_built_spaces(policy, self.observation_space, self.action_space, self._who())
            return policy
        spec = self.entry.sb3
        if spec["algo"] == "RecurrentPPO":
            raise PopulationError(
                f"{self._who()} is a RecurrentPPO policy and rqe_wrappers has no recurrent Policy adapter yet; "
                "use member.to_sb3() to get the model"
            )
        from rqe_wrappers.sb3 import SB3Policy

        algo_cls = _algo_class(spec["algo"])
        policy_cls = algo_cls.policy_aliases[spec["policy"]]
        extra = {}
        if "use_sde" in _accepted_kwargs(policy_cls):  # MaskablePPO's policies have no SDE
            extra["use_sde"] = bool(spec["algo_kwargs"].get("use_sde", False))
        net = policy_cls(
            self.observation_space,
            self.action_space,
            lambda _progress: 0.0,
            **extra,
            **decode_policy_kwargs(spec["policy_kwargs"]),
        )
        self._load_weights(net)
        return SB3Policy(net.to("cpu"), deterministic=deterministic)

    def to_sb3(self, env: Any = None, *, device: str = "auto", **algo_kwargs: Any):
        """A stock SB3 model with this member's weights (sb3 members only).

        Without ``env`` the model can ``predict()``; call ``model.set_env(env)`` (one env) before
        ``learn()``, or pass ``env`` here (any number of envs; its spaces must match). Hyper-parameters
        come from the manifest; ``algo_kwargs`` override them. The optimizer state is not stored:
        continued training starts with a fresh optimizer.
        """
        if self.kind != "sb3":
            raise PopulationError(f"{self._who()} is a {self.kind} member; only sb3 members have an SB3 model")
        spec = self.entry.sb3
        algo_cls = _algo_class(spec["algo"])
        kwargs = {**spec["algo_kwargs"], **algo_kwargs}
        unknown = sorted(set(spec["algo_kwargs"]) - _accepted_kwargs(algo_cls))
        if unknown:
            raise PopulationError(f"{self._who()}: {spec['algo']} does not take algo_kwargs {unknown}")
        policy_kwargs = decode_policy_kwargs(spec["policy_kwargs"])
        if env is None:
            model = algo_cls(spec["policy"], env=None, policy_kwargs=policy_kwargs, device=device, _init_setup_model=False, **kwargs)
            model.observation_space = self.observation_space
            model.action_space = self.action_space
            model.n_envs = 1
            model._setup_model()  # noqa: SLF001  (what SB3's own load() does)
        else:
            model = algo_cls(spec["policy"], env, policy_kwargs=policy_kwargs, device=device, **kwargs)
            _check_built_spaces(model, self.observation_space, self.action_space, self._who())
        self._load_weights(model.policy)
        return model

    def __repr__(self) -> str:
        what = self.entry.sb3["algo"] + "/" + self.entry.sb3["policy"] if self.kind == "sb3" else self.entry.scripted["name"]
        return f"Member({self.name!r}, {self.kind}: {what})"


def _check_built_spaces(obj, observation_space, action_space, who: str) -> None:
    for kind, want, got in (
        ("observation", observation_space, obj.observation_space),
        ("action", action_space, obj.action_space),
    ):
        if want != got:
            raise SpaceMismatchError(f"{who}: {kind} space mismatch: the manifest says {want}, the built policy has {got}")
