"""The MiniGrid tables' interval statistics, against their definitions computed here."""

import itertools

import interval_stats as stats
import numpy as np
import pytest
from scipy.stats import beta, fisher_exact


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm([9, 0, 8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(np.mean([2, 3, 4, 5, 6, 7]))
    assert stats.iqm([0.0, 0.0, 0.0, 1.0]) == 0.0  # one cut from each end of 4
    assert stats.iqm([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 50.0]) == 1.0  # outliers are cut


def test_iqm_interval_is_reproducible_and_brackets_the_iqm():
    values = [0.96, 0.03, 0.09, 0.87, 0.09, 0.80, 0.5, 0.6, 0.1, 0.92]
    low, high = stats.iqm_interval(values)
    assert (low, high) == stats.iqm_interval(values)  # seeded
    assert low < stats.iqm(values) < high
    assert min(values) <= low and high <= max(values)
    assert stats.iqm_interval([0.4] * 5) == pytest.approx((0.4, 0.4))
    assert all(np.isnan(stats.iqm_interval([0.4])))  # one seed: no interval


def test_transfer_threshold_is_half_the_maximum_return():
    assert stats.transfers([0.5, 0.4999, 0.93, 0.0]) == 2


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (7, 20), (1, 3)])
def test_clopper_pearson_is_the_exact_beta_interval(k, n):
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert stats.clopper_pearson(k, n) == pytest.approx((low, high))


def test_probability_of_improvement_counts_pairs_and_half_the_ties():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 5).astype(float)
    pairs = list(itertools.product(x, y))
    expected = sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs)
    assert stats.probability_of_improvement(x, y) == pytest.approx(expected)
    assert stats.probability_of_improvement([1.0, 2.0], [0.0, 0.5]) == 1.0
    assert stats.probability_of_improvement([0.0, 0.5], [1.0, 2.0]) == 0.0


def test_improvement_interval_brackets_the_estimate():
    x, y = [0.9, 0.1, 0.8, 0.2, 0.7], [0.3, 0.2, 0.1, 0.6, 0.05]
    low, high = stats.improvement_interval(x, y)
    assert low < stats.probability_of_improvement(x, y) < high
    assert stats.improvement_interval([1.0, 2.0, 3.0], [0.0, 0.1]) == (1.0, 1.0)  # every resample


def test_boschloo_p_separates_only_what_the_seeds_can():
    assert stats.boschloo_p(10, 10, 0, 10) < 1e-4
    assert stats.boschloo_p(1, 3, 2, 3) > 0.05  # task 1's split at 3 seeds a row says nothing
    # Boschloo's test is more powerful than Fisher's: 3/3 against 0/3 is Fisher's p = 0.1
    assert stats.boschloo_p(3, 3, 0, 3) < fisher_exact([[3, 0], [0, 3]]).pvalue
    assert stats.boschloo_p(0, 10, 0, 10) == 1.0
    assert stats.boschloo_p(7, 10, 1, 10) == pytest.approx(stats.boschloo_p(1, 10, 7, 10))
    assert stats.boschloo_p(7, 10, 1, 10) < 0.05 < stats.boschloo_p(4, 10, 2, 10)
