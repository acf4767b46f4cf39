"""Reading the zoo's JSON files field by field: the schema version, value checks and canonical output.

Every file the zoo reads (manifest, index, recipe) goes through :class:`ObjectReader`, so every error
names the file and the field and unknown fields are refused. The formats are in docs/zoo.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym

from rqe_wrappers.errors import ConfigError, PopulationError, UnsupportedSpaceError
from rqe_wrappers.zoo import limits
from rqe_wrappers.zoo.spaces import space_from_json

#: manifest / index / recipe schema this library writes and reads
SCHEMA_VERSION = 1

#: a file's sha256 as the zoo writes it
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

#: a field check: ``None`` when the value is fine, else what was expected
Check = Callable[[Any], "str | None"]


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x: Any) -> bool:
    return (is_int(x) or isinstance(x, float)) and math.isfinite(x)


def expect(pred: Callable[[Any], bool], what: str) -> Check:
    """A check that passes when ``pred(value)`` holds, else says ``expected <what>``."""
    return lambda x: None if pred(x) else f"expected {what}"


def one_of(names: tuple[str, ...] | list[str]) -> Check:
    return lambda x: None if x in names else f"expected one of {list(names)}"


BOOL = expect(lambda x: isinstance(x, bool), "true or false")
NUM = expect(is_num, "a finite number")
NUM_OR_NULL = expect(lambda x: x is None or is_num(x), "a finite number or null")
POS_INT = expect(lambda x: is_int(x) and x > 0, "a positive integer")
INT = expect(is_int, "an integer")
INT_OR_NULL = expect(lambda x: x is None or is_int(x), "an integer or null")
STR = expect(lambda x: isinstance(x, str), "a string")
STR_OR_NULL = expect(lambda x: x is None or isinstance(x, str), "a string or null")


def short(x: Any) -> str:
    """``repr(x)``, cut to 80 characters for error messages."""
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def field_error(source: str, where: str, msg: str) -> PopulationError:
    return PopulationError(f"{source}: field '{where}': {msg}")


def check_json_value(x: Any, where: str) -> Any:
    """JSON-safe values only: null, bool, int, finite float, str, lists and string-keyed objects."""
    if x is None or isinstance(x, (bool, str)) or is_int(x):
        return x
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ConfigError(f"{where}: {x} is not a finite number (JSON has no NaN/inf)")
        return x
    if isinstance(x, (list, tuple)):
        return [check_json_value(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, Mapping):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: keys must be strings, got {k!r}")
            out[k] = check_json_value(v, f"{where}.{k}")
        return out
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:  # numpy scalar
        return check_json_value(x.item(), where)
    raise ConfigError(f"{where}: {type(x).__name__} is not JSON (numbers, strings, lists, objects only)")


def scalar_dict(x: Any) -> str | None:
    """Check for an object of JSON scalars (or lists of numbers), e.g. ``optimizer_kwargs``."""
    if not isinstance(x, dict):
        return "expected an object"
    for k, v in x.items():
        ok = v is None or isinstance(v, (bool, str)) or is_num(v)
        ok = ok or (isinstance(v, list) and all(is_num(e) for e in v))
        if not ok:
            return f"key {k!r}: expected a number, string, bool, null or list of numbers"
    return None


class ObjectReader:
    """Reads one JSON object, tracking the field path and rejecting unknown fields.

    ``where`` is the object's path in the file (``""`` for the top level), ``source`` the file.
    """

    def __init__(self, data: Any, where: str, source: str):
        if not isinstance(data, dict):
            raise field_error(source, where or "(top level)", f"expected an object, got {type(data).__name__}")
        self.data, self.where, self.source = data, where, source
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, check: Check | None = None, default: Any = dataclasses.MISSING) -> Any:
        """The field's value after ``check``; ``default`` when absent (a required field without one)."""
        self.seen.add(key)
        if key not in self.data:
            if default is dataclasses.MISSING:
                raise field_error(self.source, self.path(key), "missing")
            return default
        value = self.data[key]
        if check is not None:
            problem = check(value)
            if problem:
                raise field_error(self.source, self.path(key), f"{problem}, got {short(value)}")
        return value

    def json(self, key: str, default: Any = dataclasses.MISSING) -> Any:
        """A field holding any JSON value (checked to be JSON-safe)."""
        value = self.get(key, default=default)
        try:
            return check_json_value(value, self.path(key))
        except ConfigError as e:
            raise PopulationError(f"{self.source}: field {e}") from None

    def space(self, key: str) -> gym.Space:
        """A field holding a gymnasium space as JSON (:func:`~rqe_wrappers.zoo.spaces.space_from_json`)."""
        value = self.get(key)
        try:
            return space_from_json(value, self.path(key))
        except (ConfigError, UnsupportedSpaceError) as e:
            raise PopulationError(f"{self.source}: field {e}") from None

    def done(self) -> None:
        """Refuse the fields nobody asked for."""
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise field_error(self.source, self.path(extra[0]), f"unknown field (known here: {sorted(self.seen)})")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (the zoo writes no NaN or infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} overflows to infinity (the zoo writes finite numbers only)")
    return value


def json_depth(data: Any) -> int:
    """How deeply lists and objects nest in ``data`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            children: Any = x.values()
        elif isinstance(x, list):
            children = x
        else:
            continue
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in children)
    return deepest


def load_json(text: str | bytes, source: str) -> Any:
    """The one reader of zoo JSON (manifest, index, recipe): size, nesting and duplicate keys are
    checked, NaN/Infinity refused; every problem is a :class:`PopulationError` naming ``source``."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > limits.JSON_MB.value() * limits.MB:
        raise PopulationError(f"{source}: {size} bytes is too large for a zoo JSON file; {limits.JSON_MB.hint()}")
    try:
        data = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except _DuplicateKey as e:
        raise PopulationError(
            f"{source}: the key {short(str(e))} appears twice in one object; a zoo file names each field once "
            "(a second value could hide the first from review)"
        ) from None
    except RecursionError:
        raise PopulationError(f"{source}: JSON nested too deeply to read; {limits.JSON_DEPTH.hint()}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PopulationError(f"{source}: not valid JSON ({e}); the file may be truncated or corrupt") from None
    depth = json_depth(data)
    if depth > limits.JSON_DEPTH.value():
        raise PopulationError(f"{source}: JSON nests {depth} levels deep; {limits.JSON_DEPTH.hint()}")
    return data


def read_json_file(path: Path, source: str | None = None) -> Any:
    """:func:`load_json` of a local file, refusing before reading anything that is not a regular
    file or is above the size cap (a symlink to ``/dev/zero`` or a 300 MB index is never read whole)."""
    source = source or str(path)
    cap = int(limits.JSON_MB.value() * limits.MB)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise PopulationError(f"{source}: not a regular file (a device, pipe or directory); refusing to read it")
        if st.st_size > cap:
            raise PopulationError(
                f"{source}: {st.st_size} bytes is too large for a zoo JSON file; {limits.JSON_MB.hint()}"
            )
        with open(path, "rb") as f:
            data = f.read(cap + 1)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise PopulationError(f"{source}: a directory, not a JSON file") from None
    except OSError as e:
        raise PopulationError(f"{source}: cannot be read ({e.strerror or e})") from None
    return load_json(data, source)


def dumps(data: Any) -> str:
    """Canonical JSON as this library writes it (indented, no NaN, trailing newline)."""
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
