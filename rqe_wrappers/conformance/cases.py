"""Third-party env cases of the conformance matrix and the route each method takes (docs/envs.md)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

METHODS = ("adapter", "srpo", "aht")


@dataclass(frozen=True)
class EnvCase:
    """One third-party env and how each method reaches it.

    Attributes:
        id: ``"<package>/<env>"`` as users know it.
        make: ``"module:function"`` building the env (``env`` for AEC, ``parallel_env`` for parallel).
        kwargs: arguments for ``make`` (small sizes keep the matrix fast).
        prep: SuperSuit steps applied first, by name (see :data:`PREP`).
        srpo: ``srpo_wrap`` keyword arguments, or ``None`` where SRPO does not apply (see ``note``).
        aht: ``True`` where ``aht_wrap`` applies (seats interchangeable after ``prep`` and ``aht_fixed``).
        aht_fixed: seats fixed to a random policy before ``aht_wrap`` (the other team).
        adapter: ``"train"``, or ``"refuse"`` where the raw env's seats differ and the adapter must
            refuse it with a :class:`~rqe_wrappers.errors.SpaceMismatchError` that names the fix.
        masked: train with MaskablePPO (the env has action masks). The SB3 policy follows the
            observation: ``MultiInputPolicy`` for a Dict, ``CnnPolicy`` for an image, else ``MlpPolicy``.
        info_masks: the env keeps its action masks in ``infos`` (shimmy's OpenSpiel envs), where
            PettingZoo's *parallel* API and seed tests do not look: they would play illegal moves, so
            they are skipped for the parallel wrappers of such envs (the AEC tests do read them).
        note: the route in words, for docs/envs.md.
        extra: the pip extra that installs the env.
    """

    id: str
    make: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    prep: tuple[str, ...] = ()
    srpo: Mapping[str, Any] | None = field(default_factory=dict)
    aht: bool = True
    aht_fixed: tuple[str, ...] = ()
    adapter: str = "train"
    masked: bool = False
    info_masks: bool = False
    note: str = ""
    extra: str = ""

    def build(self) -> Any:
        """A fresh env with the ``prep`` steps applied."""
        module, _, fn = self.make.partition(":")
        env = getattr(importlib.import_module(module), fn)(**self.kwargs)
        for step in self.prep:
            env = PREP[step](env)
        return env


def _supersuit(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    def apply(env: Any) -> Any:
        import supersuit

        return getattr(supersuit, name)(env, **kwargs)

    return apply


#: SuperSuit steps a case may name (composed, not rewritten: DESIGN.md)
PREP: dict[str, Callable[[Any], Any]] = {
    "pad_obs": _supersuit("pad_observations_v0"),
    "pad_act": _supersuit("pad_action_space_v0"),
    "resize_40": _supersuit("resize_v1", x_size=40, y_size=40),
    "gray": _supersuit("color_reduction_v0", mode="full"),
    "keep_dim": _supersuit("reshape_v0", shape=(40, 40, 1)),
    "flatten": _supersuit("flatten_v0"),
}

#: a case's ``extra`` -> what installs it (all of them: ``pip install 'rqe-wrappers[mpe,test]'``)
INSTALL = {
    "mpe": "rqe-wrappers[mpe]",
    "butterfly": "pettingzoo[butterfly]",
    "sisl": "pettingzoo[sisl]",
    "classic": "pettingzoo[classic]",
    "openspiel": "shimmy[openspiel]",
}
_MPE = {"max_cycles": 25}
_OPENSPIEL = "shimmy.openspiel_compatibility:OpenSpielCompatibilityV0"

CASES: tuple[EnvCase, ...] = (
    # ---- mpe2 (parallel API) ----
    EnvCase(
        "mpe2/simple_v3",
        "mpe2.simple_v3:parallel_env",
        _MPE,
        srpo=None,
        aht=False,
        note="one seat: no partner, so neither method applies; the adapter trains it",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_adversary_v3",
        "mpe2.simple_adversary_v3:parallel_env",
        _MPE,
        aht_fixed=("adversary_0",),
        adapter="refuse",
        note="teams by name: the agents learn, the adversary is random (swap with fixed=)",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_crypto_v3",
        "mpe2.simple_crypto_v3:parallel_env",
        _MPE,
        prep=("pad_obs",),
        srpo={"teams": {"eve": ["eve_0"], "pair": ["alice_0", "bob_0"]}, "learn": "pair", "seat_id": True},
        aht_fixed=("eve_0",),
        note="alice and bob learn (observations padded, seat identity on); eve is random",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_push_v3",
        "mpe2.simple_push_v3:parallel_env",
        _MPE,
        prep=("pad_obs",),
        srpo={"seat_id": True},
        aht=True,
        note="two opposing seats padded to one space, seat identity on: both learn",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_reference_v3", "mpe2.simple_reference_v3:parallel_env", _MPE, note="symmetric: as is", extra="mpe"
    ),
    EnvCase(
        "mpe2/simple_speaker_listener_v4",
        "mpe2.simple_speaker_listener_v4:parallel_env",
        _MPE,
        prep=("pad_obs", "pad_act"),
        srpo={"seat_id": True},
        note="speaker and listener padded to one space, seat identity on",
        extra="mpe",
    ),
    EnvCase("mpe2/simple_spread_v3", "mpe2.simple_spread_v3:parallel_env", _MPE, note="symmetric: as is", extra="mpe"),
    EnvCase(
        "mpe2/simple_tag_v3",
        "mpe2.simple_tag_v3:parallel_env",
        _MPE,
        aht_fixed=("agent_0",),
        adapter="refuse",
        note="the headline: chasers learn, shadow among chasers, runner random (swap with fixed=)",
        extra="mpe",
    ),
    EnvCase(
        "mpe2/simple_world_comm_v3",
        "mpe2.simple_world_comm_v3:parallel_env",
        _MPE,
        aht_fixed=("leadadversary_0", "agent_0", "agent_1"),
        adapter="refuse",
        note="teams by name: the three adversaries learn; the leader and the agents are random",
        extra="mpe",
    ),
    # ---- butterfly / sisl ----
    EnvCase(
        "butterfly/pistonball_v6",
        "pettingzoo.butterfly.pistonball_v6:parallel_env",
        {"n_pistons": 3, "continuous": False, "max_cycles": 25},
        prep=("gray", "resize_40", "keep_dim"),
        note="pixels (resized to 40x40 gray); the role reaches CnnPolicy as extra image channels",
        extra="butterfly",
    ),
    EnvCase(
        "butterfly/cooperative_pong_v6",
        "pettingzoo.butterfly.cooperative_pong_v6:parallel_env",
        {"max_cycles": 25},
        prep=("gray", "resize_40", "keep_dim"),
        note="pixels (resized to 40x40 gray), role as image channels",
        extra="butterfly",
    ),
    EnvCase(
        "butterfly/knights_archers_zombies_v11",
        "pettingzoo.butterfly.knights_archers_zombies_v11:parallel_env",
        {"max_cycles": 25, "num_archers": 2, "num_knights": 2},
        prep=("flatten",),
        srpo={"seat_id": True},
        note="2-D vector state flattened (supersuit.flatten_v0); archers and knights share spaces: seat identity on",
        extra="butterfly",
    ),
    EnvCase(
        "sisl/multiwalker_v9",
        "pettingzoo.sisl.multiwalker_v9:parallel_env",
        {"max_cycles": 25},
        note="continuous actions: Gaussian PPO; KL shaping on Gaussian log-probs",
        extra="sisl",
    ),
    EnvCase(
        "sisl/pursuit_v5",
        "pettingzoo.sisl.pursuit_v5:parallel_env",
        {"max_cycles": 25, "n_pursuers": 4, "n_evaders": 4},
        prep=("flatten",),
        note="7x7x3 float local views (not uint8 images): flattened with supersuit.flatten_v0",
        extra="sisl",
    ),
    # ---- classic (AEC: one learning seat per copy, the learner's snapshot in the others) ----
    EnvCase(
        "classic/rps_v2",
        "pettingzoo.classic.rps_v2:parallel_env",
        {"num_actions": 3, "max_cycles": 5},
        note="Discrete observations: one-hot encoded with the role feature",
        extra="classic",
    ),
    EnvCase(
        "classic/tictactoe_v3",
        "pettingzoo.classic.tictactoe_v3:env",
        masked=True,
        note="turn-based, masks: MaskablePPO + MultiInputPolicy (the role key keeps a Dict)",
        extra="classic",
    ),
    EnvCase(
        "classic/connect_four_v3",
        "pettingzoo.classic.connect_four_v3:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/leduc_holdem_v4",
        "pettingzoo.classic.leduc_holdem_v4:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/texas_holdem_v4",
        "pettingzoo.classic.texas_holdem_v4:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/texas_holdem_no_limit_v6",
        "pettingzoo.classic.texas_holdem_no_limit_v6:env",
        masked=True,
        note="turn-based, masks",
        extra="classic",
    ),
    EnvCase(
        "classic/go_v5",
        "pettingzoo.classic.go_v5:env",
        {"board_size": 5, "komi": 0.5},
        masked=True,
        note="turn-based, masks (5x5 board)",
        extra="classic",
    ),
    # ---- OpenSpiel through shimmy ----
    EnvCase(
        "openspiel/kuhn_poker",
        _OPENSPIEL,
        {"game_name": "kuhn_poker"},
        masked=True,
        info_masks=True,
        note="turn-based, masks; check the rewards: shimmy's kuhn_poker emits none",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/leduc_poker",
        _OPENSPIEL,
        {"game_name": "leduc_poker"},
        masked=True,
        info_masks=True,
        note="turn-based, masks",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/hanabi-2p",
        _OPENSPIEL,
        {"game_name": "hanabi", "config": {"players": 2, "colors": 3, "ranks": 3, "hand_size": 3}},
        masked=True,
        info_masks=True,
        note=(
            "the SRPO paper's Hanabi (3 colours x 3 ranks); check the returns: shimmy 2.0.1 hands seat k the "
            "final reward k + 1 times (hanabi_env mends it)"
        ),
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/hanabi-4p",
        _OPENSPIEL,
        {"game_name": "hanabi", "config": {"players": 4, "colors": 3, "ranks": 3, "hand_size": 3}},
        masked=True,
        info_masks=True,
        srpo={"n_shadows": 1},
        note="4 players: one shared policy, one shadow per episode; shimmy repeats the final reward as in 2p",
        extra="openspiel",
    ),
    EnvCase(
        "openspiel/goofspiel",
        _OPENSPIEL,
        {"game_name": "goofspiel", "config": {"num_cards": 4}},
        masked=True,
        info_masks=True,
        note="simultaneous game run turn by turn by shimmy",
        extra="openspiel",
    ),
)
