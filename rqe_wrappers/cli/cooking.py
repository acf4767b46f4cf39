"""``rqe cooking sweep``: the SRPO paper's cooking gridworld, IPPO vs SRPO over seeds and tau (docs/results/srpo.md)."""

from __future__ import annotations

from rqe_wrappers.cli.settings import add_sweep_command
from rqe_wrappers.experiments.cooking import COOKING_PPO, CookingSweep, run_cooking


def add_parser(subparsers) -> None:
    """Register ``rqe cooking sweep``."""
    p = subparsers.add_parser(
        "cooking",
        help="the SRPO paper's cooking gridworld: IPPO vs SRPO, cross-play, free-riding (docs/results/srpo.md)",
        description="The SRPO paper's cooking gridworld (appendix D.2) on the batched path.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    add_sweep_command(
        sub,
        "sweep",
        help="train an agent per (tau, seed), then cross-play them on every layout",
        description="Train IPPO (tau = 0) / SRPO agents for every (tau, seed) on the batched path, then "
        "cross-play all of them on each layout; writes models, results.json, summary.md, cross-play tables, "
        "heatmaps and the tau-sweep figure to --out.",
        sweep=CookingSweep,
        ppo_defaults=COOKING_PPO,
        ppo_title="PPO of each agent",
        run=run_cooking,
    )
