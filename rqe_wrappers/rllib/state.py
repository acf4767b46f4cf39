"""AHTCallbacks' state (nature's prior, utility estimates, the shared snapshot) beside an RLlib checkpoint.

RLlib 2.60's ``Algorithm.save_to_path`` does not save callbacks, so :func:`save_checkpoint` writes
the algorithm's checkpoint and, in the same folder, ``rqe_aht.json`` (plain JSON, no pickle) and
``rqe_aht_snapshot.npz`` (the focal copies' weights); :func:`restore_checkpoint` restores both
and pushes prior and snapshot to every env runner. A folder without ``rqe_aht.json`` restores the
algorithm alone (SRPO has no state beyond RLlib's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.aht.nature import Nature
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.rllib.aht import AHTCallbacks

STATE_FORMAT = "rqe_wrappers.rllib.aht/1"
STATE_FILE = "rqe_aht.json"
WEIGHTS_FILE = "rqe_aht_snapshot.npz"


def aht_callbacks_of(algorithm: Any) -> AHTCallbacks | None:
    """The algorithm's :class:`~rqe_wrappers.rllib.aht.AHTCallbacks` (driver side), if it has one."""
    found = algorithm.callbacks if isinstance(algorithm.callbacks, list) else [algorithm.callbacks]
    return next((c for c in found if isinstance(c, AHTCallbacks)), None)


def state_dict(callbacks: AHTCallbacks) -> dict[str, Any]:
    """The callbacks' state as plain JSON types (weights apart)."""
    nature, _ = callbacks._started()
    assert callbacks.utilities is not None and callbacks.counts is not None and callbacks.beta is not None
    return {
        "format": STATE_FORMAT,
        "config": callbacks.config,
        "utility_ema": callbacks.utility_ema,
        "nature": nature.state_dict(),
        "beta": callbacks.beta.tolist(),
        "utilities": [None if np.isnan(u) else float(u) for u in callbacks.utilities],
        "counts": [int(c) for c in callbacks.counts],
    }


def save_checkpoint(algorithm: Any, path: str | os.PathLike) -> Path:
    """``algorithm.save_to_path(path)`` plus the AHT callbacks' state in the same folder; returns the folder."""
    folder = Path(algorithm.save_to_path(str(Path(path).absolute())))
    callbacks = aht_callbacks_of(algorithm)
    if callbacks is None:
        return folder
    (folder / STATE_FILE).write_text(json.dumps(state_dict(callbacks), indent=1) + "\n", encoding="utf-8")
    with open(folder / WEIGHTS_FILE, "wb") as f:
        # numpy's stub checks **kwds against the allow_pickle: bool keyword too; no key here is "allow_pickle"
        np.savez(f, **(callbacks.snapshot_weights or {}))  # type: ignore[arg-type]
    if callbacks._next_weights is not None:
        with open(folder / ("next_" + WEIGHTS_FILE), "wb") as f:
            np.savez(f, **callbacks._next_weights)  # type: ignore[arg-type]
    return folder


def _load_weights(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def restore_checkpoint(algorithm: Any, path: str | os.PathLike) -> None:
    """Restore ``algorithm`` from ``path`` (:func:`save_checkpoint`'s folder), then its AHT callbacks' state.

    Raises :class:`ConfigError` when the saved state is for other scenarios or the folder holds AHT
    state but the algorithm has no :class:`~rqe_wrappers.rllib.aht.AHTCallbacks` (or the other way round).
    """
    folder = Path(path).absolute()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a checkpoint folder")
    algorithm.restore_from_path(str(folder))
    callbacks = aht_callbacks_of(algorithm)
    state_file = folder / STATE_FILE
    if callbacks is None:
        if state_file.exists():
            raise ConfigError(f"{folder} holds AHT state but the algorithm has no AHTCallbacks")
        return
    if not state_file.exists():
        raise ConfigError(f"{state_file} is missing: save with rqe_wrappers.rllib.save_checkpoint")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ConfigError(f"{state_file} is not valid JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ConfigError(f"{state_file} is not an rqe_wrappers RLlib AHT state")
    _, scenarios = callbacks._started()
    saved = state.get("config", {}).get("scenarios") if isinstance(state.get("config"), dict) else None
    if callbacks.config is None or saved != callbacks.config["scenarios"]:
        raise ConfigError(f"{state_file} is for other scenarios than this algorithm's env ({list(scenarios.ids)[:6]})")
    n = len(scenarios)
    utilities, counts = state.get("utilities"), state.get("counts")
    if not isinstance(utilities, list) or len(utilities) != n or not isinstance(counts, list) or len(counts) != n:
        raise ConfigError(f"{state_file}: utilities and counts must hold one entry per scenario ({n})")
    callbacks.nature = Nature.from_state_dict(state["nature"])
    callbacks.utilities = np.array([np.nan if u is None else float(u) for u in utilities], dtype=np.float64)
    callbacks.counts = np.array(counts, dtype=np.int64)
    weights = _load_weights(folder / WEIGHTS_FILE) or callbacks.learner_weights(algorithm)
    callbacks._next_weights = _load_weights(folder / ("next_" + WEIGHTS_FILE)) or callbacks.learner_weights(algorithm)
    callbacks.publish(algorithm, weights, np.asarray(state["beta"], dtype=np.float64))
