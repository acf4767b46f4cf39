"""Shared test fixtures."""

import pytest


@pytest.fixture(autouse=True)
def own_snapshots(monkeypatch):
    """Learner snapshots are shared process-wide; give every test an empty registry of its own."""
    from rqe_wrappers.core import snapshot

    monkeypatch.setattr(snapshot, "_LIVE", {})
