"""``rqe coordination``: SRPO on the coordination game vs the exact RQE (``rqe train``: deprecated name)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from rqe_wrappers.cli.settings import add_config_option, add_settings, read_config, settings_from_args
from rqe_wrappers.experiments.coordination import CoordinationRun, CoordinationSweep

HELP = "SRPO with stock SB3 PPO on the coordination game vs the exact RQE (CPU, ~20 s per tau)"


def _run(args: argparse.Namespace) -> int:
    from rqe_wrappers.experiments.coordination import run_coordination

    read_config(args, CoordinationSweep, CoordinationRun)
    sweep = settings_from_args(CoordinationSweep, args)
    run = settings_from_args(CoordinationRun, args, exclude=("tau",), tau=sweep.tau[0])
    run_coordination(sweep.tau, sweep.out, **{k: v for k, v in asdict(run).items() if k != "tau"})
    return 0


def _run_deprecated(args: argparse.Namespace) -> int:
    print("rqe train: deprecated, use `rqe coordination` (same options); `rqe train` goes away in 0.3", file=sys.stderr)
    return _run(args)


def _options(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    add_settings(p, CoordinationSweep, title="runs")
    add_settings(p, CoordinationRun, exclude=("tau",), title="each run")


def add_parser(subparsers) -> None:
    """Register ``rqe coordination`` and its deprecated alias ``rqe train``."""
    p = subparsers.add_parser("coordination", help=HELP, description=HELP + ". Writes <out>/results.json.")
    _options(p)
    p.set_defaults(func=_run, _prog=p.prog)

    old = subparsers.add_parser("train", help="deprecated name of `rqe coordination`", description=HELP)
    _options(old)
    old.add_argument("--env", choices=["coordination"], default="coordination", help=argparse.SUPPRESS)
    old.set_defaults(func=_run_deprecated, _prog=old.prog)
