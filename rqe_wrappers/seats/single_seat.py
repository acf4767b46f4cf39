"""One seat of a turn-based (AEC) game as a one-agent :class:`~pettingzoo.ParallelEnv`.

A vectorised trainer steps every slot in lockstep, but in a turn-based game a seat must wait for
its turn. :func:`single_seat` hides the waiting: the other seats are played by fixed policies
(through :func:`~rqe_wrappers.seats.background.background_seats`) until it is ``seat``'s turn
again, so every ``step`` of the returned env is one move of ``seat``.

Rewards follow AEC ``last()`` semantics: a step's reward is everything ``seat`` accumulated since
its previous move (its own move and the other seats' replies). When the game ends on another
seat's move, ``seat``'s final reward and its termination arrive with that same step, so no extra
step is needed to learn about the end. Whatever ``seat`` collected before its first move (the
other seats moved first) is added to its first step, so its step rewards sum to its episode
return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pettingzoo import AECEnv, ParallelEnv

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import SeatError
from rqe_wrappers.seats.background import background_seats


class SingleSeatParallel(ParallelEnv):
    """``seat`` of an AEC env as a one-agent parallel env; see :func:`single_seat`."""

    def __init__(self, env: AECEnv, seat: str, others: Policy | Mapping[str, Policy] | None = None):
        if not isinstance(env, AECEnv):
            raise TypeError(f"single_seat expects a PettingZoo AECEnv, got {type(env).__name__}")
        seats = list(env.possible_agents)
        if seat not in seats:
            raise SeatError(f"seat {seat!r} does not exist; the env's seats are {seats}")
        rest = [s for s in seats if s != seat]
        if others is None:
            policies: dict[str, Policy] = {}
        elif isinstance(others, Policy):
            policies = {s: others for s in rest}
        elif isinstance(others, Mapping):
            policies = dict(others)
        else:
            raise TypeError(
                f"others must be a rqe_wrappers.Policy or a {{seat: Policy}} mapping, got {type(others).__name__}"
            )
        missing = [s for s in rest if s not in policies]
        if missing:
            raise SeatError(
                f"seats {missing} have no policy: single_seat({seat!r}) needs every other seat played by a "
                "Policy (pass others=policy for all of them, or {seat: policy})"
            )
        if seat in policies:
            raise SeatError(f"seat {seat!r} is the learning seat; remove it from others")
        self.aec_env = env
        self.env = background_seats(env, policies) if policies else env
        self.seat = seat
        self.possible_agents = [seat]
        self.agents: list[str] = []
        self._carry = 0.0  # reward collected before the seat's first move
        self.metadata = getattr(env, "metadata", {})
        self.render_mode = getattr(env, "render_mode", None)

    def observation_space(self, agent):
        return self.env.observation_space(agent)

    def action_space(self, agent):
        return self.env.action_space(agent)

    @property
    def unwrapped(self):
        return self.aec_env.unwrapped

    def _status(self) -> tuple[float, bool, bool]:
        """``seat``'s reward since its last move and whether its game is over."""
        env, seat = self.env, self.seat
        reward = float(env._cumulative_rewards.get(seat, 0.0))
        if seat not in env.agents:  # removed without a dead step: treat as the end
            return reward, not env.truncations.get(seat, False), env.truncations.get(seat, False)
        return reward, bool(env.terminations[seat]), bool(env.truncations[seat])

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self.env.reset(seed=seed, options=options)
        self.agents = [self.seat]
        self._carry = float(self.env._cumulative_rewards.get(self.seat, 0.0))
        return {self.seat: self.env.observe(self.seat)}, {self.seat: dict(self.env.infos.get(self.seat, {}))}

    def step(self, actions):
        seat = self.seat
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        reward, term, trunc = self._status()
        if not (term or trunc):  # not already over (the others can end the game before our first move)
            self.env.step(actions[seat])  # the env zeroes the seat's accumulated reward as it moves
            reward, term, trunc = self._status()
            reward += self._carry
        self._carry = 0.0
        obs = {seat: self.env.observe(seat)}
        infos = {seat: dict(self.env.infos.get(seat, {}))}
        if term or trunc:
            self.agents = []
        return obs, {seat: reward}, {seat: term}, {seat: trunc}, infos

    def render(self):
        return self.aec_env.render()

    def close(self):
        self.aec_env.close()

    def state(self):
        return self.aec_env.state()

    def __str__(self) -> str:
        return f"single_seat<{self.aec_env}, {self.seat}>"


def single_seat(env: AECEnv, seat: str, others: Policy | Mapping[str, Policy] | None = None) -> ParallelEnv:
    """Turn ``seat`` of a turn-based AEC env into a one-agent parallel env.

    Args:
        env: a PettingZoo ``AECEnv`` (possibly already wrapped, e.g. by ``srpo_wrap``).
        seat: the seat that acts through the returned env.
        others: who plays the remaining visible seats: one :class:`~rqe_wrappers.core.policy.Policy`
            for all of them (e.g. a learner :class:`~rqe_wrappers.core.snapshot.SnapshotPolicy`), or
            ``{seat: Policy}``. May be omitted only if ``seat`` is the env's only visible seat.

    Each ``step`` is one move of ``seat``; the other seats move in between. The reward is what
    ``seat`` accumulated since its previous move (AEC ``last()``; rewards from before its first
    move are added to its first step), and when the game ends on another seat's move the final
    reward and termination come with that step.

    Example:
        >>> from pettingzoo.classic import tictactoe_v3
        >>> from rqe_wrappers.core.policy import RandomPolicy
        >>> aec = tictactoe_v3.env()
        >>> rand = RandomPolicy(aec.observation_space("player_1"), aec.action_space("player_1"))
        >>> par = single_seat(aec, "player_2", rand)
        >>> obs, infos = par.reset(seed=0)
        >>> int(obs["player_2"]["observation"].sum())  # player_1 has already moved
        1
    """
    return SingleSeatParallel(env, seat, others)
