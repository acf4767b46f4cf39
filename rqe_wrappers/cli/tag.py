"""``rqe tag train-runners``, ``srpo`` and ``shift``: the SRPO paper's Tag; options from the sweeps + PPOSettings."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rqe_wrappers.cli.settings import add_config_option, add_settings, read_config, settings_from_args
from rqe_wrappers.experiments import tag as tag_exp
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag.driver import ChaserSweep, RunnerSweep
from rqe_wrappers.experiments.tag.shift import ShiftSweep


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


def _shift(args: argparse.Namespace) -> int:
    read_config(args, ShiftSweep, PPOSettings)
    sweep = settings_from_args(ShiftSweep, args)
    settings = settings_from_args(PPOSettings, args, defaults=tag_exp.BATCHED_CHASER_PPO)
    tag_exp.run_shift(
        sweep.tau,
        sweep.steps,
        sweep.out,
        seeds=sweep.seeds,
        train_runner=sweep.train_runner,
        device=sweep.device,
        settings=settings,
        eval_episodes=sweep.eval_episodes,
        crossplay_episodes=sweep.crossplay_episodes,
        jobs=sweep.jobs,
    )
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe tag train-runners``, ``rqe tag srpo`` and ``rqe tag shift``."""
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

    h = sub.add_parser(
        "shift",
        help="SRPO/IPPO chasers on the batched path over (tau, seed), then runner and teammate shift",
        description="Train chasers for every (tau, seed) on the batched path against a zoo runner, score "
        "every model against every runner (training, training-set, held-out, evasive, still) and cross-play "
        "all models as teammates; writes models, results.json, runner-shift.md and crossplay.* to --out.",
    )
    add_config_option(h)
    add_settings(h, ShiftSweep, title="runs")
    add_settings(h, PPOSettings, defaults=tag_exp.BATCHED_CHASER_PPO, title="PPO of the chasers (batched path)")
    h.set_defaults(func=_shift, _prog=h.prog)
