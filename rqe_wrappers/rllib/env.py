"""A wrapped PettingZoo parallel env as an RLlib ``MultiAgentEnv``, and the module its seats map to.

:class:`PettingZooMultiAgentEnv` plays the env as it comes out of ``srpo_wrap`` / ``aht_wrap`` /
``background_seats``: its agents are the env's ``possible_agents`` (RLlib's own
``ParallelPettingZooEnv`` freezes the agents of its first, unseeded reset), spaces per agent,
``reset(seed=...)`` forwarded so every random choice of the wrappers is seeded by RLlib's
``config.debugging(seed=...)``. Every learning seat maps to one shared module
(:data:`SHARED_MODULE`), as the SB3 path trains one network for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pettingzoo import AECEnv, ParallelEnv
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env as _tune_register_env

from rqe_wrappers.errors import ConfigError

#: the module id every learning seat maps to (one network for all seats and both SRPO roles)
SHARED_MODULE = "shared"

#: attributes through which wrappers hold the env they wrap (RLlib's vector env, ours, PettingZoo's)
_INNER = ("par_env", "env", "aec_env")


class PettingZooMultiAgentEnv(MultiAgentEnv):
    """An RLlib multi-agent env stepping a PettingZoo ``ParallelEnv`` (the wrapped one, e.g. ``srpo_wrap(...)``).

    Args:
        env: a PettingZoo ``ParallelEnv``. AEC envs are refused: convert them with
            ``pettingzoo.utils.conversions.aec_to_parallel`` or train them on the SB3 path.
    """

    def __init__(self, env: Any):
        if isinstance(env, AECEnv):
            raise ConfigError(
                "the RLlib path steps parallel envs; convert this AEC env with "
                "pettingzoo.utils.conversions.aec_to_parallel(env), or train turn-based games on the SB3 path"
            )
        if not isinstance(env, ParallelEnv):
            raise ConfigError(f"expected a PettingZoo ParallelEnv, got {type(env).__name__}")
        super().__init__()
        self.par_env = env
        self.possible_agents = list(env.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: env.action_space(a) for a in self.possible_agents}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self.agents = list(obs)
        return obs, dict(infos or {})

    def step(self, action_dict: dict) -> Any:
        """``(obs, rewards, terminateds, truncateds, infos)`` dicts by agent, with RLlib's ``"__all__"`` entries."""
        obs, rew, term, trunc, infos = self.par_env.step(action_dict)
        term, trunc = dict(term), dict(trunc)
        stepped = list(rew)
        over = not self.par_env.agents or all(term.get(a) or trunc.get(a) for a in stepped)
        term["__all__"] = over and all(term.get(a, False) for a in stepped)
        trunc["__all__"] = over and not term["__all__"]
        return obs, dict(rew), term, trunc, dict(infos)

    def close(self) -> None:
        close = getattr(self.par_env, "close", None)
        if callable(close):
            close()


def find_attr(env: Any, name: str) -> Any:
    """The first object along ``env``'s wrapper chain (RLlib vector env, :class:`PettingZooMultiAgentEnv`,
    PettingZoo wrappers) that has attribute ``name`` (e.g. the ``aht_wrap`` env for ``"set_prior"``)."""
    seen: set[int] = set()
    node = env
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        # the class hierarchy and the instance, never getattr: PettingZoo wrappers forward unknown names
        if any(name in vars(k) for k in type(node).__mro__) or name in getattr(node, "__dict__", {}):
            return node
        node = next((node.__dict__[k] for k in _INNER if k in getattr(node, "__dict__", {})), None)
    raise ConfigError(f"no env along the wrapper chain of {type(env).__name__} has {name!r}")


def sub_envs(env_runner: Any) -> list[Any]:
    """The :class:`PettingZooMultiAgentEnv` copies an RLlib env runner steps (none on a runner without envs)."""
    vector = getattr(env_runner, "env", None)
    if vector is None:
        return []
    return [getattr(e, "unwrapped", e) for e in getattr(vector, "envs", [vector])]


def register_env(name: str, env_fn: Callable[[], Any]) -> str:
    """Register ``env_fn`` (builds the wrapped PettingZoo parallel env) with Tune under ``name``; returns ``name``.

    ``env_fn`` runs in every env runner process (cloudpickled): build the env inside it.
    """
    if not callable(env_fn):
        raise ConfigError(f"env_fn must build the env (a callable), got {type(env_fn).__name__}")
    _tune_register_env(name, lambda _config: PettingZooMultiAgentEnv(env_fn()))
    return name


def shared_policy(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """RLlib ``policy_mapping_fn``: every seat plays the shared module (partner and shadow roles alike)."""
    return SHARED_MODULE
