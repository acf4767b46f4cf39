"""The SRPO paper's Tag experiment (appendix D.3) with stock SB3 PPO.

Two stages, as in the paper:

1. **Runners** (:func:`train_runner`): the runner is the only learning seat; the two chasers are
   fixed scripted policies (default ``"tag/greedy-chaser"``) played inside the env by
   :func:`~rqe_wrappers.background_seats`. One PPO model per seed; the zoo packages them.
2. **Chasers** (:func:`train_chasers`): both chasers learn one shared policy with SRPO (``tau > 0``)
   or IPPO (``tau = 0``, the same wrapper with no shadow) against a fixed trained runner, through
   ``srpo_wrap(tag_env(), tau, fixed={"agent_0": runner})`` and :class:`~rqe_wrappers.sb3.SRPOCallback`.

Evaluation (:func:`play_tag`, :func:`evaluate_chasers`) plays the unwrapped :func:`tag_env` in
lock-step batches, every episode seeded (episode ``i`` resets with ``seed + i``; each policy
samples from its own :func:`~rqe_wrappers.core.seeding.stream`), so the same seed gives the same numbers.
Returns are the env's *scaled* rewards (x0.1): a chaser's return is the team's number of
chaser-runner collision-steps in the episode (both chasers get the same).

Chasers also train on the batched path (:func:`train_chasers_batched`: ``BatchedTag`` through
``batched_vec_env``, 50-100x the per-copy speed); ``rqe tag shift`` (:func:`run_shift`) trains them
over (tau, seed) and measures runner shift and teammate shift.

Modules: ``evaluation``, ``training``, ``driver`` (the sweeps behind ``rqe tag train-runners`` and
``rqe tag srpo``), ``shift`` (``rqe tag shift``); see ``docs/tag.md``. SB3 and torch are imported
only inside the functions that train or load models.
"""

from __future__ import annotations

from rqe_wrappers._compat import moved_names
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag.driver import METRICS_FILE, ChaserSweep, RunnerSweep, run_srpo, train_runners
from rqe_wrappers.experiments.tag.evaluation import (
    DEFAULT_CHASERS,
    EVAL_EPISODES,
    EVAL_SEED,
    Agent,
    as_tag_policy,
    evaluate_chasers,
    evaluate_runner,
    play_tag,
)
from rqe_wrappers.experiments.tag.shift import ShiftSweep, opponents, run_shift
from rqe_wrappers.experiments.tag.training import (
    BATCHED_CHASER_PPO,
    CHASER_PPO,
    RUNNER_FILE,
    RUNNER_FILE_RE,
    RUNNER_PPO,
    load_runner,
    runner_files,
    train_chasers,
    train_chasers_batched,
    train_runner,
)

__all__ = [
    "BATCHED_CHASER_PPO",
    "CHASER_PPO",
    "DEFAULT_CHASERS",
    "EVAL_EPISODES",
    "EVAL_SEED",
    "METRICS_FILE",
    "RUNNER_FILE",
    "RUNNER_FILE_RE",
    "RUNNER_PPO",
    "Agent",
    "ChaserSweep",
    "PPOSettings",
    "RunnerSweep",
    "ShiftSweep",
    "as_tag_policy",
    "evaluate_chasers",
    "evaluate_runner",
    "load_runner",
    "opponents",
    "play_tag",
    "run_shift",
    "run_srpo",
    "runner_files",
    "train_chasers",
    "train_chasers_batched",
    "train_runner",
    "train_runners",
]

_MOVED = {"PartnerRole": "rqe_wrappers.srpo.roles", "add_parser": "rqe_wrappers.cli.tag"}


__getattr__ = moved_names(__name__, _MOVED)
