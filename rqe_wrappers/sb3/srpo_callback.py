"""SRPO's KL shaping for stock SB3 PPO, applied to the rollout buffer at every rollout end.

For every shadow row of the buffer (role feature = shadow) the reward gets

    -(1/tau) * [log shadow(a|o) - log partner(a|o')]        (o' = o with the role set to partner)

the sampled form of the KL(shadow || partner) penalty of the RQE objective, computed in one
batched forward pass on the model's device. Returns and advantages are then recomputed. In SB3's
rollout loop the callback keeps a device copy of each step's tensor PPO acted on (up to
``max_kept_bytes`` a rollout), so the rollout end copies and moves no observations.

Entropy: PPO adds ``ent_coef * H(pi)`` to its loss on every row, but the paper's shadow has no
entropy bonus. With ``cancel_entropy=True`` (default) shadow rows also get ``+ent_coef * log
shadow(a|o)`` in their reward, whose expectation is ``-ent_coef * H(shadow)``: it cancels the
bonus in expectation. The partners keep it: PPO's ``ent_coef`` plays the role of the RQE's
entropy weight ``eps`` when rewards are unscaled and ``normalize_advantage=False``.

Turn-based (AEC) copies: the learner's snapshot plays every seat but the learning one; the
callback shares it at training start and every rollout end (:mod:`~rqe_wrappers.sb3.learner_snapshot`).

``VecNormalize``: the buffer holds the normalised observations PPO saw, so flipping their role is
the partner's input only if the role was not normalised; a ``VecNormalize`` that normalises it is
refused at training start (:mod:`~rqe_wrappers.sb3.normalize`: use ``RoleVecNormalize``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from rqe_wrappers.errors import ConfigError, MissingCallbackError
from rqe_wrappers.sb3.learner_snapshot import base_venv, check_snapshots_reach, share_learner
from rqe_wrappers.sb3.normalize import check_role_not_normalized
from rqe_wrappers.srpo.roles import PARTNER, SHADOW, role_features, set_role


def shadow_mask(observations) -> np.ndarray:
    """Boolean mask of rows whose role feature says *shadow* (buffer layout: (steps, envs, ...); any layout
    of :mod:`rqe_wrappers.srpo.features`: Dict key, last two entries, last two image channels)."""
    return np.asarray(role_features(observations))[..., SHADOW] > 0.5


class SRPOCallback(BaseCallback):
    """Adds KL(shadow || partner) shaping to the shadow rows of PPO's rollout buffer.

    Args:
        cancel_entropy: cancel PPO's entropy bonus on shadow rows (see module docstring).
        verbose: SB3 verbosity.

    Logs ``srpo/kl`` (mean sampled KL on shadow rows), ``srpo/shaping``, ``srpo/shadow_fraction``,
    and ``srpo/partner_return`` / ``srpo/shadow_return`` (raw episode returns by role).
    """

    #: most bytes of observations kept on the device per rollout (past it, the rollout end reads the buffer)
    max_kept_bytes = 1 << 30

    def __init__(self, cancel_entropy: bool = True, verbose: int = 0):
        super().__init__(verbose)
        self.cancel_entropy = cancel_entropy
        self.tau = 0.0
        #: the snapshot this callback shares every rollout (turn-based copies), else ``None``
        self.snapshot_name: str | None = None
        #: log partner(a|o') of the last rollout's shadow rows, in buffer order (for inspection)
        self.log_partner: np.ndarray | None = None
        self._ep_returns: np.ndarray | None = None
        self._finished: dict[str, list[float]] = {"partner": [], "shadow": []}
        #: this rollout's steps so far: (buffer position, shadow mask, the observations on the device)
        self._steps: list[tuple[int, np.ndarray, Any]] = []

    @property
    def _returns(self) -> np.ndarray:
        """Running episode return of each env slot (set at training start)."""
        if self._ep_returns is None:
            raise RuntimeError("SRPOCallback was used before training started (no _on_training_start call)")
        return self._ep_returns

    def _on_training_start(self) -> None:
        env = self.training_env
        try:
            taus = env.get_attr("srpo_tau")
        except AttributeError:
            raise MissingCallbackError(
                "SRPOCallback needs an env wrapped with srpo_wrap(...); this env has no shadow (no 'srpo_tau')"
            ) from None
        if len(set(taus)) != 1:
            raise ConfigError(f"all env copies must share one tau, got {sorted(set(taus))}")
        self.tau = float(taus[0])
        check_role_not_normalized(env, "SRPOCallback")
        if not hasattr(self.model, "rollout_buffer"):
            raise ConfigError("SRPOCallback works with on-policy SB3 algorithms (PPO, A2C, MaskablePPO)")
        if type(self.model.rollout_buffer).__name__.startswith("Recurrent"):
            raise ConfigError("SRPOCallback does not support RecurrentPPO yet: the shadow's log-probs need states")
        if getattr(self.model, "normalize_advantage", False):
            warnings.warn(
                "SRPO with normalize_advantage=True rescales the shaping per batch; use normalize_advantage=False "
                "for the documented ent_coef <-> eps correspondence",
                stacklevel=2,
            )
        if self.tau == 0.0 and self.verbose:
            print("SRPOCallback: tau=0, plain IPPO (nothing to shape)")
        env.set_attr("srpo_callback_attached", True)
        self._ep_returns = np.zeros(env.num_envs)
        base = base_venv(env)
        self.snapshot_name = getattr(base, "snapshot_name", None) if getattr(base, "uses_snapshot", False) else None
        if self.snapshot_name is not None:  # turn-based copies: the learner plays their other seats
            check_snapshots_reach(env, "SRPOCallback")
            share_learner(env, self.snapshot_name, self.model)

    def _on_rollout_start(self) -> None:
        self._steps = []

    def _on_step(self) -> bool:
        rewards, dones, infos = (self.locals.get(k) for k in ("rewards", "dones", "infos"))
        if rewards is None or dones is None or infos is None:
            raise RuntimeError("SRPOCallback expects SB3's rollout locals 'rewards', 'dones' and 'infos'")
        returns = self._returns
        returns += rewards  # one array operation: this runs every step, on every slot
        for i in np.flatnonzero(dones).tolist():
            self._finished.setdefault(infos[i].get("role", "partner"), []).append(float(returns[i]))
            returns[i] = 0.0
        if self.tau != 0.0:
            self._keep_step()
        return True

    def _keep_step(self) -> None:
        """Keeps a copy of the tensor PPO acted on at this step (already on the rollout's device; a clone on
        the device, no sync) and the step's shadow mask: the rollout end then neither copies the shadow rows
        out of the buffer nor moves them to the device again."""
        obs_t, buf = self.locals.get("obs_tensor"), getattr(self.model, "rollout_buffer", None)
        if obs_t is None or buf is None:  # not SB3's rollout loop
            return
        tensors = list(obs_t.values()) if isinstance(obs_t, Mapping) else [obs_t]
        if sum(t.nbytes for t in tensors) * buf.buffer_size > self.max_kept_bytes:  # none kept: the rollout
            return  # end reads the buffer
        kept = {k: v.clone() for k, v in obs_t.items()} if isinstance(obs_t, Mapping) else obs_t.clone()
        self._steps.append((buf.pos, shadow_mask(self.model._last_obs), kept))  # the row the buffer adds next

    def _on_training_end(self) -> None:
        self._steps = []  # a rollout stopped early (a callback's on_step returned False) ends without its end

    def _on_rollout_end(self) -> None:
        if self.snapshot_name is not None:  # before PPO's update: the other seats lag by one update
            share_learner(self.training_env, self.snapshot_name, self.model)
        for role, rets in self._finished.items():
            if rets:
                self.logger.record(f"srpo/{role}_return", float(np.mean(rets)))
        self._finished = {"partner": [], "shadow": []}
        steps, self._steps = self._steps, []
        if self.tau == 0.0:
            return
        # checked at training start: an on-policy algorithm (SB3 types self.model as BaseAlgorithm)
        model = cast(OnPolicyAlgorithm, self.model)
        buf = model.rollout_buffer
        obs: Any
        if [pos for pos, _, _ in steps] == list(range(buf.buffer_size)):  # SB3's rollout, every step kept
            mask = np.stack([m for _, m, _ in steps])
            flat = np.flatnonzero(mask)  # the shadow rows of the steps' concatenation

            def select(ts: list[th.Tensor]) -> th.Tensor:
                """The shadow rows, selected where the rollout ran (RolloutDevice's copy may run elsewhere),
                on the model's device."""
                cat = th.cat(ts)
                return cat.index_select(0, th.as_tensor(flat, device=cat.device)).to(model.device)

            kept = [k for _, _, k in steps]
            obs = (
                {key: select([k[key] for k in kept]) for key in kept[0]}
                if isinstance(kept[0], Mapping)
                else select(kept)
            )
        else:  # a buffer filled some other way: its shadow rows, copied out and moved to the device
            mask = shadow_mask(buf.observations)
            if isinstance(buf.observations, Mapping):
                obs = obs_as_tensor({k: v[mask] for k, v in buf.observations.items()}, model.device)
            else:
                obs = obs_as_tensor(buf.observations[mask], model.device)
        self.logger.record("srpo/shadow_fraction", float(mask.mean()))
        if not mask.any():
            return
        partner_obs = set_role(obs, PARTNER, copy=False)  # obs: a copy of the shadow rows
        actions = th.as_tensor(buf.actions[mask], device=model.device)
        if isinstance(model.action_space, gym.spaces.Discrete):
            actions = actions.reshape(-1).long()
        policy = model.policy
        kwargs: dict[str, th.Tensor] = {}  # MaskablePPO's buffer has action masks
        if hasattr(buf, "action_masks"):
            kwargs["action_masks"] = th.as_tensor(buf.action_masks[mask], device=model.device)
        with th.no_grad():  # the actor alone (evaluate_actions would also run the critic and the entropy)
            log_partner_t = cast(Any, policy).get_distribution(partner_obs, **kwargs).log_prob(actions)
        log_partner = log_partner_t.cpu().numpy().astype(np.float64)
        self.log_partner = log_partner
        log_shadow = buf.log_probs[mask].astype(np.float64)
        kl = log_shadow - log_partner
        shaping = -kl / self.tau
        ent_coef = float(getattr(self.model, "ent_coef", 0.0) or 0.0)
        if self.cancel_entropy and ent_coef:
            shaping = shaping + ent_coef * log_shadow
        buf.rewards[mask] += shaping.astype(buf.rewards.dtype)
        values, dones = self.locals.get("values"), self.locals.get("dones")
        if values is None or dones is None:
            raise RuntimeError("SRPOCallback expects SB3's rollout locals 'values' and 'dones' at rollout end")
        buf.compute_returns_and_advantage(last_values=values, dones=dones)
        self.logger.record("srpo/kl", float(kl.mean()))
        self.logger.record("srpo/shaping", float(shaping.mean()))
