"""``rqe meltingpot populations`` / ``rqe meltingpot table``: the minimax-Bayes paper's collaborative cooking
experiment (rqe_wrappers.experiments.meltingpot_cooking; docs/meltingpot.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--layouts", nargs="+", default=["circuit", "cramped"], help="cooking layouts")
    p.add_argument("--jobs", type=int, default=1, help="processes training side by side")
    p.add_argument("--devices", nargs="+", default=["cpu"], help="torch devices, used in turn (e.g. cuda:0 cuda:1)")
    p.add_argument("--n-copies", type=int, default=None, help="env copies per learner (default: MP_PPO's 16)")


def add_parser(subparsers) -> None:
    """Register ``rqe meltingpot populations`` and ``rqe meltingpot table``."""
    p = subparsers.add_parser(
        "meltingpot",
        help="Melting Pot collaborative cooking: background populations and the paper's Table 3",
        description="The minimax-Bayes paper's deep-RL experiment on Melting Pot's collaborative cooking.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    pops = sub.add_parser("populations", help="train populations by population play (one per layout and seed)")
    _common(pops)
    pops.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="population seeds (training, held-out)")
    pops.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 5], help="sub-population sizes")
    pops.add_argument("--rounds", type=int, default=2)
    pops.add_argument("--steps-per-round", type=int, default=100_000, help="agent-steps per member per round")
    pops.add_argument("--eval-episodes", type=int, default=2, help="episodes per partner and seating")
    pops.add_argument("--turn-seconds", type=float, default=None, help="stop a member's turn after this long")
    pops.add_argument(
        "--rollout-device",
        default=None,
        help="collect rollouts with a copy of the policy there (cpu: faster with many turns on one GPU)",
    )
    pops.set_defaults(func=_populations)
    table = sub.add_parser("table", help="MU, MR, PBR, SP, FP learners on each layout's populations (Table 3)")
    _common(table)
    table.add_argument("--priors", nargs="+", default=["MU", "MR", "PBR", "SP", "FP"])
    table.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="learner seeds")
    table.add_argument("--steps", type=int, default=200_000, help="agent-steps per learner")
    table.add_argument("--episodes", type=int, default=2, help="evaluation episodes per scenario and seating")
    table.add_argument("--learner-seconds", type=float, default=None, help="stop a learner's training after this long")
    table.add_argument(
        "--populations",
        nargs=2,
        metavar=("TRAIN", "TEST"),
        default=None,
        help="zoo populations, with {layout} for the layout (default: meltingpot/{layout}-train "
        "meltingpot/{layout}-heldout)",
    )
    table.set_defaults(func=_table)


def _ppo(args: argparse.Namespace):
    import dataclasses

    from rqe_wrappers.experiments.meltingpot_cooking import MP_PPO

    return MP_PPO if args.n_copies is None else dataclasses.replace(MP_PPO, n_copies=args.n_copies)


def _populations(args: argparse.Namespace) -> int:
    from rqe_wrappers.experiments.meltingpot_cooking import train_cooking_populations
    from rqe_wrappers.experiments.population_play import PopulationPlay

    play = PopulationPlay(
        sizes=tuple(args.sizes), rounds=args.rounds, steps_per_round=args.steps_per_round, ppo=_ppo(args)
    )
    report = train_cooking_populations(
        args.out,
        args.layouts,
        args.seeds,
        play,
        eval_episodes=args.eval_episodes,
        jobs=args.jobs,
        devices=args.devices,
        turn_seconds=args.turn_seconds,
        rollout_device=args.rollout_device,
        progress=lambda line: print(line, flush=True),
    )
    for key, members in report["populations"].items():
        dishes = [m["dishes_per_episode"] for m in members]
        print(
            f"{key}: dishes per episode {min(dishes):.2f} to {max(dishes):.2f} (mean {sum(dishes) / len(dishes):.2f})"
        )
    print(f"wrote {args.out / 'results.json'} ({report['seconds']:.0f} s)")
    return 0


def _table(args: argparse.Namespace) -> int:
    from rqe_wrappers.experiments.aht_table import AHTTable
    from rqe_wrappers.experiments.meltingpot_cooking import run_cooking_table

    train, test = args.populations or ("meltingpot/{layout}-train", "meltingpot/{layout}-heldout")
    populations = {lay: (train.format(layout=lay), test.format(layout=lay)) for lay in args.layouts}
    settings = AHTTable(
        priors=tuple(args.priors), seeds=tuple(args.seeds), steps=args.steps, episodes=args.episodes, ppo=_ppo(args)
    )
    report = run_cooking_table(
        args.out,
        populations,
        settings,
        jobs=args.jobs,
        devices=args.devices,
        learner_seconds=args.learner_seconds,
        progress=lambda line: print(line, flush=True),
    )
    print((args.out / "table.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out / 'table.json'} ({report['seconds']:.0f} s)")
    return 0
