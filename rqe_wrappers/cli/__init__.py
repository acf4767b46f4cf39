"""rqe command line: one entry point, one subcommand group per module of this package.

Each command module exposes ``add_parser(subparsers)``, which registers its subcommand(s) and sets
``func`` (called with the parsed args; heavy imports happen inside it). Errors the library raises
on purpose (:class:`~rqe_wrappers.errors.RQEError`) print ``rqe <command>: error: <message>`` and
exit with status 2; anything else is a bug and keeps its traceback. Docs: README.md, "Command line".
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rqe_wrappers.errors import RQEError

#: Modules whose ``add_parser`` registers a subcommand (order = order in --help).
COMMANDS = [
    "rqe_wrappers.cli.coordination",
    "rqe_wrappers.cli.srpo",
    "rqe_wrappers.cli.ipd",
    "rqe_wrappers.cli.beta_plot",
    "rqe_wrappers.cli.tag",
    "rqe_wrappers.cli.cooking",
    "rqe_wrappers.cli.hanabi",
    "rqe_wrappers.cli.meltingpot",
    "rqe_wrappers.cli.zoo",
    "rqe_wrappers.cli.eval",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``rqe`` parser with every command module's subcommands."""
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
    """Run one ``rqe`` command; returns its exit status (2 for a user error, after printing it)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RQEError as e:
        prog = getattr(args, "_prog", None) or f"rqe {args.command}"
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
