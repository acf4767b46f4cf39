"""Old module paths of 0.1 keep importing for one release, with a ``DeprecationWarning``.

A meta-path finder answers for the moved modules only: importing an old path gives a thin module
that forwards every attribute to the new one. Nothing is loaded until an old path is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

#: old module path (0.1) -> new module path (0.2)
MOVED: dict[str, str] = {
    "rqe_wrappers.policy": "rqe_wrappers.core.policy",
    "rqe_wrappers.seeding": "rqe_wrappers.core.seeding",
    "rqe_wrappers.snapshot": "rqe_wrappers.core.snapshot",
    "rqe_wrappers.policies": "rqe_wrappers.partners",
    "rqe_wrappers.policies.ipd": "rqe_wrappers.partners.ipd",
    "rqe_wrappers.policies.tag": "rqe_wrappers.partners.tag",
    "rqe_wrappers.wrappers": "rqe_wrappers",
    "rqe_wrappers.wrappers.background": "rqe_wrappers.seats.background",
    "rqe_wrappers.wrappers.single_seat": "rqe_wrappers.seats.single_seat",
    "rqe_wrappers.wrappers.shadow": "rqe_wrappers.srpo.shadow",
    "rqe_wrappers.wrappers.aht": "rqe_wrappers.aht.wrapper",
    "rqe_wrappers.roles": "rqe_wrappers.srpo.roles",
    "rqe_wrappers.rqe": "rqe_wrappers.srpo.rqe",
    "rqe_wrappers.bifurcation": "rqe_wrappers.srpo.bifurcation",
    "rqe_wrappers.train": "rqe_wrappers.experiments.coordination",
    "rqe_wrappers.scenarios": "rqe_wrappers.aht.scenarios",
    "rqe_wrappers.nature": "rqe_wrappers.aht.nature",
    "rqe_wrappers.sb3.policy": "rqe_wrappers.sb3.sb3_policy",
    "rqe_wrappers.zoo.cli": "rqe_wrappers.cli.zoo",
    "rqe_wrappers.zoo.recipes": "rqe_wrappers.zoo.publish.recipes",
    "rqe_wrappers.zoo.builders": "rqe_wrappers.zoo.publish.builders",
    "rqe_wrappers.beta_plot": "rqe_wrappers.cli.beta_plot",
}


class _Forward(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return types.ModuleType(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(
            f"{module.__name__} moved to {self.new}; the old path goes away in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        target = importlib.import_module(self.new)

        def __getattr__(name: str) -> Any:
            return getattr(target, name)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dict__["__all__"] = getattr(target, "__all__", [n for n in dir(target) if not n.startswith("_")])


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        is_package = any(old.startswith(fullname + ".") for old in MOVED)
        return importlib.machinery.ModuleSpec(fullname, _Forward(new), is_package=is_package)


def renamed_argument(old: str, old_value: Any, new: str, new_value: Any, *, default: Any) -> Any:
    """The value of a keyword argument renamed from ``old`` to ``new`` (warns when ``old`` is used)."""
    if old_value is None:
        return new_value
    if new_value is not default and new_value != old_value:
        raise TypeError(f"got both {old}= and {new}=; {old} is the old name of {new}: pass only {new}")
    warnings.warn(f"{old}= is renamed {new}=; the old name goes away in 0.3", DeprecationWarning, stacklevel=3)
    return old_value


def deprecated_alias(new: Any, old_name: str) -> Any:
    """A function under its old name that warns and calls ``new``."""

    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"{old_name} is renamed {new.__name__}; the old name goes away in 0.3", DeprecationWarning, stacklevel=2
        )
        return new(*args, **kwargs)

    alias.__name__ = old_name
    alias.__doc__ = f"Deprecated name of :func:`{new.__name__}`."
    return alias


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


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (once); real modules always win."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
