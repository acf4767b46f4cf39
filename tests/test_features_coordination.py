"""Seat identity lets IPPO free-ride on the coordination game; SRPO stays at the symmetric RQE."""

import pytest

from rqe_wrappers.experiments.coordination import CoordinationRun, learn_coordination


@pytest.mark.slow
@pytest.mark.parametrize(("tau", "kind"), [(0.0, "free-riding"), (2.0, "symmetric")])
def test_seat_identity_ippo_free_rides_srpo_symmetric(tau, kind):
    out = learn_coordination(CoordinationRun(tau=tau, eps=0.2, steps=120_000, seed=0, seat_id=True))
    assert out.gap < 0.05, (out.p_by_seat, out.nearest_rqe)
    low, high = sorted(out.nearest_rqe)
    if kind == "free-riding":
        assert high - low > 0.6  # 0.145 / 0.855: one seat collaborates, the other free-rides
    else:
        assert high == pytest.approx(low) and abs(out.p_by_seat[0] - out.p_by_seat[1]) < 0.05
