"""Seeded random streams: every random choice flows from ``reset(seed=...)``."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int | None, name: str) -> np.random.Generator:
    """An independent Generator for one named purpose (shadow seat, background actions, ...).

    ``seed=None`` draws fresh entropy, like gymnasium's ``reset()`` without a seed.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))
