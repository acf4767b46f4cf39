"""The checks of one matrix cell: PettingZoo's API and seed tests on the wrapped env, a short PPO run."""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rqe_wrappers.conformance.cases import EnvCase


def _random_population(env: Any, fixed: Sequence[str]) -> dict[str, Any]:
    from rqe_wrappers.core.policy import RandomPolicy

    seats = [s for s in env.possible_agents if s not in fixed]
    return {"random": RandomPolicy(env.observation_space(seats[0]), env.action_space(seats[0]))}


def wrapped(case: EnvCase, method: str) -> Callable[[], Any]:
    """A builder of ``case``'s env wrapped for ``method`` (one of :data:`METHODS`)."""
    from rqe_wrappers.aht.wrapper import aht_wrap
    from rqe_wrappers.core.policy import RandomPolicy
    from rqe_wrappers.seats.background import background_seats
    from rqe_wrappers.srpo.shadow import srpo_wrap

    def make() -> Any:
        env = case.build()
        if method == "srpo":
            return srpo_wrap(env, tau=1.0, **dict(case.srpo or {}))
        if method == "aht":
            if case.aht_fixed:
                fixed = {s: RandomPolicy(env.observation_space(s), env.action_space(s)) for s in case.aht_fixed}
                env = background_seats(env, fixed)
            return aht_wrap(env, _random_population(env, case.aht_fixed), prior="maximin-utility")
        return env

    return make


def applies(case: EnvCase, method: str) -> bool:
    """Whether ``method`` is meant to work on ``case`` (the matrix says why not where it is not)."""
    return method == "adapter" or (method == "srpo" and case.srpo is not None) or (method == "aht" and case.aht)


def _pettingzoo_test(make: Callable[[], Any], which: str, cycles: int) -> None:
    """PettingZoo's ``which`` test (``"api"`` or ``"seed"``), the AEC or the parallel one as ``make()`` is."""
    from pettingzoo import AECEnv
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

    aec = isinstance(make(), AECEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "api":
            (api_test if aec else parallel_api_test)(make(), num_cycles=cycles)
        else:
            (seed_test if aec else parallel_seed_test)(make, num_cycles=cycles)


_RAW_TRIES = 5


def _outcome(make: Callable[[], Any], which: str, case: EnvCase, cycles: int, row: dict[str, Any]) -> str:
    """``"pass"``; ``"env"`` when the raw env fails the same test (nothing a wrapper can fix); ``"FAIL"``;
    ``"skipped"``: the parallel tests of envs with masks in ``infos`` (they would play illegal moves)."""
    from pettingzoo import AECEnv

    if case.info_masks and not isinstance(make(), AECEnv):
        return "skipped"
    try:
        _pettingzoo_test(make, which, cycles)
        return "pass"
    except Exception as e:
        row.setdefault("error", f"{which} test: {type(e).__name__}: {e}"[:300])
        row.setdefault("trace", traceback.format_exc()[-2000:])
    for _ in range(_RAW_TRIES):  # an env that does not reproduce passes its seed test now and then
        try:
            _pettingzoo_test(case.build, which, cycles)
        except Exception:
            return "env"
    return "FAIL"


def check(case: EnvCase, method: str, *, steps: int = 64, cycles: int = 50) -> dict[str, Any]:
    """PettingZoo's API and seed tests on the wrapped env, then a short PPO run: one row of the matrix.

    ``api`` and ``seed`` are ``"pass"``, ``"FAIL"``, ``"env"`` (the raw env fails that test too:
    shimmy's OpenSpiel envs do not reproduce from ``reset(seed=...)``) or ``"skipped"``; ``train`` is
    ``"pass"``, ``"FAIL"`` or ``"refused"`` (the adapter refused differing seats with a typed error).
    """
    from rqe_wrappers.core import snapshot
    from rqe_wrappers.errors import SpaceMismatchError

    snapshot.clear()  # snapshots are process-wide; every check starts without one
    row: dict[str, Any] = {"case": case.id, "method": method}
    make = wrapped(case, method)
    start = time.perf_counter()
    for which in ("api", "seed"):
        row[which] = _outcome(make, which, case, cycles, row)
    try:
        row.update(_train(case, method, make, steps))
    except SpaceMismatchError as e:
        refused = method == "adapter" and case.adapter == "refuse"
        row.update(train="refused" if refused else "FAIL", error=str(e)[:300])
    except Exception as e:
        row.update(train="FAIL", error=f"{type(e).__name__}: {e}"[:300], trace=traceback.format_exc()[-2000:])
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def passed(row: Mapping[str, Any], case: EnvCase) -> bool:
    """Whether a row is a pass for the matrix (what the CI test asserts)."""
    train_ok = row.get("train") == "pass" or (row.get("train") == "refused" and case.adapter == "refuse")
    return train_ok and row.get("api") != "FAIL" and row.get("seed") != "FAIL"


def _policy_for(space: Any) -> str:
    import gymnasium as gym
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(space, gym.spaces.Dict):
        return "MultiInputPolicy"
    return "CnnPolicy" if is_image_space(space, check_channels=False) else "MlpPolicy"


def _train(case: EnvCase, method: str, make: Callable[[], Any], steps: int) -> dict[str, Any]:
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import AHTCallback, PettingZooVecEnv, SRPOCallback

    torch.set_num_threads(1)
    venv = PettingZooVecEnv(make, n_copies=2)
    try:
        venv.seed(0)
        policy = _policy_for(venv.observation_space)
        algo = MaskablePPO if case.masked else PPO
        kwargs: dict[str, Any] = {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "seed": 0, "device": "cpu"}
        if policy != "CnnPolicy":
            kwargs["policy_kwargs"] = {"net_arch": [8]}
        model = algo(policy, venv, normalize_advantage=False, **kwargs)
        callback = {"srpo": SRPOCallback(), "aht": AHTCallback()}.get(method)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.learn(steps, callback=callback)
    finally:
        venv.close()
    return {"train": "pass", "slots": venv.num_envs, "policy": policy, "algo": algo.__name__}
