"""Checkpoints (issue 9): AHTCallback's JSON + .npz pair is committed atomically and tied by sha256;
malformed state files end in ConfigError naming the field, never KeyError or a huge allocation."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from rqe_wrappers import ConfigError
from rqe_wrappers.errors import ChecksumError
from rqe_wrappers.sb3 import aht_state
from rqe_wrappers.sb3.aht_state import read_state, state_paths, write_state

pytest.importorskip("stable_baselines3")
pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")


@pytest.fixture(scope="module")
def saves(tmp_path_factory):
    """Two consecutive saves of one fictitious-play run: ``old`` (after 128 steps) and ``new`` (after 256)."""
    from test_aht_fictitious_play import make_model

    from rqe_wrappers.sb3 import AHTCallback

    folder = tmp_path_factory.mktemp("fp")
    model, cb = make_model(fp_capacity=4), AHTCallback()
    model.learn(128, callback=cb)
    old_json, old_npz = cb.save(folder / "old")
    model.learn(128, callback=cb, reset_num_timesteps=False)
    new_json, new_npz = cb.save(folder / "new")
    assert old_npz is not None and new_npz is not None
    return {
        "old": (old_json.read_bytes(), old_npz.read_bytes()),
        "new": (new_json.read_bytes(), new_npz.read_bytes()),
    }


def put(folder, pair, name="run"):
    json_path, npz_path = state_paths(folder / name)
    json_path.write_bytes(pair[0])
    npz_path.write_bytes(pair[1])
    return json_path, npz_path


def seen(folder, name="run"):
    state, weights = read_state(folder / name)
    return state["fictitious_play"]["seen"], weights


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".new", ".tmp", ".tmp.npz")))


# ---- the pair ------------------------------------------------------------------------------------
def test_the_json_records_the_sha256_of_its_npz_and_a_save_leaves_no_temp_files(saves, tmp_path):
    import hashlib

    json_path, npz_path = put(tmp_path, saves["new"])
    state = json.loads(json_path.read_text())
    assert state["npz_sha256"] == hashlib.sha256(npz_path.read_bytes()).hexdigest()
    state, weights = read_state(tmp_path / "run")
    write_state(tmp_path / "again", {k: v for k, v in state.items() if k != "npz_sha256"}, weights)
    assert leftovers(tmp_path) == [] and seen(tmp_path, "again")[0] == seen(tmp_path)[0]


def test_a_mismatched_pair_is_refused_saying_which_file_is_stale(saves, tmp_path):
    json_path, npz_path = put(tmp_path, saves["old"])
    npz_path.write_bytes(saves["new"][1])  # a newer .npz beside the older JSON
    os.utime(json_path, (1, 1))
    with pytest.raises(ChecksumError) as err:
        read_state(tmp_path / "run")
    message = str(err.value)
    assert "run.aht.json is stale" in message and "not one save" in message and "same save" in message
    json_path.write_bytes(saves["new"][0])  # a newer JSON beside an older .npz
    npz_path.write_bytes(saves["old"][1])
    os.utime(npz_path, (1, 1))
    with pytest.raises(ChecksumError, match=r"run\.aht\.npz is stale"):
        read_state(tmp_path / "run")


def test_a_save_that_dies_before_its_commit_leaves_the_old_pair(saves, tmp_path, monkeypatch):
    put(tmp_path, saves["old"])
    before = seen(tmp_path)
    state, weights = read_state_of(saves["new"], tmp_path / "src")

    def crash(path, state):
        raise KeyboardInterrupt("killed between the .npz and the JSON")

    monkeypatch.setattr(aht_state, "_write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        write_state(tmp_path / "run", state, weights)
    assert leftovers(tmp_path) == ["run.aht.npz.new"]
    after = seen(tmp_path)
    assert after[0] == before[0] < state["fictitious_play"]["seen"]  # the old state, whole
    assert all(np.array_equal(after[1][s][k], before[1][s][k]) for s in before[1] for k in before[1][s])


def test_a_save_that_dies_after_its_commit_loads_as_the_new_pair(saves, tmp_path, monkeypatch):
    put(tmp_path, saves["old"])
    state, weights = read_state_of(saves["new"], tmp_path / "src")
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".npz.new"):
            raise KeyboardInterrupt("killed before the .npz took its place")
        real_replace(src, dst)

    monkeypatch.setattr(aht_state.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_state(tmp_path / "run", state, weights)
    monkeypatch.undo()
    got = seen(tmp_path)
    assert got[0] == state["fictitious_play"]["seen"]
    assert all(np.array_equal(got[1][s][k], weights[s][k]) for s in weights for k in weights[s])


def read_state_of(pair, folder):
    folder.mkdir(exist_ok=True)
    put(folder, pair)
    state, weights = read_state(folder / "run")
    return {k: v for k, v in state.items() if k != "npz_sha256"}, weights


SAVER = """
import json, os, sys, time
import numpy as np
from rqe_wrappers.sb3 import aht_state
state = json.loads(open(sys.argv[2]).read())
weights = {int(s): {k: np.load(sys.argv[3])[f"fp{s}/{k}"] for k in ks} for s, ks in json.loads(sys.argv[4]).items()}
hold = sys.argv[5]
real_write, real_replace = aht_state._write_json, os.replace
def write_json(path, data):
    if hold == "before-commit":
        open(sys.argv[6], "w").close(); time.sleep(60)
    real_write(path, data)
def replace(src, dst):
    if hold == "after-commit" and str(src).endswith(".npz.new"):
        open(sys.argv[6], "w").close(); time.sleep(60)
    real_replace(src, dst)
aht_state._write_json, aht_state.os.replace = write_json, replace
aht_state.write_state(sys.argv[1], state, weights)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize(("hold", "expect"), [("before-commit", "old"), ("after-commit", "new")])
def test_sigkill_mid_save_leaves_the_old_pair_or_the_new_one(saves, tmp_path, hold, expect):
    put(tmp_path, saves["old"])
    state, weights = read_state_of(saves["new"], tmp_path / "src")
    (tmp_path / "state.json").write_text(json.dumps(state))
    np.savez(tmp_path / "w.npz", **{f"fp{s}/{k}": v for s, w in weights.items() for k, v in w.items()})
    marker = tmp_path / "marker"
    keys = json.dumps({s: list(w) for s, w in weights.items()})
    args = [str(tmp_path / "run"), str(tmp_path / "state.json"), str(tmp_path / "w.npz"), keys, hold, str(marker)]
    proc = subprocess.Popen([sys.executable, "-c", SAVER, *args])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the saver ended before the point to kill it"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    want = {"old": seen_of(saves["old"], tmp_path / "o"), "new": state["fictitious_play"]["seen"]}[expect]
    assert seen(tmp_path)[0] == want


def seen_of(pair, folder):
    folder.mkdir()
    put(folder, pair)
    return seen(folder)[0]


# ---- malformed files -----------------------------------------------------------------------------
def edit(data, path, value):
    """``data`` with the field at ``path`` (keys separated by '.') set to ``value`` (``DELETE`` removes it)."""
    data = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()
MALFORMED = [
    ("utilities", "nan-as-text", ["'utilities'", "finite numbers or null"]),
    ("utilities", [1.0], ["'utilities'", "list of 4"]),
    ("utilities", DELETE, ["'utilities'"]),
    ("counts", ["1", 2, 3, 4], ["'counts'", "integers"]),
    ("counts", [True, 2, 3, 4], ["'counts'", "integers"]),
    ("beta", {"a": 1}, ["'beta'"]),
    ("pending_episodes", [[9, 1.0]], ["'pending_episodes'", "scenario index < 4"]),
    ("pending_episodes", [[0, "nan"]], ["'pending_episodes'", "finite return"]),
    ("pending_episodes", {"0": 1.0}, ["'pending_episodes'"]),
    ("num_timesteps", "many", ["'num_timesteps'", "integer"]),
    ("utility_ema", 7, ["'utility_ema'", "(0, 1]"]),
    ("prior", 3, ["'prior'"]),
    ("nature", DELETE, ["'nature'", "object"]),
    ("nature", [], ["'nature'", "object"]),
    ("nature.n_scenarios", 10**12, ["'nature'", "1000000000000 scenarios", "the config has 4"]),
    ("nature.weights", ["x"] * 4, ["'nature.weights'"]),
    ("nature.n_updates", "x", ["'nature'", "malformed"]),
    ("nature.format", "other", ["'nature'", "refused"]),
    ("fictitious_play", DELETE, ["'fictitious_play'", "null"]),
    ("fictitious_play", "yes", ["'fictitious_play'", "object"]),
    ("fictitious_play.filled", [True] * 10**4, ["'fictitious_play.filled'", "4 booleans"]),
    ("fictitious_play.filled", [1, 0, 0, 0], ["'fictitious_play.filled'", "booleans"]),
    ("fictitious_play.seen", -1, ["'fictitious_play.seen'"]),
    ("fictitious_play.rng", {"bit_generator": "PCG64"}, ["'fictitious_play.rng'", "PCG64"]),
    ("fictitious_play.rng", None, ["'fictitious_play.rng'"]),
    ("config", DELETE, ["'config'", "object"]),
    ("config.scenarios", DELETE, ["'config'", "scenarios"]),
    ("config.scenarios.scenarios", [{"n_focal": "x"}], ["'config'"]),
    ("config.scenarios.n_seats", [], ["'config'"]),
    ("config.fp_capacity", 10**9, ["'config'", "fp_capacity"]),
    ("config.lr", True, ["'config'", "lr"]),
    ("npz_sha256", 5, ["'npz_sha256'", "sha256"]),
    ("version", True, ["version True"]),
    ("format", DELETE, ["not an AHTCallback state"]),
]


@pytest.mark.parametrize(
    ("field", "value", "words"), MALFORMED, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(MALFORMED)]
)
def test_a_malformed_state_names_the_field(saves, tmp_path, field, value, words):
    json_path, _ = put(tmp_path, saves["new"])
    json_path.write_text(json.dumps(edit(json.loads(saves["new"][0]), field, value)))
    with pytest.raises(ConfigError) as err:
        read_state(tmp_path / "run")
    assert type(err.value) is ConfigError
    for word in words:
        assert word in str(err.value)
    assert "run.aht.json" in str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"{not json", ["not valid JSON"]),
        (b"\xff\xfe", ["not valid JSON"]),
        (b"[" * 100_000 + b"]" * 100_000, ["not valid JSON", "RecursionError"]),
        (b"[]", ["not an AHTCallback state"]),
    ],
)
def test_an_unreadable_json_is_a_config_error(tmp_path, text, words):
    json_path, _ = state_paths(tmp_path / "run")
    json_path.write_bytes(text)
    with pytest.raises(ConfigError) as err:
        read_state(tmp_path / "run")
    for word in words:
        assert word in str(err.value)


def test_a_missing_or_oversized_json_is_refused_before_it_is_read(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        read_state(tmp_path / "run")
    json_path, _ = state_paths(tmp_path / "run")
    json_path.write_text(" " * 2048 + "{}")
    monkeypatch.setattr(aht_state, "MAX_STATE_BYTES", 1024)
    with pytest.raises(ConfigError, match="MAX_STATE_BYTES"):
        read_state(tmp_path / "run")


def npz_with_header(shape, data=b"\0" * 64, dtype="<f8"):
    """An .npz whose one array declares ``shape`` but holds only ``data``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("fp0/w.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("npz", "words"),
    [
        (npz_with_header((10**11,)), ["declares shape", "damaged"]),
        (npz_with_header((2**40, 2**40)), ["declares shape"]),
        (npz_with_header((4,), dtype="|O"), ["not a plain numeric array"]),
        (b"PK\x03\x04 not a zip", ["not a readable .npz"]),
    ],
)
def test_weights_declaring_huge_sizes_are_refused_before_allocating(saves, tmp_path, npz, words):
    import hashlib

    json_path, npz_path = put(tmp_path, saves["new"])
    npz_path.write_bytes(npz)
    state = json.loads(saves["new"][0]) | {"npz_sha256": hashlib.sha256(npz).hexdigest()}
    json_path.write_text(json.dumps(state))
    with pytest.raises(ConfigError) as err:
        read_state(tmp_path / "run")
    for word in words:
        assert word in str(err.value)


def test_the_total_of_declared_weights_is_capped(saves, tmp_path, monkeypatch):
    put(tmp_path, saves["new"])
    monkeypatch.setattr(aht_state, "MAX_WEIGHTS_BYTES", 16)
    with pytest.raises(ConfigError, match="MAX_WEIGHTS_BYTES"):
        read_state(tmp_path / "run")
