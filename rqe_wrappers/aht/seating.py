"""How the AHT wrapper plays the seats around the learner: parallel envs and turn-based (AEC) envs.

Used by :class:`rqe_wrappers.aht.wrapper.AHTWrapper`; see its module docstring and docs/aht.md.
"""

from __future__ import annotations

from pettingzoo import AECEnv, ParallelEnv

from rqe_wrappers.core.dispatch import by_api
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.seats.background import BackgroundSeatsParallel, play_turn


def make_seating(env: ParallelEnv | AECEnv) -> ParallelSeating | AECSeating:
    """The seating that drives ``env``."""
    return by_api(env, parallel=ParallelSeating, aec=AECSeating, what="aht_wrap")


class ParallelSeating:
    """Drives a parallel env: the learner's seat is visible, every other seat is a background seat."""

    def __init__(self, env: ParallelEnv):
        self.bg = BackgroundSeatsParallel(env, {})
        self.learner = ""

    def reset(self, seed, options, learner: str, policies: dict[str, Policy]):
        self.learner = learner
        self.bg.assign(policies)
        obs, infos = self.bg.reset(seed=seed, options=options)
        return obs[learner], dict(infos.get(learner, {}))

    def step(self, action):
        learner, bg = self.learner, self.bg
        obs, rew, term, trunc, infos = bg.step({learner: action})
        rewards = {learner: float(rew.get(learner, 0.0)), **bg.background_rewards}
        info = dict(infos.get(learner, {}))
        info.pop("background_rewards", None)
        done_term, done_trunc = bool(term.get(learner, False)), bool(trunc.get(learner, False))
        if learner not in bg.env.agents and not (done_term or done_trunc):
            done_term = True  # removed without a flag: treat as the end
        if done_term or done_trunc:
            while bg.env.agents:  # the others play on: their focal rewards still count
                bg.step({})
                for seat, r in bg.background_rewards.items():
                    rewards[seat] = rewards.get(seat, 0.0) + r
        return obs.get(learner), rewards, done_term, done_trunc, info


class AECSeating:
    """Drives a turn-based env: partners move on their turns until it is the learner's turn again.

    Each seat's reward is read on its own turn (AEC ``last()``: what it accumulated since it last
    moved), so every reward is counted exactly once, including the final ones on the dead steps.
    """

    def __init__(self, env: AECEnv):
        self.env = env
        self.learner = ""
        self._rng = stream(None, "background")
        self._policies: dict[str, Policy] = {}
        self._states: dict = {}
        self._pending: dict[str, float] = {}
        self._over = False
        self._term = self._trunc = False
        self._last_obs = None
        self._last_info: dict = {}

    def reset(self, seed, options, learner: str, policies: dict[str, Policy]):
        if seed is not None:
            self._rng = stream(seed, "background")
        self.learner = learner
        self._policies = dict(policies)
        self._states = {s: p.initial_state(1) for s, p in self._policies.items()}
        self._pending = {}
        self._over = False
        self._term = self._trunc = False
        self.env.reset(seed=seed, options=options)
        self._advance()
        return self._last_obs, dict(self._last_info)

    def _credit(self, seat: str) -> None:
        r = float(self.env._cumulative_rewards.get(seat, 0.0))
        self._pending[seat] = self._pending.get(seat, 0.0) + r

    def _advance(self) -> None:
        """Play until the learner must move (or the game is over for everyone)."""
        env, learner = self.env, self.learner
        while env.agents:
            seat = env.agent_selection
            self._credit(seat)
            dead = env.terminations[seat] or env.truncations[seat]
            if seat == learner:
                self._last_obs = env.observe(learner)
                self._last_info = dict(env.infos.get(learner, {}))
                if not dead:
                    return
                self._over, self._term, self._trunc = True, bool(env.terminations[seat]), bool(env.truncations[seat])
            if dead:
                env.step(None)
                continue
            self._states[seat] = play_turn(env, seat, self._policies[seat], self._rng, self._states[seat])
        if not self._over:  # the learner left without a dead step of its own
            self._over = True
            self._trunc = bool(env.truncations.get(learner, False))
            self._term = not self._trunc

    def step(self, action):
        if not self._over:
            self.env.step(action)
            self._advance()
        rewards, self._pending = self._pending, {}
        return self._last_obs, rewards, self._term, self._trunc, dict(self._last_info)
