"""Melting Pot's own scenarios as evaluation sets: an agent in each scenario's focal seats, its bots in the rest.

``evaluate_scenarios(agent, ["collaborative_cooking__circuit_0", ...])`` plays seeded episodes of each
scenario (:func:`~rqe_wrappers.envs.meltingpot.meltingpot_scenario_env`) with ``agent`` in every focal
seat and reports the focal per-capita return per episode (Melting Pot's own score), each
scenario's mean and the worst scenario. The bots need Melting Pot's saved models (docs/meltingpot.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rqe_wrappers.core.checks import is_integer
from rqe_wrappers.envs.meltingpot import meltingpot_scenario_env
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.agents import as_policy
from rqe_wrappers.eval.runner import play_seatings

__all__ = ["ScenarioResult", "evaluate_scenarios"]


@dataclass
class ScenarioResult:
    """Focal per-capita returns by scenario, one per episode (episode ``i`` of every scenario: seed ``seed + i``)."""

    returns: dict[str, list[float]]

    def means(self) -> dict[str, float]:
        return {s: float(np.mean(r)) for s, r in self.returns.items()}

    def worst(self) -> tuple[str, float]:
        """The scenario with the lowest mean focal per-capita return, and that mean."""
        name = min(self.means().items(), key=lambda kv: kv[1])[0]
        return name, self.means()[name]

    def table(self) -> list[dict[str, Any]]:
        """One row per scenario: its mean, standard error and episodes."""
        return [
            {
                "scenario": s,
                "focal_per_capita_return": float(np.mean(r)),
                "stderr": float(np.std(r, ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float("nan"),
                "episodes": len(r),
            }
            for s, r in self.returns.items()
        ]


def evaluate_scenarios(
    agent: Any,
    scenarios: Sequence[str],
    *,
    episodes: int = 8,
    seed: int = 0,
    n_workers: int = 0,
    batch: int = 4,
    progress: bool = False,
) -> ScenarioResult:
    """``agent`` (a :class:`~rqe_wrappers.core.policy.Policy`, an SB3 model or a scripted name; see
    :func:`~rqe_wrappers.eval.agents.as_policy`) in the focal seats of each of ``scenarios``.

    ``batch``: episodes played in lock-step per job (each holds its own Melting Pot world and bots);
    ``n_workers``: worker processes (results do not depend on it).
    """
    if isinstance(scenarios, str) or not scenarios or not all(isinstance(s, str) for s in scenarios):
        raise ConfigError(f"scenarios must be a non-empty list of Melting Pot scenario names, got {scenarios!r}")
    for name, value in (("episodes", episodes), ("batch", batch)):
        if not is_integer(value) or int(value) < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    out: dict[str, list[float]] = {}
    for scenario in scenarios:
        make = functools.partial(meltingpot_scenario_env, scenario)
        env = make()
        seats = list(env.possible_agents)
        policy = as_policy(agent, env.observation_space(seats[0]), env.action_space(seats[0]), who="agent")
        env.close()
        stats = play_seatings(
            make,
            {"agent": dict.fromkeys(seats, policy)},
            {},
            [dict.fromkeys(seats, "agent")],
            int(episodes),
            seed=seed,
            batch=int(batch),
            n_workers=n_workers,
            progress=progress,
        )[0]
        out[scenario] = [float(np.mean([e.returns[s] for s in seats])) for e in stats]
    return ScenarioResult(out)
