"""SRPO's shadow on whole batches: per copy per episode a shadow draw, role features, shaped rewards.

The same rules as :mod:`rqe_wrappers.srpo.shadow` (one shadow per team among its learning seats,
reward = minus the mean reward of the team's other learning seats, ``tau = 0``: no shadow), with
the features laid out by :class:`~rqe_wrappers.srpo.features.ObsFeatures`. The draws are counter
based (:func:`~rqe_wrappers.envs.batched.copy_keys`, :func:`~rqe_wrappers.envs.batched.uniforms`):
copy ``k``'s shadows depend only on its seed and its episode number. Docs: docs/batched.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.envs.batched import copy_keys, uniforms
from rqe_wrappers.srpo.features import PARTNER, SHADOW, ObsFeatures, set_role
from rqe_wrappers.srpo.roles import ROLES

STREAM = "srpo_shadow"
_ROLE_NAMES = np.asarray(ROLES, dtype=object)


class BatchedShadows:
    """Who is the shadow in each copy's current episode, and what that does to observations and rewards.

    Args:
        spaces: the env's observation space of each learning seat (in slot order).
        teams: the learning seats' column indices of each team; shadows are drawn in teams of two or more.
        tau: risk aversion; ``0`` draws no shadow (plain IPPO, the features still say *partner*).
        n_shadows: shadows per team and episode.
        n_copies: env copies.
        seat_id: add the seat one-hot before the role (``srpo_wrap(..., seat_id=True)``).
    """

    def __init__(
        self,
        spaces: Sequence[gym.Space],
        teams: Sequence[Sequence[int]],
        tau: float,
        n_shadows: int,
        n_copies: int,
        seat_id: bool,
    ):
        n_seats = len(spaces) if seat_id else 0
        self.features = [ObsFeatures(s, n_seats) for s in spaces]
        self.space = self.features[0].space
        self.teams = [np.asarray(t, np.int64) for t in teams if len(t) >= 2] if tau > 0 else []
        self.n_shadows = int(n_shadows)
        #: ``(n_copies, n_learning_seats)`` bool: the current episode's shadows
        self.mask = np.zeros((n_copies, len(spaces)), bool)
        self._keys = np.zeros(n_copies, np.uint64)
        self._width = len(spaces)
        #: every seat a 1-D Box of one width: observe() writes one array instead of concatenating per seat
        self._flat = all(f.kind == "box" for f in self.features) and len({f.space.shape for f in self.features}) == 1
        #: ``(n_learning_seats, tail)``: each seat's features in the partner role (seat one-hot, role)
        self._partner_tails = (
            np.stack([f.add(np.zeros(0, f.space.dtype), PARTNER, i) for i, f in enumerate(self.features)])
            if self._flat
            else None
        )
        #: ``(n_copies, n_learning_seats, tail)``: each seat's features this episode (set by :meth:`draw`)
        self._tails = None if self._partner_tails is None else np.repeat(self._partner_tails[None], n_copies, 0)
        #: per team, of this episode's draw: its columns, its shadows and non-shadows ``(n_copies, len(cols))``
        #: and the number of non-shadows ``(n_copies,)`` (the drawn copies' rows set by :meth:`draw`; :meth:`shape`
        #: reads them each step); before any draw: no shadows
        self._shaping = [
            (
                cols,
                np.zeros((n_copies, len(cols)), bool),
                np.ones((n_copies, len(cols)), bool),
                np.full(n_copies, len(cols)),
            )
            for cols in self.teams
        ]

    def draw(self, copies: np.ndarray, seeds: Sequence[int | None]) -> None:
        """New episodes for ``copies``: their shadows from their seeds (``None``: the copy's next episode).

        :attr:`mask` is read-only outside this method: the per-step features and rewards are laid out here.
        """
        keys = copy_keys(seeds, self._keys[copies], STREAM)
        self._keys[copies] = keys
        self.mask[copies] = False
        if not self.teams or not len(copies):
            return
        u = uniforms(keys, np.zeros(len(copies)), self._width)
        rows = np.arange(len(copies))[:, None]
        for cols in self.teams:  # a uniformly random subset of n_shadows seats per team
            picked = np.argsort(u[:, cols], axis=1)[:, : self.n_shadows]
            block = np.zeros((len(copies), len(cols)), bool)
            block[rows, picked] = True
            self.mask[copies[:, None], cols[None, :]] = block
        self._lay_out(copies)

    def _lay_out(self, copies: np.ndarray) -> None:
        """The features and reward weights of ``copies``' new draw (what :meth:`observe` and :meth:`shape` read)."""
        if self._tails is not None:
            assert self._partner_tails is not None  # set with _tails
            tails = np.repeat(self._partner_tails[None], len(copies), 0)
            tails[self.mask[copies], -2:] = (0, 1)  # the role one-hot [partner, shadow] of the shadows
            self._tails[copies] = tails
        for cols, sh, others, count in self._shaping:  # the drawn copies' rows only
            sh[copies] = self.mask[copies[:, None], cols[None, :]]
            others[copies] = ~sh[copies]
            count[copies] = others[copies].sum(axis=1)

    def observe(self, obs: np.ndarray, copies: np.ndarray | None = None) -> np.ndarray:
        """``obs`` ``(copies, n_learning_seats, ...)`` with each seat's features; ``copies``: the rows' copies (all)."""
        if self._flat:  # 1-D Box observations: one array written in place (the step path's common case)
            return self._observe_flat(obs, copies)
        mask = self.mask if copies is None else self.mask[copies]
        out = []
        for i, features in enumerate(self.features):
            featured = features.add_batch(obs[:, i], PARTNER, i)
            shadow = mask[:, i]
            if shadow.any():
                featured[shadow] = set_role(featured[shadow], SHADOW)
            out.append(featured)
        return np.stack(out, axis=1)

    def _observe_flat(self, obs: np.ndarray, copies: np.ndarray | None) -> np.ndarray:
        """:meth:`observe` for 1-D Box seats: raw values, then each seat's features of this episode."""
        tails = self._tails
        assert tails is not None  # set with _flat
        width = obs.shape[2]
        out = np.empty((obs.shape[0], obs.shape[1], width + tails.shape[2]), tails.dtype)
        out[:, :, :width] = obs
        out[:, :, width:] = tails if copies is None else tails[copies]
        return out

    def shape(self, raw: np.ndarray) -> np.ndarray:
        """Rewards ``(n_copies, n_learning_seats)``: a shadow gets minus the mean of its team's non-shadows."""
        if not self.teams:
            return raw
        out = raw.copy()
        for cols, sh, others, count in self._shaping:
            team = raw[:, cols]
            adv = -(team * others).sum(axis=1) / count
            out[:, cols] = np.where(sh, adv[:, None], team)
        return out

    def roles_flat(self, copies: np.ndarray | None = None) -> list[str]:
        """The role name (``"partner"`` / ``"shadow"``) of each learning seat of ``copies`` (all), copy-major."""
        mask = self.mask if copies is None else self.mask[copies]
        names: list[Any] = _ROLE_NAMES[mask.reshape(-1).astype(np.int64)].tolist()
        return names
