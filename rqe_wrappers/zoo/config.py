"""Where the zoo is and how to reach it: the ``RQE_ZOO_*`` variables, the config file, URL forms.

docs/zoo.md ("The client") lists the variables and their defaults.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlparse

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.zoo.limits import DOWNLOAD_MB, MB

ENV_URL = "RQE_ZOO_URL"
ENV_CACHE = "RQE_ZOO_CACHE"
ENV_OFFLINE = "RQE_ZOO_OFFLINE"
ENV_TIMEOUT = "RQE_ZOO_TIMEOUT"
ENV_CONFIG = "RQE_ZOO_CONFIG"
DEFAULT_TIMEOUT = 30.0

ENV_MAX_FILE_MB = DOWNLOAD_MB.env
DEFAULT_MAX_FILE_MB = float(DOWNLOAD_MB.default)
#: the directory name, inside this package, of the populations the wheel ships (docs/zoo.md, "The bundled zoo")
BUNDLED_DIR = "_populations"


def checkout_populations() -> Path | None:
    """The ``populations/`` folder of the source checkout this package runs from, if there is one."""
    import rqe_wrappers

    checkout = Path(rqe_wrappers.__file__).resolve().parent.parent
    candidate = checkout / "populations"
    is_checkout = (checkout / "pyproject.toml").is_file() and (candidate / "index.json").is_file()
    return candidate if is_checkout else None


def bundled_populations() -> Path | None:
    """The populations shipped inside the installed wheel (``rqe_wrappers/zoo/_populations/``), if any.

    The wheel build copies the checkout's ``populations/`` there (pyproject.toml's package data), so
    an installed package has the published populations without a network or a checkout.
    """
    candidate = Path(__file__).resolve().parent / BUNDLED_DIR
    return candidate if (candidate / "index.json").is_file() else None


def config_path() -> Path:
    """``$RQE_ZOO_CONFIG``, else ``platformdirs.user_config_dir("rqe-wrappers")/zoo.toml``."""
    env = os.environ.get(ENV_CONFIG, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("rqe-wrappers")) / "zoo.toml"


def config_url() -> str | None:
    """The ``url = "..."`` entry of the zoo config file, if the file exists (TOML, read as data)."""
    path = config_path()
    if not path.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(
            f'zoo config {path}: not valid TOML ({e}); expected a line like url = "https://..."'
        ) from None
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"zoo config {path}: 'url' must be a string, got {type(url).__name__}")
    return url.strip() or None if url else None


def default_url() -> str | None:
    """``$RQE_ZOO_URL``, else the config file's ``url``, else the checkout's ``populations/``, else the
    populations bundled in the wheel, else ``None``."""
    url = os.environ.get(ENV_URL, "").strip() or config_url()
    if url:
        return normalize_url(url)
    local = checkout_populations() or bundled_populations()
    return local.as_uri() if local else None


def is_local_url(url: str | None) -> bool:
    """Whether ``url`` is a ``file://`` zoo (reading it uses no network, so offline mode allows it)."""
    return url is not None and urlparse(url).scheme == "file"


def normalize_url(url: str | os.PathLike) -> str:
    """Local paths become file:// URLs; http(s):// and file:// pass through (without a trailing slash)."""
    text = os.fspath(url).strip()
    scheme = urlparse(text).scheme.lower()
    if scheme in ("http", "https", "file"):
        return text.rstrip("/")
    if scheme and len(scheme) > 1:  # (one letter: a Windows drive)
        raise ConfigError(f"zoo URL {text!r}: use http(s)://, file:// or a local directory")
    return Path(text).expanduser().resolve().as_uri()


def default_cache_dir() -> Path:
    """``$RQE_ZOO_CACHE``, else ``platformdirs.user_cache_dir("rqe-wrappers")/zoo``."""
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rqe-wrappers")) / "zoo"


def offline_from_env() -> bool:
    """Whether ``$RQE_ZOO_OFFLINE`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def timeout_from_env() -> float:
    """``$RQE_ZOO_TIMEOUT`` in seconds (a finite number > 0), else :data:`DEFAULT_TIMEOUT`."""
    text = os.environ.get(ENV_TIMEOUT, "").strip() or str(DEFAULT_TIMEOUT)
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{ENV_TIMEOUT} must be a number of seconds, got {text[:40]!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"{ENV_TIMEOUT} must be a finite number of seconds > 0 (the total per request), got {text[:40]!r}"
        )
    return value


def max_file_bytes_from_env() -> int:
    """``$RQE_ZOO_MAX_FILE_MB`` (default 2048) in bytes: the largest member file a download accepts."""
    return int(DOWNLOAD_MB.value() * MB)
