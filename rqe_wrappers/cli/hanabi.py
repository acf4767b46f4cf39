"""``rqe hanabi sweep``: the SRPO paper's Hanabi (3x3, 2 or 4 players); options from HanabiSweep + PPOSettings."""

from __future__ import annotations

from rqe_wrappers.cli.settings import add_sweep_command
from rqe_wrappers.experiments.hanabi.driver import HanabiSweep, run_sweep
from rqe_wrappers.experiments.hanabi.training import HANABI_PPO


def add_parser(subparsers) -> None:
    """Register ``rqe hanabi sweep``."""
    p = subparsers.add_parser(
        "hanabi",
        help="the SRPO paper's Hanabi (3 colours x 3 ranks): SRPO/IPPO with MaskablePPO, cross-play (docs/hanabi.md)",
        description="The SRPO paper's Hanabi (appendix D.4) on OpenSpiel through shimmy.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    add_sweep_command(
        sub,
        "sweep",
        help="train one learner per (tau, seed), then cross-play all of them",
        description="Train MaskablePPO learners for every (tau, seed) through the turn-based path, save them, "
        "cross-play them (seats both ways; 4 players: the pair alternates around the table) and write "
        "results.json, crossplay.csv/json and the heatmap to --out.",
        sweep=HanabiSweep,
        ppo_defaults=HANABI_PPO,
        ppo_title="MaskablePPO of each learner",
        run=run_sweep,
    )
