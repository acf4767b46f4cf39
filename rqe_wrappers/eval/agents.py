"""Any agent as the :class:`~rqe_wrappers.core.policy.Policy` that plays one seat of an env.

An *agent* is a :class:`Policy` (a learner snapshot plays as the policy shared under its name
when it is converted), a stock SB3 model (a detached CPU copy is taken), a zoo
:class:`~rqe_wrappers.zoo.Member`, the name of a registered scripted policy (``"tag/greedy-chaser"``),
a zoo member reference ``"<population>[@version]:<member>"`` (``"tag/runners:runner-0"``), or the
path of a saved SB3 model (``"model.zip"``, loaded with PPO). Docs: docs/evaluation.md.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.registry import accepts_spaces, make_scripted, scripted_names, scripted_spec
from rqe_wrappers.core.snapshot import SnapshotPolicy, shared
from rqe_wrappers.core.view import TrainerView, ViewedPolicy
from rqe_wrappers.errors import ConfigError, SpaceMismatchError
from rqe_wrappers.srpo.roles import as_partner

Agent = Any  # Policy | SB3 BaseAlgorithm | zoo Member | str (scripted name, "<population>:<member>", "*.zip")

__all__ = ["Agent", "as_policy", "resolve_agent"]


def _is_sb3_model(agent: Any) -> bool:
    base = sys.modules.get("stable_baselines3.common.base_class")  # no SB3 model exists before SB3 is imported
    return base is not None and isinstance(agent, base.BaseAlgorithm)


def _scripted(name: str, obs_space: gym.Space, act_space: gym.Space, kwargs: Mapping[str, Any]) -> Policy:
    factory = scripted_spec(name).factory()
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover
        params = {}  # type: ignore[assignment]
    extra = {k: v for k, v in kwargs.items() if k in params}
    if accepts_spaces(name):
        extra.update(observation_space=obs_space, action_space=act_space)
    return make_scripted(name, **extra)


def _frozen(policy: Policy, who: str) -> Policy:
    """A learner snapshot as the policy shared under its name now (what worker processes cannot look up)."""
    if isinstance(policy, ViewedPolicy) and isinstance(policy.inner, SnapshotPolicy):
        return ViewedPolicy(_frozen(policy.inner, who), policy.view, who=who, check=False)
    if not isinstance(policy, SnapshotPolicy):
        return policy
    live = shared(policy.name)
    if live is None:
        raise ConfigError(
            f"{who}: nothing is shared as the learner snapshot {policy.name!r} in this process yet; "
            "evaluate the model itself, or share(name, policy) first"
        )
    return live


def resolve_agent(agent: Agent, who: str = "agent") -> Any:
    """A string agent turned into the object it names (a zoo member or an SB3 model); others as given.

    Scripted names stay strings: they are built per seat by :func:`as_policy`. Raises
    :class:`ConfigError` naming ``who`` for a string that is none of the accepted forms.
    """
    if not isinstance(agent, str):
        return agent
    if agent in scripted_names():
        return agent
    if agent.endswith(".zip"):
        from pathlib import Path

        if not Path(agent).is_file():
            raise ConfigError(f"{who}: no saved SB3 model at {agent!r}")
        from stable_baselines3 import PPO

        return PPO.load(agent, device="cpu")
    ref, sep, member = agent.rpartition(":")
    if sep and ref and member:
        from rqe_wrappers.zoo import load_population

        return load_population(ref)[member]
    raise ConfigError(
        f"{who}: unknown agent {agent!r}: expected a scripted policy name ({', '.join(scripted_names())}), "
        "a zoo member '<population>[@version]:<member>' (e.g. 'tag/runners:runner-0') or an SB3 model path '*.zip'"
    )


def as_policy(
    agent: Agent,
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    seat_index: int | None = None,
    who: str = "agent",
    scripted_kwargs: Mapping[str, Any] | None = None,
) -> Policy:
    """``agent`` as a :class:`Policy` that plays a seat with these (raw env) spaces.

    Scripted names are built with the seat's spaces (when their factory takes them) and with those
    ``scripted_kwargs`` their factory accepts (e.g. the IPD's ``rounds``). A policy that observes the
    env's space plays as is; one trained with SRPO (role feature) plays in the partner role, with its
    seat one-hot ``seat_index`` if it was trained with seat identity (:func:`~rqe_wrappers.srpo.roles.as_partner`);
    one trained through the SB3 adapter on ``obs["observation"]`` gets that view, the action mask
    going to ``mask=`` (:class:`~rqe_wrappers.core.view.ViewedPolicy`). Raises
    :class:`SpaceMismatchError` naming ``who`` when the agent fits none of these.
    """
    agent = resolve_agent(agent, who)
    if isinstance(agent, str):
        try:
            policy = _scripted(agent, observation_space, action_space, scripted_kwargs or {})
        except SpaceMismatchError as e:
            raise SpaceMismatchError(f"{who}: {e}") from None
    elif isinstance(agent, Policy):
        policy = _frozen(agent, who)
    elif _is_sb3_model(agent):
        from rqe_wrappers.sb3 import SB3Policy

        policy = SB3Policy.from_model(agent)
    elif callable(getattr(agent, "policy", None)) and hasattr(agent, "population"):  # a zoo Member
        policy = agent.policy()
    else:
        raise ConfigError(
            f"{who}: expected a rqe_wrappers Policy, an SB3 model, a zoo member or an agent name, "
            f"got {type(agent).__name__}"
        )
    if policy.action_space != action_space:
        raise SpaceMismatchError(f"{who}: the policy acts in {policy.action_space}, the seat needs {action_space}")
    try:
        return as_partner(policy, observation_space, seat=seat_index)
    except SpaceMismatchError as e:
        first = e
    view = TrainerView(observation_space, action_space)
    if not view.identity:
        try:
            return ViewedPolicy(as_partner(policy, view.space, seat=seat_index), view, who=who, check=False)
        except SpaceMismatchError:
            pass
    raise SpaceMismatchError(f"{who}: {first}") from None
