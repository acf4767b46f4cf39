"""Exact IPD evaluation: training scenarios, perturbed test sets, a learner tabulated and scored."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import FunctionPolicy, Policy
from rqe_wrappers.core.registry import make_scripted
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.envs.ipd import DEFAULT_ROUNDS, check_rounds, observation_space
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.ipd.settings import TEST_SEED
from rqe_wrappers.partners.ipd import (
    PERTURBATION_WIDTHS,
    PERTURBED_COUNT,
    IPDTablePolicy,
    best_response_value,
    expected_return,
    perturbed_partners,
    self_play_best_value,
    training_partners,
)


def train_scenarios(rounds: int = DEFAULT_ROUNDS) -> dict[str, Policy | None]:
    """The training scenarios in nature's order: ``{"c1:ipd/<partner>": partner, ..., "c2": None}``."""
    out: dict[str, Policy | None] = {f"c1:{name}": p for name, p in training_partners(rounds).items()}
    out["c2"] = None  # self-play
    return out


def train_best_responses(rounds: int = DEFAULT_ROUNDS) -> dict[str, float]:
    """Exact best-response utility of every training scenario (scenario id -> value)."""
    return {
        sid: (self_play_best_value(rounds) if p is None else best_response_value(p, rounds))
        for sid, p in train_scenarios(rounds).items()
    }


def test_partners(
    w: float, count: int = PERTURBED_COUNT, rounds: int = DEFAULT_ROUNDS, seed: int = TEST_SEED
) -> list[IPDTablePolicy]:
    """The eps-perturbed test partners of width ``w``, from ``stream(seed, f"ipd/test/w={w:g}")``.

    Draws are sequential, so the first ``k`` partners of ``count >= k`` are the ``count = k`` set
    (the zoo recipe ``zoo/ipd-test-partners`` publishes the first 64 of each width).
    """
    return perturbed_partners(training_partners(rounds), w, count, rounds, rng=stream(seed, f"ipd/test/w={w:g}"))


@functools.lru_cache(maxsize=64)
def _test_set(w: float, count: int, rounds: int, seed: int) -> tuple[list[IPDTablePolicy], np.ndarray]:
    partners = test_partners(w, count, rounds, seed)
    return partners, np.array([best_response_value(p, rounds) for p in partners])


def as_table(policy: Any, rounds: int = DEFAULT_ROUNDS, *, greedy: bool = False) -> IPDTablePolicy:
    """Tabulate a learner: an SB3 model, an :class:`~rqe_wrappers.sb3.SB3Policy`, or any discrete
    IPD :class:`~rqe_wrappers.core.policy.Policy` with ``action_probs``.

    ``greedy=True`` takes the most likely action in every history (ties: cooperate).
    """
    if hasattr(policy, "policy") and hasattr(policy, "learn"):  # an SB3 model
        from rqe_wrappers.sb3.sb3_policy import SB3Policy

        policy = SB3Policy.from_model(policy)
    if not callable(getattr(policy, "action_probs", None)):
        raise ConfigError(f"cannot tabulate {type(policy).__name__}: it has no action_probs")
    # SB3Policy is not a DiscretePolicy; a FunctionPolicy over its action_probs is.
    fn = FunctionPolicy(observation_space(rounds), gym.spaces.Discrete(2), lambda obs: policy.action_probs(obs))
    table = IPDTablePolicy.from_policy(fn, rounds, name=f"table({getattr(policy, 'name', type(policy).__name__)})")
    if greedy:
        table = IPDTablePolicy((table.table > 0.5).astype(np.float64), rounds, name=table.name + "-greedy")
    return table


def _summary(utilities: np.ndarray, best: np.ndarray, ids: Sequence[str]) -> dict[str, Any]:
    regrets = best - utilities
    return {
        "mean_utility": float(utilities.mean()),
        "worst_utility": float(utilities.min()),
        "worst_regret": float(regrets.max()),
        "worst_utility_scenario": ids[int(utilities.argmin())],
        "worst_regret_scenario": ids[int(regrets.argmax())],
        "n_scenarios": len(utilities),
    }


def evaluate_policy(
    policy: Any,
    rounds: int = DEFAULT_ROUNDS,
    *,
    widths: Sequence[float] = PERTURBATION_WIDTHS,
    test_count: int = PERTURBED_COUNT,
    test_seed: int = TEST_SEED,
) -> dict[str, Any]:
    """Exact Table-2 metrics of one learner (SB3 model or discrete IPD policy; tabulated first).

    Returns ``{"train": {...}, "test": {"<w>": {...}}, "utilities": {scenario id: u},
    "self_play": u}``. Each metric block has ``mean_utility``, ``worst_utility``, ``worst_regret``
    (over the scenarios: 9 partners + self-play for train; ``test_count`` perturbed partners +
    self-play for each test width), the scenarios where the worst cases occur, and ``n_scenarios``.
    """
    rounds = check_rounds(rounds)
    table = policy if isinstance(policy, IPDTablePolicy) else as_table(policy, rounds)
    scen = train_scenarios(rounds)
    best = train_best_responses(rounds)
    self_play = float(np.mean(expected_return(table, table, rounds)))
    u = {sid: (self_play if p is None else expected_return(table, p, rounds)[0]) for sid, p in scen.items()}
    ids = list(scen)
    out: dict[str, Any] = {
        "train": _summary(np.array([u[i] for i in ids]), np.array([best[i] for i in ids]), ids),
        "utilities": u,
        "self_play": self_play,
        "test": {},
    }
    for w in widths:
        partners, brs = _test_set(float(w), int(test_count), rounds, int(test_seed))
        tu = np.array([expected_return(table, p, rounds)[0] for p in partners] + [self_play])
        tb = np.append(brs, self_play_best_value(rounds))
        out["test"][f"{float(w):g}"] = _summary(tu, tb, [p.name for p in partners] + ["c2"])
    return out


def reference_rows(rounds: int, widths: Sequence[float], test_count: int, test_seed: int) -> dict[str, Any]:
    """Scripted learners evaluated with the same code (no training): the paper's "Random" row."""
    rnd = make_scripted("ipd/random", rounds=rounds)
    return {"Random": evaluate_policy(rnd, rounds, widths=widths, test_count=test_count, test_seed=test_seed)}
