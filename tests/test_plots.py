"""rqe_wrappers.plots: every figure from its data, matplotlib's object API only (no global backend)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.plots import plot_beta, plot_test_widths, read_beta_log


def sb3_progress_csv(run_dir):
    """A progress.csv written by SB3's own CSV logger, as AHTCallback's records end up."""
    from stable_baselines3.common.logger import configure

    logger = configure(str(run_dir), ["csv"])
    for t, b in ((64, 0.5), (128, 0.4), (192, 0.3)):
        logger.record("time/total_timesteps", t)
        logger.record("aht/beta/c1:ipd/always-defect", b)
        logger.record("aht/beta/c2", 1 - b)
        if t > 64:
            logger.record("train/loss", 1.0)  # a key that appears later: SB3 rewrites the header
        logger.dump(t)
    logger.close()
    return run_dir / "progress.csv"


def test_plot_beta_reads_sb3_progress_csv(tmp_path):
    pytest.importorskip("stable_baselines3")
    csv = sb3_progress_csv(tmp_path)
    xcol, x, ids, beta = read_beta_log(csv)
    assert xcol == "time/total_timesteps" and x.tolist() == [64, 128, 192]
    assert ids == ["c1:ipd/always-defect", "c2"]
    assert beta[:, 1].tolist() == pytest.approx([0.4, 0.6])
    out = plot_beta(csv, tmp_path / "fig" / "beta.png", title="t")
    assert out == tmp_path / "fig" / "beta.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_beta_reads_the_legacy_csv(tmp_path):
    csv = tmp_path / "beta.csv"
    csv.write_text("timesteps,aht/beta/b,aht/beta/a,aht/utility/a\n10,0.5,0.5,\n20,0.9,0.1,3.0\n")
    xcol, _, ids, beta = read_beta_log(csv)
    assert xcol == "timesteps" and ids == ["a", "b"] and beta[:, 1].tolist() == [0.1, 0.9]
    assert plot_beta(csv, tmp_path / "b.png").stat().st_size > 1000


def test_plot_beta_rejects_logs_without_beta(tmp_path):
    csv = tmp_path / "progress.csv"
    csv.write_text("time/total_timesteps,train/loss\n64,1.0\n")
    with pytest.raises(ConfigError, match="aht/beta"):
        plot_beta(csv, tmp_path / "b.png")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ConfigError, match="no rows"):
        plot_beta(tmp_path / "empty.csv", tmp_path / "b.png")
    with pytest.raises(ConfigError, match="cannot read"):
        plot_beta(tmp_path / "missing.csv", tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_missing_matplotlib_is_a_config_error_with_the_install_hint(tmp_path, monkeypatch):
    csv = tmp_path / "beta.csv"
    csv.write_text("timesteps,aht/beta/a\n10,1.0\n")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'rqe-wrappers\[plot\]'"):
        plot_beta(csv, tmp_path / "b.png")


def test_plot_test_widths_needs_two_widths(tmp_path):
    stat = {"mean": 1.0, "std": 0.1, "n": 2}
    metrics = {m: stat for m in ("mean_utility", "worst_utility", "worst_regret")}
    one = {"MU": {"test": {"0.5": metrics}}}
    assert plot_test_widths(one, {}, tmp_path / "w.png") is None and not (tmp_path / "w.png").exists()
    two = {"MU": {"test": {"0.5": metrics, "1": metrics}}}
    ref = {"Random": {"test": {w: {m: 2.0 for m in metrics} for w in ("0.5", "1")}}}
    assert plot_test_widths(two, ref, tmp_path / "w.png").stat().st_size > 1000


def test_figures_never_touch_pyplot_or_the_backend(tmp_path):
    """A fresh interpreter draws the bifurcation plot without importing pyplot or calling matplotlib.use."""
    code = f"""
import sys, matplotlib
matplotlib.use = lambda *a, **k: (_ for _ in ()).throw(AssertionError("matplotlib.use called"))
from rqe_wrappers.envs.matrix import coordination_payoffs
from rqe_wrappers.plots import plot_bifurcation
from rqe_wrappers.srpo.bifurcation import sweep
rows = sweep(coordination_payoffs(0.5), [0.0, 0.5, 1.0], 0.2)
out = plot_bifurcation(rows, 0.79, {str(tmp_path / "bif.png")!r}, title="t")
assert out.stat().st_size > 10_000
assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)
