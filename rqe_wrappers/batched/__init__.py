"""The batched fast path: a batched env (all copies as arrays) as an SB3 ``VecEnv``, SRPO on whole batches.

:func:`batched_vec_env` / :class:`BatchedVecEnv` (:mod:`.vec_env`); the shadow logic, the
background seats and AHT's scenario sampling on batches in :mod:`.shadows`, :mod:`.background` and
:mod:`.scenarios`. Docs: docs/batched.md.
"""

from __future__ import annotations

from rqe_wrappers.batched.vec_env import BatchedVecEnv, batched_vec_env

__all__ = ["BatchedVecEnv", "batched_vec_env"]
