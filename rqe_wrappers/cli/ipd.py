"""``rqe ipd``: the minimax-Bayes paper's IPD experiment (Table 2); options from IPDSweep + IPDSettings."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rqe_wrappers.cli.settings import (
    add_config_option,
    add_settings,
    deprecated_flag,
    read_config,
    settings_from_args,
)
from rqe_wrappers.experiments.ipd.settings import IPDSettings, IPDSweep


def _run(args: argparse.Namespace) -> int:
    from rqe_wrappers.experiments.ipd.driver import run_experiment

    read_config(args, IPDSweep, IPDSettings)
    sweep = settings_from_args(IPDSweep, args)
    settings = settings_from_args(IPDSettings, args)
    run_experiment(**asdict(sweep), settings=settings)
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe ipd``."""
    p = subparsers.add_parser(
        "ipd",
        help="the minimax-Bayes paper's IPD experiment (Table 2): MU/MR/PBR/SP/FP learners, exact evaluation",
        description="Train PPO learners with the paper's priors over seeds, evaluate them exactly on the training "
        "partners and the eps-perturbed test sets, write results.json, table.md and beta plots "
        "(docs/ipd-reproduction.md).",
    )
    add_config_option(p)
    add_settings(p, IPDSweep, title="the sweep over (prior, seed)")
    add_settings(p, IPDSettings, title="each learner: PPO and nature")
    deprecated_flag(p, "--workers", "--jobs", "jobs", type=int)
    deprecated_flag(p, "--lr", "--learning-rate", "learning_rate", type=float)
    p.set_defaults(func=_run, _prog=p.prog)
