"""The batched fast path: a batched env (all copies as arrays) as an SB3 ``VecEnv``, SRPO on whole batches.

:func:`batched_vec_env` / :class:`BatchedVecEnv` (:mod:`.vec_env`); the shadow logic and the
background seats on batches in :mod:`.shadows` and :mod:`.background`. Docs: docs/batched.md.
"""

from __future__ import annotations

from rqe_wrappers.batched.vec_env import BatchedVecEnv, batched_vec_env

__all__ = ["BatchedVecEnv", "batched_vec_env"]
