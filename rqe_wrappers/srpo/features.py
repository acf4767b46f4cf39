"""Seat identity and role features for every observation space a trainer can learn from.

A learning seat's observation gets, in this order, an optional seat one-hot (``seat_id=True``,
like SuperSuit's ``agent_indicator_v0``) and the role one-hot ``[partner, shadow]``, so the role is
always *last*:

- 1-D ``Box``: ``[obs, seat..., partner, shadow]`` (integer observations become float32);
- image ``Box`` (``uint8``, ``H x W x C``, or ``H x W``): constant extra channels of 0 or 255
  after the image's own (``seat...``, then ``partner``, ``shadow``), so ``CnnPolicy`` works unchanged;
- ``Discrete`` / ``MultiDiscrete`` / ``MultiBinary``: one-hot encoded (MultiBinary as 0/1) into a
  float32 Box, then as a 1-D Box;
- ``Dict``: a ``"seat"`` key (when on) and a ``"role"`` key.

The batch helpers (:func:`role_features`, :func:`set_role`) read and write the role in any of
these layouts, channel-first images included (SB3's ``VecTransposeImage``). Docs: docs/srpo.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.errors import UnsupportedSpaceError

PARTNER, SHADOW = 0, 1
ROLE_KEY = "role"
SEAT_KEY = "seat"
N_ROLES = 2


@functools.cache
def feature_dtype(dtype: np.dtype) -> np.dtype:
    """Observations with the features keep a float dtype; integer ones become float32."""
    return np.dtype(dtype) if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


def is_image(space: gym.Space) -> bool:
    """A ``uint8`` Box of 2 (``H x W``) or 3 (``H x W x C``) dimensions: the role goes in as channels."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)


def _one_hot_width(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(np.prod(space.shape or ()))  # MultiBinary


def _encode(space: gym.Space, obs: Any) -> np.ndarray:
    """One observation of a Discrete-like space as a float32 vector (one-hot / 0-1)."""
    if isinstance(space, gym.spaces.Discrete):
        out = np.zeros(int(space.n), np.float32)
        out[int(obs) - int(space.start)] = 1.0
        return out
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).reshape(-1)
        start = np.asarray(getattr(space, "start", np.zeros_like(nvec))).reshape(-1)
        out = np.zeros(int(nvec.sum()), np.float32)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        out[offsets + (np.asarray(obs).reshape(-1) - start)] = 1.0
        return out
    return np.asarray(obs, np.float32).reshape(-1)  # MultiBinary


class ObsFeatures:
    """Adds the seat identity (``n_seats`` one-hot, 0 = off) and the role to observations of ``raw``.

    Attributes:
        raw: the env's observation space; space: the space with the features.
        kind: ``"box"``, ``"image"``, ``"encoded"`` (Discrete-like, one-hot first) or ``"dict"``.

    Example:
        >>> f = ObsFeatures(gym.spaces.Discrete(3), n_seats=2)
        >>> f.space.shape, f.add(2, PARTNER, seat=1).tolist()
        ((7,), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    """

    def __init__(self, raw: gym.Space, n_seats: int = 0):
        self.raw, self.n_seats = raw, int(n_seats)
        width = self.n_seats + N_ROLES
        if isinstance(raw, gym.spaces.Dict):
            for key in (ROLE_KEY, SEAT_KEY) if self.n_seats else (ROLE_KEY,):
                if key in raw.spaces:
                    raise UnsupportedSpaceError(f"the observation Dict already has a {key!r} key; rename it first")
            extra = {SEAT_KEY: gym.spaces.Box(0.0, 1.0, (self.n_seats,), np.float32)} if self.n_seats else {}
            self.kind = "dict"
            self.space: gym.Space = gym.spaces.Dict({**raw.spaces, **extra, ROLE_KEY: gym.spaces.Box(0.0, 1.0, (2,))})
        elif is_image(raw):
            assert isinstance(raw, gym.spaces.Box)
            shape = raw.shape if len(raw.shape) == 3 else (*raw.shape, 1)
            channels = shape[2] + width
            if channels >= min(shape[0], shape[1]):
                raise UnsupportedSpaceError(
                    f"an image of shape {raw.shape} with {width} feature channels has {channels} channels, not fewer "
                    "than its height and width, so trainers cannot tell its channel axis; use larger images "
                    "(e.g. supersuit.resize_v1) or fewer channels (supersuit.color_reduction_v0)"
                )
            self.kind = "image"
            low = np.concatenate([np.broadcast_to(raw.low, raw.shape).reshape(shape), np.zeros((*shape[:2], width))], 2)
            high = np.concatenate(
                [np.broadcast_to(raw.high, raw.shape).reshape(shape), np.full((*shape[:2], width), 255)], 2
            )
            self.space = gym.spaces.Box(low.astype(np.uint8), high.astype(np.uint8), dtype=np.uint8)
            self._planes = self._image_planes((int(shape[0]), int(shape[1])))
        elif isinstance(raw, gym.spaces.Box):
            if len(raw.shape) != 1:
                raise UnsupportedSpaceError(
                    f"the role feature is appended to 1-D Box observations or added as channels to uint8 images, "
                    f"got a {raw.dtype} Box of shape {raw.shape}; flatten it first (e.g. supersuit.flatten_v0), "
                    "make it a uint8 image (supersuit.dtype_v0) or use a Dict observation space"
                )
            dtype = feature_dtype(raw.dtype)
            self.kind = "box"
            low = np.concatenate([raw.low.astype(dtype), np.zeros(width, dtype)])
            high = np.concatenate([raw.high.astype(dtype), np.ones(width, dtype)])
            self.space = gym.spaces.Box(low, high, dtype=dtype)
        elif isinstance(raw, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
            n = _one_hot_width(raw)
            self.kind = "encoded"
            self.space = gym.spaces.Box(0.0, 1.0, (n + width,), np.float32)
        else:
            raise UnsupportedSpaceError(
                f"cannot add a role feature to a {type(raw).__name__} observation space; wrap the env so "
                "observations are a Box, Discrete, MultiDiscrete, MultiBinary or Dict (e.g. supersuit.flatten_v0)"
            )
        self._tails = self._vector_tails(feature_dtype(getattr(self.space, "dtype", None) or np.float32))

    def _vector_tails(self, dtype: np.dtype) -> list[list[np.ndarray]]:
        """Read-only ``[seat][role]`` feature vectors (one row when seat identity is off)."""
        tails = []
        for seat in range(max(self.n_seats, 1)):
            row = []
            for role in (PARTNER, SHADOW):
                t = np.zeros(self.n_seats + N_ROLES, dtype)
                if self.n_seats:
                    t[seat] = 1
                t[self.n_seats + role] = 1
                t.setflags(write=False)
                row.append(t)
            tails.append(row)
        return tails

    def _image_planes(self, hw: tuple[int, int]) -> list[list[np.ndarray]]:
        planes = []
        for row in self._vector_tails(np.dtype(np.uint8)):
            out = []
            for t in row:
                p = np.ascontiguousarray(np.broadcast_to(t * np.uint8(255), (*hw, len(t))))
                p.setflags(write=False)
                out.append(p)
            planes.append(out)
        return planes

    def add(self, obs: Any, role: int, seat: int | None = None) -> Any:
        """One observation with the features (``seat``: the seat's index when seat identity is on)."""
        s = (seat or 0) if self.n_seats else 0
        if self.kind == "box":
            tail = self._tails[s][role]
            obs = obs if getattr(obs, "dtype", None) == tail.dtype else np.asarray(obs, dtype=tail.dtype)
            return np.concatenate((obs, tail))
        if self.kind == "image":
            img = np.asarray(obs, np.uint8)
            img = img if img.ndim == 3 else img[..., None]
            return np.concatenate((img, self._planes[s][role]), axis=2)
        if self.kind == "encoded":
            return np.concatenate((_encode(self.raw, obs), self._tails[s][role]))
        return {**obs, **self._dict_extra(s, role, ())}

    def _dict_extra(self, seat: int, role: int, batch: tuple[int, ...]) -> dict[str, np.ndarray]:
        tail = self._tails[seat][role].astype(np.float32)
        out = {ROLE_KEY: np.broadcast_to(tail[self.n_seats :], (*batch, 2)).copy()}
        if self.n_seats:
            out[SEAT_KEY] = np.broadcast_to(tail[: self.n_seats], (*batch, self.n_seats)).copy()
        return out

    def add_batch(self, obs: Any, role: int, seat: int | None = None) -> Any:
        """A batch of observations (first axis) with the features, all in ``role`` at ``seat``."""
        s = (seat or 0) if self.n_seats else 0
        if self.kind == "dict":
            n = len(next(iter(obs.values())))
            return {**obs, **self._dict_extra(s, role, (n,))}
        if self.kind == "encoded":
            return np.stack([self.add(o, role, s) for o in obs])
        if self.kind == "image":
            img = np.asarray(obs, np.uint8)
            img = img if img.ndim == 4 else img[..., None]
            planes = np.broadcast_to(self._planes[s][role], (len(img), *self._planes[s][role].shape))
            return np.concatenate((img, planes), axis=3)
        tail = self._tails[s][role]
        arr = np.asarray(obs, dtype=tail.dtype)
        return np.concatenate([arr, np.broadcast_to(tail, (len(arr), len(tail)))], axis=1)

    @classmethod
    def matching(cls, raw: gym.Space, featured: gym.Space) -> ObsFeatures | None:
        """The features (seat identity on or off) that turn ``raw`` into ``featured``, or ``None``."""
        try:
            plain = cls(raw)
        except UnsupportedSpaceError:
            return None
        if plain.space == featured:
            return plain
        if isinstance(featured, gym.spaces.Dict):
            seat = featured.spaces.get(SEAT_KEY)
            n = int(seat.shape[0]) if isinstance(seat, gym.spaces.Box) and seat.shape else 0
        elif isinstance(featured, gym.spaces.Box) and isinstance(plain.space, gym.spaces.Box):
            axis = 2 if plain.kind == "image" else 0
            if len(featured.shape) != len(plain.space.shape):
                return None
            n = int(featured.shape[axis]) - int(plain.space.shape[axis])
        else:
            return None
        if n <= 0:
            return None
        seated = cls(raw, n)
        return seated if seated.space == featured else None


def _image_axis(arr: np.ndarray) -> int | None:
    """The channel axis of a batch of role-featured images (``uint8``, >= 3 dims), else ``None``.

    Channels are the smallest of the last three dimensions (SB3's rule: ``VecTransposeImage``
    moves them first); :class:`ObsFeatures` refuses images where that would be ambiguous.
    """
    if str(arr.dtype) not in ("uint8", "torch.uint8") or arr.ndim < 3:  # a numpy array or a torch tensor
        return None
    last3 = arr.shape[-3:]
    return -3 if int(np.argmin(last3)) == 0 else -1


def role_features(obs: Any) -> np.ndarray:
    """The role one-hot of an observation or a batch (any leading axes): shape ``(..., 2)``, 0/1.

    Works on every layout :class:`ObsFeatures` makes: the ``"role"`` key of a Dict, the last two
    entries of a vector, the last two channels of a ``uint8`` image (channel-last or -first).
    """
    if isinstance(obs, Mapping):
        return np.asarray(obs[ROLE_KEY])
    arr = np.asarray(obs)
    axis = _image_axis(arr)
    if axis is None:
        return arr[..., -2:]
    pixel = arr[..., -2:, 0, 0] if axis == -3 else arr[..., 0, 0, -2:]
    return (pixel > 127).astype(np.float32)


def set_role(obs_batch: Any, role: int, *, copy: bool = True) -> Any:
    """Role-featured observations (one or a batch, any layout), all set to ``role``: a copy, or with
    ``copy=False`` the given array (or dict of arrays) itself, written in place; ``copy=False`` also
    takes torch tensors (SRPO's rollout sets the role on the device)."""
    if isinstance(obs_batch, Mapping):
        out: Any = dict(obs_batch) if copy else obs_batch  # copy=False: the caller's dict, written in place
        r = np.array(obs_batch[ROLE_KEY], copy=True) if copy else obs_batch[ROLE_KEY]
        r[..., :] = 0
        r[..., role] = 1
        out[ROLE_KEY] = r
        return out
    arr = np.array(obs_batch, copy=True) if copy else obs_batch
    axis = _image_axis(arr)
    if axis is None:
        arr[..., -2:] = 0
        arr[..., -2 + role] = 1
    elif axis == -3:
        arr[..., -2:, :, :] = 0
        arr[..., -2 + role, :, :] = 255
    else:
        arr[..., -2:] = 0
        arr[..., -2 + role] = 255
    return arr
