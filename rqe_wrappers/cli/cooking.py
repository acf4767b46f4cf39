"""``rqe cooking sweep``: the SRPO paper's cooking gridworld, IPPO vs SRPO over seeds and tau (docs/results/srpo.md)."""

from __future__ import annotations

import argparse

from rqe_wrappers.cli.settings import add_config_option, add_settings, read_config, settings_from_args
from rqe_wrappers.experiments.cooking import COOKING_PPO, CookingSweep, run_cooking
from rqe_wrappers.experiments.settings import PPOSettings


def _sweep(args: argparse.Namespace) -> int:
    read_config(args, CookingSweep, PPOSettings)
    sweep = settings_from_args(CookingSweep, args)
    settings = settings_from_args(PPOSettings, args, defaults=COOKING_PPO)
    run_cooking(sweep, settings)
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe cooking sweep``."""
    p = subparsers.add_parser(
        "cooking",
        help="the SRPO paper's cooking gridworld: IPPO vs SRPO, cross-play, free-riding (docs/results/srpo.md)",
        description="The SRPO paper's cooking gridworld (appendix D.2) on the batched path.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser(
        "sweep",
        help="train an agent per (tau, seed), then cross-play them on every layout",
        description="Train IPPO (tau = 0) / SRPO agents for every (tau, seed) on the batched path, then "
        "cross-play all of them on each layout; writes models, results.json, cross-play tables, "
        "heatmaps and the tau-sweep figure to --out.",
    )
    add_config_option(s)
    add_settings(s, CookingSweep, title="runs")
    add_settings(s, PPOSettings, defaults=COOKING_PPO, title="PPO of each agent")
    s.set_defaults(func=_sweep, _prog=s.prog)
