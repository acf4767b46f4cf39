"""The conformance matrix: third-party PettingZoo envs through ``srpo_wrap``, ``aht_wrap`` and the SB3 adapter.

Each :class:`EnvCase` names an env nobody here wrote and the route that makes it trainable; each
check runs PettingZoo's own API and seed tests on the wrapped env and a short stock PPO /
MaskablePPO run. ``python -m rqe_wrappers.conformance --out docs/envs.md`` runs the whole matrix and
writes the page; ``tests/test_conformance.py`` runs it in CI. Docs: docs/envs.md.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS = ("adapter", "srpo", "aht")


@dataclass(frozen=True)
class EnvCase:
    """One third-party env and how each method reaches it.

    Attributes:
        id: ``"<package>/<env>"`` as users know it.
        make: ``"module:function"`` building the env (``env`` for AEC, ``parallel_env`` for parallel).
        kwargs: arguments for ``make`` (small sizes keep the matrix fast).
        prep: SuperSuit steps applied first, by name (see :data:`PREP`).
        srpo: ``srpo_wrap`` keyword arguments, or ``None`` where SRPO does not apply (see ``note``).
        aht: ``True`` where ``aht_wrap`` applies (seats interchangeable after ``prep`` and ``aht_fixed``).
        aht_fixed: seats fixed to a random policy before ``aht_wrap`` (the other team).
        adapter: ``"train"``, or ``"refuse"`` where the raw env's seats differ and the adapter must
            refuse it with a :class:`~rqe_wrappers.errors.SpaceMismatchError` that names the fix.
        masked: train with MaskablePPO (the env has action masks). The SB3 policy follows the
            observation: ``MultiInputPolicy`` for a Dict, ``CnnPolicy`` for an image, else ``MlpPolicy``.
        info_masks: the env keeps its action masks in ``infos`` (shimmy's OpenSpiel envs), where
            PettingZoo's *parallel* API and seed tests do not look: they would play illegal moves, so
            they are skipped for the parallel wrappers of such envs (the AEC tests do read them).
        note: the route in words, for docs/envs.md.
        extra: the pip extra that installs the env.
    """

    id: str
    make: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    prep: tuple[str, ...] = ()
    srpo: Mapping[str, Any] | None = field(default_factory=dict)
    aht: bool = True
    aht_fixed: tuple[str, ...] = ()
    adapter: str = "train"
    masked: bool = False
    info_masks: bool = False
    note: str = ""
    extra: str = ""

    def build(self) -> Any:
        """A fresh env with the ``prep`` steps applied."""
        module, _, fn = self.make.partition(":")
        env = getattr(importlib.import_module(module), fn)(**self.kwargs)
        for step in self.prep:
            env = PREP[step](env)
        return env


def _supersuit(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    def apply(env: Any) -> Any:
        import supersuit

        return getattr(supersuit, name)(env, **kwargs)

    return apply


#: SuperSuit steps a case may name (composed, not rewritten: DESIGN.md)
PREP: dict[str, Callable[[Any], Any]] = {
    "pad_obs": _supersuit("pad_observations_v0"),
    "pad_act": _supersuit("pad_action_space_v0"),
    "resize_40": _supersuit("resize_v1", x_size=40, y_size=40),
    "gray": _supersuit("color_reduction_v0", mode="full"),
    "keep_dim": _supersuit("reshape_v0", shape=(40, 40, 1)),
    "flatten": _supersuit("flatten_v0"),
}

#: a case's ``extra`` -> what installs it (all of them: ``pip install 'rqe-wrappers[mpe,test]'``)
INSTALL = {
    "mpe": "rqe-wrappers[mpe]",
    "butterfly": "pettingzoo[butterfly]",
    "sisl": "pettingzoo[sisl]",
    "classic": "pettingzoo[classic]",
    "openspiel": "shimmy[openspiel]",
}
_MPE = {"max_cycles": 25}
_OPENSPIEL = "shimmy.openspiel_compatibility:OpenSpielCompatibilityV0"

CASES: tuple[EnvCase, ...] = (
    # ---- mpe2 (parallel API) ----
    EnvCase(
        "mpe2/simple_v3",
        "mpe2.simple_v3:parallel_env",
        _MPE,
        srpo=None,
        aht=False,
        note="one seat: no partner, so neither method applies; the adapter trains it",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_adversary_v3",
        "mpe2.simple_adversary_v3:parallel_env",
        _MPE,
        aht_fixed=("adversary_0",),
        adapter="refuse",
        note="teams by name: the agents learn, the adversary is random (swap with fixed=)",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_crypto_v3",
        "mpe2.simple_crypto_v3:parallel_env",
        _MPE,
        prep=("pad_obs",),
        srpo={"teams": {"eve": ["eve_0"], "pair": ["alice_0", "bob_0"]}, "learn": "pair", "seat_id": True},
        aht_fixed=("eve_0",),
        note="alice and bob learn (observations padded, seat identity on); eve is random",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_push_v3",
        "mpe2.simple_push_v3:parallel_env",
        _MPE,
        prep=("pad_obs",),
        srpo={"seat_id": True},
        aht=True,
        note="two opposing seats padded to one space, seat identity on: both learn",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_reference_v3", "mpe2.simple_reference_v3:parallel_env", _MPE, note="symmetric: as is", extra="mpe"
    ),
    EnvCase(
        "mpe2/simple_speaker_listener_v4",
        "mpe2.simple_speaker_listener_v4:parallel_env",
        _MPE,
        prep=("pad_obs", "pad_act"),
        srpo={"seat_id": True},
        note="speaker and listener padded to one space, seat identity on",
        extra="mpe",
    ),
    EnvCase("mpe2/simple_spread_v3", "mpe2.simple_spread_v3:parallel_env", _MPE, note="symmetric: as is", extra="mpe"),
    EnvCase(
        "mpe2/simple_tag_v3",
        "mpe2.simple_tag_v3:parallel_env",
        _MPE,
        aht_fixed=("agent_0",),
        adapter="refuse",
        note="the headline: chasers learn, shadow among chasers, runner random (swap with fixed=)",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_world_comm_v3",
        "mpe2.simple_world_comm_v3:parallel_env",
        _MPE,
        aht_fixed=("leadadversary_0", "agent_0", "agent_1"),
        adapter="refuse",
        note="teams by name: the three adversaries learn; the leader and the agents are random",
        extra="mpe",
    ),
    # ---- butterfly / sisl ----
    EnvCase(
        "butterfly/pistonball_v6",
        "pettingzoo.butterfly.pistonball_v6:parallel_env",
        {"n_pistons": 3, "continuous": False, "max_cycles": 25},
        prep=("gray", "resize_40", "keep_dim"),
        note="pixels (resized to 40x40 gray); the role reaches CnnPolicy as extra image channels",
        extra="butterfly",
    ),
    EnvCase(
        "butterfly/cooperative_pong_v6",
        "pettingzoo.butterfly.cooperative_pong_v6:parallel_env",
        {"max_cycles": 25},
        prep=("gray", "resize_40", "keep_dim"),
        note="pixels (resized to 40x40 gray), role as image channels",
        extra="butterfly",
    ),
    EnvCase(
        "butterfly/knights_archers_zombies_v11",
        "pettingzoo.butterfly.knights_archers_zombies_v11:parallel_env",
        {"max_cycles": 25, "num_archers": 2, "num_knights": 2},
        prep=("flatten",),
        srpo={"seat_id": True},
        note="2-D vector state flattened (supersuit.flatten_v0); archers and knights share spaces: seat identity on",
        extra="butterfly",
    ),
    EnvCase(
        "sisl/multiwalker_v9",
        "pettingzoo.sisl.multiwalker_v9:parallel_env",
        {"max_cycles": 25},
        note="continuous actions: Gaussian PPO; KL shaping on Gaussian log-probs",
        extra="sisl",
    ),
    EnvCase(
        "sisl/pursuit_v5",
        "pettingzoo.sisl.pursuit_v5:parallel_env",
        {"max_cycles": 25, "n_pursuers": 4, "n_evaders": 4},
        prep=("flatten",),
        note="7x7x3 float local views (not uint8 images): flattened with supersuit.flatten_v0",
        extra="sisl",
    ),
    # ---- classic (AEC: one learning seat per copy, the learner's snapshot in the others) ----
    EnvCase(
        "classic/rps_v2",
        "pettingzoo.classic.rps_v2:parallel_env",
        {"num_actions": 3, "max_cycles": 5},
        note="Discrete observations: one-hot encoded with the role feature",
        extra="classic",
    ),
    EnvCase(
        "classic/tictactoe_v3",
        "pettingzoo.classic.tictactoe_v3:env",
        masked=True,
        note="turn-based, masks: MaskablePPO + MultiInputPolicy (the role key keeps a Dict)",
        extra="classic",
    ),
    EnvCase(
        "classic/connect_four_v3",
        "pettingzoo.classic.connect_four_v3:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/leduc_holdem_v4",
        "pettingzoo.classic.leduc_holdem_v4:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/texas_holdem_v4",
        "pettingzoo.classic.texas_holdem_v4:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/texas_holdem_no_limit_v6",
        "pettingzoo.classic.texas_holdem_no_limit_v6:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/go_v5",
        "pettingzoo.classic.go_v5:env",
        {"board_size": 5, "komi": 0.5},
        masked=True,
        note="turn-based, masks (5x5 board)",
        extra="classic",
    ),
    # ---- OpenSpiel through shimmy ----
    EnvCase(
        "openspiel/kuhn_poker",
        _OPENSPIEL,
        {"game_name": "kuhn_poker"},
        masked=True,
        info_masks=True,
        note="turn-based, masks; check the rewards: shimmy's kuhn_poker emits none",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/leduc_poker",
        _OPENSPIEL,
        {"game_name": "leduc_poker"},
        masked=True,
        info_masks=True,
        note="turn-based, masks",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/hanabi-2p",
        _OPENSPIEL,
        {"game_name": "hanabi", "config": {"players": 2, "colors": 3, "ranks": 3, "hand_size": 3}},
        masked=True,
        info_masks=True,
        note="the SRPO paper's Hanabi (3 colours x 3 ranks)",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/hanabi-4p",
        _OPENSPIEL,
        {"game_name": "hanabi", "config": {"players": 4, "colors": 3, "ranks": 3, "hand_size": 3}},
        masked=True,
        info_masks=True,
        srpo={"n_shadows": 1},
        note="4 players: one shared policy, one shadow per episode",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/goofspiel",
        _OPENSPIEL,
        {"game_name": "goofspiel", "config": {"num_cards": 4}},
        masked=True,
        info_masks=True,
        note="simultaneous game run turn by turn by shimmy",
        extra="openspiel",
    ),
)


def _random_population(env: Any, fixed: Sequence[str]) -> dict[str, Any]:
    from rqe_wrappers.core.policy import RandomPolicy

    seats = [s for s in env.possible_agents if s not in fixed]
    return {"random": RandomPolicy(env.observation_space(seats[0]), env.action_space(seats[0]))}


def wrapped(case: EnvCase, method: str) -> Callable[[], Any]:
    """A builder of ``case``'s env wrapped for ``method`` (one of :data:`METHODS`)."""
    from rqe_wrappers.aht.wrapper import aht_wrap
    from rqe_wrappers.core.policy import RandomPolicy
    from rqe_wrappers.seats.background import background_seats
    from rqe_wrappers.srpo.shadow import srpo_wrap

    def make() -> Any:
        env = case.build()
        if method == "srpo":
            return srpo_wrap(env, tau=1.0, **dict(case.srpo or {}))
        if method == "aht":
            if case.aht_fixed:
                fixed = {s: RandomPolicy(env.observation_space(s), env.action_space(s)) for s in case.aht_fixed}
                env = background_seats(env, fixed)
            return aht_wrap(env, _random_population(env, case.aht_fixed), prior="maximin-utility")
        return env

    return make


def applies(case: EnvCase, method: str) -> bool:
    """Whether ``method`` is meant to work on ``case`` (the matrix says why not where it is not)."""
    return method == "adapter" or (method == "srpo" and case.srpo is not None) or (method == "aht" and case.aht)


def _pettingzoo_test(make: Callable[[], Any], which: str, cycles: int) -> None:
    """PettingZoo's ``which`` test (``"api"`` or ``"seed"``), the AEC or the parallel one as ``make()`` is."""
    from pettingzoo import AECEnv
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

    aec = isinstance(make(), AECEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "api":
            (api_test if aec else parallel_api_test)(make(), num_cycles=cycles)
        else:
            (seed_test if aec else parallel_seed_test)(make, num_cycles=cycles)


_RAW_TRIES = 5


def _outcome(make: Callable[[], Any], which: str, case: EnvCase, cycles: int, row: dict[str, Any]) -> str:
    """``"pass"``; ``"env"`` when the raw env fails the same test (nothing a wrapper can fix); ``"FAIL"``;
    ``"skipped"``: the parallel tests of envs with masks in ``infos`` (they would play illegal moves)."""
    from pettingzoo import AECEnv

    if case.info_masks and not isinstance(make(), AECEnv):
        return "skipped"
    try:
        _pettingzoo_test(make, which, cycles)
        return "pass"
    except Exception as e:
        row.setdefault("error", f"{which} test: {type(e).__name__}: {e}"[:300])
        row.setdefault("trace", traceback.format_exc()[-2000:])
    for _ in range(_RAW_TRIES):  # an env that does not reproduce passes its seed test now and then
        try:
            _pettingzoo_test(case.build, which, cycles)
        except Exception:
            return "env"
    return "FAIL"


def check(case: EnvCase, method: str, *, steps: int = 64, cycles: int = 50) -> dict[str, Any]:
    """PettingZoo's API and seed tests on the wrapped env, then a short PPO run: one row of the matrix.

    ``api`` and ``seed`` are ``"pass"``, ``"FAIL"``, ``"env"`` (the raw env fails that test too:
    shimmy's OpenSpiel envs do not reproduce from ``reset(seed=...)``) or ``"skipped"``; ``train`` is
    ``"pass"``, ``"FAIL"`` or ``"refused"`` (the adapter refused differing seats with a typed error).
    """
    from rqe_wrappers.core import snapshot
    from rqe_wrappers.errors import SpaceMismatchError

    snapshot.clear()  # snapshots are process-wide; every check starts without one
    row: dict[str, Any] = {"case": case.id, "method": method}
    make = wrapped(case, method)
    start = time.perf_counter()
    for which in ("api", "seed"):
        row[which] = _outcome(make, which, case, cycles, row)
    try:
        row.update(_train(case, method, make, steps))
    except SpaceMismatchError as e:
        refused = method == "adapter" and case.adapter == "refuse"
        row.update(train="refused" if refused else "FAIL", error=str(e)[:300])
    except Exception as e:
        row.update(train="FAIL", error=f"{type(e).__name__}: {e}"[:300], trace=traceback.format_exc()[-2000:])
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def passed(row: Mapping[str, Any], case: EnvCase) -> bool:
    """Whether a row is a pass for the matrix (what the CI test asserts)."""
    train_ok = row.get("train") == "pass" or (row.get("train") == "refused" and case.adapter == "refuse")
    return train_ok and row.get("api") != "FAIL" and row.get("seed") != "FAIL"


def _policy_for(space: Any) -> str:
    import gymnasium as gym
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(space, gym.spaces.Dict):
        return "MultiInputPolicy"
    return "CnnPolicy" if is_image_space(space, check_channels=False) else "MlpPolicy"


def _train(case: EnvCase, method: str, make: Callable[[], Any], steps: int) -> dict[str, Any]:
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import AHTCallback, PettingZooVecEnv, SRPOCallback

    torch.set_num_threads(1)
    venv = PettingZooVecEnv(make, n_copies=2)
    try:
        venv.seed(0)
        policy = _policy_for(venv.observation_space)
        algo = MaskablePPO if case.masked else PPO
        kwargs: dict[str, Any] = {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "seed": 0, "device": "cpu"}
        if policy != "CnnPolicy":
            kwargs["policy_kwargs"] = {"net_arch": [8]}
        model = algo(policy, venv, normalize_advantage=False, **kwargs)
        callback = {"srpo": SRPOCallback(), "aht": AHTCallback()}.get(method)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.learn(steps, callback=callback)
    finally:
        venv.close()
    return {"train": "pass", "slots": venv.num_envs, "policy": policy, "algo": algo.__name__}


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


if __name__ == "__main__":
    raise SystemExit(main())
