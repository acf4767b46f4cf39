"""``rqe beta-plot``: nature's prior over training, from SB3's progress.csv (``rqe_wrappers.plots.plot_beta``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from rqe_wrappers.plots import plot_beta

    print(f"wrote {plot_beta(args.csv, args.out, title=args.title)}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe beta-plot``."""
    p = subparsers.add_parser("beta-plot", help="plot nature's prior (beta) over training from SB3's progress.csv")
    p.add_argument(
        "csv",
        type=Path,
        help="SB3's progress.csv with AHTCallback's aht/beta/<scenario> columns (or an old "
        "AHTCallback(csv_path=...) CSV)",
    )
    p.add_argument("--out", type=Path, default=Path("beta.png"), help="the PNG written (default: beta.png)")
    p.add_argument("--title", default=None, help="plot title (default: nature's prior over scenarios)")
    p.set_defaults(func=_run, _prog=p.prog)
