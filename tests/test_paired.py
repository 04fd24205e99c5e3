"""The experiment's statistics: paired differences over seeds with a 95% t interval, against values worked out by
hand (t quantiles from a printed table of Student's t)."""

import pytest

from companion.core.statistics import (
    Finding,
    PairedDifference,
    detectable_difference,
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


@pytest.mark.parametrize("df, table", [(2, 1.061), (3, 0.978), (4, 0.941), (9, 0.883)])
def test_the_80_percent_t_quantile_matches_the_printed_table(df, table):
    assert round(t_quantile(0.8, df), 3) == table


def test_the_difference_a_paired_experiment_detects_by_hand():
    """Differences 5, 4, 6 points: s = 1.0 (as above, in points). With 3 pairs, a true difference is detected 80% of
    the time from (t_{0.975, 2} + t_{0.8, 2}) * s / sqrt(3) = (4.302653 + 1.060660) / 1.732051 = 3.0965 points.
    For 2 points: 4 pairs give (3.182446 + 0.978472) / 2 = 2.0805, too many; 5 give (2.776445 + 0.940965) / 2.236068
    = 1.6625: 5 pairs."""
    found = paired_difference([0.90, 0.90, 0.90], [0.95, 0.94, 0.96]).scaled(100)
    assert found.sd == pytest.approx(1.0)
    assert found.detectable() == pytest.approx(3.0965, abs=1e-4)
    assert detectable_difference(1.0, 4) == pytest.approx(2.0805, abs=1e-4)
    assert found.pairs_needed(2.0) == 5 and found.pairs_needed(3.1) == 3
    # Seeds that all agree: any difference at all is detected; one seed: no power to speak of.
    agreed = paired_difference([0.9, 0.9], [0.95, 0.95])
    assert agreed.detectable() == 0.0 and agreed.pairs_needed(2.0) == 2
    assert paired_difference([0.9], [0.95]).detectable() is None
    with pytest.raises(ValueError, match="at least 2 pairs"):
        detectable_difference(1.0, 1)
