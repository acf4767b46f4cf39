"""``rqe beta-plot``: nature's prior over training, from ``AHTCallback(csv_path=...)`` or SB3's progress.csv."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("beta-plot", help="plot nature's prior (beta) over training from a CSV log")
    p.add_argument("csv", type=Path, help="AHTCallback(csv_path=...)'s CSV or SB3's progress.csv")
    p.add_argument("--out", type=Path, default=Path("beta.png"))
    p.add_argument("--title", default=None)

    def run(args) -> int:
        from rqe_wrappers.sb3.aht_callback import plot_beta

        print(f"wrote {plot_beta(args.csv, args.out, title=args.title)}")
        return 0

    p.set_defaults(func=run)
