"""Scripted policies by name: ``"ipd/tit-for-tat"`` -> ``"module:factory"`` (Gymnasium's entry points).

The registry holds strings and imports a factory only when :func:`make_scripted` first needs it, so
the interface never imports an implementation. The zoo refers to scripted members by these names.

Example:
    >>> from rqe_wrappers.core.registry import make_scripted
    >>> make_scripted("ipd/tit-for-tat", rounds=2)
    TitForTat('ipd/tit-for-tat', rounds=2)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import ConfigError

Factory = Callable[..., Policy]


@dataclass(frozen=True)
class ScriptedSpec:
    """One registered scripted policy: where its factory lives and the keyword arguments it is bound to."""

    name: str
    entry_point: str | Factory
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def factory(self) -> Factory:
        """The factory, imported on first use."""
        if callable(self.entry_point):
            return self.entry_point
        module, _, attr = self.entry_point.partition(":")
        factory: Factory = getattr(importlib.import_module(module), attr)
        return factory


_IPD = "rqe_wrappers.partners.ipd"
_TAG = "rqe_wrappers.partners.tag"
_REGISTRY: dict[str, ScriptedSpec] = {}


def register_scripted(
    name: str, entry_point: str | Factory | None = None, *, kwargs: Mapping[str, Any] | None = None
) -> Any:
    """Register ``name`` -> ``entry_point`` (``"module:attr"`` or a callable), with ``kwargs`` bound.

    Without ``entry_point`` it is a decorator for the factory below it. Registering a name twice raises.
    """
    if entry_point is None:

        def deco(factory: Factory) -> Factory:
            register_scripted(name, factory, kwargs=kwargs)
            return factory

        return deco
    if not isinstance(name, str) or "/" not in name:
        raise ConfigError(f"scripted policy names look like 'family/name', got {name!r}")
    if isinstance(entry_point, str) and entry_point.count(":") != 1:
        raise ConfigError(f"entry point must be 'module:attr', got {entry_point!r}")
    if name in _REGISTRY:
        raise ConfigError(f"scripted policy {name!r} is registered twice")
    _REGISTRY[name] = ScriptedSpec(name, entry_point, dict(kwargs or {}))
    return None


def scripted_spec(name: str) -> ScriptedSpec:
    """The registration of ``name``; :class:`ConfigError` listing the known names if there is none."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"unknown scripted policy {name!r}; known: {scripted_names()}")
    return spec


def make_scripted(name: str, **kwargs: Any) -> Policy:
    """Build a registered scripted policy, e.g. ``make_scripted("ipd/tit-for-tat", rounds=3)``."""
    spec = scripted_spec(name)
    return spec.factory()(**{**spec.kwargs, **kwargs})


def accepts_spaces(name: str) -> bool:
    """Whether the factory of ``name`` takes ``observation_space`` and ``action_space`` arguments."""
    spec = _REGISTRY.get(name)
    if spec is None:
        return False
    try:
        params = inspect.signature(spec.factory()).parameters
    except (TypeError, ValueError):
        return False
    return "observation_space" in params and "action_space" in params


def scripted_names() -> list[str]:
    """Names of all registered scripted policies."""
    return sorted(_REGISTRY)


# ---- the library's own scripted partners ---------------------------------------------------------
for _partner in (
    "always-cooperate",
    "always-defect",
    "tit-for-tat",
    "tat-for-tit",
    "tit-for-tat-d",
    "tat-for-tit-d",
    "cooperate-until-defected",
    "defect-until-cooperated",
    "random",
):
    register_scripted(f"ipd/{_partner}", f"{_IPD}:make_partner", kwargs={"name": f"ipd/{_partner}"})
register_scripted("ipd/table", f"{_IPD}:make_table")
register_scripted("tag/greedy-chaser", f"{_TAG}:greedy_chaser")
register_scripted("tag/evasive-runner", f"{_TAG}:evasive_runner")
register_scripted("tag/still", f"{_TAG}:still")
