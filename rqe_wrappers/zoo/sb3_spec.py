"""SB3 policy specs: the allow-lists of names a manifest may use, their check, and names -> classes.

An sb3 member's spec names its algorithm, policy class and classes inside ``policy_kwargs`` by
*name*; the names are checked here against fixed tables and resolved from SB3's own
``policy_aliases``, ``torch.nn``, ``torch.optim`` and ``stable_baselines3.common.torch_layers``, or
(``"RolePolicy"``) to this library's own fixed class. Nothing from a file is ever imported. torch and
SB3 load only when a class is looked up.
docs/zoo.md ("SB3 members") lists the names.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from rqe_wrappers.errors import PopulationError
from rqe_wrappers.zoo.limits import NET_DEPTH, NET_WIDTH, Cap
from rqe_wrappers.zoo.schema import (
    BOOL,
    INT,
    NUM,
    POS_INT,
    STR_OR_NULL,
    Check,
    ObjectReader,
    field_error,
    is_int,
    is_num,
    one_of,
    scalar_dict,
    short,
)

#: algorithm -> policy class names it may use (the algorithm's own ``policy_aliases``)
SB3_ALGOS: dict[str, tuple[str, ...]] = {
    "PPO": ("MlpPolicy", "CnnPolicy", "MultiInputPolicy"),
    "MaskablePPO": ("MlpPolicy", "CnnPolicy", "MultiInputPolicy"),  # sb3-contrib
    "RecurrentPPO": ("MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy"),  # sb3-contrib
}
#: algorithm -> policy classes of this library a manifest may name, each resolved to one fixed class
#: (:func:`policy_class`), never to a path read from a file
LIBRARY_POLICIES: dict[str, tuple[str, ...]] = {"PPO": ("RolePolicy",)}
ACTIVATIONS = ("Tanh", "ReLU", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Identity")
FEATURES_EXTRACTORS = ("FlattenExtractor", "NatureCNN", "CombinedExtractor")
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")


def _check_net_arch(x: Any) -> str | None:
    def ints(v: Any) -> bool:
        return isinstance(v, list) and all(is_int(i) and i > 0 for i in v)

    if ints(x):
        lists = [x]
    elif isinstance(x, dict) and set(x) <= {"pi", "vf", "qf"} and all(ints(v) for v in x.values()):
        lists = list(x.values())
    else:
        return "expected a list of layer sizes or {'pi': [...], 'vf': [...]}"
    for layers in lists:
        if len(layers) > NET_DEPTH.value():
            return f"{len(layers)} layers is above the cap: {NET_DEPTH.hint()}"
        if layers and max(layers) > NET_WIDTH.value():
            return f"a layer of {max(layers)} units is above the cap: {NET_WIDTH.hint()}"
    return None


def _capped_pos_int(cap: Cap) -> Check:
    def check(x: Any) -> str | None:
        if not (is_int(x) and x > 0):
            return "expected a positive integer"
        return f"{x} is above the cap: {cap.hint()}" if x > cap.value() else None

    return check


def _in_range(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False, null: bool = False) -> Check:
    """A finite number in the interval (``null`` also allows ``None``), e.g. ``gamma`` in (0, 1]."""
    text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}".replace("inf", "inf")

    def check(x: Any) -> str | None:
        if x is None and null:
            return None
        if not is_num(x):
            return "expected a finite number" + (" or null" if null else "")
        ok = (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
        return None if ok else f"expected a number in {text}"

    return check


_INF = float("inf")


#: policy_kwargs an SB3 member may carry, each with its check (JSON values only)
POLICY_KWARGS: dict[str, Check] = {
    "net_arch": _check_net_arch,
    "activation_fn": one_of(ACTIVATIONS),
    "ortho_init": BOOL,
    "log_std_init": NUM,
    "full_std": BOOL,
    "use_expln": BOOL,
    "squash_output": BOOL,
    "share_features_extractor": BOOL,
    "normalize_images": BOOL,
    "features_extractor_class": one_of(FEATURES_EXTRACTORS),
    "features_extractor_kwargs": scalar_dict,
    "optimizer_class": one_of(OPTIMIZERS),
    "optimizer_kwargs": scalar_dict,
    # RecurrentPPO
    "lstm_hidden_size": _capped_pos_int(NET_WIDTH),
    "n_lstm_layers": _capped_pos_int(NET_DEPTH),
    "shared_lstm": BOOL,
    "enable_critic_lstm": BOOL,
    "lstm_kwargs": scalar_dict,
}

#: algorithm constructor arguments kept so that ``to_sb3()`` can continue training as before
ALGO_KWARGS: dict[str, Check] = {
    "learning_rate": _in_range(0, _INF),
    "n_steps": POS_INT,
    "batch_size": POS_INT,
    "n_epochs": POS_INT,
    "gamma": _in_range(0, 1, lo_open=True),
    "gae_lambda": _in_range(0, 1),
    "clip_range": _in_range(0, _INF, lo_open=True),
    "clip_range_vf": _in_range(0, _INF, lo_open=True, null=True),
    "normalize_advantage": BOOL,
    "ent_coef": NUM,
    "vf_coef": _in_range(0, _INF),
    "max_grad_norm": _in_range(0, _INF, lo_open=True),
    "use_sde": BOOL,
    "sde_sample_freq": INT,
    "target_kl": _in_range(0, _INF, lo_open=True, null=True),
    "stats_window_size": POS_INT,
}


def check_sb3_spec(data: Any, where: str, source: str) -> dict[str, Any]:
    """Validate an SB3 policy spec against the allow-lists; return it as a plain dict."""
    r = ObjectReader(data, where, source)
    algo = r.get("algo", one_of(tuple(SB3_ALGOS)))
    policy = r.get("policy", one_of(policy_names(algo)))
    spec: dict[str, Any] = {"algo": algo, "policy": policy}
    for key, checks in (("policy_kwargs", POLICY_KWARGS), ("algo_kwargs", ALGO_KWARGS)):
        kw = r.get(key, default={})
        if not isinstance(kw, dict):
            raise field_error(source, r.path(key), "expected an object")
        for k, v in kw.items():
            if k not in checks:
                raise field_error(source, f"{r.path(key)}.{k}", f"not an allowed key (allowed: {sorted(checks)})")
            problem = checks[k](v)
            if problem:
                raise field_error(source, f"{r.path(key)}.{k}", f"{problem}, got {short(v)}")
        spec[key] = dict(kw)
    spec["sb3_version"] = r.get("sb3_version", STR_OR_NULL, None)
    for key in ("observation_space", "action_space"):
        if key in r.data:
            spec[key] = r.space(key)
    r.done()
    for key in ("optimizer_kwargs", "features_extractor_kwargs"):
        if key in spec["policy_kwargs"]:
            _check_class_kwargs(spec, key, f"{r.path('policy_kwargs')}.{key}", source)
    return spec


#: keyword arguments a manifest may give the allow-listed optimizers (torch.optim's own, less the
#: device flags ``foreach`` / ``fused`` / ``capturable`` / ``differentiable``); checked again against
#: the installed torch's signature on load (:func:`decode_policy_kwargs`)
OPTIMIZER_KWARGS: dict[str, frozenset[str]] = {
    "Adam": frozenset({"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"}),
    "AdamW": frozenset({"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"}),
    "RMSprop": frozenset({"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"}),
    "SGD": frozenset({"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"}),
}
#: keyword arguments of the allow-listed features extractors (besides ``observation_space``)
EXTRACTOR_KWARGS: dict[str, frozenset[str]] = {
    "FlattenExtractor": frozenset(),
    "NatureCNN": frozenset({"features_dim", "normalized_image"}),
    "CombinedExtractor": frozenset({"cnn_output_dim", "normalized_image"}),
}
#: the extractor a policy class uses when ``features_extractor_class`` is not given
DEFAULT_EXTRACTOR = {"Cnn": "NatureCNN", "MultiInput": "CombinedExtractor"}
#: optimizer kwargs that must be finite and >= 0
_NON_NEGATIVE = ("lr", "eps", "weight_decay", "momentum", "alpha", "dampening")


def _check_class_kwargs(spec: dict[str, Any], key: str, where: str, source: str) -> None:
    """``optimizer_kwargs`` / ``features_extractor_kwargs``: keys the class takes, values that make sense."""
    kwargs = spec["policy_kwargs"][key]
    if key == "optimizer_kwargs":
        cls = spec["policy_kwargs"].get("optimizer_class", "Adam")
        allowed = OPTIMIZER_KWARGS[cls]
    else:
        policy = spec["policy"]
        default = next((v for k, v in DEFAULT_EXTRACTOR.items() if policy.startswith(k)), "FlattenExtractor")
        cls = spec["policy_kwargs"].get("features_extractor_class", default)
        allowed = EXTRACTOR_KWARGS[cls]
    for k, v in kwargs.items():
        if k not in allowed:
            raise field_error(source, f"{where}.{k}", f"{cls} takes no argument {k!r} (it takes {sorted(allowed)})")
        if k in _NON_NEGATIVE and not (is_num(v) and v >= 0):
            raise field_error(source, f"{where}.{k}", f"expected a finite number >= 0, got {short(v)}")
        if k == "betas" and not (isinstance(v, list) and len(v) == 2 and all(is_num(b) and 0 <= b < 1 for b in v)):
            raise field_error(source, f"{where}.{k}", f"expected two numbers in [0, 1), got {short(v)}")
        if k in ("features_dim", "cnn_output_dim") and not (is_int(v) and 0 < v <= NET_WIDTH.value()):
            raise field_error(source, f"{where}.{k}", f"expected an integer in [1, {NET_WIDTH.text()}], got {short(v)}")


def check_sb3_meaning(spec: dict[str, Any], observation_space: Any, action_space: Any, where: str, source: str) -> None:
    """What SB3 would reject late, checked against the member's spaces: an image policy or extractor
    on a non-image space, a multi-input one on a non-Dict space, ``RolePolicy`` on anything but a 1-D Box,
    ``use_sde`` without Box actions."""
    import gymnasium as gym

    kwargs = spec["policy_kwargs"]
    policy = spec["policy"]
    default = next((v for k, v in DEFAULT_EXTRACTOR.items() if policy.startswith(k)), "FlattenExtractor")
    extractor = kwargs.get("features_extractor_class", default)
    if extractor == "NatureCNN" and not _is_image(observation_space, kwargs.get("normalize_images", True)):
        raise field_error(
            source,
            f"{where}.policy",
            f"{policy} (NatureCNN) needs an image observation space (a 3-d uint8 Box from 0 to 255, or any 3-d "
            f"Box with normalize_images false), got {short(observation_space)}; use MlpPolicy for vectors",
        )
    if policy == "RolePolicy" and not (
        isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1
    ):
        raise field_error(
            source,
            f"{where}.policy",
            f"RolePolicy needs a 1-D Box observation space ending in the role feature, got {short(observation_space)}",
        )
    if extractor == "CombinedExtractor" and not isinstance(observation_space, gym.spaces.Dict):
        raise field_error(
            source, f"{where}.policy", f"{policy} needs a Dict observation space, got {short(observation_space)}"
        )
    if spec["algo_kwargs"].get("use_sde") and not isinstance(action_space, gym.spaces.Box):
        raise field_error(
            source,
            f"{where}.algo_kwargs.use_sde",
            f"state-dependent exploration needs continuous (Box) actions, got {short(action_space)}; set it false",
        )


def _is_image(space: Any, normalize_images: Any) -> bool:
    """SB3's ``is_image_space`` (without importing SB3): a 3-d Box; uint8 in [0, 255] unless not normalized."""
    import gymnasium as gym
    import numpy as np

    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        return False
    if normalize_images is False:
        return True
    return space.dtype == np.uint8 and bool(np.all(space.low == 0)) and bool(np.all(space.high == 255))


# ---- names -> classes (imports torch / SB3) ------------------------------------------------------
def algo_class(algo: str) -> Any:
    """The SB3 (or sb3-contrib) algorithm class of an allow-listed name."""
    if algo not in SB3_ALGOS:  # manifests are validated before this; keep the invariant explicit
        raise PopulationError(f"unknown SB3 algorithm {algo!r}; allowed: {list(SB3_ALGOS)}")
    if algo == "PPO":
        from stable_baselines3 import PPO

        return PPO
    try:
        import sb3_contrib
    except ImportError:
        raise PopulationError(f"this member needs {algo} from sb3-contrib: pip install sb3-contrib") from None
    return getattr(sb3_contrib, algo)


def policy_names(algo: str) -> tuple[str, ...]:
    """The policy class names a member of ``algo`` may use: the algorithm's own aliases, then this library's."""
    return SB3_ALGOS[algo] + LIBRARY_POLICIES.get(algo, ())


def policy_class(algo: str, name: str) -> Any:
    """The policy class of an allow-listed name: from the algorithm's ``policy_aliases``, or a fixed class
    of this library (``"RolePolicy"``: :class:`rqe_wrappers.sb3.role_policy.RolePolicy`)."""
    if name not in policy_names(algo):  # manifests are validated before this; keep the invariant explicit
        raise PopulationError(f"unknown policy class {name!r} for {algo}; allowed: {list(policy_names(algo))}")
    if name == "RolePolicy":
        from rqe_wrappers.sb3.role_policy import RolePolicy

        return RolePolicy
    return algo_class(algo).policy_aliases[name]


def class_maps() -> dict[str, dict[str, Any]]:
    """Allow-listed names -> classes, for the policy_kwargs that name a class."""
    import torch.nn as nn
    import torch.optim as optim
    from stable_baselines3.common import torch_layers

    return {
        "activation_fn": {n: getattr(nn, n) for n in ACTIVATIONS},
        "features_extractor_class": {n: getattr(torch_layers, n) for n in FEATURES_EXTRACTORS},
        "optimizer_class": {n: getattr(optim, n) for n in OPTIMIZERS},
    }


def decode_policy_kwargs(policy_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON policy_kwargs (validated names) -> the keyword arguments SB3's policy class takes."""
    maps = class_maps()
    out = {}
    for k, v in policy_kwargs.items():
        out[k] = maps[k][v] if k in maps else v
    pairs = (
        ("optimizer_kwargs", "optimizer_class", "Adam"),
        ("features_extractor_kwargs", "features_extractor_class", None),
    )
    for key, cls_key, default in pairs:
        cls = out.get(cls_key) or (maps[cls_key][default] if default else None)
        if key in out and cls is not None:
            unknown = sorted(set(out[key]) - accepted_kwargs(cls))
            if unknown:
                raise PopulationError(
                    f"policy_kwargs.{key}: the installed {cls.__name__} takes no argument(s) {unknown}; "
                    "upgrade torch / stable-baselines3 or republish without them"
                )
    return out


def accepted_kwargs(cls: Any) -> set[str]:
    """The keyword arguments ``cls.__init__`` takes."""
    return set(inspect.signature(cls.__init__).parameters)
