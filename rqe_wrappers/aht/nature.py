"""Nature: the prior beta over scenarios, learned against the focal policy (minimax-Bayes AHT).

The learner maximises its expected utility under beta; nature moves beta the other way, one step
per call of :meth:`Nature.update` with the latest per-scenario utility estimates (gradient
descent-ascent, the paper's Algorithms 1 and 2). Priors (:data:`PRIORS`):

- ``"maximin-utility"``: descent on utility, ``beta <- Proj_simplex(beta - lr * u)``.
- ``"minimax-regret"``: ascent on regret, ``beta <- Proj_simplex(beta + lr * (best_responses - u))``.
  Without ``best_responses`` the regret is approximated by ``best utility seen so far - u`` per
  scenario (the paper code's "auto regret"), which is zero at the first update and can only
  underestimate the true regret.
- ``"uniform"``: fixed uniform prior (population best response).
- ``"self-play"``: point mass on ``self_play_scenario`` (the scenario of focal copies only).
- ``"fictitious-play"``: the growing population of learner snapshots lives in the scenario
  wrapper; here it is a fixed uniform prior over whatever scenarios it is given.

``step="projected"`` (default) is the paper code's update: a Euclidean projection onto the
simplex after a plain gradient step, so mass can reach exactly zero and come back.
``step="exponentiated"`` is exponentiated gradient, ``beta_k ∝ beta_k * exp(-lr * u_k)`` (or
``exp(+lr * regret_k)``), kept in log space so no scenario is lost to underflow. ``lr`` is in units
of 1/utility: scale it to the range of the returns (the paper's IPD code used 1e-2 on returns up
to 15; with lr = 0.5 the projected step reaches a vertex as soon as utilities differ by 2 or more).

Uniform mixing, ``uniform_mix`` (the paper's eps, section 8.2: "keep sampling a random scenario
with probability eps"): the distribution that :attr:`Nature.beta` returns and :meth:`Nature.sample`
draws from is ``(1 - uniform_mix) * beta + uniform_mix / n`` for the two learned priors, so every
scenario keeps probability >= uniform_mix / n and its utility estimate stays fresh. Unlike the
paper's code the mixing is not fed back into the learned beta (so it does not compound). The fixed
priors are not mixed: uniform is uniform already, and self-play means only copies of the learner.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.core.checks import integer, is_real
from rqe_wrappers.core.seeding import categorical
from rqe_wrappers.errors import ConfigError

PRIORS = ("maximin-utility", "minimax-regret", "uniform", "self-play", "fictitious-play")
STEPS = ("projected", "exponentiated")
_LEARNED = ("maximin-utility", "minimax-regret")
_STATE_FORMAT = "rqe_wrappers.aht.nature/2"
_OLD_FORMATS = ("rqe_wrappers.aht.nature/1",)  # /1 called uniform_mix "eps"
#: nature's default probability of a uniform scenario
DEFAULT_UNIFORM_MIX = 0.05


def project_onto_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex (sort-based, O(n log n))."""
    v = np.asarray(v, dtype=np.float64)
    # The projection is shift-invariant, and every entry more than 1 below the largest projects to
    # 0; shifting and clipping keeps huge or widely spread entries from overflowing the sums.
    with np.errstate(over="ignore"):
        v = np.maximum(v - v.max(), -2.0)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    ks = np.arange(1, len(v) + 1)
    rho = np.flatnonzero(u - css / ks > 0)[-1]
    w = np.maximum(v - css[rho] / (rho + 1), 0.0)
    return w / w.sum()


def normalized_prior(beta: Any, n_scenarios: int) -> np.ndarray:
    """``beta`` (one weight per scenario) normalised to sum to 1, or :class:`ConfigError` naming what is wrong."""
    try:
        b = np.array(beta, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"beta must be numbers, one per scenario ({n_scenarios}), got {beta!r}") from None
    if b.shape != (n_scenarios,):
        raise ConfigError(f"beta must have one entry per scenario ({n_scenarios}), got shape {b.shape}")
    if not np.all(np.isfinite(b)) or np.any(b < 0) or b.sum() <= 0:
        raise ConfigError(f"beta must be finite, >= 0 and not all zero, got {b.tolist()}")
    return b / b.sum()


def update_utilities(
    utilities: np.ndarray, counts: np.ndarray, batch: list[tuple[int, float]], utility_ema: float | None
) -> None:
    """:func:`update_utilities_arrays` for ``batch`` as ``(scenario index, focal return)`` pairs."""
    update_utilities_arrays(utilities, counts, *episode_arrays(batch), utility_ema)


def episode_arrays(batch: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``(scenario index, focal return)`` pairs as ``(indices int64, returns float64)``."""
    return np.array([i for i, _ in batch], np.int64), np.array([r for _, r in batch], np.float64)


def update_utilities_arrays(
    utilities: np.ndarray, counts: np.ndarray, idx: np.ndarray, ret: np.ndarray, utility_ema: float | None
) -> None:
    """Nature's per-scenario utility estimates after episodes of scenarios ``idx`` with focal returns ``ret``,
    in place: a scenario's first episodes set it; then a running mean (``utility_ema=None``) or an
    exponential average with weight ``1 - (1 - utility_ema) ** k`` for ``k`` new episodes."""
    if not len(idx):
        return
    for s in np.unique(idx):
        got = ret[idx == s]
        k, n = len(got), int(counts[s])
        if n == 0:
            utilities[s] = got.mean()
        elif utility_ema is None:
            utilities[s] = (utilities[s] * n + got.sum()) / (n + k)
        else:
            w = 1.0 - (1.0 - utility_ema) ** k
            utilities[s] += w * (got.mean() - utilities[s])
        counts[s] = n + k


def filled_utilities(utilities: np.ndarray) -> np.ndarray:
    """The estimates with unseen scenarios (NaN) set to the mean of the seen ones (0 if none is seen)."""
    u = np.array(utilities, dtype=np.float64)
    seen = ~np.isnan(u)
    u[~seen] = u[seen].mean() if seen.any() else 0.0
    return u


class Nature:
    """Nature's prior over ``n_scenarios`` scenarios.

    Example:
        >>> nature = Nature(3, "maximin-utility", lr=0.1, uniform_mix=0.0)
        >>> nature.update(np.array([1.0, 2.0, 3.0])).round(3)
        array([0.433, 0.333, 0.233])
        >>> int(nature.sample(np.random.default_rng(0))) in (0, 1, 2)
        True
    """

    def __init__(
        self,
        n_scenarios: int,
        prior: str = "maximin-utility",
        *,
        lr: float = 0.5,
        uniform_mix: float = DEFAULT_UNIFORM_MIX,
        best_responses: np.ndarray | None = None,
        self_play_scenario: int | None = None,
        step: str = "projected",
        eps: float | None = None,
    ):
        uniform_mix = renamed_argument("eps", eps, "uniform_mix", uniform_mix, default=DEFAULT_UNIFORM_MIX)
        integer("n_scenarios", n_scenarios, low=1)
        if prior not in PRIORS:
            raise ConfigError(f"unknown prior {prior!r}; known priors: {', '.join(PRIORS)}")
        if step not in STEPS:
            raise ConfigError(f"unknown step {step!r}; known steps: {', '.join(STEPS)}")
        if not is_real(lr) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"lr must be a finite number > 0, got {lr!r}")
        if not is_real(uniform_mix) or not 0.0 <= uniform_mix < 1.0:
            raise ConfigError(
                "uniform_mix should be in the interval [0, 1) (the probability of sampling a uniform scenario), "
                f"got {uniform_mix!r}"
            )
        self.n_scenarios = int(n_scenarios)
        self.prior = prior
        self.lr = float(lr)
        self.uniform_mix = float(uniform_mix)
        self.step = step
        self.best_responses = self._check_best_responses(best_responses)
        self.self_play_scenario = self._check_self_play(self_play_scenario)
        self.n_updates = 0
        self._best_seen = np.full(self.n_scenarios, -np.inf)
        # Learned state: beta itself ("projected") or its logits ("exponentiated").
        if prior == "self-play":
            weights = np.zeros(self.n_scenarios)
            weights[self.self_play_scenario] = 1.0
        else:
            weights = np.full(self.n_scenarios, 1.0 / self.n_scenarios)
        self._weights = np.zeros(self.n_scenarios) if self._uses_logits else weights

    # ---- validation ------------------------------------------------------------------------------
    def _check_best_responses(self, best_responses):
        if best_responses is None:
            return None
        br = np.array(best_responses, dtype=np.float64)
        if br.shape != (self.n_scenarios,):
            raise ConfigError(
                f"best_responses must have shape ({self.n_scenarios},), one best-response utility per "
                f"scenario; got {br.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(br))
        if bad.size:
            raise ConfigError(f"best_responses must be finite; bad entries at scenarios {bad.tolist()}")
        return br

    def _check_self_play(self, scenario):
        if scenario is None:
            if self.prior == "self-play":
                raise ConfigError(
                    'prior "self-play" needs self_play_scenario=<index of the scenario with only focal copies>'
                )
            return None
        if (
            isinstance(scenario, bool)
            or not isinstance(scenario, (int, np.integer))
            or not (0 <= scenario < self.n_scenarios)
        ):
            raise ConfigError(f"self_play_scenario must be an int in [0, {self.n_scenarios}), got {scenario!r}")
        return int(scenario)

    def _check_utilities(self, utilities) -> np.ndarray:
        u = np.array(utilities, dtype=np.float64)
        if u.shape != (self.n_scenarios,):
            raise ConfigError(f"utilities must have shape ({self.n_scenarios},), one per scenario; got {u.shape}")
        bad = np.flatnonzero(~np.isfinite(u))
        if bad.size:
            raise ConfigError(
                "utilities must be finite; got "
                + ", ".join(f"{u[i]} at scenario {i}" for i in bad)
                + ". Estimate every scenario before updating (uniform_mix > 0 keeps all of them sampled)."
            )
        return u

    @property
    def _uses_logits(self) -> bool:
        return self.step == "exponentiated" and self.prior in _LEARNED

    @property
    def eps(self) -> float:
        """Deprecated name of :attr:`uniform_mix`."""
        warnings.warn(
            "Nature.eps is renamed Nature.uniform_mix; the old name goes away in 0.3", DeprecationWarning, stacklevel=2
        )
        return self.uniform_mix

    # ---- the distribution --------------------------------------------------------------------------
    @property
    def raw_beta(self) -> np.ndarray:
        """The learned prior before uniform mixing."""
        if self._uses_logits:
            z = np.exp(self._weights - self._weights.max())
            return z / z.sum()
        return self._weights.copy()

    @property
    def beta(self) -> np.ndarray:
        """The distribution actually sampled: ``(1 - uniform_mix) * raw_beta + uniform_mix / n`` for learned priors."""
        b = self.raw_beta
        mix = self.uniform_mix
        if self.prior in _LEARNED and mix > 0:
            b = (1.0 - mix) * b + mix / self.n_scenarios
        return b

    def regrets(self, utilities: np.ndarray) -> np.ndarray:
        """Regret per scenario for ``utilities``: best response (or best seen so far) minus utility."""
        u = self._check_utilities(utilities)
        best = self.best_responses if self.best_responses is not None else np.maximum(self._best_seen, u)
        return best - u

    def update(self, utilities: np.ndarray) -> np.ndarray:
        """One step of nature given the focal policy's utility in each scenario; returns the new :attr:`beta`."""
        u = self._check_utilities(utilities)
        weights, best_seen = self._weights, self._best_seen
        if self.prior in _LEARNED:
            with np.errstate(over="ignore", invalid="ignore"):
                if self.prior == "maximin-utility":
                    grad = -u  # nature minimises utility
                else:  # nature maximises regret
                    best_seen = np.maximum(best_seen, u)
                    grad = (self.best_responses if self.best_responses is not None else best_seen) - u
                new = weights + self.lr * grad
                if not np.all(np.isfinite(new)):
                    raise ConfigError(
                        f"lr * utilities overflowed (lr={self.lr}, largest |utility| {np.abs(u).max():.3g}); "
                        "rescale the utilities or lower lr"
                    )
                if self._uses_logits:
                    weights = np.maximum(new - new.max(), -1e300)  # stays finite, so JSON-able
                else:
                    weights = project_onto_simplex(new)
        self._weights, self._best_seen = weights, best_seen
        self.n_updates += 1
        return self.beta

    def sample(self, rng: np.random.Generator) -> int:
        """Draw a scenario index from :attr:`beta` with the given Generator."""
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(
                f"sample needs a numpy Generator (e.g. rqe_wrappers.core.seeding.stream), got {type(rng).__name__}"
            )
        return int(categorical(self.beta, rng))

    # ---- checkpointing -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain JSON types (floats round-trip exactly through JSON)."""
        return {
            "format": _STATE_FORMAT,
            "n_scenarios": self.n_scenarios,
            "prior": self.prior,
            "step": self.step,
            "lr": self.lr,
            "uniform_mix": self.uniform_mix,
            "best_responses": None if self.best_responses is None else self.best_responses.tolist(),
            "self_play_scenario": self.self_play_scenario,
            "n_updates": self.n_updates,
            "weights": self._weights.tolist(),
            "best_seen": [None if not np.isfinite(b) else float(b) for b in self._best_seen],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the number of scenarios and the prior must match this Nature."""
        state = _current(state)
        for key in ("n_scenarios", "prior"):
            if state.get(key) != getattr(self, key):
                raise ConfigError(
                    f"state dict has {key}={state.get(key)!r} but this Nature has {getattr(self, key)!r}; "
                    "build Nature with the saved settings (or Nature.from_state_dict)"
                )
        fresh = Nature(
            self.n_scenarios,
            self.prior,
            lr=state["lr"],
            uniform_mix=state["uniform_mix"],
            best_responses=state["best_responses"],
            self_play_scenario=state["self_play_scenario"],
            step=state["step"],
        )
        weights = np.array(state["weights"], dtype=np.float64)
        best_seen = np.array([-np.inf if b is None else b for b in state["best_seen"]], dtype=np.float64)
        if weights.shape != (self.n_scenarios,) or best_seen.shape != (self.n_scenarios,):
            raise ConfigError(f"state dict weights/best_seen must have {self.n_scenarios} entries")
        if not np.all(np.isfinite(weights)):
            raise ConfigError("state dict weights must be finite")
        fresh._weights = weights
        fresh._best_seen = best_seen
        fresh.n_updates = int(state["n_updates"])
        self.__dict__.update(fresh.__dict__)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Nature:
        """A Nature rebuilt from :meth:`state_dict`."""
        state = _current(state)
        nature = cls(
            state["n_scenarios"],
            state["prior"],
            lr=state["lr"],
            uniform_mix=state["uniform_mix"],
            best_responses=state["best_responses"],
            self_play_scenario=state["self_play_scenario"],
            step=state["step"],
        )
        nature.load_state_dict(state)
        return nature

    def __repr__(self) -> str:
        return (
            f"Nature(n_scenarios={self.n_scenarios}, prior={self.prior!r}, step={self.step!r}, lr={self.lr}, "
            f"uniform_mix={self.uniform_mix}, beta={np.round(self.beta, 3).tolist()})"
        )


def _current(state: Any) -> dict[str, Any]:
    """A state dict in the current format (a /1 state's ``"eps"`` becomes ``"uniform_mix"``)."""
    if not isinstance(state, dict) or state.get("format") not in (_STATE_FORMAT, *_OLD_FORMATS):
        raise ConfigError(f"not a Nature state dict (expected format {_STATE_FORMAT!r})")
    if state["format"] in _OLD_FORMATS:
        state = {k: v for k, v in state.items() if k != "eps"} | {"format": _STATE_FORMAT, "uniform_mix": state["eps"]}
    return state
