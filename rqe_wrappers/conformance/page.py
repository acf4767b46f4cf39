"""docs/envs.md from the matrix's rows, and ``python -m rqe_wrappers.conformance``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rqe_wrappers.conformance.cases import CASES, INSTALL, METHODS, EnvCase
from rqe_wrappers.conformance.checks import applies, check, passed


def write_page(rows: Sequence[Mapping[str, Any]], out: Path) -> None:
    """docs/envs.md: the matrix and the route of each env."""
    by = {(r["case"], r["method"]): r for r in rows}
    cases = {c.id: c for c in CASES}

    def cell(case: EnvCase, method: str) -> str:
        if not applies(case, method):
            return "n/a"
        r = by.get((case.id, method))
        if r is None:
            return "not run"
        if not passed(r, case):
            return "**FAIL**"
        if r.get("train") == "refused":
            return "refused, typed error"
        notes = [f"{w} test: env's own" for w in ("api", "seed") if r.get(w) == "env"]
        notes += ["parallel tests skipped" for w in ("api",) if r.get(w) == "skipped"]
        return "pass" + (f" ({'; '.join(notes)})" if notes else "")

    lines = [
        "# Environments nobody here wrote: the conformance matrix",
        "",
        "Each row is a third-party PettingZoo env; each column a method. A cell passes when PettingZoo's own",
        "API test and seed test pass on the wrapped env (`api_test` / `seed_test` for AEC envs, the `parallel_`",
        "ones for parallel envs, 50 cycles) **and** stock SB3 PPO (sb3-contrib's MaskablePPO where the env has",
        "action masks) trains on it through `PettingZooVecEnv` (2 copies, 64 steps) with the method's callback.",
        "`adapter` is the raw env through the adapter; `srpo` is `srpo_wrap(env, tau=1, **route)`; `aht` is",
        "`aht_wrap` with a random background population (after fixing the other team with `background_seats`).",
        "The SB3 policy follows the observation the learner sees: `MultiInputPolicy` for a Dict (masked",
        "games under SRPO keep the role key), `CnnPolicy` for images, else `MlpPolicy`.",
        "",
        "- *env's own*: the wrapped env fails that PettingZoo test and so does the raw env (shimmy's OpenSpiel",
        "  envs do not reproduce from `reset(seed=...)`); nothing a wrapper can fix.",
        "- *parallel tests skipped*: PettingZoo's parallel tests sample actions without the masks these envs",
        "  keep in `infos` and would play illegal moves; the AEC tests on the same env read them and pass.",
        "- *refused, typed error*: the raw env's seats differ; the adapter refuses it with a",
        "  `SpaceMismatchError` naming the routes (teams in `srpo_wrap`, padding + seat identity).",
        "",
        "Regenerate: `python -m rqe_wrappers.conformance --out docs/envs.md`; CI runs the same checks",
        "(`tests/test_conformance.py`).",
        "",
        "| env | adapter | srpo | aht | route | installs with |",
        "|---|---|---|---|---|---|",
    ]
    for case in CASES:
        cells = " | ".join(cell(case, m) for m in METHODS)
        lines.append(f"| `{case.id}` | {cells} | {case.note} | `{INSTALL[case.extra]}` |")
    failures = [r for r in rows if not passed(r, cases[r["case"]])]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- `{r['case']}` / {r['method']}: {r.get('error', '')}" for r in failures]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/envs.md"), help="the page to write")
    p.add_argument("--only", nargs="*", default=None, help="case ids to run (default: all)")
    a = p.parse_args(argv)
    rows = []
    for case in CASES:
        if a.only and case.id not in a.only:
            continue
        for method in METHODS:
            if applies(case, method):
                row = check(case, method)
                rows.append(row)
                print(f"{case.id:40s} {method:8s} api={row['api']} seed={row['seed']} train={row.get('train')} "
                      f"{row.get('seconds')}s {row.get('error', '')[:120]}", flush=True)  # fmt: skip
    write_page(rows, a.out)
    return 0
