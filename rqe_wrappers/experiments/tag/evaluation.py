"""Seeded, batched Tag evaluation: any agent as a seat's Policy, episodes played, runner/chaser scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.envs.tag import CHASERS, RUNNER, seat_spaces, tag_env
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.agents import Agent, as_policy
from rqe_wrappers.experiments.common import check_count

#: Evaluation episodes are reset with ``EVAL_SEED + i``: far from training seeds, shared by all runs.
EVAL_SEED = 1_000_000
EVAL_EPISODES = 64  # the paper's training-curve evaluation: 64 rollouts of length 100
DEFAULT_CHASERS = "tag/greedy-chaser"


def as_tag_policy(agent: Agent, seat: str) -> Policy:
    """``agent`` as a :class:`Policy` that plays ``seat`` of :func:`tag_env`.

    ``agent`` may be a :class:`Policy`, an SB3 model (a detached CPU copy is taken), a zoo member or
    the name of a registered scripted policy (built with the seat's spaces): see
    :func:`rqe_wrappers.eval.as_policy`. Policies trained with SRPO (whose observations carry the
    role feature) play in the partner role, with their chaser index as seat identity.
    """
    obs_space, act_space = seat_spaces(seat)
    index = CHASERS.index(seat) if seat in CHASERS else None
    return as_policy(agent, obs_space, act_space, seat_index=index, who=f"seat {seat!r}")


def play_tag(
    policies: Mapping[str, Agent], episodes: int, seed: int = EVAL_SEED, *, batch: int = 32
) -> dict[str, np.ndarray]:
    """Play ``episodes`` seeded episodes of :func:`tag_env`; per-episode (scaled) returns of every seat.

    ``policies`` maps every seat to an agent (see :func:`as_tag_policy`); seats that share one
    object act in one batched call. Episode ``i`` is reset with ``seed + i``; each distinct
    policy samples from ``stream(seed, "tag-eval/<its seats>")``. Episodes run ``batch`` at a time
    in lock-step. Recurrent state is not carried (Tag's policies here are feed-forward).
    """
    episodes = check_count(episodes, "episodes")
    seats = [*CHASERS, RUNNER]
    missing = [s for s in seats if s not in policies]
    if missing:
        raise ConfigError(f"play_tag needs a policy for every seat; missing {missing}")
    built: dict[tuple, Policy] = {}
    per_seat: dict[str, Policy] = {}
    for s in seats:  # one Policy per distinct agent object (names: one per name and seat kind)
        agent = policies[s]
        key = ("name", agent, s == RUNNER) if isinstance(agent, str) else ("object", id(agent))
        if key not in built:
            policy = as_tag_policy(policies[s], s)
            if getattr(policy, "seat", None) is not None:  # trained with seat identity: one per seat
                key = (*key, s)
            built[key] = policy
        per_seat[s] = built[key]
    groups: dict[int, list[str]] = {}
    for s in seats:
        groups.setdefault(id(per_seat[s]), []).append(s)
    rngs = {g: stream(seed, "tag-eval/" + "+".join(ss)) for g, ss in groups.items()}
    returns = {s: np.zeros(episodes) for s in seats}
    envs = [tag_env() for _ in range(min(int(batch), episodes))]
    for start in range(0, episodes, len(envs)):
        chunk = list(range(start, min(start + len(envs), episodes)))
        obs = {k: envs[k].reset(seed=int(seed) + ep)[0] for k, ep in enumerate(chunk)}
        while True:
            live = [k for k in range(len(chunk)) if envs[k].agents]
            if not live:
                break
            actions: dict[int, dict[str, int]] = {k: {} for k in live}
            for g, group_seats in groups.items():
                rows = [(k, s) for k in live for s in group_seats if s in envs[k].agents]
                if not rows:
                    continue
                acts, _ = per_seat[group_seats[0]].act(np.stack([obs[k][s] for k, s in rows]), rng=rngs[g])
                for (k, s), a in zip(rows, np.asarray(acts).tolist(), strict=True):
                    actions[k][s] = a
            for k in live:
                obs[k], rew, _, _, _ = envs[k].step(actions[k])
                for s, r in rew.items():
                    returns[s][chunk[k]] += r
    for env in envs:
        env.close()
    return returns


def evaluate_runner(
    runner: Agent,
    chasers: Agent | Mapping[str, Agent] = DEFAULT_CHASERS,
    episodes: int = EVAL_EPISODES,
    seed: int = EVAL_SEED,
) -> dict[str, float]:
    """Mean (scaled) runner and chaser returns of ``runner`` against ``chasers`` over seeded episodes."""
    chaser_agents = chasers if isinstance(chasers, Mapping) else {c: chasers for c in CHASERS}
    rets = play_tag({**chaser_agents, RUNNER: runner}, episodes, seed)
    return {
        "runner_return": float(rets[RUNNER].mean()),
        "runner_return_std": float(rets[RUNNER].std()),
        "chaser_return": float(rets[CHASERS[0]].mean()),
    }


def evaluate_chasers(
    model: Agent,
    runner_policies: Mapping[str, Agent],
    episodes: int = 100,
    seed: int = EVAL_SEED,
    *,
    partner: Agent | None = None,
) -> dict[str, Any]:
    """Mean chaser return of trained chasers against each runner, plus worst case and mean over runners.

    Both chasers are played by ``model`` in the *partner* role (or ``adversary_1`` by ``partner``,
    for teammate-shift cross-play). Returns are *scaled* (x0.1, the training reward): the team's
    collision-steps per episode. Keys: ``per_runner`` and ``per_runner_std`` (``{name: float}``),
    ``worst_case``, ``worst_runner``, ``mean`` (over runners), ``episodes``, ``seed``, ``reward``.
    Same arguments, same numbers.
    """
    if not runner_policies:
        raise ConfigError("evaluate_chasers needs at least one runner: runner_policies={name: policy}")
    chaser = as_tag_policy(model, CHASERS[0])
    if partner is None:  # the same model; with seat identity it plays the second seat as that seat
        second = chaser if getattr(chaser, "seat", None) is None else as_tag_policy(model, CHASERS[1])
    else:
        second = as_tag_policy(partner, CHASERS[1])
    per, std = {}, {}
    for name, runner in runner_policies.items():
        rets = play_tag({CHASERS[0]: chaser, CHASERS[1]: second, RUNNER: runner}, episodes, seed)
        team = (rets[CHASERS[0]] + rets[CHASERS[1]]) / 2.0
        per[str(name)], std[str(name)] = float(team.mean()), float(team.std())
    worst = min(per, key=lambda name: per[name])
    return {
        "per_runner": per,
        "per_runner_std": std,
        "worst_case": per[worst],
        "worst_runner": worst,
        "mean": float(np.mean(list(per.values()))),
        "episodes": int(episodes),
        "seed": int(seed),
        "reward": "scaled x0.1 (training reward): chaser-runner collision-steps per episode",
    }
