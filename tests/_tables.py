"""A tabular scripted policy the zoo tests publish and load (registered once per name)."""

from __future__ import annotations

import numpy as np

from rqe_wrappers.core.policy import FunctionPolicy, batch_size
from rqe_wrappers.core.registry import register_scripted, scripted_names


def table_policy(observation_space, action_space, arrays=None):
    """Fixed action probabilities from ``arrays["probs"]`` (uniform without)."""
    probs = np.asarray(arrays["probs"], np.float64) if arrays else np.full(action_space.n, 1.0 / action_space.n)
    return FunctionPolicy(observation_space, action_space, lambda obs: np.tile(probs, (batch_size(obs), 1)))


def ensure_table(name: str) -> str:
    """Register :func:`table_policy` under ``name`` unless it is; returns ``name``."""
    if name not in scripted_names():
        register_scripted(name, table_policy)
    return name
