"""Members to be published: captured from an SB3 model or named from the scripted-policy registry.

:func:`member_from_sb3` and :func:`member_from_scripted` make a :class:`NewMember` (tensors + a JSON
spec) that :func:`~rqe_wrappers.zoo.publish.write_population` writes. Anything that could only be
stored as a pickle (a custom class in ``policy_kwargs``) is refused here, naming the key. The way back
is :class:`rqe_wrappers.zoo.Member`; docs/zoo.md has the format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.zoo.files import aliases
from rqe_wrappers.zoo.manifest import NAME_RE, RecipeRef
from rqe_wrappers.zoo.sb3_spec import (
    ALGO_KWARGS,
    POLICY_KWARGS,
    SB3_ALGOS,
    accepted_kwargs,
    algo_class,
    class_maps,
    policy_class,
    policy_names,
)
from rqe_wrappers.zoo.schema import check_json_value


@dataclass(frozen=True)
class NewMember:
    """A member ready to be written by :func:`rqe_wrappers.zoo.publish.write_population`.

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

    def __post_init__(self) -> None:
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
        return dataclasses.replace(self, **changes)


def encode_policy_kwargs(policy_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """SB3 policy_kwargs -> JSON, or :class:`ConfigError` naming the key that cannot be published."""
    maps = {k: {cls: name for name, cls in m.items()} for k, m in class_maps().items()}
    out: dict[str, Any] = {}
    for k, v in (policy_kwargs or {}).items():
        if k not in POLICY_KWARGS:
            raise ConfigError(f"policy_kwargs[{k!r}] cannot be published: allowed keys are {sorted(POLICY_KWARGS)}")
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


def _algo_kwargs_of(model: Any) -> dict[str, Any]:
    out = {}
    accepted = accepted_kwargs(type(model))
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


def _sb3_version() -> str | None:
    try:
        import stable_baselines3

        return str(stable_baselines3.__version__)
    except ImportError:  # pragma: no cover
        return None


def member_from_sb3(
    model: Any,
    name: str,
    *,
    seed: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    recipe: RecipeRef | None = None,
) -> NewMember:
    """Capture an SB3 ``PPO`` (or sb3-contrib ``MaskablePPO`` / ``RecurrentPPO``) model as a member.

    Stores the policy weights, the policy class *name* (an SB3 alias such as ``MlpPolicy``, or this
    library's ``RolePolicy``), JSON-safe ``policy_kwargs`` and the
    algorithm's hyper-parameters (schedules as their initial value). Raises :class:`ConfigError`
    when something cannot be published without pickling (a custom class in ``policy_kwargs``).
    ``seed`` defaults to the model's seed. Observation normalisation (``VecNormalize``) is not part
    of the policy and is not stored.
    """
    algo = type(model).__name__
    if algo not in SB3_ALGOS or algo_class(algo) is not type(model):
        raise ConfigError(
            f"member {name!r}: only {list(SB3_ALGOS)} models can be published, got {type(model).__name__}"
        )
    classes = {policy_class(algo, alias): alias for alias in policy_names(algo)}
    policy_name = classes.get(type(model.policy))
    if policy_name is None:
        raise ConfigError(
            f"member {name!r}: policy class {type(model.policy).__name__} is not one of {algo}'s "
            f"{list(policy_names(algo))}; custom policy classes cannot be loaded without importing code"
        )
    spec = {
        "algo": algo,
        "policy": policy_name,
        "policy_kwargs": encode_policy_kwargs(model.policy_kwargs),
        "algo_kwargs": _algo_kwargs_of(model),
        "sb3_version": _sb3_version(),
    }
    state = model.policy.state_dict()
    shared = aliases(state)  # a shared CNN is stored once, not under each of its three names
    tensors = {k: v.detach().cpu().numpy().copy() for k, v in state.items() if k not in shared}
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
    return NewMember(
        name=name, kind="scripted", spec=spec, tensors=tensors, seed=seed, metrics=dict(metrics or {}), recipe=recipe
    )
