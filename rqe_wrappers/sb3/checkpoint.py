"""SB3's ``CheckpointCallback`` that also saves the state of this library's callbacks.

SB3's checkpoint holds the model only; :class:`AHTCallback`'s nature (prior, utility estimates,
fictitious-play reservoir) would be lost on resume. :class:`StatefulCheckpointCallback` calls
``save(path)`` of each callback it is given next to every model zip (``AHTCallback`` writes
``<name>.aht.json`` / ``.aht.npz``). ``SRPOCallback`` keeps no state between runs (``tau`` and the
snapshot name are read from the env at training start), so it needs nothing. Resume:
:func:`latest_checkpoint`, ``PPO.load``, ``AHTCallback.load`` (docs/adapter.md, "SB3's own tools").
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3.srpo_callback import SRPOCallback


class StatefulCheckpointCallback(CheckpointCallback):
    """``CheckpointCallback`` that saves ``state_of``'s callbacks with every model checkpoint.

    Args:
        save_freq, save_path, name_prefix, save_replay_buffer, verbose: as SB3's ``CheckpointCallback``
            (``save_freq`` counts calls, i.e. VecEnv steps of all slots at once).
        state_of: the callbacks (passed to ``learn`` too) whose state goes with each checkpoint:
            anything with ``save(path)`` (``AHTCallback``); ``SRPOCallback`` is accepted and has none.
        save_vecnormalize: save ``VecNormalize`` statistics as ``<prefix>_vecnormalize_<steps>_steps.pkl``
            (default ``True`` here: a resumed run needs them; nothing is written without a ``VecNormalize``).

    The episodes of a rollout still running at a checkpoint are not in it (nor are they in PPO's
    model): a resumed run starts a new rollout from the saved model and callback state.
    """

    def __init__(
        self,
        save_freq: int,
        save_path: str | os.PathLike,
        name_prefix: str = "rl_model",
        *,
        state_of: Sequence[BaseCallback] = (),
        save_replay_buffer: bool = False,
        save_vecnormalize: bool = True,
        verbose: int = 0,
    ):
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise ConfigError(f"save_freq must be an integer >= 1 (VecEnv steps), got {save_freq!r}")
        stateful: list[Any] = []  # callbacks with save(path)
        for cb in state_of:
            if callable(getattr(cb, "save", None)):
                stateful.append(cb)
            elif not isinstance(cb, SRPOCallback):
                raise ConfigError(
                    f"state_of: {type(cb).__name__} has no save(path) method; pass the callbacks whose state should "
                    "go with the checkpoint (AHTCallback)"
                )
        super().__init__(save_freq, os.fspath(save_path), name_prefix, save_replay_buffer, save_vecnormalize, verbose)
        self.state_of = list(state_of)
        self._stateful = stateful
        #: model zips written by this callback, oldest first
        self.saved: list[Path] = []

    def _on_step(self) -> bool:
        due = self.n_calls % self.save_freq == 0
        keep = super()._on_step()
        if due:
            path = Path(self._checkpoint_path(extension="zip"))
            for cb in self._stateful:
                written = cb.save(path)
                if self.verbose >= 2:
                    print(f"Saving {type(cb).__name__} state to {written}")
            self.saved.append(path)
        return keep


def latest_checkpoint(save_path: str | os.PathLike, name_prefix: str = "rl_model") -> Path | None:
    """The model zip with the most steps in ``save_path`` (``<name_prefix>_<steps>_steps.zip``), or ``None``."""
    pattern = re.compile(re.escape(name_prefix) + r"_(\d+)_steps\.zip")
    found = [(int(m.group(1)), p) for p in Path(save_path).glob("*.zip") if (m := pattern.fullmatch(p.name))]
    return max(found)[1] if found else None
