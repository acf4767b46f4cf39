"""``rqe tag train-runners`` and ``rqe tag srpo``: the SRPO paper's Tag; options from the sweeps + PPOSettings."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rqe_wrappers.cli.settings import add_config_option, add_settings, read_config, settings_from_args
from rqe_wrappers.experiments import tag as tag_exp
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag.driver import ChaserSweep, RunnerSweep


def _train_runners(args: argparse.Namespace) -> int:
    read_config(args, RunnerSweep, PPOSettings)
    sweep = settings_from_args(RunnerSweep, args)
    settings = settings_from_args(PPOSettings, args, defaults=tag_exp.RUNNER_PPO)
    tag_exp.train_runners(**asdict(sweep), settings=settings)
    return 0


def _srpo(args: argparse.Namespace) -> int:
    read_config(args, ChaserSweep, PPOSettings)
    sweep = settings_from_args(ChaserSweep, args)
    settings = settings_from_args(PPOSettings, args, defaults=tag_exp.CHASER_PPO)
    tag_exp.run_srpo(
        sweep.tau,
        sweep.steps,
        sweep.runners,
        sweep.out,
        seeds=sweep.seeds,
        train_runner_seed=sweep.train_runner,
        device=sweep.device,
        settings=settings,
        eval_episodes=sweep.eval_episodes,
        jobs=sweep.jobs,
    )
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe tag train-runners`` and ``rqe tag srpo``."""
    p = subparsers.add_parser(
        "tag",
        help="the SRPO paper's Tag: train runners, then SRPO/IPPO chasers (docs/tag.md)",
        description="The SRPO paper's Tag (appendix D.3): runners first, then chasers.",
    )
    sub = p.add_subparsers(dest="action", required=True)

    r = sub.add_parser(
        "train-runners",
        help="train runners (PPO) against scripted chasers; one SB3 zip per seed",
        description="Train one PPO runner per seed against scripted chasers; writes "
        "runner-seed<N>.zip and metrics.json (with baselines) to --out.",
    )
    add_config_option(r)
    add_settings(r, RunnerSweep, title="runs")
    add_settings(r, PPOSettings, defaults=tag_exp.RUNNER_PPO, title="PPO of each runner")
    r.set_defaults(func=_train_runners, _prog=r.prog)

    s = sub.add_parser(
        "srpo",
        help="train SRPO (tau > 0) / IPPO (tau = 0) chasers against a saved runner",
        description="Train chasers for every (tau, seed) against one saved runner and evaluate "
        "them against every runner in --runners; writes results.json to --out.",
    )
    add_config_option(s)
    add_settings(s, ChaserSweep, title="runs")
    add_settings(s, PPOSettings, defaults=tag_exp.CHASER_PPO, title="PPO of the chasers")
    s.set_defaults(func=_srpo, _prog=s.prog)
