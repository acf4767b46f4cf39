"""``rqe tag train-runners``, ``srpo`` and ``shift``: the SRPO paper's Tag; options from the sweeps + PPOSettings."""

from __future__ import annotations

from dataclasses import asdict

from rqe_wrappers.cli.settings import add_sweep_command
from rqe_wrappers.experiments import tag as tag_exp
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag.driver import ChaserSweep, RunnerSweep
from rqe_wrappers.experiments.tag.shift import ShiftSweep


def _train_runners(sweep: RunnerSweep, settings: PPOSettings) -> None:
    tag_exp.train_runners(**asdict(sweep), settings=settings)


def _srpo(sweep: ChaserSweep, settings: PPOSettings) -> None:
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


def _shift(sweep: ShiftSweep, settings: PPOSettings) -> None:
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


def add_parser(subparsers) -> None:
    """Register ``rqe tag train-runners``, ``rqe tag srpo`` and ``rqe tag shift``."""
    p = subparsers.add_parser(
        "tag",
        help="the SRPO paper's Tag: train runners, then SRPO/IPPO chasers (docs/tag.md)",
        description="The SRPO paper's Tag (appendix D.3): runners first, then chasers.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    add_sweep_command(
        sub,
        "train-runners",
        help="train runners (PPO) against scripted chasers; one SB3 zip per seed",
        description="Train one PPO runner per seed against scripted chasers; writes "
        "runner-seed<N>.zip and metrics.json (with baselines) to --out.",
        sweep=RunnerSweep,
        ppo_defaults=tag_exp.RUNNER_PPO,
        ppo_title="PPO of each runner",
        run=_train_runners,
    )
    add_sweep_command(
        sub,
        "srpo",
        help="train SRPO (tau > 0) / IPPO (tau = 0) chasers against a saved runner",
        description="Train chasers for every (tau, seed) against one saved runner and evaluate "
        "them against every runner in --runners; writes results.json to --out.",
        sweep=ChaserSweep,
        ppo_defaults=tag_exp.CHASER_PPO,
        ppo_title="PPO of the chasers",
        run=_srpo,
    )
    add_sweep_command(
        sub,
        "shift",
        help="SRPO/IPPO chasers on the batched path over (tau, seed), then runner and teammate shift",
        description="Train chasers for every (tau, seed) on the batched path against a zoo runner, score "
        "every model against every runner (training, training-set, held-out, evasive, still) and cross-play "
        "all models as teammates; writes models, results.json, runner-shift.md and crossplay.* to --out.",
        sweep=ShiftSweep,
        ppo_defaults=tag_exp.BATCHED_CHASER_PPO,
        ppo_title="PPO of the chasers (batched path)",
        run=_shift,
    )
