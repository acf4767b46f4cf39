"""Names that moved to another zoo module keep working from the old one for a release, with a warning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``moved`` with a ``DeprecationWarning``.

    ``moved`` maps an old name to its new module, or to ``"module:new_name"`` when it was renamed too.

    The new module is imported by name when the old name is first used, so the old module never
    imports it (the read side can forward to the publish side without depending on it).
    """

    def __getattr__(name: str) -> Any:
        target = moved.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new, _, new_name = target.partition(":")
        new_name = new_name or name
        warnings.warn(
            f"{module}.{name} moved: use `from {new} import {new_name}` (the old place goes away in 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), new_name)

    return __getattr__
