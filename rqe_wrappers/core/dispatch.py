"""Pick the parallel or the AEC (turn-based) version of a wrapper for a PettingZoo env.

Every wrapper that comes in both kinds (``background_seats``, ``srpo_wrap``, ``scale_rewards``,
``aht_wrap``) returns the same API kind it was given; see docs/CONTRACTS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pettingzoo import AECEnv, ParallelEnv

P = TypeVar("P")
A = TypeVar("A")


def check_api(env: Any, what: str) -> None:
    """Raise ``TypeError`` (naming ``what`` and both accepted types) unless ``env`` is a PettingZoo env."""
    if not isinstance(env, (ParallelEnv, AECEnv)):
        raise TypeError(
            f"{what}: expected a PettingZoo ParallelEnv or AECEnv, got {type(env).__name__}; "
            "pass an env built by its parallel_env() or env() function"
        )


def by_api(env: Any, *, parallel: Callable[[ParallelEnv], P], aec: Callable[[AECEnv], A], what: str) -> P | A:
    """``parallel(env)`` for a ``ParallelEnv``, ``aec(env)`` for an ``AECEnv``, else a ``TypeError``.

    The return type is the union of the two branches' (e.g. ``ParallelSeating | AECSeating``).

    Example:
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> by_api(coordination_game(), parallel=lambda e: "parallel", aec=lambda e: "aec", what="demo")
        'parallel'
    """
    if isinstance(env, ParallelEnv):
        return parallel(env)
    check_api(env, what)
    return aec(env)
