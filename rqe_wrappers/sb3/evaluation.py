"""Evaluating an SRPO learner with SB3's ``EvalCallback`` / ``evaluate_policy``: the partner-role return.

On the training env a shadow's reward is minus its partners' mean, so SB3's tools average the two
roles to about 0. :func:`partner_eval_env` builds a VecEnv from the same ``env_fn`` with the
shadow switched off: every learning seat plays the *partner* role and is paid the env's own
reward, i.e. what the learner earns with its partners (the role feature is fixed to partner).
:func:`evaluate_partner` runs ``evaluate_policy`` on it. See docs/adapter.md, "SB3's own tools".
"""

from __future__ import annotations

import functools
from typing import Any, cast

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3.env_util import make_vec_env
from rqe_wrappers.sb3.learner_snapshot import share_learner
from rqe_wrappers.sb3.monitor import RoleVecMonitor
from rqe_wrappers.sb3.vec_env.copies import EnvFn
from rqe_wrappers.sb3.vec_env.pettingzoo_vec_env import PettingZooVecEnv

#: the snapshot name evaluate_partner shares the model under (one name: each call replaces the last)
EVAL_SNAPSHOT = "rqe-eval-learner"


def partner_only(env: Any) -> Any:
    """``env`` (made with ``srpo_wrap``) with no shadow: every learning seat plays the partner role.

    Rewards are then the env's own and the role feature always says *partner*. Works on the
    parallel and the AEC shadow wrapper, wherever it sits in the wrapper chain; raises
    :class:`~rqe_wrappers.errors.ConfigError` for an env without one.
    """
    node, seen = env, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        own = getattr(node, "__dict__", {})
        if "srpo_tau" in own and "shadows" in own:  # the shadow wrapper itself, not a layer forwarding to it
            node.tau = node.srpo_tau = 0.0  # no shadow is drawn at reset: all learning seats are partners
            node.shadows = set()
            return env
        node = own.get("env", own.get("aec_env"))
    raise ConfigError(
        "partner_eval_env / partner_only need an env made with srpo_wrap (no shadow wrapper found); evaluate "
        "other envs with stable_baselines3's evaluate_policy on rqe_wrappers.sb3.make_vec_env(env_fn)"
    )


def _partner_copy(env_fn: EnvFn) -> Any:
    return partner_only(env_fn())


def partner_eval_env(
    env_fn: EnvFn,
    n_copies: int = 1,
    n_workers: int = 0,
    seed: int | None = None,
    **kwargs: Any,
) -> PettingZooVecEnv | RoleVecMonitor:
    """A monitored VecEnv of ``env_fn``'s SRPO env with the shadow off, for ``EvalCallback`` / ``evaluate_policy``.

    ``env_fn`` is the function the training env is built from (``srpo_wrap`` inside). Every
    learning seat plays the partner role, so SB3's tools report what the learner earns with its
    partners. Arguments as :func:`~rqe_wrappers.sb3.make_vec_env`. Turn-based copies: their other
    seats play the snapshot shared under ``snapshot_name`` (default ``"learner"``, which
    ``SRPOCallback`` shares in this process every rollout; use ``n_workers=0`` for an eval env
    used during training, or :func:`evaluate_partner`, which shares the model itself).

    Example:
        >>> from rqe_wrappers import srpo_wrap
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> eval_env = partner_eval_env(lambda: srpo_wrap(coordination_game(0.5), tau=2.0), n_copies=2, seed=0)
        >>> obs = eval_env.reset()
        >>> obs[:, -2:].tolist()  # [partner, shadow]: every slot is a partner
        [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
        >>> eval_env.close()
    """
    return make_vec_env(functools.partial(_partner_copy, env_fn), n_copies, n_workers, seed, **kwargs)


def evaluate_partner(
    model: BaseAlgorithm,
    env_fn: EnvFn,
    n_episodes: int = 10,
    *,
    deterministic: bool = True,
    n_copies: int = 1,
    seed: int | None = 0,
    **kwargs: Any,
) -> tuple[float, float]:
    """``(mean, std)`` of the partner-role episode return of ``model`` with partners from the same model.

    ``evaluate_policy`` on :func:`partner_eval_env` (``kwargs`` go to it). Turn-based copies get
    ``model`` itself, not the lagged training snapshot, in their other seats.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ConfigError(f"n_episodes must be an integer >= 1, got {n_episodes!r}")
    kwargs.setdefault("snapshot_name", EVAL_SNAPSHOT)
    venv = partner_eval_env(env_fn, n_copies, seed=seed, **kwargs)
    try:
        if venv.uses_snapshot:
            share_learner(venv, venv.snapshot_name, model)
        result = evaluate_policy(model, venv, n_eval_episodes=n_episodes, deterministic=deterministic)
    finally:
        venv.close()
    mean, std = cast(tuple[float, float], result)  # return_episode_rewards=False: two floats
    return float(mean), float(std)
