"""``rqe hanabi sweep``: the SRPO paper's Hanabi (3x3, 2 or 4 players); options from HanabiSweep + PPOSettings."""

from __future__ import annotations

import argparse

from rqe_wrappers.cli.settings import add_config_option, add_settings, read_config, settings_from_args
from rqe_wrappers.experiments.hanabi.driver import HanabiSweep, run_sweep
from rqe_wrappers.experiments.hanabi.training import HANABI_PPO
from rqe_wrappers.experiments.settings import PPOSettings


def _sweep(args: argparse.Namespace) -> int:
    read_config(args, HanabiSweep, PPOSettings)
    sweep = settings_from_args(HanabiSweep, args)
    settings = settings_from_args(PPOSettings, args, defaults=HANABI_PPO)
    run_sweep(sweep, settings)
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe hanabi sweep``."""
    p = subparsers.add_parser(
        "hanabi",
        help="the SRPO paper's Hanabi (3 colours x 3 ranks): SRPO/IPPO with MaskablePPO, cross-play (docs/hanabi.md)",
        description="The SRPO paper's Hanabi (appendix D.4) on OpenSpiel through shimmy.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser(
        "sweep",
        help="train one learner per (tau, seed), then cross-play all of them",
        description="Train MaskablePPO learners for every (tau, seed) through the turn-based path, save them, "
        "cross-play them (seats both ways; 4 players: the pair alternates around the table) and write "
        "results.json, crossplay.csv/json and the heatmap to --out.",
    )
    add_config_option(s)
    add_settings(s, HanabiSweep, title="runs")
    add_settings(s, PPOSettings, defaults=HANABI_PPO, title="MaskablePPO of each learner")
    s.set_defaults(func=_sweep, _prog=s.prog)
