"""Loaded population members: from verified files back to a :class:`~rqe_wrappers.core.policy.Policy`
or a stock SB3 model (the write side is :mod:`rqe_wrappers.zoo.publish.members`).

Two kinds of member:

- ``"sb3"``: the policy's ``state_dict`` as safetensors plus a JSON spec (algorithm, policy class name,
  ``policy_kwargs``, algorithm hyper-parameters). On load the names are resolved through allow-lists
  (:mod:`rqe_wrappers.zoo.sb3_spec`) into SB3's own classes (or this library's fixed ``RolePolicy``);
  the weights go in with ``load_state_dict(strict=True)``. Nothing is unpickled, and no name from a
  file is ever imported.
- ``"scripted"``: a name from the scripted-policy registry (:func:`rqe_wrappers.core.registry.make_scripted`),
  JSON kwargs, and optionally a safetensors file whose tensors are passed as ``arrays=``.

torch, SB3 and safetensors are imported only when a member is loaded. docs/zoo.md has the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np

from rqe_wrappers._compat import moved_names
from rqe_wrappers.core.spaces import check_spaces_alike
from rqe_wrappers.errors import ConfigError, PopulationError
from rqe_wrappers.zoo.files import (
    FLOAT_KINDS,
    NUMERIC_KINDS,
    aliases,
    check_safetensors_bytes,
    check_tensors,
    read_verified,
)
from rqe_wrappers.zoo.manifest import MemberEntry
from rqe_wrappers.zoo.sb3_spec import accepted_kwargs, algo_class, decode_policy_kwargs, policy_class
from rqe_wrappers.zoo.spaces import transposed_image

if TYPE_CHECKING:
    from rqe_wrappers.core.policy import Policy
    from rqe_wrappers.zoo.population import Population


def build_scripted(
    spec: Mapping[str, Any],
    observation_space: gym.Space | None,
    action_space: gym.Space | None,
    arrays: Mapping[str, np.ndarray] | None = None,
    who: str = "member",
    error: type[Exception] = PopulationError,
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
        path = self.population.path / self.entry.file
        data = read_verified(path, cast(str, self.entry.sha256))  # the manifest pairs file and sha256
        check_safetensors_bytes(data, str(path))
        return data

    def _sb3_spec(self) -> dict[str, Any]:
        if self.entry.sb3 is None:
            raise PopulationError(f"{self._who()} is a {self.kind} member; only sb3 members have an SB3 model")
        return self.entry.sb3

    def _scripted_spec(self) -> dict[str, Any]:
        if self.entry.scripted is None:
            raise PopulationError(f"{self._who()} is a {self.kind} member, not a scripted one")
        return self.entry.scripted

    def arrays(self) -> dict[str, np.ndarray] | None:
        """The member's tensors as numpy arrays (``None`` for scripted members without a file)."""
        if self.entry.file is None:
            return None
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            arrays = load(self._bytes())
        except SafetensorError as e:
            raise PopulationError(f"{self.file}: unreadable safetensors file ({e})") from None
        check_tensors(arrays, f"{self._who()} ({self.file})", kinds=NUMERIC_KINDS)
        return arrays

    def _state_dict(self) -> Any:
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            state = load(self._bytes())
        except SafetensorError as e:
            raise PopulationError(f"{self.file}: unreadable safetensors file ({e})") from None
        check_tensors(state, f"{self._who()} ({self.file})", kinds=FLOAT_KINDS)
        return state

    def _load_weights(self, module: Any) -> None:
        state = self._state_dict()
        for key, first in aliases(module.state_dict()).items():  # shared weights are stored once
            if key not in state and first in state:
                state[key] = state[first]
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise PopulationError(f"{self._who()}: the weights do not fit the policy its spec describes: {e}") from None

    def policy(self, *, deterministic: bool = False) -> Policy:
        """A :class:`rqe_wrappers.Policy` (an :class:`rqe_wrappers.sb3.SB3Policy` for sb3 members)."""
        if self.kind == "scripted":
            policy = build_scripted(
                self._scripted_spec(), self.observation_space, self.action_space, self.arrays(), self._who()
            )
            _check_built_spaces(policy, self.observation_space, self.action_space, self._who())
            return policy
        spec = self._sb3_spec()
        if spec["algo"] == "RecurrentPPO":
            raise PopulationError(
                f"{self._who()} is a RecurrentPPO policy and rqe_wrappers has no recurrent Policy adapter yet; "
                "use member.to_sb3() to get the model"
            )
        from rqe_wrappers.sb3 import SB3Policy

        policy_cls = policy_class(spec["algo"], spec["policy"])
        extra = {}
        if "use_sde" in accepted_kwargs(policy_cls):  # MaskablePPO's policies have no SDE
            extra["use_sde"] = bool(spec["algo_kwargs"].get("use_sde", False))
        net = policy_cls(
            self.observation_space,
            self.action_space,
            lambda _progress: 0.0,
            **extra,
            **decode_policy_kwargs(spec["policy_kwargs"]),
        )
        self._load_weights(net)
        env_space = self.population.observation_space  # the env's images, which SB3 transposed for the net
        declared = env_space if transposed_image(net.observation_space, env_space) else None
        return SB3Policy(net.to("cpu"), deterministic=deterministic, observation_space=declared)

    def to_sb3(self, env: Any = None, *, device: str = "auto", **algo_kwargs: Any) -> Any:
        """A stock SB3 model with this member's weights (sb3 members only).

        Without ``env`` the model can ``predict()``; call ``model.set_env(env)`` (one env) before
        ``learn()``, or pass ``env`` here (any number of envs; its spaces must match). Hyper-parameters
        come from the manifest; ``algo_kwargs`` override them. The optimizer state is not stored:
        continued training starts with a fresh optimizer.
        """
        if self.kind != "sb3":
            raise PopulationError(f"{self._who()} is a {self.kind} member; only sb3 members have an SB3 model")
        spec = self._sb3_spec()
        algo_cls = algo_class(spec["algo"])
        kwargs = {**spec["algo_kwargs"], **algo_kwargs}
        unknown = sorted(set(spec["algo_kwargs"]) - accepted_kwargs(algo_cls))
        if unknown:
            raise PopulationError(f"{self._who()}: {spec['algo']} does not take algo_kwargs {unknown}")
        policy_kwargs = decode_policy_kwargs(spec["policy_kwargs"])
        policy_cls = policy_class(spec["algo"], spec["policy"])
        if env is None:
            model = algo_cls(
                policy_cls, env=None, policy_kwargs=policy_kwargs, device=device, _init_setup_model=False, **kwargs
            )
            model.observation_space = self.observation_space
            model.action_space = self.action_space
            model.n_envs = 1
            model._setup_model()
        else:
            model = algo_cls(policy_cls, env, policy_kwargs=policy_kwargs, device=device, **kwargs)
            _check_built_spaces(model, self.observation_space, self.action_space, self._who())
        self._load_weights(model.policy)
        return model

    def __repr__(self) -> str:
        if self.entry.sb3 is not None:
            what = f"{self.entry.sb3['algo']}/{self.entry.sb3['policy']}"
        else:
            what = self._scripted_spec()["name"]
        return f"Member({self.name!r}, {self.kind}: {what})"


def _check_built_spaces(obj: Any, observation_space: gym.Space, action_space: gym.Space, who: str) -> None:
    """The manifest's spaces against those of what was built from it (a policy or an SB3 model)."""
    check_spaces_alike(
        [(who, obj.observation_space, obj.action_space)],
        lambda m: f"{who}: {m.kind} space mismatch: the manifest says {m.expected}, the built policy has {m.got}",
        reference=("the manifest", observation_space, action_space),
    )


_ZOO = "rqe_wrappers.zoo"
__getattr__ = moved_names(
    f"{_ZOO}.members",
    {
        **dict.fromkeys(
            ("NewMember", "member_from_sb3", "member_from_scripted", "encode_policy_kwargs"), f"{_ZOO}.publish.members"
        ),
        "sha256_file": f"{_ZOO}.files",
        "scripted_accepts_spaces": "rqe_wrappers.core.registry:accepts_spaces",
    },
)
