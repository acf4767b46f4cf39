"""Typed errors. Each message says what was wrong and how to fix it."""

from __future__ import annotations


class RQEError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(RQEError, ValueError):
    """A parameter is out of range or inconsistent (e.g. ``tau < 0``)."""


class SeatError(RQEError, ValueError):
    """Seats named that the environment does not have, or too few learning seats."""


class SpaceMismatchError(RQEError, ValueError):
    """A policy or population member does not fit the environment's spaces."""


class UnsupportedSpaceError(RQEError, TypeError):
    """A space kind the wrapper cannot handle (the message names the fix)."""


class PopulationError(RQEError):
    """A population cannot be found, downloaded, verified or parsed."""


class ChecksumError(PopulationError):
    """A file's sha256 does not match its manifest."""


class CacheError(PopulationError):
    """The population cache cannot be used safely: not writable, full, or laid out through a symlink."""


class MissingCallbackError(RQEError, RuntimeError):
    """A wrapper that needs an SB3 callback was trained without it."""


class MissingCallbackWarning(UserWarning):
    """A wrapper ran without the SB3 callback it is meant to be trained with."""


class NonFiniteError(RQEError, ValueError):
    """An env emitted NaN or inf in a reward or an observation (the message names copy, seat and step)."""


class ActionError(RQEError, ValueError):
    """Actions handed to the VecEnv do not fit it: wrong count, or out of a Discrete space's range."""


class VecEnvStateError(RQEError, RuntimeError):
    """The VecEnv was used out of order: a step before ``reset()``, or a call after ``close()``."""


class WorkerError(RQEError, RuntimeError):
    """A subprocess worker of the VecEnv died (the message names the worker, its pid and exit code)."""


class WorkerTimeoutError(WorkerError, TimeoutError):
    """A subprocess worker did not answer within ``step_timeout`` seconds (the message names it)."""
