"""Minimax-Bayes AHT's scenario sampling on whole batches: per copy per episode a scenario from nature's prior.

The batched counterpart of :class:`~rqe_wrappers.aht.wrapper.AHTWrapper`'s reset: at each copy's reset its scenario is
drawn from the prior ``beta`` (inverse CDF, as :func:`~rqe_wrappers.core.seeding.categorical`), with
counter-based per-copy streams (copy ``k``'s draws depend only on its seed and episode number, as
:class:`~rqe_wrappers.batched.shadows.BatchedShadows`), and the scenario's members are written into
the copy's row of :attr:`BatchedBackground.table <rqe_wrappers.batched.background.BatchedBackground.table>`.
The learner keeps one seat; in a ``c<n>`` scenario the learner's shared snapshot
(:class:`~rqe_wrappers.core.snapshot.SnapshotPolicy`, which ``AHTCallback`` updates every rollout)
takes the next ``n - 1`` seats and the members the rest, in env order (the per-copy wrapper shuffles
seats, which changes nothing in a symmetric game such as the IPD); the learner is paid the focal
per-capita reward, the mean over its seat and the snapshot's. Fictitious play's ``c<n>@fp/<k>``
seats the past snapshot of slot ``k`` there instead (:func:`fictitious_play`). The attributes
:class:`~rqe_wrappers.sb3.AHTCallback` reads and writes (``aht_config``, ``set_prior``,
``aht_callback_attached``, ...) are this object's. Docs: docs/batched.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rqe_wrappers.aht.config import ADAPTIVE, FICTITIOUS_PLAY, SELF_PLAY, AHTConfig, aht_config_dict
from rqe_wrappers.aht.nature import Nature, normalized_prior
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import fictitious_play_setup
from rqe_wrappers.core.policy import Policy, check_policy_spaces
from rqe_wrappers.envs.batched import BatchedEnv, copy_keys, uniforms
from rqe_wrappers.errors import ConfigError, MissingCallbackWarning, SeatError, SpaceMismatchError

STREAM = "scenario"
_PER_COPY = "use the per-copy path: make_vec_env(lambda: aht_wrap(<the PettingZoo env>, ...), n_copies)"


def fictitious_play(
    env: BatchedEnv, learner: str, members: Mapping[str, Policy], config: AHTConfig, scenarios: ScenarioSet | None
) -> tuple[ScenarioSet, dict[str, Policy], dict[str, str]]:
    """``prior="fictitious-play"``'s ``(scenarios, members, fp_members)``, as ``aht_wrap`` builds them: one
    slot per kept past snapshot, each a member that plays the snapshot ``AHTCallback`` shares for it."""
    if members:
        raise ConfigError(
            f"prior 'fictitious-play' trains against the learner's own past snapshots; pass no population "
            f"(got {len(members)} members: {sorted(members)[:5]})"
        )
    if scenarios is not None:
        raise ConfigError("prior 'fictitious-play' builds its own scenarios (the learner + one past snapshot)")
    spaces = (env.observation_space(learner), env.action_space(learner))
    return fictitious_play_setup(config, len(env.possible_agents), spaces)


def check_aht(
    env: BatchedEnv,
    learner: str,
    members: Mapping[str, Policy],
    config: AHTConfig,
    scenarios: ScenarioSet | None,
) -> ScenarioSet:
    """The scenario set for the batched path (default: every ``c1`` scenario), after checking what it supports."""
    if not isinstance(config, AHTConfig):
        raise ConfigError(f"aht must be an AHTConfig, got {type(config).__name__}")
    if not members:
        raise ConfigError("the batched AHT path needs a population of partners ({name: Policy} or a zoo population)")
    seats = list(env.possible_agents)
    if len(seats) < 2:
        raise SeatError(f"ad hoc teamwork needs partners: the env has {len(seats)} seat(s) ({seats})")
    for name, policy in members.items():
        for seat in seats:
            if seat != learner:
                check_policy_spaces(policy, env.observation_space(seat), env.action_space(seat), f"member {name!r}")
        if policy.initial_state(1) is not None:
            raise ConfigError(f"population member {name!r} is recurrent; the batched path plays stateless policies")
    if scenarios is None:  # the c1 scenarios; with the self-play prior, every focal count (aht_wrap's default)
        counts = None if config.prior == SELF_PLAY else [1]
        scenarios = ScenarioSet.all(len(seats), list(members), config.max_scenarios, focal_counts=counts)
    if not isinstance(scenarios, ScenarioSet):
        raise ConfigError(f"scenarios must be a ScenarioSet, got {type(scenarios).__name__}")
    if scenarios.n_seats != len(seats):
        raise ConfigError(f"the scenario set is for {scenarios.n_seats} seats but the env has {len(seats)}")
    missing = sorted(set(scenarios.members) - set(members))
    if missing:
        raise ConfigError(f"the scenario set names members {missing} that the population does not have")
    copies = max(s.n_focal for s in scenarios) - 1
    others = [s for s in seats if s != learner][:copies]
    unlike = [
        s
        for s in others
        if env.observation_space(s) != env.observation_space(learner)
        or env.action_space(s) != env.action_space(learner)
    ]
    if unlike:
        raise SpaceMismatchError(
            f"scenarios with {copies + 1} focal players seat the learner's snapshot in {unlike}, whose spaces differ "
            f"from the learner's seat {learner!r}; keep the c1 scenarios (focal_counts=[1])"
        )
    return scenarios


class BatchedScenarios:
    """Each copy's current scenario, drawn per episode from :attr:`beta`; answers ``AHTCallback``'s attributes.

    Args:
        scenarios: checked ``c1`` scenarios (:func:`check_aht`).
        config: the AHT settings (resolved against ``scenarios`` here).
        rows: ``(n_scenarios, n_seats)`` the background table row of each scenario (``-1``: the learner).
        n_copies: env copies.
        population: ``{name: Policy}``, kept for :attr:`population`.
        focal: ``(n_scenarios, n_seats)`` bool, the focal seats (the learner's and its snapshot's) of each
            scenario, whose mean reward the learner is paid.
        fp_members: fictitious play's ``{slot member: shared snapshot name}`` (``aht_config``'s).
    """

    def __init__(
        self,
        scenarios: ScenarioSet,
        config: AHTConfig,
        rows: np.ndarray,
        n_copies: int,
        population: Mapping[str, Policy],
        focal: np.ndarray,
        fp_members: Mapping[str, str] | None = None,
    ):
        nature = config.make_nature(scenarios)  # checks best_responses against the scenarios
        self.config = config.resolved(scenarios)
        self.scenarios = scenarios
        self.population = dict(population)
        self.focal_name = self.config.focal_name
        self.snapshot_name = self.config.snapshot_name
        self.rows = np.asarray(rows, np.int64)
        self.focal = np.asarray(focal, bool)
        counts = self.focal.sum(axis=1)
        cols = np.flatnonzero(self.focal.any(axis=0))
        #: the one focal seat of every scenario (c1 scenarios only), else None
        self._solo = int(cols[0]) if len(cols) == 1 and (counts == 1).all() else None
        self.fp_members = dict(fp_members or {})
        #: ``(n_copies,)`` each copy's current scenario index
        self.index = np.zeros(n_copies, np.int64)
        #: ``(n_copies,)`` each copy's focal return so far this episode
        self.returns = np.zeros(n_copies)
        self.aht_callback_attached = False  # set by AHTCallback through VecEnv.set_attr
        self._beta = np.asarray(nature.beta, np.float64)
        if self.config.prior == FICTITIOUS_PLAY:  # only slot 0 (the initial policy) is filled before training
            self._beta = np.eye(len(scenarios))[0]
        self._keys = np.zeros(n_copies, np.uint64)
        self._ids = np.array(scenarios.ids, dtype=object)  # indexed by scenario index, as arrays
        self._warned = False

    @property
    def aht_config(self) -> dict[str, Any]:
        """Plain data the callback reads (``get_attr("aht_config")``), as ``AHTWrapper.aht_config``."""
        return aht_config_dict(self.config, self.scenarios, self.fp_members)

    @property
    def beta(self) -> np.ndarray:
        """The prior over :attr:`scenarios` that the next resets sample from."""
        return self._beta.copy()

    @beta.setter
    def beta(self, value: Any) -> None:
        self.set_prior(value)

    def set_prior(self, beta: Any) -> None:
        """Set the prior (one weight per scenario, normalised here); used from the next resets on."""
        self._beta = normalized_prior(beta, len(self.scenarios))

    def make_nature(self) -> Nature:
        """A fresh :class:`~rqe_wrappers.aht.nature.Nature` with these settings."""
        return self.config.make_nature(self.scenarios)

    def draw(self, copies: np.ndarray, seeds: Sequence[int | None]) -> np.ndarray:
        """New episodes for ``copies``: their scenarios (``None`` seed: the copy's next episode); returns the rows."""
        keys = copy_keys(seeds, self._keys[copies], STREAM)
        self._keys[copies] = keys
        cdf = np.cumsum(self._beta)
        u = uniforms(keys, np.zeros(len(copies)), 1)[:, 0] * cdf[-1]
        picks = np.minimum((u[:, None] >= cdf[None, :]).sum(axis=1), len(cdf) - 1)
        self.index[copies] = picks
        self.returns[copies] = 0.0
        return self.rows[picks]

    def focal_rewards(self, rewards: np.ndarray) -> np.ndarray:
        """Each copy's focal per-capita reward: the mean of ``rewards`` ``(n_copies, n_seats)`` over its focal seats."""
        if self._solo is not None:  # c1 scenarios: the learner's own reward
            return rewards[:, self._solo].copy()
        mask = self.focal[self.index]
        return np.where(mask, rewards, 0.0).sum(axis=1) / mask.sum(axis=1)

    def ids(self, copies: Sequence[int] | np.ndarray) -> list[str]:
        """The scenario id of each of ``copies``."""
        ids: list[str] = self._ids[self.index[np.asarray(copies, np.int64)]].tolist()
        return ids

    def episodes_end(self) -> None:
        """Warn once if an adaptive prior ran an episode without ``AHTCallback`` (as ``aht_wrap`` does)."""
        prior = self.config.prior
        if prior in ADAPTIVE and not self.aht_callback_attached and not self._warned:
            self._warned = True
            warnings.warn(
                f"batched_vec_env(aht=AHTConfig(prior={prior!r})) ran an episode without AHTCallback: the prior "
                "stays at its start. Train with model.learn(..., callback=AHTCallback()).",
                MissingCallbackWarning,
                stacklevel=4,
            )
