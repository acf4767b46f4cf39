"""The SRPO paper's Hanabi (3 colours x 3 ranks, 2 or 4 players): OpenSpiel's ``hanabi`` through shimmy.

A PettingZoo AEC env with the legal moves in ``infos[seat]["action_mask"]``. Parameter choices:
docs/hanabi.md, "The game".
"""

from __future__ import annotations

import functools
from typing import Any

from rqe_wrappers.core.checks import integer
from rqe_wrappers.errors import ConfigError

#: OpenSpiel's game name.
GAME = "hanabi"
#: The player counts the paper trains (appendix D.4).
PLAYERS = (2, 4)
#: Our defaults besides players, colours and ranks (OpenSpiel's own defaults except ``hand_size``).
DEFAULTS: dict[str, Any] = {
    "hand_size": 3,
    "max_information_tokens": 8,
    "max_life_tokens": 3,
    "observation_type": "card_knowledge",  # what hints revealed, not only the last move
}
#: OpenSpiel's observation types (``seer`` sees its own hand: not Hanabi).
OBSERVATION_TYPES = ("minimal", "card_knowledge", "seer")
#: OpenSpiel ``hanabi`` parameters a caller may set (``seed`` comes from ``reset(seed=...)``).
PARAMS = ("hand_size", "max_information_tokens", "max_life_tokens", "observation_type", "random_start_player")

__all__ = ["DEFAULTS", "GAME", "PLAYERS", "hanabi_config", "hanabi_env", "max_score"]


def hanabi_config(players: int = 2, colors: int = 3, ranks: int = 3, **params: Any) -> dict[str, Any]:
    """The OpenSpiel game config :func:`hanabi_env` builds, validated (``ConfigError`` names the bad key)."""
    players = integer("players", players, low=2, high=5, hint="OpenSpiel's Hanabi seats 2 to 5 players")
    colors = integer("colors", colors, low=1, high=5)
    ranks = integer("ranks", ranks, low=1, high=5)
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ConfigError(f"hanabi_env: unknown parameter(s) {unknown}; it takes {list(PARAMS)}")
    config: dict[str, Any] = {"players": players, "colors": colors, "ranks": ranks, **DEFAULTS, **params}
    hand = integer("hand_size", config["hand_size"], low=1)
    deck = colors * (3 if ranks == 1 else 2 * ranks)  # OpenSpiel's copies per rank: 3, 2, ..., 2, 1
    if players * hand > deck:
        raise ConfigError(
            f"hanabi_env: {players} hands of {hand} cards need {players * hand} cards but a {colors}x{ranks} deck has "
            f"{deck}; lower hand_size"
        )
    integer("max_information_tokens", config["max_information_tokens"], low=1)
    integer("max_life_tokens", config["max_life_tokens"], low=1)
    if config["observation_type"] not in OBSERVATION_TYPES:
        raise ConfigError(
            f"hanabi_env: observation_type must be one of {list(OBSERVATION_TYPES)}, got {config['observation_type']!r}"
        )
    return config


def hanabi_env(players: int = 2, colors: int = 3, ranks: int = 3, **params: Any) -> Any:
    """OpenSpiel's Hanabi as a PettingZoo AEC env (shimmy's ``OpenSpielCompatibilityV0``).

    Seats ``player_0 .. player_<n-1>``; the observation is OpenSpiel's vector from the seat's own
    perspective, the legal moves are in ``infos[seat]["action_mask"]``; every seat gets the change of
    the shared score, so an episode's return is the final score (0 after the last life is lost).
    ``reset(seed=s)`` reproduces the deal and the game.

    Example:
        >>> env = hanabi_env(players=2)
        >>> env.reset(seed=0)
        >>> env.possible_agents, int(env.action_space("player_0").n)
        (['player_0', 'player_1'], 12)
    """
    return _env_class()(game_name=GAME, config=hanabi_config(players, colors, ranks, **params))


@functools.cache
def _env_class() -> type:
    """shimmy's env with PettingZoo's dead-step rule (imported on first use: shimmy loads OpenSpiel)."""
    from shimmy.openspiel_compatibility import OpenSpielCompatibilityV0

    class HanabiAEC(OpenSpielCompatibilityV0):
        """``OpenSpielCompatibilityV0`` whose dead steps hand out nothing and whose spaces are built once.

        shimmy 2.0.1 adds the last move's rewards again to every seat still in the game at each
        dead step, so seat ``k`` received the final reward ``k + 1`` times (a seat's return was not
        the score). Here a dead step only removes the seat and clears ``rewards``, as PettingZoo's
        ``AECEnv._was_dead_step`` does. shimmy also rebuilds every space at every step (a tenth of
        the training time, and seeded spaces lose their seeds); Hanabi's never change.
        """

        def _update_observation_spaces(self) -> None:
            if not self.observation_spaces:
                super()._update_observation_spaces()

        def _update_action_spaces(self) -> None:
            if not self.action_spaces:
                super()._update_action_spaces()

        def step(self, action: Any) -> None:
            seat = self.agent_selection
            if not (self.terminations[seat] or self.truncations[seat]):
                super().step(action)
                return
            kept = {a: r for a, r in self._cumulative_rewards.items() if a != seat}
            super().step(action)
            for a in self.agents:
                self._cumulative_rewards[a] = kept[a]
                self.rewards[a] = 0.0

    return HanabiAEC


def max_score(colors: int = 3, ranks: int = 3) -> int:
    """The best possible score: every firework complete."""
    return int(colors) * int(ranks)
