"""The minimax-Bayes paper's iterated prisoner's dilemma (section 8.1, Table 2) with stock SB3 PPO.

One PPO learner per (prior, seed) is trained through :func:`~rqe_wrappers.aht.wrapper.aht_wrap`
and :class:`~rqe_wrappers.sb3.AHTCallback` with one of the paper's five ways of choosing partners:

====  ===================  ===================================================================
MU    ``maximin-utility``  nature descends on utility over the 9 partners + self-play
MR    ``minimax-regret``   nature ascends on regret, with the *exact* best response per scenario
                           (:func:`~rqe_wrappers.partners.ipd.best_response_value`; ``4 * rounds``
                           for self-play, :func:`~rqe_wrappers.partners.ipd.self_play_best_value`)
PBR   ``uniform``          uniform over the same 10 scenarios (population best response)
SP    ``self-play``        only the self-play scenario
FP    ``fictitious-play``  uniform over a reservoir of the learner's past snapshots
====  ===================  ===================================================================

Evaluation is exact (no sampling): the trained policy is tabulated over the 21 histories of the
3-round game (its softmax probabilities, i.e. the *stochastic* policy the paper learns; the greedy
policy is reported too), then :func:`~rqe_wrappers.partners.ipd.expected_return` gives its utility
against every training partner and in self-play (the mean of both seats' returns, the
focal-per-capita utility) and against every partner of the eps-perturbed test sets
(:func:`test_partners`: 512 per width ``w``, built from :data:`TEST_SEED`). Regret = exact best
response value - utility. As in the paper's Table 2 every set of scenarios also holds the
self-play scenario: train = 9 partners + self-play (10 scenarios), test = 512 perturbed partners
+ self-play (513).

Modules: ``settings`` (priors, :class:`IPDSettings`, :class:`IPDSweep`), ``evaluation`` (exact
scoring), ``training`` (one learner), ``report`` (summary, table, figures), ``driver``
(:func:`run_experiment`). Command line: ``rqe ipd --priors MU MR PBR SP FP --seeds 0 1 2 --steps
200000 --jobs 15 --out runs/ipd`` (see ``docs/ipd-reproduction.md``). SB3 and torch are imported
only inside the functions that train.
"""

from __future__ import annotations

from rqe_wrappers._compat import moved_names
from rqe_wrappers.experiments.ipd.driver import run_experiment
from rqe_wrappers.experiments.ipd.evaluation import (
    as_table,
    evaluate_policy,
    reference_rows,
    test_partners,
    train_best_responses,
    train_scenarios,
)
from rqe_wrappers.experiments.ipd.report import average_beta_logs, format_table, plot_betas, plot_widths, summarize
from rqe_wrappers.experiments.ipd.settings import (
    FORMAT,
    METRICS,
    PAPER_TABLE2,
    PRIORS,
    TABLE_WIDTH,
    TEST_SEED,
    IPDSettings,
    IPDSweep,
    prior_abbrev,
    prior_name,
)
from rqe_wrappers.experiments.ipd.training import LOG_DIR, make_env_fn, run_one, train_learner

__all__ = [
    "FORMAT",
    "LOG_DIR",
    "METRICS",
    "PAPER_TABLE2",
    "PRIORS",
    "TABLE_WIDTH",
    "TEST_SEED",
    "IPDSettings",
    "IPDSweep",
    "as_table",
    "average_beta_logs",
    "evaluate_policy",
    "format_table",
    "make_env_fn",
    "plot_betas",
    "plot_widths",
    "prior_abbrev",
    "prior_name",
    "reference_rows",
    "run_experiment",
    "run_one",
    "summarize",
    "test_partners",
    "train_best_responses",
    "train_learner",
    "train_scenarios",
]


__getattr__ = moved_names(__name__, {"add_parser": "rqe_wrappers.cli.ipd"})
