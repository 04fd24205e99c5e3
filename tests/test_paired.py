"""The experiment's statistics: paired differences over seeds with a 95% t interval, against values worked out by
hand (t quantiles from a printed table of Student's t)."""

import pytest

from companion.core.statistics import (
    Finding,
    PairedDifference,
    paired_difference,
    t_quantile,
)


@pytest.mark.parametrize("df, table", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_the_t_quantile_matches_the_printed_table(df, table):
    assert round(t_quantile(0.975, df), 3) == table


def test_an_interval_that_contains_zero_by_hand():
    # Differences (b - a): 0.05, 0.02, 0.05. Mean 0.04; deviations 0.01, -0.02, 0.01, squares sum to 0.0006;
    # s^2 = 0.0006 / 2 = 0.0003, s = 0.0173205, s / sqrt(3) = 0.01; t_{0.975, 2} = 4.302653, so the half-width is
    # 0.0430265 and the interval -0.0030265 to 0.0830265: it contains zero.
    found = paired_difference([0.90, 0.92, 0.91], [0.95, 0.94, 0.96])
    assert found.n == 3 and found.mean == pytest.approx(0.04)
    assert found.low == pytest.approx(-0.0030265, abs=1e-6) and found.high == pytest.approx(0.0830265, abs=1e-6)
    assert found.finding is Finding.NO_DIFFERENCE


def test_an_interval_above_zero_by_hand():
    # Differences 0.05, 0.04, 0.06: mean 0.05, deviations 0, -0.01, 0.01, s^2 = 0.0002 / 2 = 0.0001, s = 0.01,
    # s / sqrt(3) = 0.0057735; half-width 4.302653 * 0.0057735 = 0.0248414: 0.0251586 to 0.0748414.
    found = paired_difference([0.90, 0.90, 0.90], [0.95, 0.94, 0.96])
    assert found.low == pytest.approx(0.0251586, abs=1e-6) and found.high == pytest.approx(0.0748414, abs=1e-6)
    assert found.finding is Finding.POSITIVE
    # In points, and the other way round (a - b): below zero.
    points = found.scaled(100)
    assert (points.mean, points.low, points.high) == pytest.approx((5.0, 2.51586, 7.48414), abs=1e-4)
    assert paired_difference([0.95, 0.94, 0.96], [0.90, 0.90, 0.90]).finding is Finding.NEGATIVE


def test_one_seed_has_no_interval():
    assert paired_difference([0.9], [0.95]) == PairedDifference(pytest.approx(0.05), None, None, 1)
    assert paired_difference([0.9], [0.95]).finding is Finding.ONE_SEED


def test_unpaired_values_are_refused():
    with pytest.raises(ValueError, match="as many values on each side"):
        paired_difference([0.9, 0.8], [0.95])
