"""The background population of AHT as ``{name: Policy}``, from a mapping or a zoo population (docs/aht.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rqe_wrappers.core.policy import Policy


def population_policies(population: Any, env: Any = None) -> dict[str, Policy]:
    """``{name: Policy}`` from a mapping or from an object with ``.policies()`` (a zoo population).

    A zoo population is checked against every seat of ``env`` (``population.check_env``) from its
    manifest *before* its members' weights are loaded.
    """
    if population is None:
        return {}
    if callable(getattr(population, "policies", None)):
        if env is not None and callable(getattr(population, "check_env", None)):
            population.check_env(env, list(env.possible_agents))
        population = population.policies()
    if not isinstance(population, Mapping):
        raise TypeError(
            "population must be a {name: Policy} mapping or a zoo Population (with .policies()), "
            f"got {type(population).__name__}"
        )
    out = {}
    for name, policy in population.items():
        if not isinstance(policy, Policy):
            raise TypeError(f"population member {name!r}: expected a rqe_wrappers.Policy, got {type(policy).__name__}")
        out[str(name)] = policy
    return out
