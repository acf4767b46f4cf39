"""Gymnasium spaces as plain JSON (never pickle), for population manifests.

Supported: ``Discrete``, ``Box``, ``MultiDiscrete``, ``MultiBinary``, ``Dict`` and ``Tuple`` (nested).
Infinite ``Box`` bounds are written as the strings ``"inf"`` / ``"-inf"`` (JSON has no infinity);
a bound that is the same everywhere is written once as a scalar.

Example:
    >>> import gymnasium as gym
    >>> space = gym.spaces.Box(-1.0, 1.0, shape=(3,))
    >>> space_to_json(space)
    {'type': 'Box', 'shape': [3], 'dtype': 'float32', 'low': -1.0, 'high': 1.0}
    >>> space_from_json(space_to_json(space)) == space
    True
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.errors import ConfigError, UnsupportedSpaceError
from rqe_wrappers.zoo.limits import DISCRETE_N, SPACE_DEPTH, SPACE_ELEMENTS

#: dtypes a ``Box`` / ``MultiDiscrete`` may declare in a manifest
BOX_DTYPES = (
    "float16", "float32", "float64",
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
    "bool",
)  # fmt: skip


def transposed_image(a: gym.Space, b: gym.Space) -> bool:
    """``a`` is ``b``'s images channel-first (SB3 image policies transpose the env's channel-last images)."""
    return (
        isinstance(a, gym.spaces.Box)
        and isinstance(b, gym.spaces.Box)
        and len(a.shape) == 3
        and len(b.shape) == 3
        and a.shape == (b.shape[2], b.shape[0], b.shape[1])
        and a.dtype == b.dtype
    )


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """A JSON-safe description of ``space`` (see :func:`space_from_json` for the way back)."""
    if isinstance(space, gym.spaces.Discrete):
        out: dict[str, Any] = {"type": "Discrete", "n": int(space.n)}
        if int(space.start) != 0:
            out["start"] = int(space.start)
        return out
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": [int(s) for s in space.shape],
            "dtype": np.dtype(space.dtype).name,
            "low": _bound_to_json(space.low),
            "high": _bound_to_json(space.high),
        }
    if isinstance(space, gym.spaces.MultiDiscrete):
        out = {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "dtype": np.dtype(space.dtype).name}
        if np.any(space.start != 0):
            out["start"] = space.start.tolist()
        return out
    if isinstance(space, gym.spaces.MultiBinary):
        n = np.asarray(space.n)
        return {"type": "MultiBinary", "n": int(n) if n.ndim == 0 else [int(x) for x in n]}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {str(k): space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(s) for s in space.spaces]}
    raise UnsupportedSpaceError(
        f"cannot write {space} to a manifest: supported spaces are Discrete, Box, MultiDiscrete, "
        "MultiBinary, Dict and Tuple"
    )


def space_from_json(data: Any, where: str = "space") -> gym.Space:
    """Rebuild a space written by :func:`space_to_json`.

    Raises :class:`~rqe_wrappers.errors.ConfigError` naming ``where`` (e.g.
    ``"observation_space.spaces.pos"``) when the description is malformed.
    """
    check_space_caps(data, where)
    return _from_json(data, where)


def _from_json(data: Any, where: str) -> gym.Space:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ConfigError(f"{where}: expected an object with a 'type' field, got {_short(data)}")
    kind = data["type"]
    fields = _FIELDS.get(kind)
    if fields is None:
        raise ConfigError(f"{where}.type: unknown space type {kind!r}; known: {sorted(_FIELDS)}")
    required, optional = fields
    missing = [f for f in required if f not in data]
    if missing:
        raise ConfigError(f"{where}: {kind} needs field(s) {missing}")
    extra = sorted(set(data) - set(required) - set(optional) - {"type"})
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {extra} for a {kind} space")
    try:
        return _BUILDERS[kind](data, where)
    except (ConfigError, UnsupportedSpaceError):
        raise
    except (TypeError, ValueError, AssertionError, OverflowError) as e:  # gymnasium's / numpy's own checks
        raise ConfigError(f"{where}: invalid {kind} space: {e}") from None


def _discrete(data: dict[str, Any], where: str) -> gym.Space:
    return gym.spaces.Discrete(_int(data["n"], f"{where}.n", 1), start=_int(data.get("start", 0), f"{where}.start"))


def _box(data: dict[str, Any], where: str) -> gym.Space:
    dtype = _dtype(data["dtype"], f"{where}.dtype")
    shape = data["shape"]
    if not isinstance(shape, list):
        raise ConfigError(f"{where}.shape: expected a list of sizes, got {_short(shape)}")
    shape = tuple(_int(s, f"{where}.shape", 0) for s in shape)
    low = _bound_from_json(data["low"], shape, dtype, f"{where}.low")
    high = _bound_from_json(data["high"], shape, dtype, f"{where}.high")
    return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)


def _multi_discrete(data: dict[str, Any], where: str) -> gym.Space:
    nvec = _int_array(data["nvec"], f"{where}.nvec", 1)
    start = _int_array(data["start"], f"{where}.start") if "start" in data else None
    if start is not None and start.shape != nvec.shape:
        raise ConfigError(f"{where}.start: shape {start.shape} differs from nvec's {nvec.shape}")
    dtype = _dtype(data.get("dtype", "int64"), f"{where}.dtype")
    return gym.spaces.MultiDiscrete(nvec, dtype=dtype, start=start)


def _multi_binary(data: dict[str, Any], where: str) -> gym.Space:
    n = data["n"]
    if isinstance(n, list):
        return gym.spaces.MultiBinary([_int(x, f"{where}.n", 1) for x in n])
    return gym.spaces.MultiBinary(_int(n, f"{where}.n", 1))


def _dict(data: dict[str, Any], where: str) -> gym.Space:
    subs = data["spaces"]
    if not isinstance(subs, dict):
        raise ConfigError(f"{where}.spaces: expected an object of spaces, got {_short(subs)}")
    return gym.spaces.Dict({k: _from_json(v, f"{where}.spaces.{k}") for k, v in subs.items()})


def _tuple(data: dict[str, Any], where: str) -> gym.Space:
    subs = data["spaces"]
    if not isinstance(subs, list):
        raise ConfigError(f"{where}.spaces: expected a list of spaces, got {_short(subs)}")
    return gym.spaces.Tuple([_from_json(v, f"{where}.spaces[{i}]") for i, v in enumerate(subs)])


_BUILDERS = {
    "Discrete": _discrete,
    "Box": _box,
    "MultiDiscrete": _multi_discrete,
    "MultiBinary": _multi_binary,
    "Dict": _dict,
    "Tuple": _tuple,
}


# ---- caps (rqe_wrappers.zoo.limits; docs/security.md) --------------------------------------------
def check_space_caps(data: Any, where: str = "space") -> None:
    """Refuse a declared space above the caps before anything is allocated: total elements of its
    Box / MultiDiscrete / MultiBinary parts, Discrete ``n`` (and ``start``), Dict/Tuple nesting.

    Malformed parts are left for the builders to report; only sizes are judged here.
    """
    max_elements, max_n, max_depth = SPACE_ELEMENTS.value(), DISCRETE_N.value(), SPACE_DEPTH.value()
    total = 0
    stack: list[tuple[Any, str, int]] = [(data, where, 0)]
    while stack:
        node, at, depth = stack.pop()
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind in ("Dict", "Tuple"):
            if depth + 1 > max_depth:
                raise ConfigError(f"{at}: Dict/Tuple spaces nest more than {SPACE_DEPTH.text()}; {SPACE_DEPTH.hint()}")
            subs = node.get("spaces")
            items = subs.items() if isinstance(subs, dict) else enumerate(subs) if isinstance(subs, list) else ()
            for k, v in items:
                stack.append((v, f"{at}.spaces.{k}" if isinstance(subs, dict) else f"{at}.spaces[{k}]", depth + 1))
            continue
        total += _elements(node, at, max_n, max_elements)
        if total > max_elements:
            raise ConfigError(
                f"{at}: the declared space has more than {SPACE_ELEMENTS.text()}; {SPACE_ELEMENTS.hint()}"
            )


def _elements(node: dict[str, Any], at: str, max_n: float, max_elements: float) -> int:
    """The elements a leaf space declares (stops counting once above ``max_elements``)."""
    kind = node.get("type")
    if kind == "Discrete":
        for key in ("n", "start"):
            v = node.get(key, 0)
            if _is_int(v) and abs(v) > max_n:
                raise ConfigError(f"{at}.{key}: {_short(v)} is above the cap; {DISCRETE_N.hint()}")
        return 1
    if kind == "MultiDiscrete":
        for key in ("nvec", "start"):
            big = next((v for v in _flat_ints(node.get(key)) if abs(v) > max_n), None)
            if big is not None:
                raise ConfigError(f"{at}.{key}: {_short(big)} is above the cap; {DISCRETE_N.hint()}")
        return len(_flat_ints(node.get("nvec")))
    dims = node.get("shape") if kind == "Box" else node.get("n") if kind == "MultiBinary" else None
    size = 1
    for d in dims if isinstance(dims, list) else [dims] if dims is not None else []:
        if _is_int(d) and d > 0:
            size *= d
            if size > max_elements:
                break
    return size if dims is not None else 0


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _flat_ints(x: Any) -> list[int]:
    out, stack = [], [x]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif _is_int(v):
            out.append(v)
    return out


# ---- helpers ------------------------------------------------------------------------------------
_FIELDS = {
    "Discrete": (("n",), ("start",)),
    "Box": (("shape", "dtype", "low", "high"), ()),
    "MultiDiscrete": (("nvec",), ("dtype", "start")),
    "MultiBinary": (("n",), ()),
    "Dict": (("spaces",), ()),
    "Tuple": (("spaces",), ()),
}


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _int(x: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise ConfigError(f"{where}: expected an integer, got {_short(x)}")
    if minimum is not None and x < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {x}")
    return x


def _int_array(x: Any, where: str, minimum: int | None = None) -> np.ndarray:
    def check(v: Any) -> Any:
        if isinstance(v, list):
            return [check(e) for e in v]
        return _int(v, where, minimum)

    return np.asarray(check(x), dtype=np.int64)


def _dtype(name: Any, where: str) -> np.dtype:
    if name not in BOX_DTYPES:
        raise ConfigError(f"{where}: dtype must be one of {list(BOX_DTYPES)}, got {_short(name)}")
    return np.dtype(name)


def _scalar_to_json(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    if math.isnan(f):
        raise UnsupportedSpaceError("Box bounds must not be NaN")
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


def _bound_to_json(arr: np.ndarray) -> Any:
    arr = np.asarray(arr)
    if arr.size > 0 and np.all(arr == arr.flat[0]):
        return _scalar_to_json(arr.flat[0])
    return _nested(arr)


def _nested(arr: np.ndarray) -> Any:
    if arr.ndim == 0:
        return _scalar_to_json(arr[()])
    return [_nested(a) for a in arr]


def _bound_from_json(x: Any, shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
    def conv(v: Any) -> Any:
        if isinstance(v, list):
            return [conv(e) for e in v]
        if v in ("inf", "-inf"):
            if dtype.kind != "f":
                raise ConfigError(f"{where}: infinite bounds need a float dtype, not {dtype}")
            return float(v)
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and abs(v) >= 2**64:
            raise ConfigError(f"{where}: {_short(v)} is out of range for any {dtype} bound")
        if isinstance(v, (int, float)):
            return v
        raise ConfigError(f"{where}: expected numbers (or 'inf'/'-inf'), got {_short(v)}")

    value = conv(x)
    if isinstance(value, list):
        arr = np.asarray(value, dtype=np.float64 if dtype.kind == "f" else None)
        if arr.shape != shape:
            raise ConfigError(f"{where}: shape {arr.shape} differs from the space's shape {shape}")
        return arr.astype(dtype)
    return np.full(shape, value, dtype=dtype)
