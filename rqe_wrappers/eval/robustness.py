"""The robustness audit: an agent's return when its partner deviates adversarially at a KL budget, over tau.

For each ``tau`` the partner moves from its reference ``m`` to the ``p`` minimising ``E_p[agent's
return] + (1/tau) KL(p || m)`` (the RQE's adversary); the curve is the agent's return under that
``p``. Exact for normal-form games and the IPD (:mod:`rqe_wrappers.eval.exact`), trained with PPO
elsewhere (:mod:`rqe_wrappers.eval.adversary`). Docs: docs/evaluation.md, "Robustness audit".
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rqe_wrappers.core.checks import integer, is_real, real
from rqe_wrappers.core.policy import DiscretePolicy, FunctionPolicy, Policy
from rqe_wrappers.envs.ipd import IPDEnv
from rqe_wrappers.envs.matrix import MatrixGameEnv
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.agents import as_policy
from rqe_wrappers.eval.exact import ipd_deviation, matrix_deviation

__all__ = [
    "DEFAULT_TAUS",
    "RobustnessCurve",
    "RobustnessReport",
    "TrainedBudget",
    "audit_agent",
    "robust_return",
    "robustness_audit",
]

#: 0 (no deviation) and 9 half-decades from 0.01 to 100: the grid the summary number is defined on.
DEFAULT_TAUS: tuple[float, ...] = (0.0, *(float(10 ** (k / 2)) for k in range(-4, 5)))
SOLVERS = ("auto", "exact", "trained")


def robust_return(taus: Sequence[float], returns: Sequence[float]) -> float:
    """The summary number: the mean return over ``log tau`` uniform on the grid's positive, finite taus.

    Trapezoidal area under return-vs-``log10 tau`` divided by the ``log10`` range; with a single
    positive tau, the return there. It lies between the nominal return (``tau = 0``) and the worst
    case; compare agents only on one grid (:data:`DEFAULT_TAUS` by default).
    """
    pts = sorted((float(t), float(r)) for t, r in zip(taus, returns, strict=True) if 0 < t < math.inf)
    if not pts:
        raise ConfigError("robust_return needs at least one tau > 0 (finite) on the grid")
    if len(pts) == 1:
        return pts[0][1]
    x = np.log10([t for t, _ in pts])
    y = np.array([r for _, r in pts])
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2 / (x[-1] - x[0]))


def _linear(start: float, progress_remaining: float) -> float:
    return start * progress_remaining


@dataclass(frozen=True)
class TrainedBudget:
    """What the trained adversary gets, per ``tau > 0`` and per seed: PPO steps and evaluation episodes.

    The PPO settings are SB3's (``ent_coef`` is 0: the KL to the reference is the adversary's only
    regulariser); ``gamma = 1`` because the audited objective is the undiscounted return; the
    learning rate decays linearly to 0 (PPO then settles instead of hovering around the optimum).
    """

    timesteps: int = 20_000
    seeds: tuple[int, ...] = (0,)
    eval_episodes: int = 200
    n_copies: int = 8
    n_steps: int = 32
    batch_size: int = 64
    n_epochs: int = 10
    learning_rate: float = 3e-3
    gamma: float = 1.0
    net_arch: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        integer("timesteps", self.timesteps, low=1, hint="PPO steps per tau and seed")
        integer("eval_episodes", self.eval_episodes, low=1)
        integer("n_copies", self.n_copies, low=1, hint="env copies PPO steps together")
        integer("n_steps", self.n_steps, low=2)
        integer("batch_size", self.batch_size, low=2)
        integer("n_epochs", self.n_epochs, low=1)
        real("learning_rate", self.learning_rate, low=0, low_open=True)
        real("gamma", self.gamma, low=0, high=1)
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ConfigError(f"seeds must be a non-empty tuple of ints, got {self.seeds!r}")
        if not self.net_arch or not all(isinstance(n, int) and n >= 1 for n in self.net_arch):
            raise ConfigError(f"net_arch must be a non-empty tuple of layer sizes >= 1, got {self.net_arch!r}")

    def ppo_kwargs(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": functools.partial(_linear, self.learning_rate),
            "gamma": self.gamma,
            "normalize_advantage": False,  # advantages keep their scale: a near-flat objective takes small steps
            "policy_kwargs": {"net_arch": list(self.net_arch)},
        }


@dataclass(frozen=True)
class RobustnessCurve:
    """One agent's audit: its return (and the partner's KL) at every tau, and the summary number.

    ``method`` groups agents in plots (e.g. ``"srpo"``, ``"ippo"``); ``solver`` is ``"exact"`` or
    ``"trained"``; ``stderr`` is the standard error over evaluation episodes (0 when exact);
    ``budget`` is the :class:`TrainedBudget` as a dict (``None`` when exact).
    """

    agent: str
    method: str
    partner: str
    seat: str
    partner_seat: str
    solver: str
    smoothing: float
    taus: tuple[float, ...]
    returns: tuple[float, ...]
    kls: tuple[float, ...]
    stderr: tuple[float, ...]
    budget: dict[str, Any] | None = None

    @property
    def nominal(self) -> float:
        """The return with the reference partner itself (``tau = 0``), or NaN if 0 is not on the grid."""
        return next((r for t, r in zip(self.taus, self.returns, strict=True) if t == 0), math.nan)

    @property
    def summary(self) -> float:
        """:func:`robust_return` of this curve."""
        return robust_return(self.taus, self.returns)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per tau (CSV-ready)."""
        head = {k: getattr(self, k) for k in ("agent", "method", "partner", "seat", "partner_seat", "solver")}
        return [
            {**head, "smoothing": self.smoothing, "tau": t, "return": r, "kl": k, "stderr": s, "summary": self.summary}
            for t, r, k, s in zip(self.taus, self.returns, self.kls, self.stderr, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "nominal": self.nominal, "summary": self.summary}


@dataclass(frozen=True)
class RobustnessReport:
    """Curves of several agents; ``rows()`` is the tidy table, ``to_json()`` the whole report."""

    curves: tuple[RobustnessCurve, ...] = field(default_factory=tuple)

    def rows(self) -> list[dict[str, Any]]:
        return [row for c in self.curves for row in c.rows()]

    def summaries(self) -> dict[str, float]:
        """Agent name -> summary number."""
        return {c.agent: c.summary for c in self.curves}

    def to_json(self, indent: int | None = 2) -> str:
        def clean(v: Any) -> Any:  # JSON has no inf: taus of inf are written as "inf"
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return json.dumps({"curves": [clean(c.to_dict()) for c in self.curves]}, indent=indent)


# ---------------------------------------------------------------- agents and references


class _Smoothed(DiscretePolicy):
    """``(1 - s) * policy + s * uniform``: gives a deterministic reference room to deviate in."""

    def __init__(self, policy: Policy, s: float):
        super().__init__(policy.observation_space, policy.action_space)
        self.policy, self.s = policy, s
        self.name = f"smoothed({getattr(policy, 'name', type(policy).__name__)}, {s:g})"
        self.rounds = getattr(policy, "rounds", None)

    def action_probs(self, obs, *, state=None):
        probs = np.asarray(_probs_of(self.policy, "reference")(obs), dtype=np.float64)
        return (1.0 - self.s) * probs + self.s / probs.shape[1]


def _probs_of(policy: Policy, who: str) -> Callable[[Any], np.ndarray]:
    probs = getattr(policy, "action_probs", None)
    if not callable(probs):
        raise ConfigError(
            f"{who}: the audit reads action probabilities: use a DiscretePolicy or an SB3Policy with "
            f"Discrete actions, got {type(policy).__name__}"
        )
    return probs


def _is_vector(x: Any) -> bool:
    return isinstance(x, (list, tuple, np.ndarray)) and np.ndim(x) == 1 and all(is_real(v) for v in x)


def _policy(agent: Any, env: Any, seat: str, who: str, rounds: int | None) -> Policy:
    obs_space, act_space = env.observation_space(seat), env.action_space(seat)
    if _is_vector(agent):
        if not isinstance(act_space, gym.spaces.Discrete) or len(agent) != act_space.n:
            raise ConfigError(f"{who}: a probability vector needs {act_space} actions, got length {len(agent)}")
        v = np.asarray(agent, dtype=np.float64)
        if np.any(v < 0) or abs(v.sum() - 1.0) > 1e-8:
            raise ConfigError(f"{who}: a probability vector must be non-negative and sum to 1, got {v}")
        return FunctionPolicy(obs_space, act_space, functools.partial(_constant_probs, v), name=f"mixed{v}")
    kwargs = {"rounds": rounds} if rounds is not None else {}
    index = list(env.possible_agents).index(seat)  # for agents trained with seat identity
    return as_policy(agent, obs_space, act_space, seat_index=index, who=who, scripted_kwargs=kwargs)


def _constant_probs(v: np.ndarray, obs: Any) -> np.ndarray:
    return np.tile(v, (len(obs), 1))


def _name(agent: Any) -> str:
    if isinstance(agent, str):
        return agent
    if _is_vector(agent):
        return "[" + ", ".join(f"{float(v):.4g}" for v in agent) + "]"
    return str(getattr(agent, "name", None) or type(agent).__name__)


# ---------------------------------------------------------------- solvers


def _check_taus(taus: Sequence[float], trained: bool) -> tuple[float, ...]:
    out = []
    for t in taus:
        if is_real(t) and math.isinf(t) and t > 0 and not trained:
            out.append(math.inf)
        else:
            out.append(real("taus", t, low=0, hint="the partner's KL budget; inf only for exact solvers"))
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"taus must be one or more distinct values >= 0, got {list(taus)}")
    return tuple(sorted(out))


def _check_batched(batched: Any, seats: list[str], trained: bool) -> None:
    if not trained:
        raise ConfigError("batched= is for the trained solver; exact solvers need no batched twin")
    if not callable(batched):
        raise ConfigError(f"batched must be a function n -> batched env of n copies, got {type(batched).__name__}")
    twin = batched(1)
    if list(getattr(twin, "possible_agents", ())) != seats or not hasattr(twin, "n_copies"):
        raise ConfigError(
            f"batched(1) must build a batched env (n_copies, step on arrays) with the env's seats {seats}, "
            f"got {type(twin).__name__} with seats {list(getattr(twin, 'possible_agents', ()))}"
        )


def _exact_curve(game: Any, agent: Policy, reference: Policy, seat: str, taus: tuple[float, ...]):
    if isinstance(game, IPDEnv):
        if seat not in game.possible_agents:
            raise SeatError(f"seat {seat!r} is not an IPD seat; use 'player_0' or 'player_1'")
        devs = [ipd_deviation(agent, reference, t, game.rounds)[0] for t in taus]  # the IPD is symmetric
        return [float(d.agent_return) for d in devs], [float(d.kl) for d in devs]
    player = game.possible_agents.index(seat)
    rets, kls = np.zeros(len(taus)), np.zeros(len(taus))
    a_probs, r_probs = _probs_of(agent, "agent"), _probs_of(reference, "partner")
    for t in range(game.rounds):  # no one sees the history: the rounds are separate one-shot games
        obs = np.array([[t / game.rounds]], np.float32)
        pi, m = np.asarray(a_probs(obs))[0], np.asarray(r_probs(obs))[0]
        for j, tau in enumerate(taus):
            d, _ = matrix_deviation(game.payoffs, player, pi, m, tau)
            rets[j] += d.agent_return
            kls[j] += d.kl
    return [float(x) for x in rets], [float(x) for x in kls]


def _trained_curve(
    env_fn: Callable[[], Any],
    agent: Policy,
    reference: Policy,
    seat: str,
    partner_seat: str,
    others: Mapping[str, Policy],
    taus: tuple[float, ...],
    budget: TrainedBudget,
    batched: Callable[[int], Any] | None = None,
):
    from rqe_wrappers.eval.adversary import check_adversary_spaces, evaluate_deviation, train_adversary  # SB3, torch

    check_adversary_spaces(reference.observation_space, reference.action_space, partner_seat)
    fixed = {**others, seat: agent}
    rets, kls, errs, per_seed = [], [], [], []
    for tau in taus:
        episode_returns, seed_kls, seed_means = [], [], []
        for seed in budget.seeds:
            adversary = (
                reference
                if tau == 0
                else train_adversary(
                    env_fn,
                    fixed,
                    seat,
                    reference,
                    tau,
                    timesteps=budget.timesteps,
                    seed=seed,
                    n_copies=budget.n_copies,
                    ppo_kwargs=budget.ppo_kwargs(),
                    batched=batched,
                )
            )
            r, kl = evaluate_deviation(
                env_fn,
                {**fixed, partner_seat: adversary},
                seat,
                partner_seat,
                reference,
                episodes=budget.eval_episodes,
                seed=seed,
                batched=batched,
            )
            episode_returns.append(r)
            seed_kls.append(kl)
            seed_means.append(float(r.mean()))
        pooled = np.concatenate(episode_returns)
        rets.append(float(pooled.mean()))
        kls.append(float(np.mean(seed_kls)))
        errs.append(float(pooled.std(ddof=1) / math.sqrt(len(pooled))) if len(pooled) > 1 else 0.0)
        per_seed.append(seed_means)
    return rets, kls, errs, per_seed


def audit_agent(
    env: Any,
    agent: Any,
    partner: Any = None,
    *,
    taus: Sequence[float] = DEFAULT_TAUS,
    seat: str | None = None,
    partner_seat: str | None = None,
    others: Mapping[str, Any] | None = None,
    solver: str = "auto",
    smoothing: float = 0.0,
    budget: TrainedBudget | None = None,
    name: str | None = None,
    method: str = "",
    batched: Callable[[int], Any] | None = None,
) -> RobustnessCurve:
    """Audit one agent: its return at every ``tau`` when ``partner`` deviates against it.

    Args:
        env: a zero-argument function building a PettingZoo parallel env (or an env instance: then
            only the exact solvers run). :class:`~rqe_wrappers.envs.matrix.MatrixGameEnv` and
            :class:`~rqe_wrappers.envs.ipd.IPDEnv` are solved exactly; other envs train an adversary.
        agent: the frozen agent (anything :func:`~rqe_wrappers.eval.agents.as_policy` takes, or a
            probability vector for a matrix game).
        partner: the reference partner the agent is evaluated with (same forms); ``None``: the agent
            itself in ``partner_seat`` (self-play).
        taus: the grid; ``0`` is the reference itself, ``inf`` (exact only) the worst case in its support.
        seat, partner_seat: the agent's and the deviating partner's seats (default: the env's first two).
        others: policies (same forms) for every other seat (needed by envs with more than two seats).
        solver: ``"exact"``, ``"trained"`` or ``"auto"`` (exact where available).
        smoothing: mix the reference with ``smoothing`` of uniform before the audit (a deterministic
            reference leaves the partner no room: the curve is then flat).
        budget: the trained adversary's :class:`TrainedBudget` (default ``TrainedBudget()``).
        name, method: labels in the result (default name: the agent's).
        batched: the trained solver on the env's batched twin, a function ``n -> batched env of n
            copies`` (e.g. ``functools.partial(BatchedCooking, layout="train")``): the adversary trains
            and the evaluation episodes play as arrays, tens of times faster (docs/batched.md).
    """
    if solver not in SOLVERS:
        raise ConfigError(f"solver must be one of {SOLVERS}, got {solver!r}")
    s = real("smoothing", smoothing, low=0, high=1, high_open=True, hint="weight of uniform in the reference")
    env_fn = env if callable(env) and not isinstance(env, (ParallelEnv, np.ndarray)) else None
    probe = env_fn() if env_fn is not None else env
    if not isinstance(probe, ParallelEnv):
        raise ConfigError(
            f"env must be a PettingZoo ParallelEnv or a function building one, got {type(probe).__name__}; "
            "turn-based (AEC) games: pettingzoo.utils.aec_to_parallel where the game allows it"
        )
    exact = isinstance(probe, (MatrixGameEnv, IPDEnv))
    if solver == "exact" and not exact:
        raise ConfigError(
            f"solver='exact' covers MatrixGameEnv and IPDEnv, not {type(probe).__name__}; use solver='trained'"
        )
    trained = solver == "trained" or (solver == "auto" and not exact)
    if trained and env_fn is None:
        raise ConfigError(
            "a trained audit builds fresh envs: pass env as a function returning the env, not an instance"
        )
    grid = _check_taus(taus, trained)
    seats = list(probe.possible_agents)
    if batched is not None:
        _check_batched(batched, seats, trained)
    seat = seat or seats[0]
    partner_seat = partner_seat or next((x for x in seats if x != seat), "")
    for who, x in (("seat", seat), ("partner_seat", partner_seat)):
        if x not in seats:
            raise SeatError(f"{who}={x!r} is not a seat of the env; its seats are {seats}")
    if seat == partner_seat:
        raise SeatError(f"seat and partner_seat must differ, both are {seat!r}")
    missing = [x for x in seats if x not in (seat, partner_seat) and x not in (others or {})]
    if missing:
        raise SeatError(f"seats {missing} have no policy: pass others={{seat: policy}} for every seat but the two")
    rounds = probe.rounds if isinstance(probe, IPDEnv) else None
    pol = _policy(agent, probe, seat, "agent", rounds)
    ref = _policy(agent if partner is None else partner, probe, partner_seat, "partner", rounds)
    if s > 0:
        ref = _Smoothed(ref, s)
    _probs_of(ref, "partner")
    label = name or _name(agent)
    partner_label = "self" if partner is None else _name(partner)
    if not trained:
        rets, kls = _exact_curve(probe, pol, ref, seat, grid)
        return RobustnessCurve(
            label, method, partner_label, seat, partner_seat, "exact", s, grid, tuple(rets), tuple(kls),
            (0.0,) * len(grid),
        )  # fmt: skip
    b = budget or TrainedBudget()
    fixed_others = {x: _policy(p, probe, x, f"others[{x!r}]", rounds) for x, p in (others or {}).items()}
    assert env_fn is not None
    rets, kls, errs, per_seed = _trained_curve(env_fn, pol, ref, seat, partner_seat, fixed_others, grid, b, batched)
    info = {**asdict(b), "returns_per_seed": per_seed}
    return RobustnessCurve(
        label, method, partner_label, seat, partner_seat, "trained", s, grid, tuple(rets), tuple(kls), tuple(errs), info
    )


def robustness_audit(
    env: Any,
    agents: Mapping[str, Any],
    partner: Any = None,
    *,
    methods: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> RobustnessReport:
    """:func:`audit_agent` for every agent of ``agents`` (name -> agent); one :class:`RobustnessReport`.

    ``partner``: one reference for all agents, a mapping agent name -> reference, or ``None``
    (each agent with itself). ``methods``: agent name -> method label (for the plot's colours).
    Other keywords go to :func:`audit_agent`.

    Example:
        >>> from rqe_wrappers.envs.ipd import ipd_env
        >>> report = robustness_audit(
        ...     ipd_env, {"tft": "ipd/tit-for-tat", "allc": "ipd/always-cooperate"}, "ipd/tit-for-tat",
        ...     smoothing=0.1, taus=(0.0, 1.0, float("inf")))
        >>> [(c.agent, [round(r, 3) for r in c.returns]) for c in report.curves]
        [('tft', [11.32, 3.715, 2.0]), ('allc', [11.4, 3.098, 0.0])]
    """
    if not isinstance(agents, Mapping) or not agents:
        raise ConfigError("agents must be a non-empty dict {name: agent}")
    curves = []
    for label, agent in agents.items():
        ref = partner.get(label) if isinstance(partner, Mapping) else partner
        if isinstance(partner, Mapping) and label not in partner:
            raise ConfigError(f"partner has no reference for agent {label!r}; its keys are {sorted(partner)}")
        method = (methods or {}).get(label, "")
        curves.append(audit_agent(env, agent, ref, name=label, method=method, **kwargs))
    return RobustnessReport(tuple(curves))
