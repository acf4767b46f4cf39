"""Stock SB3 PPO settings shared by the experiments: a frozen, validated, JSON-able dataclass.

Its fields (with their help texts) are also the command-line options of ``rqe ipd`` and ``rqe tag``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rqe_wrappers.core.checks import is_integer
from rqe_wrappers.errors import ConfigError


def setting(default: Any, help: str, **metadata: Any) -> Any:
    """A settings field: its default and the help text the command line shows (``rqe_wrappers.cli.settings``)."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class PPOSettings:
    """Stock SB3 PPO settings, plus how many env copies feed it.

    ``n_copies`` env copies make ``n_copies * learning seats`` SB3 slots; one rollout is
    ``slots * n_steps`` agent-steps. ``n_workers > 0`` steps the copies in that many subprocesses
    (worth it only with spare cores). Experiments subclass it to add their own fields.
    """

    n_copies: int = setting(16, "env copies stepped together (each gives one SB3 slot per learning seat)")
    n_steps: int = setting(128, "PPO n_steps: steps per SB3 slot per rollout")
    batch_size: int = setting(512, "PPO minibatch size")
    n_epochs: int = setting(10, "PPO epochs per rollout")
    learning_rate: float = setting(3e-4, "PPO learning rate")
    gamma: float = setting(0.99, "discount factor")
    gae_lambda: float = setting(0.95, "GAE lambda")
    ent_coef: float = setting(0.01, "PPO entropy coefficient")
    clip_range: float = setting(0.2, "PPO clip range")
    net_arch: tuple[int, ...] = setting((64, 64), "hidden layer sizes of the policy and value MLPs")
    n_workers: int = setting(0, "subprocesses stepping the env copies (0 = in this process)")

    def __post_init__(self):
        who = type(self).__name__
        for name in ("n_copies", "n_steps", "batch_size", "n_epochs"):
            _check_int(self, name, 1)
        _check_int(self, "n_workers", 0, "(0 = in-process)")
        for name in ("learning_rate", "clip_range"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{who}.{name} must be > 0, got {getattr(self, name)!r}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ConfigError(f"need 0 < gamma <= 1 and 0 <= gae_lambda <= 1, got {self.gamma}, {self.gae_lambda}")
        if self.ent_coef < 0:
            raise ConfigError(f"{who}.ent_coef must be >= 0, got {self.ent_coef}")
        arch = tuple(self.net_arch)
        if not arch or any(not is_integer(h) or h < 1 for h in arch):
            raise ConfigError(f"{who}.net_arch must be hidden-layer sizes >= 1, e.g. (64, 64); got {self.net_arch!r}")
        object.__setattr__(self, "net_arch", tuple(int(h) for h in arch))

    def ppo_kwargs(self, policy_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO`` (without env, seed, device); ``policy_kwargs``
        are added to the settings' own (e.g. a CNN's ``features_extractor_kwargs``)."""
        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "ent_coef": self.ent_coef,
            "clip_range": self.clip_range,
            "policy_kwargs": {"net_arch": list(self.net_arch), **(policy_kwargs or {})},
        }

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["net_arch"] = list(self.net_arch)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]):
        return cls(**{**d, "net_arch": tuple(d["net_arch"])})


def _check_int(obj, name: str, minimum: int, note: str = "") -> None:
    v = getattr(obj, name)
    if not is_integer(v) or v < minimum:
        note = f" {note}" if note else ""
        raise ConfigError(f"{type(obj).__name__}.{name} must be an integer >= {minimum}{note}, got {v!r}")
