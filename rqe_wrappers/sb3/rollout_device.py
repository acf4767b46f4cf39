"""Collect rollouts with a copy of the policy on another device; PPO's update stays where the model is.

Many training processes sharing one GPU (population play: one process per member) each make a forward
pass and a device round trip per env step; the GPU's time slicing between processes makes those waits,
not the arithmetic, most of a step. :class:`RolloutDevice` runs the rollout's forward passes on a CPU
copy (weights copied from the model at every rollout start) and hands the model back for the update,
which keeps the batched work on the GPU. Docs: docs/meltingpot.md, "Throughput".
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from rqe_wrappers.errors import ConfigError


class RolloutDevice(BaseCallback):
    """During each rollout, ``model.policy`` is a copy on ``device`` with the model's current weights.

    Put it first in the callback list: the callbacks after it see the copy during the rollout and the
    model's own policy again at the rollout's end (SRPO's shaping, AHT's snapshot). On-policy
    algorithms (PPO, A2C, MaskablePPO). Sampling draws from ``device``'s torch generator, so a run is
    reproducible from its seed but differs from one that collects on the model's device (on the same
    device it is the same run: the copy is made there too). A CPU copy of a model on another device keeps
    its convolutions' weights channels-last (:data:`torch.channels_last`: a NatureCNN forward pass at batch
    16 took 1.72 against 2.32 ms on the GPU box's Xeon).
    """

    def __init__(self, device: str | th.device = "cpu"):
        super().__init__()
        try:
            self.device = th.device(device)
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"RolloutDevice: {device!r} is not a torch device") from err
        self._copy: Any = None
        self._own: tuple[Any, th.device] | None = None

    def _on_rollout_start(self) -> None:
        model = self.model
        policy = model.policy
        if self._copy is None:
            with th.random.fork_rng(devices=[]):  # its throwaway initial weights leave the run's stream alone
                self._copy = type(policy)(**policy._get_constructor_parameters()).to(self.device)
            self._copy.set_training_mode(False)
            if self.device.type == "cpu" and model.device.type != "cpu":
                # convolutions' weights channels-last: the layout SB3's transposed images already have (faster
                # CPU convolutions); on the model's own device the copy stays as the model is (the same run)
                self._copy.to(memory_format=th.channels_last)
        self._copy.load_state_dict(policy.state_dict())
        self._own = (policy, model.device)
        model.policy, model.device = self._copy, self.device

    def _restore(self) -> None:
        if self._own is not None:
            self.model.policy, self.model.device = self._own
            self._own = None

    def _on_rollout_end(self) -> None:
        self._restore()

    def _on_training_end(self) -> None:
        self._restore()  # a rollout stopped early (on_step returned False) ends without on_rollout_end

    def _on_step(self) -> bool:
        return True
