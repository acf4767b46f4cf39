"""rqe command line: one subcommand per feature; each feature module adds its own parser.

Feature modules expose ``add_parser(subparsers)`` that registers a subcommand and sets
``func`` (called with the parsed args). Heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module paths whose ``add_parser`` registers a subcommand (order = order in --help)
COMMANDS = [
    "rqe_wrappers.experiments.coordination",
    "rqe_wrappers.srpo.bifurcation",
    "rqe_wrappers.experiments.ipd",
    "rqe_wrappers.cli.beta_plot",
    "rqe_wrappers.experiments.tag",
    "rqe_wrappers.cli.zoo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rqe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == name or name.startswith(e.name + ".")):
                continue  # feature not present in this checkout
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
