"""SB3's ``VecNormalize`` with SRPO's role feature: the role one-hot must reach the policy as is.

``SRPOCallback`` re-evaluates a shadow's action with the role set to *partner* on the buffer's
(normalised) observations. That is the input the partner saw in training only if the role
entries were not normalised; plain ``VecNormalize(norm_obs=True)`` rescales them. So:

- :class:`RoleVecNormalize` is ``VecNormalize`` that leaves the role as is (Box: the last two
  entries pass through; Dict: ``norm_obs_keys`` defaults to every Box key but ``"role"``);
- :func:`check_role_not_normalized` (run by ``SRPOCallback`` at training start) refuses a stack
  whose ``VecNormalize`` normalises the role, with the fix in the message.

See docs/adapter.md, "SB3's own tools".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.srpo.features import SEAT_KEY
from rqe_wrappers.srpo.roles import ROLE_KEY

_KEYS = (ROLE_KEY, SEAT_KEY)  # what srpo_wrap adds to Dict observations (srpo.features)


def vec_env_layers(env: VecEnv) -> Iterator[VecEnv]:
    """``env`` and every VecEnv it wraps, outermost first."""
    while True:
        yield env
        if not isinstance(env, VecEnvWrapper):
            return
        env = env.venv


def normalizers(env: VecEnv) -> list[VecNormalize]:
    """The ``VecNormalize`` layers of ``env`` that normalise observations, innermost first."""
    return [v for v in vec_env_layers(env) if isinstance(v, VecNormalize) and v.norm_obs][::-1]


class RoleVecNormalize(VecNormalize):
    """``VecNormalize`` that never rescales SRPO's role feature (same arguments as SB3's).

    Box observations: the entries ``srpo_wrap`` appends (the seat one-hot with ``seat_id=True``, then
    the role one-hot: the env's ``srpo_feature_width``) come out as they went in (their running
    statistics are kept, unused). Dict observations: ``norm_obs_keys`` defaults to every ``Box`` key
    except ``"role"`` and ``"seat"``; naming either raises :class:`~rqe_wrappers.errors.ConfigError`.
    Saved and loaded like ``VecNormalize`` (``save`` / ``RoleVecNormalize.load(path, venv)``).
    """

    def __init__(
        self,
        venv: VecEnv,
        training: bool = True,
        norm_obs: bool = True,
        norm_reward: bool = True,
        clip_obs: float = 10.0,
        clip_reward: float = 10.0,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        norm_obs_keys: list[str] | None = None,
    ):
        space = venv.observation_space
        if norm_obs and isinstance(space, spaces.Dict):
            if norm_obs_keys is None:
                norm_obs_keys = [k for k, s in space.spaces.items() if k not in _KEYS and isinstance(s, spaces.Box)]
            elif set(_KEYS) & set(norm_obs_keys):
                raise ConfigError(f"RoleVecNormalize: norm_obs_keys must not name srpo_wrap's keys {list(_KEYS)}")
        width = 2
        if norm_obs and isinstance(space, spaces.Box):
            if len(space.shape) != 1:
                raise ConfigError(
                    f"RoleVecNormalize normalises 1-D Box observations, got shape {space.shape}; images are scaled "
                    "by SB3's policy (normalize_images): use norm_obs=False"
                )
            try:
                venv.get_attr("srpo_tau", indices=0)
                width = int(venv.get_attr("srpo_feature_width", indices=0)[0])
            except AttributeError:
                raise ConfigError(
                    "RoleVecNormalize keeps the last two entries of Box observations (SRPO's role feature) as they "
                    "are; this env has no srpo_wrap role feature: use stable_baselines3's VecNormalize"
                ) from None
        super().__init__(venv, training, norm_obs, norm_reward, clip_obs, clip_reward, gamma, epsilon, norm_obs_keys)
        self.keep_role = bool(norm_obs and isinstance(self.observation_space, spaces.Box))
        self._kept = slice(-width, None)  # srpo_wrap's features: the seat one-hot (if any), then the role

    def _normalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        out = super()._normalize_obs(obs, obs_rms)
        if self.keep_role:
            out[..., self._kept] = obs[..., self._kept]
        return out

    def _unnormalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        out = super()._unnormalize_obs(obs, obs_rms)
        if self.keep_role:
            out[..., self._kept] = obs[..., self._kept]
        return out


def normalizes_role(layer: VecNormalize) -> bool:
    """Whether ``layer`` rescales the role feature of the observations it normalises."""
    if not layer.norm_obs:
        return False
    if isinstance(layer.observation_space, spaces.Dict):
        return bool(set(_KEYS) & set(layer.norm_obs_keys or []))
    return not getattr(layer, "keep_role", False)


def check_role_not_normalized(env: VecEnv, who: str = "SRPOCallback") -> None:
    """Refuse a ``VecNormalize`` that normalises the role feature; warn on reward normalisation."""
    for layer in vec_env_layers(env):
        if not isinstance(layer, VecNormalize):
            continue
        if normalizes_role(layer):
            if isinstance(layer.observation_space, spaces.Dict):
                keys = [k for k in layer.norm_obs_keys or [] if k not in _KEYS]
                fix = f"VecNormalize(venv, norm_obs_keys={keys}) or rqe_wrappers.sb3.RoleVecNormalize(venv)"
            elif len(layer.observation_space.shape or ()) != 1:
                fix = "VecNormalize(venv, norm_obs=False) (SB3's policy scales images itself)"
            else:
                fix = (
                    "rqe_wrappers.sb3.RoleVecNormalize(venv, ...) (same arguments; it leaves srpo_wrap's "
                    "seat and role entries as they are) or VecNormalize(venv, norm_obs=False)"
                )
            raise ConfigError(
                f"{who}: VecNormalize(norm_obs=True) rescales SRPO's role feature, so the partner would be evaluated "
                f"on inputs never seen in training; use {fix}"
            )
        if layer.norm_reward:
            warnings.warn(
                f"{who}: VecNormalize(norm_reward=True) rescales rewards, so the KL shaping -(1/tau) KL is added to "
                "normalised rewards (tau and ent_coef <-> eps then refer to that scale); use norm_reward=False to "
                "keep the paper's units",
                stacklevel=3,
            )
