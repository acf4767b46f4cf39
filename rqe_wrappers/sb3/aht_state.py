"""Files of a saved :class:`~rqe_wrappers.sb3.aht_callback.AHTCallback`: JSON state + ``.npz`` weights, no pickle.

Next to SB3's ``run/model.zip``: ``run/model.aht.json`` (scenario set, config, nature, utility
estimates, fictitious-play reservoir) and, when there are fictitious-play snapshots,
``run/model.aht.npz`` (their weights, read with ``allow_pickle=False``). See docs/aht.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.aht.config import aht_config_dict, parse_aht_config
from rqe_wrappers.aht.nature import Nature
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.core.checks import is_integer, is_real
from rqe_wrappers.errors import ChecksumError, ConfigError

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


#: refuse a state JSON larger than this (bytes) before parsing it
MAX_STATE_BYTES = 64 * 2**20
#: refuse fictitious-play weights declaring more than this many bytes in all before allocating them
MAX_WEIGHTS_BYTES = 8 * 2**30
_PENDING = ".new"  # the .npz of a save whose JSON may or may not have been committed yet


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_state(
    path: str | os.PathLike, state: dict[str, Any], weights: dict[int, dict[str, np.ndarray]]
) -> tuple[Path, Path | None]:
    """Write ``state`` (JSON) and the slots' ``weights`` (``.npz``, only if any); returns the paths written.

    The pair is committed by the JSON's rename: the weights go first to ``<name>.aht.npz.new``, the
    JSON (recording their sha256 as ``"npz_sha256"``) replaces the old JSON, then the ``.npz.new``
    replaces the old ``.npz``. A save killed at any point leaves the old pair or the new one:
    :func:`read_state` takes a pending ``.npz.new`` whose hash the JSON names.
    """
    json_path, npz_path = state_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    if not weights:
        _write_json(json_path, state)
        _fsync_dir(json_path.parent)
        return json_path, None
    arrays = {f"fp{slot}/{k}": v for slot, w in weights.items() for k, v in w.items()}
    pending = npz_path.with_name(npz_path.name + _PENDING)
    tmp = npz_path.with_name(npz_path.name + ".tmp.npz")
    with open(tmp, "wb") as f:
        # numpy's stub checks **kwds against the allow_pickle: bool keyword too; no key here is "allow_pickle"
        np.savez(f, **arrays)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, pending)
    _fsync_dir(json_path.parent)
    _write_json(json_path, {**state, "npz_sha256": _sha256(pending)})  # the commit point
    _fsync_dir(json_path.parent)
    os.replace(pending, npz_path)
    _fsync_dir(json_path.parent)
    return json_path, npz_path


def _bad(json_path: Path, field: str, why: str) -> ConfigError:
    return ConfigError(
        f"{json_path}: field {field!r} {why}; the file is damaged or not written by AHTCallback.save "
        "(restore it from a backup or start a new callback)"
    )


def _load_json(json_path: Path) -> Any:
    try:
        size = json_path.stat().st_size
    except FileNotFoundError:
        raise ConfigError(f"{json_path} does not exist: save the callback with AHTCallback.save first") from None
    if size > MAX_STATE_BYTES:
        raise ConfigError(
            f"{json_path} is {size} bytes, more than an AHTCallback state can be (MAX_STATE_BYTES = {MAX_STATE_BYTES} "
            "in rqe_wrappers/sb3/aht_state.py)"
        )
    try:
        return json.loads(json_path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigError(f"{json_path} is not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None


def _list(json_path: Path, state: dict[str, Any], field: str, n: int, ok: Any, what: str) -> None:
    value = state.get(field)
    if not isinstance(value, list) or len(value) != n or not all(ok(v) for v in value):
        raise _bad(json_path, field, f"must be a list of {n} {what} (one per scenario), got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finite(v: Any) -> bool:
    return is_real(v) and math.isfinite(v)


def _check_state(json_path: Path, state: dict[str, Any], scenarios: ScenarioSet) -> None:
    """Every field :meth:`AHTCallback.load` reads, checked for type and size before anything is built."""
    n = len(scenarios)
    prior = state.get("prior")
    if prior != state["config"]["prior"]:
        raise _bad(json_path, "prior", f"is {_short(prior)} but the config says {state['config']['prior']!r}")
    ema = state.get("utility_ema")
    if ema is not None and not (_finite(ema) and 0 < ema <= 1):
        raise _bad(json_path, "utility_ema", f"must be in (0, 1] or null, got {_short(ema)}")
    steps = state.get("num_timesteps")
    if not is_integer(steps) or steps < 0:
        raise _bad(json_path, "num_timesteps", f"must be an integer >= 0, got {_short(steps)}")
    _list(json_path, state, "utilities", n, lambda v: v is None or _finite(v), "finite numbers or null")
    _list(json_path, state, "counts", n, lambda v: is_integer(v) and v >= 0, "integers >= 0")
    if state.get("beta") is not None:
        _list(json_path, state, "beta", n, lambda v: _finite(v) and v >= 0, "finite numbers >= 0")
    pending = state.get("pending_episodes", [])
    if not isinstance(pending, list) or not all(
        isinstance(e, list) and len(e) == 2 and is_integer(e[0]) and 0 <= e[0] < n and _finite(e[1]) for e in pending
    ):
        raise _bad(
            json_path,
            "pending_episodes",
            f"must be a list of [scenario index < {n}, finite return], got {_short(pending)}",
        )
    _check_nature(json_path, state.get("nature"), n, prior)
    _check_fictitious_play(json_path, state.get("fictitious_play"), n, prior)


def _check_nature(json_path: Path, nature: Any, n: int, prior: Any) -> None:
    if not isinstance(nature, dict):
        raise _bad(json_path, "nature", f"must be an object (Nature.state_dict), got {_short(nature)}")
    if nature.get("n_scenarios") != n or nature.get("prior") != prior:
        raise _bad(
            json_path,
            "nature",
            f"is for {_short(nature.get('n_scenarios'))} scenarios and prior {_short(nature.get('prior'))}; "
            f"the config has {n} and {prior!r}",
        )
    for key, ok in (("weights", _finite), ("best_seen", lambda v: v is None or _finite(v))):
        if not isinstance(nature.get(key), list) or len(nature[key]) != n or not all(ok(v) for v in nature[key]):
            raise _bad(json_path, f"nature.{key}", f"must be a list of {n} finite numbers")
    try:
        Nature.from_state_dict(nature)
    except ConfigError as e:
        raise _bad(json_path, "nature", f"is refused: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(json_path, "nature", f"is malformed ({type(e).__name__}: {_short(e)})") from None


def _check_fictitious_play(json_path: Path, fp: Any, n: int, prior: Any) -> None:
    if fp is None:
        if prior == "fictitious-play":
            raise _bad(json_path, "fictitious_play", "must hold the reservoir for prior 'fictitious-play', got null")
        return
    if not isinstance(fp, dict):
        raise _bad(json_path, "fictitious_play", f"must be an object or null, got {_short(fp)}")
    if not is_integer(fp.get("seen")) or fp["seen"] < 0:
        raise _bad(json_path, "fictitious_play.seen", f"must be an integer >= 0, got {_short(fp.get('seen'))}")
    filled = fp.get("filled")
    if not isinstance(filled, list) or len(filled) != n or not all(isinstance(f, bool) for f in filled):
        raise _bad(json_path, "fictitious_play.filled", f"must be a list of {n} booleans, got {_short(filled)}")
    rng_state: Any = fp.get("rng")
    try:
        np.random.default_rng().bit_generator.state = rng_state
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise _bad(json_path, "fictitious_play.rng", f"is not a numpy PCG64 state ({type(e).__name__})") from None


def _check_npz(npz_path: Path) -> None:
    """Declared array sizes, checked against the archive before numpy allocates anything."""
    total = 0
    try:
        with zipfile.ZipFile(npz_path) as archive:
            for info in archive.infolist():
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                if dtype.hasobject or any(not is_integer(d) or d < 0 for d in shape):
                    raise ConfigError(f"{npz_path}: array {info.filename!r} is not a plain numeric array")
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared > info.file_size:
                    raise ConfigError(
                        f"{npz_path}: array {info.filename!r} declares shape {shape} ({declared} bytes) but holds "
                        f"{info.file_size}; the file is damaged"
                    )
                total += declared
    except ConfigError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ConfigError(f"{npz_path} is not a readable .npz ({type(e).__name__}: {_short(str(e))})") from None
    if total > MAX_WEIGHTS_BYTES:
        raise ConfigError(
            f"{npz_path} declares {total} bytes of weights, more than MAX_WEIGHTS_BYTES = {MAX_WEIGHTS_BYTES} "
            "(rqe_wrappers/sb3/aht_state.py)"
        )


def _weights_file(json_path: Path, npz_path: Path, state: dict[str, Any]) -> Path:
    """The ``.npz`` that goes with the JSON: checked against its ``npz_sha256`` (states before 0.3 have none)."""
    want = state.get("npz_sha256")
    pending = npz_path.with_name(npz_path.name + _PENDING)
    if want is None:
        if not npz_path.exists():
            raise ConfigError(f"{npz_path} is missing: it holds the fictitious-play snapshots' weights")
        return npz_path
    if not isinstance(want, str):
        raise _bad(json_path, "npz_sha256", f"must be a sha256 hex string, got {_short(want)}")
    for candidate in (npz_path, pending):  # pending: a save stopped after its commit point
        if candidate.exists() and _sha256(candidate) == want:
            return candidate
    if not npz_path.exists():
        raise ConfigError(f"{npz_path} is missing: it holds the fictitious-play snapshots' weights")
    stale, fresh = (
        (json_path, npz_path) if npz_path.stat().st_mtime > json_path.stat().st_mtime else (npz_path, json_path)
    )
    raise ChecksumError(
        f"{json_path} and {npz_path} are not one save: the JSON records npz sha256 {want[:12]}..., the .npz has "
        f"{_sha256(npz_path)[:12]}...; {stale.name} is stale (older than {fresh.name}). Restore both files from "
        "the same save, or save the callback again"
    )


def read_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[int, dict[str, np.ndarray]]]:
    """``(state, weights by slot)`` from :func:`write_state`'s files; older versions come back as the current one.

    Every field is checked (a :class:`ConfigError` names it), the ``.npz`` must be the one the JSON
    names by sha256 (:class:`ChecksumError` says which file is stale) and declare sane sizes.
    """
    json_path, npz_path = state_paths(path)
    state = _load_json(json_path)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else None
        raise ConfigError(f"{json_path} is not an AHTCallback state (format {_short(fmt)})")
    if state.get("version") not in _READABLE or isinstance(state.get("version"), bool):
        raise ConfigError(
            f"{json_path}: state version {_short(state.get('version'))} is not supported (readable: {list(_READABLE)})"
        )
    if not isinstance(state.get("config"), dict):
        raise _bad(json_path, "config", f"must be an object (the aht_wrap settings), got {_short(state.get('config'))}")
    saved = dict(state["config"])
    if state["version"] == 1 and isinstance(saved.get("fp_members"), dict) and saved["fp_members"]:
        saved.setdefault("fp_capacity", len(saved["fp_members"]))  # version 1 did not record fp_capacity
    if state["version"] < 3 and saved.get("prior") == "fictitious-play":  # before 0.3: background partners
        saved.setdefault("fp_focal", False)
    try:
        config, scenarios, fp_members = parse_aht_config(saved)
    except ConfigError as e:
        raise _bad(json_path, "config", f"is refused: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise _bad(json_path, "config", f"is malformed ({type(e).__name__}: {_short(e)})") from None
    state = {**state, "version": STATE_VERSION, "config": aht_config_dict(config, scenarios, fp_members)}
    _check_state(json_path, state, scenarios)
    fp = state["fictitious_play"]
    if fp is None or not any(fp["filled"]):
        return state, {}
    source = _weights_file(json_path, npz_path, state)
    _check_npz(source)
    weights: dict[int, dict[str, np.ndarray]] = {}
    try:
        with np.load(source, allow_pickle=False) as data:
            for key in data.files:
                slot, _, name = key.partition("/")
                if not slot.startswith("fp") or not slot[2:].isdigit() or not name:
                    raise ConfigError(f"{source}: unexpected array {key!r} (expected 'fp<slot>/<parameter>')")
                weights.setdefault(int(slot[2:]), {})[name] = data[key]
    except ConfigError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(f"{source} is not a readable .npz ({type(e).__name__}: {_short(str(e))})") from None
    if sorted(weights) != [i for i, f in enumerate(fp["filled"]) if f]:
        raise ConfigError(f"{source} does not hold the weights of exactly the filled slots")
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
