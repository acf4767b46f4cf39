"""The conformance matrix in CI: srpo_wrap, aht_wrap and the adapter over third-party envs.

Each case runs PettingZoo's own API and seed tests on the wrapped env and a short PPO/MaskablePPO
run (rqe_wrappers.conformance). docs/envs.md is the same matrix, written by
``python -m rqe_wrappers.conformance``; a test checks the page lists every case.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rqe_wrappers.conformance import CASES, METHODS, applies, check, passed

PAGE = Path(__file__).resolve().parents[1] / "docs" / "envs.md"
_NEEDS = {"mpe": "mpe2", "butterfly": "pymunk", "sisl": "Box2D", "classic": "rlcard", "openspiel": "pyspiel"}


def _installed(extra: str) -> bool:
    module = _NEEDS.get(extra)
    return module is None or importlib.util.find_spec(module) is not None


PAIRS = [
    pytest.param(case, method, id=f"{case.id}-{method}")
    for case in CASES
    for method in METHODS
    if applies(case, method)
]


@pytest.mark.parametrize(("case", "method"), PAIRS)
def test_conformance(case, method):
    if not _installed(case.extra):
        pytest.skip(f"install rqe-wrappers[test] for {case.extra} envs")
    row = check(case, method)
    assert passed(row, case), f"{row.get('error')}\n{row.get('trace', '')}"


def test_page_lists_every_case_and_no_failure():
    text = PAGE.read_text(encoding="utf-8")
    for case in CASES:
        assert f"| `{case.id}` |" in text, case.id
    assert "**FAIL**" not in text and "## Failures" not in text


def test_a_broken_wrapper_fails_the_check(monkeypatch):
    """The check can fail: a wrapper that drops one seat's reward fails PettingZoo's API test."""
    from rqe_wrappers.conformance import checks

    case = next(c for c in CASES if c.id == "classic/tictactoe_v3")

    def broken(case, method):
        def make():
            env = case.build()
            original = env.last

            def last(observe=True):
                obs, rew, term, trunc, info = original(observe)
                return obs, rew + 1.0, term, trunc, info  # not what rewards / _cumulative_rewards say

            env.last = last
            return env

        return make

    monkeypatch.setattr(checks, "wrapped", broken)
    row = checks.check(case, "adapter")
    assert row["api"] == "FAIL" and not passed(row, case)
