"""Seeded random streams: every random choice flows from ``reset(seed=...)``."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def stream(seed: int | None, name: str) -> np.random.Generator:
    """An independent Generator for one named purpose (shadow seat, background actions, ...).

    ``seed=None`` draws fresh entropy, like gymnasium's ``reset()`` without a seed.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def categorical(probs: np.ndarray, rng: np.random.Generator) -> Any:
    """Inverse-CDF draws: one index per row of ``probs`` (an ``int`` for a 1-d ``probs``).

    Rows need not be normalised; one ``rng.random()`` is drawn per row, so a 1-d draw and a
    one-row batch consume the stream alike.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[0] == 1):  # one row (per seat and step in the per-copy path)
        cdf1 = np.cumsum(p.reshape(-1))  # the same draw as below, without the batch's arrays
        pick = min(int(np.searchsorted(cdf1, rng.random() * cdf1[-1], side="right")), cdf1.shape[0] - 1)
        return pick if p.ndim == 1 else np.array([pick], dtype=np.int64)
    rows = np.atleast_2d(p)
    cdf = np.cumsum(rows, axis=1)
    u = rng.random((rows.shape[0], 1)) * cdf[:, -1:]
    picks = np.minimum((u >= cdf).sum(axis=1), rows.shape[1] - 1).astype(np.int64)
    return int(picks[0]) if p.ndim == 1 else picks
