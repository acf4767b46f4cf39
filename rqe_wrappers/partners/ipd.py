"""Partners for the iterated prisoner's dilemma (minimax-Bayes paper, section 8.1), and exact evaluation.

Training partners (the paper's nine, appendix C), registered with :func:`make_scripted` under
``"ipd/<name>"``, each built with ``make_scripted(name, rounds=...)``:

==============================  ===========================================================
``ipd/always-cooperate``        always C
``ipd/always-defect``           always D
``ipd/tit-for-tat``             C first, then the other's last move
``ipd/tat-for-tit``             C first, then the opposite of the other's last move
``ipd/tit-for-tat-d``           D first, then the other's last move
``ipd/tat-for-tit-d``           D first, then the opposite of the other's last move
``ipd/cooperate-until-defected``  C until the other has defected once, then D for good
``ipd/defect-until-cooperated``   D until the other has cooperated once, then C for good
``ipd/random``                  C or D with probability 1/2 each
==============================  ===========================================================

"Tat-for-tit" is the paper's definition (the opposite of the other's last move), not
win-stay-lose-shift. ``ipd/table`` is a tabular stochastic policy, ``arrays={"p_defect": ...}``
with one defect probability per history (:func:`~rqe_wrappers.envs.ipd.history_index`); the test
partners of :func:`perturbed_partners` are such tables.

Exact evaluation (no sampling): :func:`expected_return` enumerates the history tree with the
policies' ``action_probs``; :func:`best_response_value` is backward induction over the same tree.
Regret against a partner = ``best_response_value(partner) - expected_return(policy, partner)[0]``;
in the self-play scenario the best focal-per-capita utility is :func:`self_play_best_value`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import DiscretePolicy, Policy, check_policy_spaces
from rqe_wrappers.envs.ipd import (
    COOPERATE,
    DEFAULT_ROUNDS,
    DEFECT,
    PAYOFFS,
    check_rounds,
    history_indices,
    history_observations,
    n_histories,
    obs_size,
    observation_space,
    swap_perspective,
)
from rqe_wrappers.errors import ConfigError, SpaceMismatchError

#: The paper's L1 widths of the perturbed test sets, and the number of test partners per width.
PERTURBATION_WIDTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PERTURBED_COUNT = 512


class IPDPolicy(DiscretePolicy):
    """A partner that reads the history in its observation. Subclasses give :meth:`p_defect`."""

    name = "ipd"

    def __init__(self, rounds: int = DEFAULT_ROUNDS):
        self.rounds = check_rounds(rounds)
        super().__init__(observation_space(self.rounds), gym.spaces.Discrete(2))

    def action_probs(self, obs, *, state=None):
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != obs_size(self.rounds):
            self.histories(obs)  # raises the informative SpaceMismatchError
        index = history_indices(obs)
        p = self._defect_table()[index]
        if (index < 0).any():  # complete histories (no move due) are not tabulated
            done = index < 0
            p[done] = np.asarray(self.p_defect(obs[done]), dtype=np.float64)
        return np.stack([1.0 - p, p], axis=1)

    def _defect_table(self) -> np.ndarray:
        if getattr(self, "_table", None) is None:  # p_defect is a function of the history: tabulate once
            self._table = np.asarray(self.p_defect(history_observations(self.rounds)), dtype=np.float64)
        return self._table

    def tabular(self) -> tuple[Any, np.ndarray] | None:
        """``(history_indices, table)``: probabilities by history index (one per non-final history)."""
        if self.probs_sampler() is None or type(self).action_probs is not IPDPolicy.action_probs:
            return None
        p = self._defect_table()
        return history_indices, np.stack([1.0 - p, p], axis=1)

    @abc.abstractmethod
    def p_defect(self, obs: np.ndarray) -> np.ndarray:
        """Probability of defecting, shape ``(batch,)``, for a batch of observations."""

    def histories(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(own, other, length)``: actions ``(batch, rounds)`` (-1 for rounds not yet played), rounds played."""
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != obs_size(self.rounds):
            raise SpaceMismatchError(
                f"{self.name}: expected a batch of observations of a {self.rounds}-round IPD, shape "
                f"(batch, {obs_size(self.rounds)}), got {obs.shape}. Build the policy with the env's rounds."
            )
        r = self.rounds
        blocks = obs[:, : 4 * r].reshape(len(obs), r, 4)
        joint = np.where(blocks.sum(axis=2) > 0, np.argmax(blocks, axis=2), -1)
        own = np.where(joint >= 0, joint // 2, -1)
        other = np.where(joint >= 0, joint % 2, -1)
        return own, other, np.argmax(obs[:, 4 * r :], axis=1)

    def last_other(self, obs: np.ndarray, first: int) -> np.ndarray:
        """The other's last move, or ``first`` before any round was played."""
        _, other, length = self.histories(obs)
        last = other[np.arange(len(other)), np.maximum(length - 1, 0)]
        return np.where(length == 0, first, last)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, rounds={self.rounds})"


class AlwaysCooperate(IPDPolicy):
    name = "ipd/always-cooperate"

    def p_defect(self, obs):
        self.histories(obs)
        return np.zeros(len(obs))


class AlwaysDefect(IPDPolicy):
    name = "ipd/always-defect"

    def p_defect(self, obs):
        self.histories(obs)
        return np.ones(len(obs))


class TitForTat(IPDPolicy):
    """``first`` in round one, then the other's last move."""

    def __init__(self, rounds: int = DEFAULT_ROUNDS, first: int = COOPERATE):
        super().__init__(rounds)
        if first not in (COOPERATE, DEFECT):
            raise ConfigError(f"first must be 0 (cooperate) or 1 (defect), got {first!r}")
        self.first = int(first)
        self.name = "ipd/tit-for-tat" + ("-d" if first == DEFECT else "")

    def p_defect(self, obs):
        return self.last_other(obs, self.first).astype(np.float64)


class TatForTit(IPDPolicy):
    """``first`` in round one, then the opposite of the other's last move (the paper's definition)."""

    def __init__(self, rounds: int = DEFAULT_ROUNDS, first: int = COOPERATE):
        super().__init__(rounds)
        if first not in (COOPERATE, DEFECT):
            raise ConfigError(f"first must be 0 (cooperate) or 1 (defect), got {first!r}")
        self.first = int(first)
        self.name = "ipd/tat-for-tit" + ("-d" if first == DEFECT else "")

    def p_defect(self, obs):
        last = self.last_other(obs, 1 - self.first)
        return (1 - last).astype(np.float64)


class CooperateUntilDefected(IPDPolicy):
    """Grim trigger: cooperates until the other defects once, then defects for the rest of the game."""

    name = "ipd/cooperate-until-defected"

    def p_defect(self, obs):
        _, other, _ = self.histories(obs)
        return (other == DEFECT).any(axis=1).astype(np.float64)


class DefectUntilCooperated(IPDPolicy):
    """Defects until the other cooperates once, then cooperates for the rest of the game."""

    name = "ipd/defect-until-cooperated"

    def p_defect(self, obs):
        _, other, _ = self.histories(obs)
        return 1.0 - (other == COOPERATE).any(axis=1).astype(np.float64)


class UniformRandom(IPDPolicy):
    """Cooperates or defects with probability 1/2 each, whatever happened."""

    name = "ipd/random"

    def p_defect(self, obs):
        self.histories(obs)
        return np.full(len(obs), 0.5)


class IPDTablePolicy(IPDPolicy):
    """Fully adaptive stochastic policy: one defect probability per history.

    ``p_defect[i]`` is the probability of defecting after the history with index ``i``
    (:func:`~rqe_wrappers.envs.ipd.history_index`), shape ``(n_histories(rounds),)``. After the last
    round no move is due; asked anyway, the table answers "cooperate".

    Stored by the zoo as ``make_scripted("ipd/table", arrays={"p_defect": ...}, rounds=...)``;
    :meth:`spec` gives exactly those arguments.
    """

    name = "ipd/table"

    def __init__(self, p_defect: np.ndarray, rounds: int = DEFAULT_ROUNDS, name: str = "ipd/table"):
        super().__init__(rounds)
        table = np.array(p_defect, dtype=np.float64)
        want = (n_histories(self.rounds),)
        if table.shape != want:
            raise ConfigError(
                f"p_defect must have shape {want} (one entry per history of a {self.rounds}-round game), "
                f"got {table.shape}"
            )
        bad = np.flatnonzero(~(np.isfinite(table) & (table >= 0.0) & (table <= 1.0)))
        if bad.size:
            raise ConfigError(f"p_defect must be probabilities in [0, 1]; bad entries at {bad[:10].tolist()}")
        table.setflags(write=False)
        self.table = table
        self.name = name

    @classmethod
    def from_policy(cls, policy: Policy, rounds: int = DEFAULT_ROUNDS, name: str | None = None) -> IPDTablePolicy:
        """Tabulate any (stateless) discrete policy of the ``rounds``-round IPD."""
        return cls(_tabulate(policy, rounds), rounds, name or f"table({getattr(policy, 'name', policy)})")

    def p_defect(self, obs):
        self.histories(obs)
        index = history_indices(obs)
        return np.where(index >= 0, self.table[np.maximum(index, 0)], 0.0)

    def spec(self) -> tuple[str, dict]:
        """``(name, kwargs)`` such that ``make_scripted(name, **kwargs)`` rebuilds this policy."""
        return "ipd/table", {"arrays": {"p_defect": np.array(self.table)}, "rounds": self.rounds}


# ---- registry ------------------------------------------------------------------------------------
_PARTNERS = {  # the paper's order (its plots and scenario indices use it)
    "ipd/always-cooperate": lambda rounds: AlwaysCooperate(rounds),
    "ipd/always-defect": lambda rounds: AlwaysDefect(rounds),
    "ipd/tit-for-tat": lambda rounds: TitForTat(rounds, first=COOPERATE),
    "ipd/tat-for-tit": lambda rounds: TatForTit(rounds, first=COOPERATE),
    "ipd/tit-for-tat-d": lambda rounds: TitForTat(rounds, first=DEFECT),
    "ipd/tat-for-tit-d": lambda rounds: TatForTit(rounds, first=DEFECT),
    "ipd/cooperate-until-defected": lambda rounds: CooperateUntilDefected(rounds),
    "ipd/defect-until-cooperated": lambda rounds: DefectUntilCooperated(rounds),
    "ipd/random": lambda rounds: UniformRandom(rounds),
}
PARTNER_NAMES = tuple(_PARTNERS)


def make_partner(name: str, *, rounds: int = DEFAULT_ROUNDS) -> IPDPolicy:
    """One of the paper's nine training partners by its registered name, e.g. ``"ipd/tit-for-tat"``."""
    if name not in _PARTNERS:
        raise ConfigError(f"unknown IPD partner {name!r}; known: {list(_PARTNERS)}")
    return _PARTNERS[name](rounds)


def make_table(*, arrays: Mapping[str, np.ndarray], rounds: int = DEFAULT_ROUNDS) -> IPDTablePolicy:
    """``ipd/table``: a tabular policy from ``arrays={"p_defect": ...}``."""
    if not isinstance(arrays, Mapping) or set(arrays) != {"p_defect"}:
        got = sorted(arrays) if isinstance(arrays, Mapping) else type(arrays).__name__
        raise ConfigError(f'ipd/table takes arrays={{"p_defect": np.ndarray}}, got {got}')
    return IPDTablePolicy(arrays["p_defect"], rounds)


def training_partners(rounds: int = DEFAULT_ROUNDS) -> dict[str, IPDPolicy]:
    """The paper's nine training partners, by registered name, in the paper's order."""
    rounds = check_rounds(rounds)
    return {name: build(rounds) for name, build in _PARTNERS.items()}


# ---- the perturbed test set ----------------------------------------------------------------------
def perturbed_partners(
    base_policies: Sequence[Policy] | Mapping[str, Policy],
    w: float,
    count: int = PERTURBED_COUNT,
    rounds: int = DEFAULT_ROUNDS,
    rng: np.random.Generator | int | None = None,
) -> list[IPDTablePolicy]:
    """``count`` stochastic partners, each within L1 distance ``w`` of a training partner in every history.

    As in the paper's code: draw a base partner uniformly, then in every history draw the new
    action distribution uniformly among those within L1 distance ``w`` of the base's (for two
    actions: defect probability uniform on ``[p - w/2, p + w/2]`` clipped to ``[0, 1]``, which is
    the paper's rejection sampling without the rejections). The paper uses ``count = 512`` for
    each ``w`` in :data:`PERTURBATION_WIDTHS`. ``rng`` (a Generator or a seed) is required so the
    test set reproduces.
    """
    if isinstance(base_policies, Mapping):
        names, bases = list(base_policies), list(base_policies.values())
    else:
        bases = list(base_policies)
        names = [getattr(b, "name", f"partner{i}") for i, b in enumerate(bases)]
    if not bases:
        raise ConfigError("perturbed_partners needs at least one base policy")
    if not (np.isfinite(w) and 0.0 <= w <= 2.0):
        raise ConfigError(f"w is an L1 distance between two action distributions, so in [0, 2]; got {w}")
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise ConfigError(f"count must be a whole number >= 1, got {count!r}")
    if rng is None:
        raise ConfigError("perturbed_partners needs rng (a numpy Generator or an int seed) so the test set reproduces")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    rounds = check_rounds(rounds)
    tables = np.stack([_tabulate(b, rounds) for b in bases])
    out = []
    for k in range(int(count)):
        base = int(rng.integers(len(bases)))
        p = tables[base]
        lo, hi = np.maximum(p - w / 2, 0.0), np.minimum(p + w / 2, 1.0)
        new = np.clip(lo + (hi - lo) * rng.random(p.shape), lo, hi)
        out.append(IPDTablePolicy(new, rounds, name=f"perturbed({names[base]}, w={w:g})#{k}"))
    return out


def _tabulate(policy: Policy, rounds: int) -> np.ndarray:
    probs = _action_probs(policy, rounds, "policy")
    return probs(history_observations(rounds))[:, DEFECT].astype(np.float64)


def _action_probs(policy: Policy, rounds: int, who: str) -> Callable[[np.ndarray], np.ndarray]:
    """``policy.action_probs`` after checking that it has one and plays this IPD's spaces."""
    probs = getattr(policy, "action_probs", None)
    if not callable(probs):
        raise ConfigError(
            f"{who}: exact IPD evaluation reads action probabilities: use a DiscretePolicy or an SB3Policy, "
            f"got {type(policy).__name__}"
        )
    check_policy_spaces(policy, observation_space(rounds), gym.spaces.Discrete(2), who)
    return probs


# ---- exact evaluation ----------------------------------------------------------------------------
def expected_return(policy_a: Policy, policy_b: Policy, rounds: int = DEFAULT_ROUNDS) -> tuple[float, float]:
    """Exact expected returns ``(return_a, return_b)`` of ``policy_a`` playing ``policy_b``.

    Enumerates every history with the probability that play reaches it; each policy is asked for
    ``action_probs`` on the histories from its own perspective. Works for any stateless
    :class:`~rqe_wrappers.core.policy.DiscretePolicy` on this IPD's spaces (recurrent state is not
    carried; it would be redundant, the observation is the whole history).
    """
    rounds = check_rounds(rounds)
    probs_a = _action_probs(policy_a, rounds, "policy_a")
    probs_b = _action_probs(policy_b, rounds, "policy_b")
    reach = np.ones(1)
    ret_a = ret_b = 0.0
    for t in range(rounds):
        obs = history_observations(rounds, t)
        pa = np.asarray(probs_a(obs), dtype=np.float64)
        pb = np.asarray(probs_b(swap_perspective(obs)), dtype=np.float64)
        joint = reach[:, None, None] * pa[:, :, None] * pb[:, None, :]  # [history, a's action, b's action]
        ret_a += float((joint * PAYOFFS[None]).sum())
        ret_b += float((joint * PAYOFFS.T[None]).sum())
        reach = joint.reshape(-1)  # child 4 * h + 2 * a + b, in index order
    return ret_a, ret_b


def _best_response_q(partner: Policy, rounds: int) -> list[np.ndarray]:
    """Q-values ``(4**t, 2)`` of each history length ``t`` against a fixed partner (backward induction)."""
    rounds = check_rounds(rounds)
    probs = _action_probs(partner, rounds, "partner")
    value = np.zeros(4**rounds)
    qs = []
    for t in reversed(range(rounds)):
        obs = history_observations(rounds, t)
        pb = np.asarray(probs(swap_perspective(obs)), dtype=np.float64)
        future = value.reshape(-1, 2, 2)  # [history, own action, partner action]
        q = (pb[:, None, :] * (PAYOFFS[None] + future)).sum(axis=2)
        qs.append(q)
        value = q.max(axis=1)
    return qs[::-1]


def best_response_value(partner: Policy, rounds: int = DEFAULT_ROUNDS) -> float:
    """The best expected return achievable against a fixed ``partner`` (exact, by backward induction)."""
    return float(_best_response_q(partner, rounds)[0].max())


def best_response(partner: Policy, rounds: int = DEFAULT_ROUNDS) -> IPDTablePolicy:
    """A deterministic best response to ``partner`` as a table (ties go to cooperation)."""
    qs = _best_response_q(partner, rounds)
    p = np.concatenate([(q[:, DEFECT] > q[:, COOPERATE] + 1e-12).astype(np.float64) for q in qs])
    return IPDTablePolicy(p, rounds, name=f"best-response({getattr(partner, 'name', partner)})")


def self_play_best_value(rounds: int = DEFAULT_ROUNDS) -> float:
    """Best focal-per-capita utility in the self-play scenario: ``4 * rounds``.

    Mutual cooperation maximises the sum of both payoffs every round (8 > 5 + 0 > 1 + 1), and
    "always cooperate" playing itself achieves it, so the mean of the two returns is at most
    ``4 * rounds`` and that is attained.
    """
    return 4.0 * check_rounds(rounds)
