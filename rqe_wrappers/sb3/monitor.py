"""SB3's ``VecMonitor`` for SRPO slots: ``rollout/ep_rew_mean`` is the partner-role return.

A shadow's reward is minus its partners' mean, so SB3's plain ``VecMonitor`` averages partner
and shadow episodes to about 0. :class:`RoleVecMonitor` gives SB3 (``info["episode"]``, read by
PPO's logger and ``evaluate_policy``) only the episodes a seat played as *partner* (or without a
role: AHT and plain envs); a shadow's episode goes to ``info["shadow_episode"]``. Idle rows of a
seat that finished before its copy (``info["inactive"]``) do not count in the next episode's
length. See docs/adapter.md, "SB3's own tools".
"""

from __future__ import annotations

import time

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rqe_wrappers.srpo.roles import ROLES, SHADOW

#: the ``info`` key a shadow's episode statistics go to (SB3 reads ``"episode"``)
SHADOW_EPISODE = "shadow_episode"


class RoleVecMonitor(VecMonitor):
    """``VecMonitor`` whose ``info["episode"]`` holds partner-role episodes only (shadow ones: ``"shadow_episode"``).

    Same arguments as SB3's ``VecMonitor(venv, filename=None, info_keywords=())``; the CSV file
    (``filename``) still gets every episode.
    """

    def __init__(self, venv: VecEnv, filename: str | None = None, info_keywords: tuple[str, ...] = ()):
        super().__init__(venv, filename, info_keywords)
        #: whether a slot may idle (``info["inactive"]``); a VecEnv whose slots all act every step says
        #: ``idle_rows = False`` and its non-finished slots are not looked at (thousands per step)
        self.idle_rows = bool(getattr(venv, "idle_rows", True))
        #: whether a finished slot's info is the step's own new dict (``fresh_infos = True``), so the episode
        #: is written into it; else into a copy, as SB3 does
        self.fresh_infos = bool(getattr(venv, "fresh_infos", False))

    def step_wait(self) -> VecEnvStepReturn:
        """SB3's ``VecMonitor.step_wait`` (same episode dicts, counts and CSV rows), looking at finished slots only."""
        obs, rewards, dones, infos = self.venv.step_wait()
        self.episode_returns += rewards
        self.episode_lengths += 1
        done = np.asarray(dones, dtype=bool)
        new_infos = list(infos)
        shadow = ROLES[SHADOW]
        ended = np.flatnonzero(done)
        if len(ended):
            t = round(time.time() - self.t_start, 6)
            returns, lengths = self.episode_returns[ended], self.episode_lengths[ended]  # numpy scalars, as SB3's
            self.episode_returns[ended] = 0
            self.episode_lengths[ended] = 0
            self.episode_count += len(ended)
            fresh = self.fresh_infos
            for i, r, n in zip(ended.tolist(), returns, lengths, strict=True):
                info = infos[i] if fresh else infos[i].copy()
                episode = {"r": r, "l": n, "t": t}
                for key in self.info_keywords:
                    episode[key] = info[key]
                info[SHADOW_EPISODE if info.get("role") == shadow else "episode"] = episode
                if self.results_writer:
                    self.results_writer.write_row(episode)
                new_infos[i] = info
        if self.idle_rows:
            for i in np.flatnonzero(~done).tolist():
                if infos[i].get("inactive"):  # an idle row between a seat's end and its copy's reset
                    self.episode_lengths[i] -= 1
        return obs, rewards, dones, new_infos
