"""The conformance matrix: third-party PettingZoo envs through ``srpo_wrap``, ``aht_wrap`` and the SB3 adapter.

Each :class:`EnvCase` names an env nobody here wrote and the route that makes it trainable; each
check runs PettingZoo's own API and seed tests on the wrapped env and a short stock PPO /
MaskablePPO run. ``python -m rqe_wrappers.conformance --out docs/envs.md`` runs the whole matrix and
writes the page; ``tests/test_conformance.py`` runs it in CI. Docs: docs/envs.md.
"""

from rqe_wrappers.conformance.cases import CASES, INSTALL, METHODS, PREP, EnvCase
from rqe_wrappers.conformance.checks import applies, check, passed, wrapped
from rqe_wrappers.conformance.page import main, write_page

__all__ = [
    "CASES",
    "INSTALL",
    "METHODS",
    "PREP",
    "EnvCase",
    "applies",
    "check",
    "main",
    "passed",
    "wrapped",
    "write_page",
]
