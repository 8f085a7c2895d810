"""Interval statistics over seeds for the MiniGrid tables (docs/results.md#how-the-minigrid-tables-decide).

A row is a set of independent runs (seeds) of one model; each run gives one number per
environment (its mean return over the evaluation episodes). The statistics, fixed before
the 10- and 20-seed runs:

* the interquartile mean (IQM: the mean of the middle half of the seeds) with a 95%
  percentile-bootstrap interval, seeds resampled with replacement (stratified by
  environment: each environment's seeds are resampled on their own);
* how many seeds *transfer* (mean return >= ``TRANSFER_THRESHOLD``, half the maximum
  return of 1) with its exact Clopper-Pearson 95% interval;
* RIM against LSTM: the probability of improvement P(RIM seed > LSTM seed), ties counted
  half, with a bootstrap interval that resamples both rows' seeds; and Boschloo's exact
  test (two-sided) on the 2x2 table of transfer counts.

Every bootstrap draws from its own generator seeded with ``BOOTSTRAP_SEED``, so an
interval depends only on its data and is the same on every run of the script.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

TRANSFER_THRESHOLD = 0.5  # half the maximum return (1 - 0.9 * steps / max_steps < 1)
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean: the mean of the values left after cutting the lowest and the
    highest ``floor(n / 4)`` (scipy's ``trim_mean(values, 0.25)``, as rliable computes it)."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def _percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _resample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``BOOTSTRAP_SAMPLES`` resamples of ``values`` with replacement, one per row."""
    return values[rng.integers(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))]


def iqm_interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the IQM of one row's seeds on one environment."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    samples = stats.trim_mean(_resample(values, np.random.default_rng(BOOTSTRAP_SEED)), 0.25, axis=1)
    return _percentile_interval(samples)


def transfers(values: Sequence[float]) -> int:
    """How many seeds transfer: mean return at least ``TRANSFER_THRESHOLD``."""
    return int(sum(v >= TRANSFER_THRESHOLD for v in values))


def clopper_pearson(successes: int, n: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) 95% interval of a binomial proportion."""
    if n == 0:
        return float("nan"), float("nan")
    interval = stats.binomtest(successes, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return float(interval.low), float(interval.high)


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) + P(X = Y) / 2 for a seed X of one row and a seed Y of the other: the
    Mann-Whitney U statistic over all pairs, divided by the number of pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(_pairwise_improvement(x[None], y[None])[0])


def _pairwise_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise probability of improvement for (samples, n) and (samples, m) arrays."""
    greater = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    equal = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return greater + equal / 2


def improvement_interval(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """The 95% bootstrap interval of :func:`probability_of_improvement`, each row's seeds
    resampled on their own."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    return _percentile_interval(_pairwise_improvement(_resample(x, rng), _resample(y, rng)))


def boschloo_p(successes_x: int, n_x: int, successes_y: int, n_y: int) -> float:
    """Two-sided p-value of Boschloo's exact test that two rows transfer equally often.
    With no seed transferring, or every seed, in both rows the data say nothing: p = 1."""
    if successes_x + successes_y in (0, n_x + n_y):
        return 1.0
    table = [[successes_x, n_x - successes_x], [successes_y, n_y - successes_y]]
    return float(stats.boschloo_exact(table, alternative="two-sided").pvalue)
