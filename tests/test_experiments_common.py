"""The experiment drivers' shared input checks: every sweep takes its taus through one rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_taus


def test_check_taus_gives_floats_and_refuses_what_no_sweep_can_run():
    assert check_taus([0, 0.1, np.float32(1.0), np.int64(3)]) == (0.0, 0.1, 1.0, 3.0)
    for bad in ([-0.5], [math.inf], [math.nan], [True], ["1"]):
        with pytest.raises(ConfigError, match="tau must be finite and >= 0"):
            check_taus(bad)
    with pytest.raises(ConfigError, match="at least one value"):
        check_taus([])
    with pytest.raises(ConfigError, match="distinct"):
        check_taus([0.1, 0.1])  # two runs of one (tau, seed) would write one file


@pytest.mark.parametrize("sweep", ["cooking", "tag", "hanabi", "coordination"])
def test_every_sweep_refuses_a_repeated_tau(sweep):
    if sweep == "cooking":
        from rqe_wrappers.experiments.cooking import CookingSweep as Sweep
    elif sweep == "tag":
        from rqe_wrappers.experiments.tag import ShiftSweep as Sweep
    elif sweep == "hanabi":
        from rqe_wrappers.experiments.hanabi import HanabiSweep as Sweep
    else:
        from rqe_wrappers.experiments.coordination import CoordinationSweep as Sweep
    with pytest.raises(ConfigError, match="distinct"):
        Sweep(tau=(1.0, 1.0))
    with pytest.raises(ConfigError, match="tau must be finite and >= 0"):
        Sweep(tau=(0.0, -1.0))
