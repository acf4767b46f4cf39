"""Argument validators shared by every public entry point (Gymnasium's style: name, value, what is accepted).

A ``bool`` is never a number here, a string is never parsed, a float is never truncated to an
integer and non-finite floats are refused unless the caller says otherwise.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import numpy as np

from rqe_wrappers.errors import ConfigError

__all__ = ["integer", "is_integer", "is_real", "payoffs", "real"]


def is_real(value: Any) -> TypeGuard[int | float | np.integer | np.floating]:
    """A Python or numpy int/float, not a bool (``True`` is not ``1.0`` for a setting)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> TypeGuard[int | np.integer]:
    """A Python or numpy integer, not a bool and not a float (``1.9`` is not truncated to ``1``)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{left}, {right}"


def real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a finite float in the interval, or a :class:`ConfigError` naming ``name``.

    Example:
        >>> real("tau", 2, low=0)
        2.0
        >>> real("tau", "2", low=0)
        Traceback (most recent call last):
        ...
        rqe_wrappers.errors.ConfigError: tau should be a finite number in the interval [0, inf), got '2' (str)
    """
    where = _interval(low, high, low_open, high_open)
    extra = f" ({hint})" if hint else ""
    if not is_real(value):
        raise ConfigError(
            f"{name} should be a finite number in the interval {where}{extra}, got {value!r} ({type(value).__name__})"
        )
    x = float(value)
    if not math.isfinite(x):
        raise ConfigError(f"{name} should be a finite number in the interval {where}{extra}, got {x!r}")
    if (low is not None and (x < low or (low_open and x == low))) or (
        high is not None and (x > high or (high_open and x == high))
    ):
        raise ConfigError(f"{name} should be in the interval {where}{extra}, got {x!r}")
    return x


def integer(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, hint: str = "", expected: str = ""
) -> int:
    """``value`` as an int in ``[low, high]``, or a :class:`ConfigError` naming ``name``.

    ``expected`` replaces the generated "must be in [low, high]" where a caller words it better.

    Example:
        >>> integer("n_shadows", 1.9, low=1)
        Traceback (most recent call last):
        ...
        rqe_wrappers.errors.ConfigError: n_shadows must be an integer in [1, inf), got 1.9 (float)
    """
    where = _interval(low, high, False, False)
    extra = f" ({hint})" if hint else ""
    if not is_integer(value):
        what = expected or f"must be an integer in {where}"
        raise ConfigError(f"{name} {what}{extra}, got {value!r} ({type(value).__name__})")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        raise ConfigError(f"{name} {expected or f'must be in {where}'}{extra}, got {n}")
    return n


def payoffs(value: Any, name: str = "payoffs") -> np.ndarray:
    """A bimatrix game's payoffs as a finite float array of shape ``(n0, n1, 2)``, or :class:`ConfigError`."""
    try:
        p = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a numeric array of shape (n0, n1, 2)") from None
    if p.ndim != 3 or p.shape[2] != 2 or min(p.shape[:2]) < 1:
        raise ConfigError(f"{name} must have shape (n0, n1, 2), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ConfigError(f"{name} must be finite")
    return p


def all_finite(x: np.ndarray) -> bool:
    """Whether every entry of a float array is finite, in one reduction and without a boolean temporary.

    A NaN or an infinity makes the sum non-finite; a sum that overflows from finite entries is checked
    entry by entry, so the answer is exact.
    """
    if x.size == 0:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(x, axis=None)
    return bool(np.isfinite(total)) or bool(np.isfinite(x).all())
