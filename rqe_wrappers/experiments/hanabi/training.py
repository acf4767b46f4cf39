"""SRPO (``tau > 0``) and IPPO (``tau = 0``) on Hanabi through the turn-based path, with MaskablePPO.

Each env copy learns one seat (copy ``i``: ``player_<i mod n>``); the learner's snapshot, shared by
:class:`~rqe_wrappers.sb3.SRPOCallback` every rollout, plays the other seats in their roles. One
policy is shared by all seats; with ``tau > 0`` one seat per episode is the shadow. Docs: docs/hanabi.md.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from rqe_wrappers.core.checks import integer, real
from rqe_wrappers.experiments.hanabi.env import hanabi_env
from rqe_wrappers.experiments.settings import PPOSettings

#: MaskablePPO settings of the sweep, for a CPU budget of minutes (learning rate 1e-3: docs/hanabi.md).
HANABI_PPO = PPOSettings(
    n_copies=8, n_steps=128, batch_size=256, n_epochs=5, learning_rate=1e-3, ent_coef=0.01, net_arch=(128, 128)
)

__all__ = ["HANABI_PPO", "train_env", "train_hanabi"]


def train_env(players: int = 2, tau: float = 1.0, *, seat_id: bool = True, **params: Any) -> Any:
    """Hanabi wrapped for training: ``srpo_wrap(hanabi_env(players), tau, seat_id=seat_id)``.

    One team of all seats, all learning; ``tau > 0`` draws one shadow among them per episode
    (``n_shadows=1``, the paper's 4-player set-up), ``tau = 0`` none (IPPO).
    """
    from rqe_wrappers.srpo.shadow import srpo_wrap

    return srpo_wrap(hanabi_env(players, **params), tau=tau, seat_id=seat_id, n_shadows=1)


def make_model(players: int, tau: float, seed: int, settings: PPOSettings = HANABI_PPO, *, seat_id: bool = True) -> Any:
    """An untrained MaskablePPO on a seeded :class:`~rqe_wrappers.sb3.PettingZooVecEnv` of :func:`train_env` copies.

    Snapshots shared by earlier runs in this process are cleared (until the first share the other
    seats play uniformly at random). ``reseed_episodes=True``: shimmy's OpenSpiel env draws fresh
    entropy on ``reset(seed=None)``, so every episode gets a seed from the copy's seeded stream.
    """
    from sb3_contrib import MaskablePPO

    from rqe_wrappers.core import snapshot
    from rqe_wrappers.sb3 import make_vec_env

    snapshot.clear()  # learn() resets before SRPOCallback shares this learner: no earlier run's snapshot plays
    tau = real("tau", tau, low=0, hint="risk aversion; 0 = IPPO")
    seed = integer("seed", seed, low=0)
    venv = make_vec_env(
        partial(train_env, players, tau, seat_id=seat_id),
        n_copies=settings.n_copies,
        n_workers=settings.n_workers,
        seed=seed,
        reseed_episodes=True,
    )
    return MaskablePPO("MlpPolicy", venv, seed=seed, normalize_advantage=False, device="cpu", **settings.ppo_kwargs())


def train_hanabi(
    players: int,
    tau: float,
    seed: int,
    steps: int,
    settings: PPOSettings = HANABI_PPO,
    *,
    seat_id: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Train one MaskablePPO learner for ``steps`` learner moves; returns the model and its metrics.

    Metrics: ``players``, ``tau``, ``seed``, ``steps`` (learner moves, all seats' slots together),
    ``seconds``, ``steps_per_s``, ``train_return`` (mean partner-role episode return of the last
    episodes, i.e. the score with the snapshot as teammates and, under SRPO, a shadow among them).
    """
    import numpy as np

    from rqe_wrappers.sb3 import SRPOCallback

    steps = integer("steps", steps, low=1)
    model = make_model(players, tau, seed, settings, seat_id=seat_id)
    start = time.perf_counter()
    model.learn(steps, callback=SRPOCallback())
    seconds = time.perf_counter() - start
    episodes = [e["r"] for e in model.ep_info_buffer]
    metrics = {
        "players": int(players),
        "tau": float(tau),
        "seed": int(seed),
        "steps": int(model.num_timesteps),
        "seconds": round(seconds, 1),
        "steps_per_s": round(model.num_timesteps / max(seconds, 1e-9), 1),
        "train_return": float(np.mean(episodes)) if episodes else None,
    }
    return model, metrics
