"""Command-line options from frozen settings dataclasses (CleanRL's ``Args`` + tyro, with argparse).

Each dataclass field becomes ``--field-name`` (help from ``field(metadata={"help": ...})``, the
default shown); tuples take several values, bools get ``--x/--no-x``. ``--config FILE`` (JSON or
TOML) sets fields too; flags given on the command line win. See the README's "Command line".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rqe_wrappers.errors import ConfigError

__all__ = [
    "UNSET",
    "add_config_option",
    "add_settings",
    "deprecated_flag",
    "load_config",
    "read_config",
    "settings_from_args",
]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: The argparse default of every settings option: "not given on the command line".
UNSET: Any = _Unset()


def _field_help(cls: type, name: str) -> str:
    """The field's help text, from ``cls`` or the nearest base class that documents it."""
    for klass in cls.__mro__:
        fields = getattr(klass, "__dataclass_fields__", {})
        if name in fields and fields[name].metadata.get("help"):
            return str(fields[name].metadata["help"])
    raise TypeError(f"{cls.__name__}.{name} has no help text: declare it with field(metadata={{'help': ...}})")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _element_type(tp: Any) -> Any | None:
    """``tuple[int, ...]`` -> ``int``; not a homogeneous tuple -> None."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        raise TypeError(f"settings tuples must be tuple[X, ...], got {tp}")
    return None


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(_show(v) for v in value) or "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    return str(value)


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _default(f: dataclasses.Field, defaults: Any) -> Any:
    if defaults is not None:
        return getattr(defaults, f.name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def add_settings(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    defaults: Any = None,
    exclude: Sequence[str] = (),
    title: str | None = None,
) -> None:
    """Add one ``--option`` per field of the dataclass ``cls`` to ``parser``.

    ``defaults`` (an instance of ``cls``) gives the defaults shown, else the class's own.
    Fields without a default are required (on the command line or in ``--config``).
    """
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    for f, tp in _fields(cls):
        if f.name in exclude:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = _default(f, defaults)
        shown = "required" if default is dataclasses.MISSING else f"default: {_show(default)}"
        help_text = f"{_field_help(cls, f.name)} ({shown})".replace("%", "%%")
        tp, optional = _unwrap_optional(tp)
        kwargs: dict[str, Any] = {"dest": f.name, "default": UNSET, "help": help_text}
        element = _element_type(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif element is not None:
            kwargs.update(type=element, nargs="*" if optional else "+", metavar=f.name.upper())
        else:
            kwargs.update(type=tp, metavar=f.name.upper())
        if "choices" in f.metadata:
            kwargs["choices"] = tuple(f.metadata["choices"])
            kwargs.pop("metavar", None)
        action = group.add_argument(flag, **kwargs)
        action.help = help_text  # BooleanOptionalAction (3.11) appends its own "(default: ...)"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE``: settings from a JSON or TOML file; explicit flags override them."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON or TOML file of settings (keys = option names, e.g. n_copies = 8); flags given on the "
        "command line override it (default: none)",
    )


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a flat settings file: ``.toml`` with tomllib, anything else as JSON."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror or e}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text.decode("utf-8"))
        else:
            data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"{path} is not valid {kind}: {e}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a table of settings (name = value), got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """A config-file value as the field's type (lists -> tuples, strings -> paths); ConfigError otherwise."""
    tp, optional = _unwrap_optional(tp)
    if value is None and optional:
        return None
    element = _element_type(tp)
    if element is not None:
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(v, element, name) for v in value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        Path: isinstance(value, str),
    }.get(tp)
    if ok is None:
        return value
    if not ok:
        raise ConfigError(f"config value {name} = {value!r} must be of type {tp.__name__}")
    return tp(value)


def settings_from_args(
    cls: type,
    args: argparse.Namespace,
    *,
    defaults: Any = None,
    exclude: Sequence[str] = (),
    **fixed: Any,
) -> Any:
    """Build ``cls`` from parsed args: explicit flags, else ``--config`` values, else ``defaults``.

    ``fixed`` sets fields not taken from the command line (``exclude`` them in :func:`add_settings`).
    """
    config = getattr(args, "_config_values", {})
    values: dict[str, Any] = dict(fixed)
    for f, tp in _fields(cls):
        if f.name in exclude or f.name in fixed:
            continue
        given = getattr(args, f.name, UNSET)
        if given is not UNSET:
            _, optional = _unwrap_optional(tp)
            element = _element_type(_unwrap_optional(tp)[0])
            values[f.name] = tuple(given) if element is not None else given
            if optional and element is not None and not given:
                values[f.name] = None
        elif f.name in config:
            values[f.name] = _coerce(config[f.name], tp, f.name)
        else:
            default = _default(f, defaults)
            if default is dataclasses.MISSING:
                flag = "--" + f.name.replace("_", "-")
                raise ConfigError(f"{flag} is required (on the command line or as {f.name} in --config)")
            values[f.name] = default
    return cls(**values)


def read_config(args: argparse.Namespace, *classes: type, exclude: Sequence[str] = ()) -> None:
    """Load ``args.config`` (if given) into ``args`` for :func:`settings_from_args`; unknown keys fail."""
    path = getattr(args, "config", None)
    values = {} if path is None else load_config(path)
    known = {f.name for cls in classes for f, _ in _fields(cls)} - set(exclude)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; this command takes {sorted(known)}")
    args._config_values = values


class _DeprecatedFlag(argparse.Action):
    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated, use {self.new} (same meaning)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated_flag(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """``old`` keeps working as ``new`` (same ``dest``), prints a deprecation note, and is hidden from --help."""
    parser.add_argument(
        old, dest=dest, action=_DeprecatedFlag, new=new, default=UNSET, help=argparse.SUPPRESS, **kwargs
    )


def add_sweep_command(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    sweep: type,
    ppo_defaults: Any,
    ppo_title: str,
    run: Any,
) -> argparse.ArgumentParser:
    """Register a sweep subcommand: options from the ``sweep`` dataclass and PPOSettings, ``--config``.

    The command reads both settings (flags win over ``--config``) and calls ``run(sweep, ppo_settings)``.
    """
    from rqe_wrappers.experiments.settings import PPOSettings

    def command(args: argparse.Namespace) -> int:
        read_config(args, sweep, PPOSettings)
        run(settings_from_args(sweep, args), settings_from_args(PPOSettings, args, defaults=ppo_defaults))
        return 0

    p = sub.add_parser(name, help=help, description=description)
    add_config_option(p)
    add_settings(p, sweep, title="runs")
    add_settings(p, PPOSettings, defaults=ppo_defaults, title=ppo_title)
    p.set_defaults(func=command, _prog=p.prog)
    return p
