"""One IPD learner: its env (``aht_wrap`` with the prior's partners), PPO training, and its evaluation."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rqe_wrappers.experiments.common import check_count
from rqe_wrappers.experiments.ipd.evaluation import as_table, evaluate_policy, train_best_responses
from rqe_wrappers.experiments.ipd.settings import (
    DEFAULT_SETTINGS,
    TABLE_WIDTH,
    TEST_SEED,
    IPDSettings,
    prior_abbrev,
    prior_name,
)
from rqe_wrappers.partners.ipd import PERTURBATION_WIDTHS, PERTURBED_COUNT, training_partners

#: Where :func:`run_one` puts a run's SB3 log (``progress.csv``), under the experiment's ``out``.
LOG_DIR = "logs/{abbrev}-seed{seed}"


def make_env_fn(prior: str, settings: IPDSettings) -> Callable[[], Any]:
    """The env factory of one run: ``aht_wrap(ipd_env(rounds), partners, prior, ...)``."""
    from rqe_wrappers.aht.wrapper import aht_wrap
    from rqe_wrappers.envs.ipd import ipd_env

    prior = prior_name(prior)
    rounds = settings.rounds
    population = {} if prior in ("self-play", "fictitious-play") else training_partners(rounds)
    kwargs: dict[str, Any] = {
        "lr": settings.nature_lr,
        "uniform_mix": settings.nature_eps,
        "nature_step": settings.nature_step,
    }
    if prior == "minimax-regret":
        kwargs["best_responses"] = train_best_responses(rounds)
    if prior == "fictitious-play":
        kwargs["fp_capacity"] = settings.fp_capacity
        kwargs["fp_focal"] = settings.fp_focal
    return lambda: aht_wrap(ipd_env(rounds), population, prior, **kwargs)


def train_learner(
    prior: str,
    seed: int,
    steps: int,
    settings: IPDSettings = DEFAULT_SETTINGS,
    *,
    log_dir: str | Path | None = None,
    csv_path: str | Path | None = None,
    verbose: int = 0,
):
    """Train one learner with stock SB3 PPO (CPU, one torch thread); returns ``(model, callback, info)``.

    Seeded end to end: ``PPO(seed=seed)``, env copy ``j`` reset with ``seed + j`` (scenario
    sampling), fictitious-play reservoir from the model's seed. With ``log_dir``, SB3's logger
    writes ``<log_dir>/progress.csv`` (one row per rollout: ``time/total_timesteps``,
    ``aht/beta/<scenario id>``, ...). ``info``: ``steps``, ``seconds``, ``steps_per_s``,
    ``final_beta`` (by scenario id). ``csv_path`` is deprecated: use ``log_dir``.
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    from rqe_wrappers.sb3 import make_vec_env
    from rqe_wrappers.sb3.aht_callback import AHTCallback

    steps = check_count(int(steps), "steps")
    callback_kwargs: dict[str, Any] = {}
    if csv_path is not None:
        warnings.warn(
            "train_learner(csv_path=) is deprecated: pass log_dir= and read SB3's progress.csv",
            DeprecationWarning,
            stacklevel=2,
        )
        callback_kwargs["csv_path"] = csv_path
    torch.set_num_threads(1)
    venv = make_vec_env(
        make_env_fn(prior, settings), n_copies=settings.n_copies, n_workers=settings.n_workers, seed=int(seed)
    )
    try:
        model = PPO("MlpPolicy", venv, seed=int(seed), device="cpu", verbose=verbose, **settings.ppo_kwargs())
        if log_dir is not None:
            model.set_logger(configure(str(log_dir), ["stdout", "csv"] if verbose else ["csv"]))
        callback = AHTCallback(utility_ema=settings.utility_ema, **callback_kwargs)
        t0 = time.perf_counter()
        try:
            model.learn(steps, callback=callback)
        finally:
            if log_dir is not None:
                model.logger.close()
        seconds = time.perf_counter() - t0
    finally:
        venv.close()
    scenarios, beta = callback.scenarios, callback.beta
    if scenarios is None or beta is None:  # pragma: no cover - learn() starts the callback
        raise RuntimeError("AHTCallback was not started by model.learn()")
    info = {
        "steps": int(model.num_timesteps),
        "seconds": seconds,
        "steps_per_s": model.num_timesteps / seconds,
        "final_beta": dict(zip(scenarios.ids, (float(b) for b in beta), strict=True)),
    }
    return model, callback, info


def run_one(
    prior: str,
    seed: int,
    steps: int,
    settings: IPDSettings = DEFAULT_SETTINGS,
    *,
    out: str | Path | None = None,
    widths: Sequence[float] = PERTURBATION_WIDTHS,
    test_count: int = PERTURBED_COUNT,
    test_seed: int = TEST_SEED,
    table_width: float = TABLE_WIDTH,
) -> dict[str, Any]:
    """Train and evaluate one (prior, seed); with ``out``, writes ``logs/<P>-seed<k>/progress.csv`` and the model.

    The greedy (argmax) policy is evaluated on the training scenarios and the ``table_width`` test set.
    """
    abbrev = prior_abbrev(prior)
    log_dir = None
    if out is not None:
        out = Path(out)
        log_dir = out / LOG_DIR.format(abbrev=abbrev, seed=seed)  # SB3's CSV logger starts a fresh file
    model, _, info = train_learner(prior, seed, steps, settings, log_dir=log_dir)
    if out is not None:
        (out / "models").mkdir(parents=True, exist_ok=True)
        model.save(str(out / "models" / f"{abbrev}-seed{seed}.zip"))
    t0 = time.perf_counter()
    table = as_table(model, settings.rounds)
    result = {
        "prior": prior_name(prior),
        "abbrev": abbrev,
        "seed": int(seed),
        **info,
        "p_defect": [float(p) for p in table.table],
    }
    result.update(evaluate_policy(table, settings.rounds, widths=widths, test_count=test_count, test_seed=test_seed))
    greedy = evaluate_policy(
        as_table(model, settings.rounds, greedy=True),
        settings.rounds,
        widths=[table_width],
        test_count=test_count,
        test_seed=test_seed,
    )
    result["greedy"] = {"train": greedy["train"], "test": greedy["test"]}
    result["eval_seconds"] = time.perf_counter() - t0
    return result


def _job(
    prior: str,
    seed: int,
    steps: int,
    settings: dict,
    out: str | None,
    widths: list[float],
    test_count: int,
    test_seed: int,
    table_width: float,
) -> dict[str, Any]:
    """:func:`run_one` with picklable arguments (one process-pool job)."""
    return run_one(
        prior,
        seed,
        steps,
        IPDSettings.from_json(settings),
        out=out,
        widths=widths,
        test_count=test_count,
        test_seed=test_seed,
        table_width=table_width,
    )
