"""Evaluation: cross-play, held-out populations and the robustness audit (docs/evaluation.md)."""

from rqe_wrappers.eval.agents import Agent, as_policy
from rqe_wrappers.eval.crossplay import CrossPlayResult, crossplay, read_crossplay
from rqe_wrappers.eval.population import PopulationResult, evaluate_population
from rqe_wrappers.eval.robustness import (
    DEFAULT_TAUS,
    RobustnessCurve,
    RobustnessReport,
    TrainedBudget,
    audit_agent,
    robust_return,
    robustness_audit,
)
from rqe_wrappers.eval.stats import bootstrap_ci, iqm, normalized, summarize_crossplay

__all__ = [
    "DEFAULT_TAUS",
    "Agent",
    "CrossPlayResult",
    "PopulationResult",
    "RobustnessCurve",
    "RobustnessReport",
    "TrainedBudget",
    "as_policy",
    "audit_agent",
    "bootstrap_ci",
    "crossplay",
    "evaluate_population",
    "iqm",
    "normalized",
    "read_crossplay",
    "robust_return",
    "robustness_audit",
    "summarize_crossplay",
]
