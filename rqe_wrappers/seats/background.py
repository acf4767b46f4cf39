"""Background seats: some seats of an env are played by fixed :class:`~rqe_wrappers.core.policy.Policy` objects.

The wrapped env exposes only the remaining seats (``agents``/``possible_agents``), so a trainer
sees them as the whole game. Used for Tag's fixed runner, for minimax-Bayes background partners and
for the learner snapshot that plays the other seats of turn-based (AEC) games.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper, BaseWrapper

from rqe_wrappers.core.dispatch import by_api
from rqe_wrappers.core.policy import Policy, check_policy_spaces, stack_obs
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import SeatError


def _check_seat_names(env, policies: Mapping[str, Policy]) -> None:
    unknown = [s for s in policies if s not in env.possible_agents]
    if unknown:
        raise SeatError(f"background seats {unknown} do not exist; the env's seats are {env.possible_agents}")
    if len(policies) >= len(env.possible_agents):
        raise SeatError("every seat is a background seat: leave at least one seat to learn")


def _check_seats(env, policies: Mapping[str, Policy]) -> None:
    _check_seat_names(env, policies)
    for seat, pol in policies.items():
        if not isinstance(pol, Policy):
            raise TypeError(f"background seat {seat!r}: expected a rqe_wrappers.Policy, got {type(pol).__name__}")
        check_policy_spaces(pol, env.observation_space(seat), env.action_space(seat), f"background seat {seat!r}")


def _group_by_policy(seats, policies):
    groups: dict[int, tuple[Policy, list[str]]] = {}
    for s in seats:
        groups.setdefault(id(policies[s]), (policies[s], []))[1].append(s)
    return groups.values()


def _mask_of(obs, info):
    if isinstance(obs, Mapping) and "action_mask" in obs:
        return obs["action_mask"]
    return (info or {}).get("action_mask")


def play_turn(env: AECEnv, seat: str, policy: Policy, rng: np.random.Generator, state=None):
    """Let ``policy`` take ``seat``'s turn in an AEC env (its mask honoured); returns the new policy state."""
    obs = env.observe(seat)
    mask = _mask_of(obs, env.infos.get(seat))
    batch_mask = None if mask is None else np.asarray(mask)[None]
    act, state = policy.act(stack_obs([obs]), rng=rng, mask=batch_mask, state=state)
    env.step(act[0])
    return state


class BackgroundSeatsParallel(BaseParallelWrapper):
    """Parallel env whose ``policies`` seats are played by fixed policies (batched per policy)."""

    def __init__(self, env: ParallelEnv, policies: Mapping[str, Policy]):
        super().__init__(env)
        _check_seats(env, policies)
        self.background = dict(policies)
        self.possible_agents = [a for a in env.possible_agents if a not in self.background]
        self.background_rewards: dict[str, float] = {}  # the background seats' rewards at the last step
        self._rng = stream(None, "background")
        self._obs: dict = {}
        self._infos: dict = {}
        self._states: dict = {}
        self._groups: list = []
        self._preset: dict[int, np.ndarray] = {}  # id(policy) -> its probabilities for the next step

    def assign(self, policies: Mapping[str, Policy]) -> None:
        """Replace which seats are background and who plays them; takes effect at the next ``reset``.

        Used by wrappers that redraw the seating every episode (minimax-Bayes scenarios). The caller
        has checked the policies' spaces once up front, so only the seat names are checked here.
        """
        _check_seat_names(self.env, policies)
        self.background = dict(policies)
        self.possible_agents = [a for a in self.env.possible_agents if a not in self.background]

    @property
    def agents(self):
        return [a for a in self.env.agents if a not in self.background]

    def _split(self, obs, infos, finished=()):
        """Keep the background seats' observations (of seats still playing); return the others'."""
        self._obs = {s: obs[s] for s in self.background if s in obs and s not in finished}
        self._infos = {s: infos.get(s, {}) for s in self._obs}
        return {a: obs[a] for a in obs if a not in self.background}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = stream(seed, "background")
        obs, infos = self.env.reset(seed=seed, options=options)
        self._states = {s: p.initial_state(1) for s, p in self.background.items()}
        self._groups = [
            (pol, seats, pol.initial_state(1) is not None)
            for pol, seats in _group_by_policy(list(self.background), self.background)
        ]
        self._preset = {}
        obs = self._split(obs, infos)
        return obs, {a: i for a, i in infos.items() if a not in self.background}

    @property
    def background_layer(self) -> BackgroundSeatsParallel:
        """This layer (:func:`batch_background` finds it in a wrapper chain by this name)."""
        return self

    def pending(self) -> list[tuple[Policy, list]]:
        """``(policy, observations)`` of the next step's draws that :meth:`preset` may take over: the
        stateless policies with a :meth:`~rqe_wrappers.core.policy.Policy.probs_sampler`."""
        out = []
        for pol, all_seats, recurrent in self._groups:
            seats = [s for s in all_seats if s in self._obs]
            if seats and not recurrent and pol.probs_sampler() is not None:
                out.append((pol, [self._obs[s] for s in seats]))
        return out

    def preset(self, policy: Policy, probs: np.ndarray) -> None:
        """``policy``'s action probabilities for the observations :meth:`pending` gave; the next step
        draws from them with this env's stream instead of calling ``act`` (same draws)."""
        self._preset[id(policy)] = probs

    def background_actions(self) -> dict:
        """Actions of the background seats still playing, one ``act`` call per policy."""
        actions: dict[str, Any] = {}
        preset, self._preset = self._preset, {}
        for pol, all_seats, recurrent in self._groups:
            seats = [s for s in all_seats if s in self._obs]
            if not seats:
                continue
            masks = [_mask_of(self._obs[s], self._infos[s]) for s in seats]
            mask = None if any(m is None for m in masks) else np.stack(masks)
            probs = preset.get(id(pol))
            sample = None if probs is None else pol.probs_sampler()
            if sample is not None:
                actions.update(zip(seats, sample(probs, self._rng, mask), strict=True))
            elif not recurrent:
                acts, _ = pol.act(stack_obs([self._obs[s] for s in seats]), rng=self._rng, mask=mask)
                actions.update(zip(seats, acts, strict=True))
            else:  # recurrent: one call per seat keeps states separate
                for s, m in zip(seats, masks, strict=True):
                    a, self._states[s] = pol.act(
                        stack_obs([self._obs[s]]),
                        rng=self._rng,
                        mask=None if m is None else m[None],
                        state=self._states[s],
                    )
                    actions[s] = a[0]
        return actions

    def step(self, actions):
        full = {**actions, **self.background_actions()}
        obs, rew, term, trunc, infos = self.env.step(full)
        bg = self.background
        bg_rewards = {s: float(rew[s]) for s in bg if s in rew}
        self.background_rewards = bg_rewards
        obs = self._split(obs, infos, finished={s for s in bg if term.get(s) or trunc.get(s)})
        infos = {a: {**i, "background_rewards": bg_rewards} for a, i in infos.items() if a not in bg}
        return (
            obs,
            {a: v for a, v in rew.items() if a not in bg},
            {a: v for a, v in term.items() if a not in bg},
            {a: v for a, v in trunc.items() if a not in bg},
            infos,
        )


def batch_background(layers: Sequence[BackgroundSeatsParallel]) -> None:
    """One ``action_probs`` call per policy over the pending observations of all ``layers`` (the
    background seats of several env copies), each layer's rows preset for its next step, where the
    layer draws them with its own stream: the draws of one call per layer, at one forward pass."""
    groups: dict[int, tuple[Policy, list, list]] = {}
    for layer in layers:
        for pol, rows in layer.pending():
            _, owners, obs = groups.setdefault(id(pol), (pol, [], []))
            owners.append((layer, len(rows)))
            obs.extend(rows)
    for pol, owners, obs in groups.values():
        if len(owners) < 2:
            continue  # nothing to share: the layer calls act as before
        probs = np.asarray(pol.action_probs(stack_obs(obs)))  # type: ignore[attr-defined]
        start = 0
        for layer, n in owners:
            layer.preset(pol, probs[start : start + n])
            start += n


class BackgroundSeatsAEC(BaseWrapper):
    """AEC env whose ``policies`` seats play their own turns automatically."""

    def __init__(self, env: AECEnv, policies: Mapping[str, Policy]):
        super().__init__(env)
        _check_seats(env, policies)
        self.background = dict(policies)
        self.possible_agents = [a for a in env.possible_agents if a not in self.background]
        self._rng = stream(None, "background")
        self._states: dict = {}

    @property
    def agents(self):
        return [a for a in self.env.agents if a not in self.background]

    @property
    def num_agents(self):
        return len(self.agents)

    @property
    def max_num_agents(self):
        return len(self.possible_agents)

    def _visible(self, d):
        return {a: v for a, v in d.items() if a not in self.background}

    @property
    def rewards(self):
        return self._visible(self.env.rewards)

    @property
    def terminations(self):
        return self._visible(self.env.terminations)

    @property
    def truncations(self):
        return self._visible(self.env.truncations)

    @property
    def infos(self):
        return self._visible(self.env.infos)

    @property
    def _cumulative_rewards(self):
        return self._visible(self.env._cumulative_rewards)

    def _play_background(self):
        env = self.env
        while env.agents and env.agent_selection in self.background:
            seat = env.agent_selection
            if env.terminations[seat] or env.truncations[seat]:
                env.step(None)
                continue
            self._states[seat] = play_turn(env, seat, self.background[seat], self._rng, self._states[seat])

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = stream(seed, "background")
        self.env.reset(seed=seed, options=options)
        self._states = {s: p.initial_state(1) for s, p in self.background.items()}
        self._play_background()

    def step(self, action):
        self.env.step(action)
        self._play_background()


def background_seats(env, policies: Mapping[str, Policy]):
    """Wrap ``env`` (AEC or parallel) so ``policies`` play their seats; returns the same API kind."""
    return by_api(
        env,
        parallel=lambda e: BackgroundSeatsParallel(e, policies),
        aec=lambda e: BackgroundSeatsAEC(e, policies),
        what="background_seats",
    )
