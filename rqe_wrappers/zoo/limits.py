"""Resource caps on what the zoo reads: JSON files, declared spaces, network sizes, downloads.

Each cap has a default and an environment variable that raises (or lowers) it; docs/security.md
("What the zoo trusts and checks") lists them. The values are read on every check, so a test or a
user can change them without re-importing anything.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from rqe_wrappers.errors import ConfigError


@dataclass(frozen=True)
class Cap:
    """One cap: its environment variable, default and unit (for messages)."""

    env: str
    default: float
    unit: str
    what: str

    def value(self) -> float:
        """The cap in force: ``$<env>`` if set (a finite number > 0), else the default."""
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            v = float(text)
        except ValueError:
            raise ConfigError(f"{self.env} must be a number ({self.unit}), got {text[:40]!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{self.env} must be a finite number > 0 ({self.unit}), got {text[:40]!r}")
        return v

    def int_value(self) -> int:
        return int(self.value())

    def text(self) -> str:
        """The cap in force, as ``"16 MiB"``."""
        v = self.value()
        number = str(int(v)) if v == int(v) else f"{v:g}"
        return f"{number} {self.unit}".strip()

    def hint(self) -> str:
        """What the cap is and how to raise it (for error messages)."""
        return f"the cap is {self.text()} ({self.what}); raise it with {self.env}=<n> if you trust the source"


MB = 1024 * 1024

#: the largest JSON file (manifest, index, recipe, SHA256SUMS) read
JSON_MB = Cap("RQE_ZOO_MAX_JSON_MB", 16, "MiB", "size of one zoo JSON file")
#: how deeply JSON arrays / objects may nest
JSON_DEPTH = Cap("RQE_ZOO_MAX_JSON_DEPTH", 64, "levels", "nesting depth of one zoo JSON file")
#: the total number of elements of every Box / MultiDiscrete / MultiBinary in one declared space
SPACE_ELEMENTS = Cap("RQE_ZOO_MAX_SPACE_ELEMENTS", 2**22, "elements", "elements of one declared space")
#: the largest ``n`` of a Discrete space, and of each MultiDiscrete entry (and |start|)
DISCRETE_N = Cap("RQE_ZOO_MAX_DISCRETE_N", 2**31 - 1, "", "largest Discrete n / MultiDiscrete entry / |start|")
#: how deeply Dict / Tuple spaces may nest
SPACE_DEPTH = Cap("RQE_ZOO_MAX_SPACE_DEPTH", 8, "levels", "Dict/Tuple nesting of one declared space")
#: the widest layer of an SB3 ``net_arch`` (and ``lstm_hidden_size``)
NET_WIDTH = Cap("RQE_ZOO_MAX_NET_WIDTH", 65536, "units", "width of one net_arch layer")
#: the most layers of an SB3 ``net_arch`` list (and ``n_lstm_layers``)
NET_DEPTH = Cap("RQE_ZOO_MAX_NET_DEPTH", 64, "layers", "layers of one net_arch list")
#: the most bytes one download may write (after gzip/deflate decoding), and the largest member file
DOWNLOAD_MB = Cap("RQE_ZOO_MAX_FILE_MB", 2048, "MiB", "decoded bytes of one downloaded or copied file")

ALL_CAPS = (JSON_MB, JSON_DEPTH, SPACE_ELEMENTS, DISCRETE_N, SPACE_DEPTH, NET_WIDTH, NET_DEPTH, DOWNLOAD_MB)
