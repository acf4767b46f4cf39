"""IPD results over seeds: summary statistics, the markdown table beside the paper's, and the figures."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.experiments.ipd.settings import METRICS, PAPER_TABLE2, PRIORS, TABLE_WIDTH, prior_name
from rqe_wrappers.experiments.ipd.training import LOG_DIR
from rqe_wrappers.partners.ipd import PERTURBED_COUNT


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": len(a)}


def summarize(runs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """``{prior: {"train": {metric: {mean, std, n}}, "test": {w: {...}}}}`` over seeds (std: ddof = 1)."""
    out = {}
    for abbrev, by_seed in runs.items():
        results = list(by_seed.values())
        if not results:
            continue
        s: dict[str, Any] = {"train": {m: _mean_std([r["train"][m] for r in results]) for m in METRICS}, "test": {}}
        for w in results[0]["test"]:
            s["test"][w] = {m: _mean_std([r["test"][w][m] for r in results]) for m in METRICS}
        s["steps_per_s"] = _mean_std([r["steps_per_s"] for r in results])
        out[abbrev] = s
    return out


def _fmt(stat: Mapping[str, float] | float) -> str:
    if isinstance(stat, Mapping):
        return f"{stat['mean']:.2f} ± {stat['std']:.2f}" if stat.get("n", 1) > 1 else f"{stat['mean']:.2f}"
    return f"{stat:.2f}"


def format_table(
    summary: Mapping[str, Any],
    reference: Mapping[str, Any],
    width: float = TABLE_WIDTH,
    header: str = "",
    test_count: int = PERTURBED_COUNT,
) -> str:
    """Markdown: one row per prior, each cell "ours (paper)"; ours = mean ± std over seeds."""
    wkey = f"{float(width):g}"
    cols = [("train", m) for m in METRICS] + [("test", m) for m in METRICS]
    names = ["mean U", "worst U", "worst regret"]
    lines = [header] if header else []
    lines += [
        f"| prior | train: {' | train: '.join(names)} | test w={wkey}: {f' | test w={wkey}: '.join(names)} |",
        "|---|" + "---|" * len(cols),
    ]

    def row(label: str, block: Mapping[str, Any], paper: Sequence[float] | None) -> None:
        cells = []
        for k, (part, metric) in enumerate(cols):
            v = block["train"][metric] if part == "train" else block["test"].get(wkey, {}).get(metric)
            ours = "n/a" if v is None else _fmt(v)
            cells.append(f"{ours} ({paper[k]:.2f})" if paper else ours)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for abbrev in PRIORS:
        if abbrev in summary:
            row(abbrev, summary[abbrev], PAPER_TABLE2.get(abbrev))
    for label, r in reference.items():
        row(f"{label} (scripted)", r, PAPER_TABLE2.get(label))
    lines.append("")
    lines.append(
        "Cells: ours (paper). Ours: mean ± std over seeds, exact evaluation of the stochastic policy; "
        f"train = 9 partners + self-play, test = {test_count} perturbed partners (w={wkey}) + self-play."
    )
    return "\n".join(lines)


def average_beta_logs(paths: Sequence[Path], out_csv: Path) -> Path | None:
    """Average nature's prior over several seeds' SB3 logs row by row (same settings -> same timesteps).

    Reads ``time/total_timesteps`` and ``aht/beta/<id>`` from each ``progress.csv``; writes the same
    columns to ``out_csv``. Returns None when no log has a beta row.
    """
    from rqe_wrappers.errors import ConfigError
    from rqe_wrappers.plots import BETA_PREFIX, read_beta_log

    logs = []
    for p in paths:
        try:
            logs.append(read_beta_log(p))
        except ConfigError:
            continue  # a run that logged no rollout
    if not logs:
        return None
    _, x, ids, _ = logs[0]
    logs = [log for log in logs if log[2] == ids]
    n = min(len(log[1]) for log in logs)
    mean = np.mean([log[3][:, :n] for log in logs], axis=0)
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time/total_timesteps", *(BETA_PREFIX + i for i in ids)])
        for k in range(n):
            w.writerow([int(x[k]), *(repr(float(v)) for v in mean[:, k])])
    return out_csv


def plot_betas(out: Path, runs: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """``beta-<P>.png`` per prior: nature's prior over training, averaged over seeds (``logs/<P>-mean.csv``)."""
    from rqe_wrappers.plots import plot_beta

    written = []
    for abbrev, by_seed in runs.items():
        paths = [out / LOG_DIR.format(abbrev=abbrev, seed=s) / "progress.csv" for s in by_seed]
        paths = [p for p in paths if p.exists()]
        if not paths:
            continue
        avg = average_beta_logs(paths, out / "logs" / f"{abbrev}-mean.csv")
        if avg is None:
            continue
        written.append(
            plot_beta(
                avg,
                out / f"beta-{abbrev}.png",
                title=f"IPD, {abbrev} ({prior_name(abbrev)}): beta, mean of {len(paths)} seed(s)",
            )
        )
    return written


def plot_widths(out: Path, summary: Mapping[str, Any], reference: Mapping[str, Any]) -> Path | None:
    """``test-widths.png``: test-set metrics against the perturbation width (the paper's Figure 5)."""
    from rqe_wrappers.plots import plot_test_widths

    return plot_test_widths(summary, reference, out / "test-widths.png", METRICS)
