"""SB3 policy specs: the allow-lists of names a manifest may use, their check, and names -> classes.

An sb3 member's spec names its algorithm, policy class and classes inside ``policy_kwargs`` by
*name*; the names are checked here against fixed tables and resolved from SB3's own
``policy_aliases``, ``torch.nn``, ``torch.optim`` and ``stable_baselines3.common.torch_layers``.
Nothing from a file is ever imported. torch and SB3 load only when a class is looked up.
docs/zoo.md ("SB3 members") lists the names.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from rqe_wrappers.errors import PopulationError
from rqe_wrappers.zoo.schema import (
    BOOL,
    INT,
    NUM,
    NUM_OR_NULL,
    POS_INT,
    STR_OR_NULL,
    Check,
    ObjectReader,
    field_error,
    is_int,
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
ACTIVATIONS = ("Tanh", "ReLU", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Identity")
FEATURES_EXTRACTORS = ("FlattenExtractor", "NatureCNN", "CombinedExtractor")
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")


def _check_net_arch(x: Any) -> str | None:
    def ints(v: Any) -> bool:
        return isinstance(v, list) and all(is_int(i) and i > 0 for i in v)

    if ints(x):
        return None
    if isinstance(x, dict) and set(x) <= {"pi", "vf", "qf"} and all(ints(v) for v in x.values()):
        return None
    return "expected a list of layer sizes or {'pi': [...], 'vf': [...]}"


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
    "lstm_hidden_size": POS_INT,
    "n_lstm_layers": POS_INT,
    "shared_lstm": BOOL,
    "enable_critic_lstm": BOOL,
    "lstm_kwargs": scalar_dict,
}

#: algorithm constructor arguments kept so that ``to_sb3()`` can continue training as before
ALGO_KWARGS: dict[str, Check] = {
    "learning_rate": NUM,
    "n_steps": POS_INT,
    "batch_size": POS_INT,
    "n_epochs": POS_INT,
    "gamma": NUM,
    "gae_lambda": NUM,
    "clip_range": NUM,
    "clip_range_vf": NUM_OR_NULL,
    "normalize_advantage": BOOL,
    "ent_coef": NUM,
    "vf_coef": NUM,
    "max_grad_norm": NUM,
    "use_sde": BOOL,
    "sde_sample_freq": INT,
    "target_kl": NUM_OR_NULL,
    "stats_window_size": POS_INT,
}


def check_sb3_spec(data: Any, where: str, source: str) -> dict[str, Any]:
    """Validate an SB3 policy spec against the allow-lists; return it as a plain dict."""
    r = ObjectReader(data, where, source)
    algo = r.get("algo", one_of(tuple(SB3_ALGOS)))
    policy = r.get("policy", one_of(SB3_ALGOS[algo]))
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
    return spec


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
    return out


def accepted_kwargs(cls: Any) -> set[str]:
    """The keyword arguments ``cls.__init__`` takes."""
    return set(inspect.signature(cls.__init__).parameters)
