"""Files of a saved :class:`~rqe_wrappers.sb3.aht_callback.AHTCallback`: JSON state + ``.npz`` weights, no pickle.

Next to SB3's ``run/model.zip``: ``run/model.aht.json`` (scenario set, config, nature, utility
estimates, fictitious-play reservoir) and, when there are fictitious-play snapshots,
``run/model.aht.npz`` (their weights, read with ``allow_pickle=False``). See docs/aht.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.aht.config import aht_config_dict, parse_aht_config
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.errors import ConfigError

STATE_FORMAT = "rqe-wrappers/aht-callback"
#: 2: the config says ``uniform_mix`` (1 said ``eps``) and has every AHTConfig field;
#: 3: the config has ``fp_focal`` (fictitious play seats past snapshots as focal players by default;
#: states 1 and 2 were all trained with them as background partners and read as ``fp_focal=False``)
STATE_VERSION = 3
_READABLE = (1, 2, 3)


def state_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(json, npz)`` paths of the callback state that goes with an SB3 save path.

    ``"run/model"`` and ``"run/model.zip"`` both give ``run/model.aht.json`` and ``run/model.aht.npz``.
    """
    p = Path(path)
    if p.suffix == ".zip":
        p = p.with_suffix("")
    return p.with_name(p.name + ".aht.json"), p.with_name(p.name + ".aht.npz")


def write_state(
    path: str | os.PathLike, state: dict[str, Any], weights: dict[int, dict[str, np.ndarray]]
) -> tuple[Path, Path | None]:
    """Write ``state`` (JSON) and the slots' ``weights`` (``.npz``, only if any); returns the paths written."""
    json_path, npz_path = state_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, json_path)
    if not weights:
        return json_path, None
    arrays = {f"fp{slot}/{k}": v for slot, w in weights.items() for k, v in w.items()}
    tmp = npz_path.with_name(npz_path.name + ".tmp.npz")
    # numpy's stub checks **kwds against the allow_pickle: bool keyword too; no key here is "allow_pickle"
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, npz_path)
    return json_path, npz_path


def read_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[int, dict[str, np.ndarray]]]:
    """``(state, weights by slot)`` from :func:`write_state`'s files; older versions come back as the current one."""
    json_path, npz_path = state_paths(path)
    state = json.loads(json_path.read_text(encoding="utf-8"))
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else None
        raise ConfigError(f"{json_path} is not an AHTCallback state (format {fmt!r})")
    if state.get("version") not in _READABLE:
        raise ConfigError(
            f"{json_path}: state version {state.get('version')!r} is not supported (readable: {list(_READABLE)})"
        )
    saved = dict(state["config"])
    if state["version"] == 1 and saved.get("fp_members"):  # version 1 did not record fp_capacity
        saved.setdefault("fp_capacity", len(saved["fp_members"]))
    if state["version"] < 3 and saved.get("prior") == "fictitious-play":  # before 0.3: background partners
        saved.setdefault("fp_focal", False)
    config, scenarios, fp_members = parse_aht_config(saved)
    state = {**state, "version": STATE_VERSION, "config": aht_config_dict(config, scenarios, fp_members)}
    fp = state["fictitious_play"]
    if fp is None or not any(fp["filled"]):
        return state, {}
    if not npz_path.exists():
        raise ConfigError(f"{npz_path} is missing: it holds the fictitious-play snapshots' weights")
    weights: dict[int, dict[str, np.ndarray]] = {}
    with np.load(npz_path, allow_pickle=False) as data:
        for key in data.files:
            slot, _, name = key.partition("/")
            weights.setdefault(int(slot[2:]), {})[name] = data[key]
    if sorted(weights) != [i for i, f in enumerate(fp["filled"]) if f]:
        raise ConfigError(f"{npz_path} does not hold the weights of exactly the filled slots")
    return state, weights


def check_resumable(state: dict[str, Any], config: dict[str, Any], scenarios: ScenarioSet) -> None:
    """Refuse to resume a saved ``state`` on an env with other scenarios or another prior."""
    saved = ScenarioSet.from_dict(state["config"]["scenarios"])
    was, now = state["config"].get("fp_focal"), config.get("fp_focal")
    if state["prior"] == config["prior"] == "fictitious-play" and was != now:
        seats = {True: "focal players (paid per capita)", False: "background partners (own return)"}
        raise ConfigError(
            f"the saved fictitious-play state seats its past snapshots as {seats[bool(was)]}, the env as "
            f"{seats[bool(now)]}; resume with aht_wrap(..., prior='fictitious-play', fp_focal={bool(was)}) "
            "or start a new callback (states saved before 0.3 are all fp_focal=False)"
        )
    if saved.ids != scenarios.ids:
        raise ConfigError(
            f"the saved state is for scenarios {list(saved.ids)[:6]}..., the env has {list(scenarios.ids)[:6]}...; "
            "resume with the same population and scenario set"
        )
    if state["prior"] != config["prior"]:
        raise ConfigError(f"the saved state is for prior {state['prior']!r}, the env uses {config['prior']!r}")
