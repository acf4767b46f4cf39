"""Do several seats or policies share one observation and one action space? If not, which differs.

One check for every caller (the SB3 adapter, :func:`~rqe_wrappers.core.policy.check_policy_spaces`,
the AHT wrapper, zoo populations); each words its own error message. See docs/CONTRACTS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gymnasium as gym

from rqe_wrappers.errors import SpaceMismatchError

#: ``(name, observation_space, action_space)``: a seat, a policy, a population member, ...
Entry = tuple[str, gym.Space, gym.Space]
KINDS = ("observation", "action")


@dataclass(frozen=True)
class SpaceMismatch:
    """The first entry whose spaces differ from the reference's.

    ``kind`` is the first kind that differs (``"observation"`` before ``"action"``), with
    ``expected`` (the reference's space) and ``got`` (the entry's). ``observation`` and ``action``
    hold ``(reference's, entry's)`` of both kinds, for messages that show all four spaces.
    """

    reference: str
    name: str
    kind: str
    expected: gym.Space
    got: gym.Space
    observation: tuple[gym.Space, gym.Space]
    action: tuple[gym.Space, gym.Space]


def first_mismatch(
    entries: Iterable[Entry], reference: Entry | None = None, *, by_kind: bool = False
) -> SpaceMismatch | None:
    """The first of ``entries`` whose observation or action space is not the reference's.

    ``reference`` defaults to the first entry. Entries are scanned in order; with ``by_kind`` all
    observation spaces are compared before any action space (the first observation mismatch wins
    over an earlier entry's action mismatch). ``None`` when every entry matches.
    """
    entries = list(entries)
    if reference is None:
        if not entries:
            return None
        reference = entries[0]
    ref_name, ref_obs, ref_act = reference

    def found(name: str, obs: gym.Space, act: gym.Space, kind: str) -> SpaceMismatch:
        want, got = (ref_obs, obs) if kind == "observation" else (ref_act, act)
        return SpaceMismatch(ref_name, name, kind, want, got, (ref_obs, obs), (ref_act, act))

    if by_kind:
        for name, obs, act in entries:
            if obs != ref_obs:
                return found(name, obs, act, "observation")
        for name, obs, act in entries:
            if act != ref_act:
                return found(name, obs, act, "action")
        return None
    for name, obs, act in entries:
        if obs != ref_obs:
            return found(name, obs, act, "observation")
        if act != ref_act:
            return found(name, obs, act, "action")
    return None


def check_spaces_alike(
    entries: Iterable[Entry],
    explain: Callable[[SpaceMismatch], str],
    reference: Entry | None = None,
    *,
    by_kind: bool = False,
) -> None:
    """Raise :class:`SpaceMismatchError` with ``explain(mismatch)`` if :func:`first_mismatch` finds one."""
    mismatch = first_mismatch(entries, reference, by_kind=by_kind)
    if mismatch is not None:
        raise SpaceMismatchError(explain(mismatch))


def short(space: gym.Space) -> str:
    """A compact description: ``Box(shape=(12,), float32)`` instead of every bound."""
    if isinstance(space, gym.spaces.Box):
        return f"Box(shape={space.shape}, {space.dtype})"
    if isinstance(space, gym.spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {short(v)}" for k, v in space.spaces.items()) + ")"
    return str(space)


def describe_pair(x: gym.Space, y: gym.Space) -> tuple[str, str]:
    """Two spaces for a message: compact, unless only their bounds differ (then in full)."""
    return (short(x), short(y)) if short(x) != short(y) or x == y else (str(x), str(y))
