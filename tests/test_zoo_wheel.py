"""The zoo from an installed wheel, offline, outside the checkout (the README's zoo code).

The wheel is built the way ``python -m build`` does it (setuptools' PEP 517 hooks: an sdist from a
copy of the sources, then the wheel from the unpacked sdist, so the sdist is proven to carry
``populations/`` too), installed with ``pip install --no-index --no-deps`` into a fresh venv whose
dependencies come from this venv's site-packages through a ``.pth`` line (the editable install's
finder is not loaded there), and run from a directory outside the checkout with the network
disabled: no ``RQE_ZOO_URL``, no config file, ``RQE_ZOO_OFFLINE=1``, ``socket.connect`` refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "rqe_wrappers", "populations")

# The README's zoo code (the Tag runner and the IPD partners), then checks; prints one JSON line.
SCRIPT = r"""
import json, pathlib, socket, warnings

def no_network(*args, **kwargs):
    raise OSError("the network is disabled in this test")

socket.socket.connect = no_network
socket.create_connection = no_network

import numpy as np
import rqe_wrappers
from rqe_wrappers import load_population
from rqe_wrappers.zoo.config import bundled_populations, checkout_populations, default_url

runner = load_population("tag/runners")["runner-0"].policy()  # a published, pretrained runner
partners = load_population("ipd/train")
probs = runner.action_probs(np.zeros((1, 12), np.float32))
out = {
    "package": rqe_wrappers.__file__,
    "checkout": str(checkout_populations()),
    "bundled": str(bundled_populations()),
    "default_url": default_url(),
    "runners": load_population("tag/runners@1").ref,
    "partners": [partners.ref, len(partners), partners.names[:3]],
    "probs_sum": float(probs.sum()),
}
# sha256 checked: corrupt one member's bundled copy and its cached copy; the load must refuse it
bundled = pathlib.Path(out["bundled"]) / "tag" / "runners" / "1" / "runner-1.safetensors"
cached = pathlib.Path(load_population("tag/runners@1").path) / "runner-1.safetensors"
data = bundled.read_bytes()
bundled.write_bytes(bytes([data[0] ^ 1]) + data[1:])
cached.write_bytes(b"garbage")
try:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        load_population("tag/runners@1")
    out["corrupt"] = "loaded"
except Exception as e:
    out["corrupt"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    hooks = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
    sdist = _run([sys.executable, "-c", hooks, "build_sdist", str(tmp / "dist")], src).strip().splitlines()[-1]
    with tarfile.open(tmp / "dist" / sdist) as tar:
        tar.extractall(tmp / "sdist", filter="data")
    (unpacked,) = (tmp / "sdist").iterdir()
    name = _run([sys.executable, "-c", hooks, "build_wheel", str(tmp / "dist")], unpacked).strip().splitlines()[-1]
    return tmp / "dist" / name


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (pip, no index, no deps); dependencies from ours via a .pth line."""
    tmp = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], tmp)
    python = tmp / "venv" / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps-from-the-test-venv.pth").write_text("\n".join(ours) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", "--no-deps", str(wheel)],
        tmp,
    )
    return tmp / "venv"


def _offline_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RQE_ZOO_", "PYTHON"))}
    env.update(
        RQE_ZOO_OFFLINE="1",
        RQE_ZOO_CACHE=str(tmp / "cache"),
        RQE_ZOO_CONFIG=str(tmp / "no-such-config.toml"),
        HOME=str(tmp),
        PYTHONNOUSERSITE="1",
    )
    return env


def test_wheel_ships_the_published_populations(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    published = sorted(p.relative_to(ROOT / "populations") for p in (ROOT / "populations").rglob("*") if p.is_file())
    assert published, "populations/ is empty"
    missing = [str(p) for p in published if f"rqe_wrappers/zoo/_populations/{p.as_posix()}" not in names]
    assert missing == [], f"the wheel lacks {missing}: update [tool.setuptools.package-data] in pyproject.toml"
    assert not any(n.startswith("populations/") for n in names)  # nothing at the top of site-packages


def test_readme_zoo_code_runs_from_the_installed_wheel_offline(venv, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = _offline_env(tmp_path)
    python = str(venv / "bin" / "python")
    out = json.loads(_run([python, "-c", SCRIPT], outside, env).strip().splitlines()[-1])
    assert out["package"].startswith(str(venv)), out["package"]  # the wheel, not the checkout
    assert out["checkout"] == "None"
    assert out["bundled"].startswith(str(venv)) and out["default_url"] == Path(out["bundled"]).as_uri()
    assert out["runners"] == "tag/runners@1"
    assert out["partners"] == ["ipd/train@1", 9, ["always-cooperate", "always-defect", "tit-for-tat"]]
    assert out["probs_sum"] == pytest.approx(1.0)
    cached = tmp_path / "cache" / "tag" / "runners" / "1"
    assert (cached / "runner-0.safetensors").read_bytes() == (
        ROOT / "populations/tag/runners/1/runner-0.safetensors"
    ).read_bytes()
    # the command line sees the same zoo
    listing = _run([str(venv / "bin" / "rqe"), "zoo", "list"], outside, env)
    assert "zoo: file://" in listing and "tag/runners  versions 1" in listing and "ipd/train  versions 1" in listing
    # sha256 verified: a corrupt cached file is re-fetched from the bundled copy, which is corrupt too -> refused
    assert out["corrupt"].startswith("ChecksumError") and "runner-1.safetensors" in out["corrupt"], out["corrupt"]


def test_every_package_is_in_the_wheel():
    from setuptools import find_packages

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(find_packages(str(ROOT), include=["rqe_wrappers*"]))
    missing = sorted(found - listed)
    assert missing == [], f"add {missing} to [tool.setuptools] packages in pyproject.toml (or the wheel lacks them)"
