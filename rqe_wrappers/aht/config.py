"""Every setting of minimax-Bayes ad hoc teamwork in one frozen, validated value (see docs/aht.md)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rqe_wrappers.aht.nature import PRIORS, STEPS, Nature
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.core.checks import integer, is_real, real
from rqe_wrappers.errors import ConfigError

FICTITIOUS_PLAY = "fictitious-play"
SELF_PLAY = "self-play"
#: priors that AHTCallback moves during training (the others are fixed)
ADAPTIVE = ("maximin-utility", "minimax-regret", FICTITIOUS_PLAY)


#: most fictitious-play slots: each keeps a full copy of the policy and is one scenario of nature
MAX_FP_CAPACITY = 1024


def _number(name: str, value: Any) -> float:
    if not is_real(value):
        raise ConfigError(f"{name} must be a number (int or float, not bool or str), got {value!r}")
    return float(value)


def _name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field} must be a non-empty string, got {value!r}")
    return value


def _best_responses(value: Any) -> tuple[float, ...] | dict[str, float] | None:
    if value is None:
        return None
    out: tuple[float, ...] | dict[str, float]
    if isinstance(value, Mapping):
        by_id: dict[str, float] = {}
        for sid, v in value.items():
            if not isinstance(sid, str):
                raise ConfigError(f"best_responses by scenario id needs string ids (e.g. 'c1:helper'), got {sid!r}")
            by_id[sid] = _number(f"best_responses[{sid!r}]", v)
        out, values = by_id, list(by_id.values())
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        if isinstance(value, np.ndarray) and value.ndim != 1:
            raise ConfigError(
                f"best_responses must be a flat sequence, one utility per scenario; got shape {value.shape}"
            )
        out = tuple(_number(f"best_responses[{i}]", v) for i, v in enumerate(value))
        values = list(out)
    else:
        raise ConfigError(
            f"best_responses must be a sequence in scenario order or {{scenario id: value}}, got {type(value).__name__}"
        )
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"best_responses must be finite; bad entries at positions {bad}")
    return out


@dataclass(frozen=True, kw_only=True)
class AHTConfig:
    """The settings of minimax-Bayes AHT, validated on construction; see :func:`~rqe_wrappers.aht.wrapper.aht_wrap`.

    Args:
        prior: one of :data:`rqe_wrappers.aht.nature.PRIORS`.
        lr: nature's step size, in units of 1/utility (> 0).
        uniform_mix: probability of sampling a uniform scenario instead of one from the learned
            prior, in ``[0, 1)`` (the paper's eps; only the learned priors mix).
        best_responses: best-response utility per scenario (for ``"minimax-regret"``), in scenario
            order or as ``{scenario id: value}``; ``None`` uses the best utility seen so far.
        nature_step: ``"projected"`` or ``"exponentiated"`` (see :class:`~rqe_wrappers.aht.nature.Nature`).
        focal_name: the agent name of the learning seat in the wrapped env.
        snapshot_name: the shared snapshot that plays the other focal copies.
        fp_capacity: with ``prior="fictitious-play"``, how many past snapshots are kept (slots).
        fp_focal: with ``prior="fictitious-play"``, the past snapshot plays the other seats as
            *focal* players and the learner is paid the focal-per-capita return, as in self-play
            (the paper's fictitious play; scenarios ``c<n>@fp/<k>``). ``False``: as *background*
            partners, the learner paid its own return (scenarios ``c1:fp/<k>``, the only kind
            before 0.3).
        max_scenarios: refuse to enumerate more scenarios than this (see :meth:`ScenarioSet.all`).

    Example:
        >>> config = AHTConfig(prior="minimax-regret", lr=0.01, uniform_mix=0.1)
        >>> AHTConfig.from_dict(config.to_dict()) == config
        True
        >>> config.make_nature(3).beta.round(3)
        array([0.333, 0.333, 0.333])
    """

    prior: str = "maximin-utility"
    lr: float = 0.5
    uniform_mix: float = 0.05
    best_responses: tuple[float, ...] | dict[str, float] | None = None
    nature_step: str = "projected"
    focal_name: str = "focal"
    snapshot_name: str = "learner"
    fp_capacity: int = 16
    fp_focal: bool = True
    max_scenarios: int | None = None

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ConfigError(f"unknown prior {self.prior!r}; known priors: {', '.join(PRIORS)}")
        lr = _number("lr", self.lr)
        if not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"lr (nature's step size) must be a finite number > 0, got {lr}")
        mix = real(
            "uniform_mix", self.uniform_mix, low=0, high=1, high_open=True, hint="the probability of a uniform scenario"
        )
        if self.nature_step not in STEPS:
            raise ConfigError(f"unknown nature_step {self.nature_step!r}; known: {', '.join(STEPS)}")
        cap = integer(
            "fp_capacity",
            self.fp_capacity,
            low=1,
            high=MAX_FP_CAPACITY,
            expected=f"must be an integer >= 1 and <= {MAX_FP_CAPACITY}",
            hint="past snapshots kept, each a full policy copy and a scenario; MAX_FP_CAPACITY in aht/config.py",
        )
        if not isinstance(self.fp_focal, (bool, np.bool_)):
            raise ConfigError(f"fp_focal must be True or False, got {self.fp_focal!r}")
        most = self.max_scenarios
        if most is not None:
            most = integer("max_scenarios", most, low=1, hint="or None for no limit")
        for key, value in (
            ("lr", lr),
            ("uniform_mix", mix),
            ("best_responses", _best_responses(self.best_responses)),
            ("focal_name", _name("focal_name", self.focal_name)),
            ("snapshot_name", _name("snapshot_name", self.snapshot_name)),
            ("fp_capacity", cap),
            ("fp_focal", bool(self.fp_focal)),
            ("max_scenarios", most),
        ):
            object.__setattr__(self, key, value)

    def __hash__(self) -> int:  # best_responses may be a dict
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    # ---- plain data ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; :meth:`from_dict` gives back an equal config."""
        out = dataclasses.asdict(self)
        br = self.best_responses
        out["best_responses"] = None if br is None else (dict(br) if isinstance(br, dict) else list(br))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AHTConfig:
        """The config of :meth:`to_dict` (missing keys take their defaults; ``"eps"`` of 0.1 states is read)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"an AHTConfig dict must be a mapping, got {type(data).__name__}")
        data = dict(data)
        if "eps" in data:  # written before uniform_mix had its name
            if "uniform_mix" in data:
                raise ConfigError("an AHTConfig dict has both 'eps' (the old name) and 'uniform_mix'; keep one")
            data["uniform_mix"] = data.pop("eps")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown AHTConfig keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_arguments(cls, config: AHTConfig | None = None, **settings: Any) -> AHTConfig:
        """``config``, or a config from the ``settings`` that are not ``None`` (not both)."""
        given = {k: v for k, v in settings.items() if v is not None}
        if config is None:
            return cls(**given)
        if not isinstance(config, AHTConfig):
            raise TypeError(f"config must be an AHTConfig, got {type(config).__name__}")
        if given:
            raise ConfigError(
                f"got config= and the settings {sorted(given)}; pass one or the other "
                "(e.g. config=dataclasses.replace(config, lr=...))"
            )
        return config

    # ---- against a scenario set --------------------------------------------------------------------
    def best_responses_for(self, scenarios: ScenarioSet | int) -> list[float] | None:
        """:attr:`best_responses` in scenario order (a mapping must cover exactly the scenario ids)."""
        br = self.best_responses
        if not isinstance(br, dict):
            return None if br is None else list(br)
        if not isinstance(scenarios, ScenarioSet):
            raise ConfigError("best_responses by scenario id needs the ScenarioSet, not just a scenario count")
        unknown = sorted(set(br) - set(scenarios.ids))
        lacking = [i for i in scenarios.ids if i not in br]
        if unknown or lacking:
            raise ConfigError(
                f"best_responses by scenario id must cover exactly the scenarios: unknown {unknown}, missing {lacking}"
            )
        return [br[i] for i in scenarios.ids]

    def resolved(self, scenarios: ScenarioSet) -> AHTConfig:
        """This config with :attr:`best_responses` as a sequence in ``scenarios``' order."""
        br = self.best_responses_for(scenarios)
        return dataclasses.replace(self, best_responses=None if br is None else tuple(br))

    def make_nature(self, scenarios: ScenarioSet | int) -> Nature:
        """A fresh :class:`~rqe_wrappers.aht.nature.Nature` over ``scenarios`` (a set, or their count)."""
        if isinstance(scenarios, ScenarioSet):
            n = len(scenarios)
        elif isinstance(scenarios, (int, np.integer)) and not isinstance(scenarios, bool):
            n = int(scenarios)
        else:
            raise TypeError(f"scenarios must be a ScenarioSet or a scenario count, got {type(scenarios).__name__}")
        self_play = None
        if self.prior == SELF_PLAY:
            if not isinstance(scenarios, ScenarioSet):
                raise ConfigError("prior 'self-play' needs the ScenarioSet (to find self-play in it), not a count")
            self_play = scenarios.self_play_index
            if self_play is None:
                raise ConfigError(
                    f"prior 'self-play' needs the self-play scenario 'c{scenarios.n_seats}' in the scenario set"
                )
        br = self.best_responses_for(scenarios)
        return Nature(
            n,
            self.prior,
            lr=self.lr,
            uniform_mix=self.uniform_mix,
            best_responses=None if br is None else np.array(br, dtype=np.float64),
            self_play_scenario=self_play,
            step=self.nature_step,
        )


# ---- what the wrapper hands the callback (AHTWrapper.aht_config) --------------------------------------
def aht_config_dict(config: AHTConfig, scenarios: ScenarioSet, fp_members: Mapping[str, str]) -> dict[str, Any]:
    """Plain data the callback reads with ``get_attr("aht_config")``: the config, scenarios and FP slots."""
    return {**config.to_dict(), "scenarios": scenarios.to_dict(), "fp_members": dict(fp_members)}


def parse_aht_config(data: Mapping[str, Any]) -> tuple[AHTConfig, ScenarioSet, dict[str, str]]:
    """``(config, scenarios, fp_members)`` from :func:`aht_config_dict` (or a 0.1 saved state's ``"config"``)."""
    if not isinstance(data, Mapping) or "scenarios" not in data:
        raise ConfigError("not an aht_config dict (no 'scenarios'); it is made by AHTWrapper.aht_config")
    rest = {k: v for k, v in data.items() if k not in ("scenarios", "fp_members")}
    return AHTConfig.from_dict(rest), ScenarioSet.from_dict(data["scenarios"]), dict(data.get("fp_members") or {})
