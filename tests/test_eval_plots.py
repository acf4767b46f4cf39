"""The evaluation figures (rqe_wrappers.plots): cross-play heatmap grouped by method, population bars."""

from __future__ import annotations

import numpy as np
import pytest

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.plots import plot_crossplay, plot_population

AGENTS = ["srpo-0", "srpo-1", "ippo-0", "ippo-1", "greedy"]
METHODS = {"srpo-0": "srpo", "srpo-1": "srpo", "ippo-0": "ippo", "ippo-1": "ippo", "greedy": "scripted"}


def test_crossplay_heatmap_has_one_cell_per_pairing_and_method_separators(tmp_path):
    m = np.arange(25.0).reshape(5, 5)
    fig = plot_crossplay(m, AGENTS, METHODS, tmp_path / "xp")
    assert (tmp_path / "xp.png").stat().st_size > 5_000 and (tmp_path / "xp.svg").is_file()
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), m)  # 5 x 5 cells, as given
    assert len(ax.lines) == 2 * 2  # three method blocks: two boundaries, each a row and a column line
    texts = [t.get_text() for t in ax.texts]
    assert sum(t in {"srpo", "ippo", "scripted"} for t in texts) == 2 * 3  # each block labelled on two sides
    assert "24" in texts and len(texts) == 25 + 6  # annotated cells


def test_large_heatmaps_are_not_annotated(tmp_path):
    n = 13
    fig = plot_crossplay(np.eye(n), [f"a{i}" for i in range(n)], {}, tmp_path / "big.png")
    assert fig.axes[0].images[0].get_array().shape == (n, n)
    assert not fig.axes[0].texts and not fig.axes[0].lines  # one method per agent: no blocks drawn
    with pytest.raises(ConfigError, match=r"expected \(2, 2\)"):
        plot_crossplay(np.eye(3), ["a", "b"], {}, tmp_path / "bad")


def test_population_bars_mark_the_worst_member(tmp_path):
    utilities = {"runner-0": 1.0, "runner-1": 0.5, "runner-2": 2.0, "runner-3": 1.5}
    fig = plot_population(utilities, tmp_path / "pop", best_responses={"runner-1": 3.0}, errors={"runner-0": 0.1})
    assert (tmp_path / "pop.png").is_file() and (tmp_path / "pop.svg").is_file()
    ax = fig.axes[0]
    bars = ax.patches  # one rectangle per bar
    assert [b.get_height() for b in bars] == list(utilities.values())
    red = [i for i, b in enumerate(bars) if b.get_facecolor() != bars[0].get_facecolor()]
    assert red == [1]  # the worst case, runner-1
    assert any("worst 0.5" in t.get_text() for t in ax.texts)
    with pytest.raises(ConfigError, match="at least one"):
        plot_population({}, tmp_path / "none")
