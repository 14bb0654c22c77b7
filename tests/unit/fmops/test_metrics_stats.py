"""fmops.metrics.stats: seeded bootstrap intervals, paired bootstrap test, McNemar (against scipy)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as sps

from fmops.metrics import (
    bootstrap_ci,
    bootstrap_cis,
    classification_report,
    mcnemar,
    mcnemar_from_counts,
    mean_of,
    paired_bootstrap_test,
)
from fmops.metrics.stats import quantile, resample_indices


def correctness(n: int, rate: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < rate) for _ in range(n)]


def test_same_seed_same_interval() -> None:
    values = correctness(300, 0.7, 0)
    first = bootstrap_ci(len(values), mean_of(values), resamples=300, seed=7)
    assert bootstrap_ci(len(values), mean_of(values), resamples=300, seed=7) == first
    assert bootstrap_ci(len(values), mean_of(values), resamples=300, seed=8) != first


def test_interval_contains_the_point_estimate() -> None:
    for seed in range(5):
        values = correctness(400, 0.3 + 0.1 * seed, seed)
        low, high = bootstrap_ci(len(values), mean_of(values), resamples=500, seed=seed)
        assert low < sum(values) / len(values) < high


def test_interval_shrinks_with_more_examples() -> None:
    small = correctness(100, 0.6, 1)
    large = correctness(4000, 0.6, 1)
    low_s, high_s = bootstrap_ci(len(small), mean_of(small), resamples=400)
    low_l, high_l = bootstrap_ci(len(large), mean_of(large), resamples=400)
    # The width goes as 1/sqrt(n): about 6x narrower here.
    assert (high_l - low_l) < (high_s - low_s) / 3


def test_percentiles_are_numpys_linear_quantiles() -> None:
    values = correctness(50, 0.5, 2)
    statistic = mean_of(values)
    resampled = [statistic(i) for i in resample_indices(len(values), 250, seed=3)]
    low, high = bootstrap_ci(len(values), statistic, resamples=250, seed=3, alpha=0.1)
    assert low == pytest.approx(float(np.quantile(resampled, 0.05)), abs=1e-12)
    assert high == pytest.approx(float(np.quantile(resampled, 0.95)), abs=1e-12)
    rng = random.Random(4)
    for size in (1, 2, 3, 10, 101):
        data = sorted(rng.random() for _ in range(size))
        for q in (0.0, 0.025, 0.5, 0.975, 1.0):
            assert quantile(data, q) == pytest.approx(float(np.quantile(data, q)), abs=1e-12)


def test_corpus_statistic_and_shared_resamples() -> None:
    rng = random.Random(5)
    y_true = [rng.choice("abc") for _ in range(150)]
    y_pred = [t if rng.random() < 0.6 else rng.choice("abc") for t in y_true]

    def macro_f1(indices: list[int]) -> float:
        return classification_report([y_true[i] for i in indices], [y_pred[i] for i in indices])["f1_macro"]

    acc = [float(t == p) for t, p in zip(y_true, y_pred, strict=True)]
    both = bootstrap_cis(len(y_true), {"f1": macro_f1, "accuracy": mean_of(acc)}, resamples=200, seed=9)
    assert both["f1"] == bootstrap_ci(len(y_true), macro_f1, resamples=200, seed=9)
    assert both["accuracy"] == bootstrap_ci(len(y_true), mean_of(acc), resamples=200, seed=9)
    low, high = both["f1"]
    assert low < macro_f1(list(range(len(y_true)))) < high


def test_bootstrap_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        bootstrap_ci(0, lambda i: 0.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci(3, lambda i: 0.0, resamples=0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(3, lambda i: 0.0, alpha=1.5)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(3, lambda i: math.nan, resamples=5)


def test_paired_bootstrap_test() -> None:
    a = correctness(300, 0.60, 10)
    b = [1.0 if x or random.Random(i).random() < 0.3 else 0.0 for i, x in enumerate(a)]  # B fixes ~30% of errors
    result = paired_bootstrap_test(len(a), mean_of(a), mean_of(b), resamples=500, seed=1)
    assert result.delta == pytest.approx(sum(b) / len(b) - sum(a) / len(a))
    assert result.p_value < 0.01
    assert 0 < result.low <= result.delta <= result.high
    assert paired_bootstrap_test(len(a), mean_of(a), mean_of(b), resamples=500, seed=1) == result
    # One-sided: swapping the systems gives "B is not better" almost surely; equal systems never beat each other.
    assert paired_bootstrap_test(len(a), mean_of(b), mean_of(a), resamples=500, seed=1).p_value > 0.99
    assert paired_bootstrap_test(len(a), mean_of(a), mean_of(a), resamples=100).p_value == 1.0


def scipy_mcnemar(b: int, c: int) -> float:
    n = b + c
    if n < 25:
        return 1.0 if n == 0 else float(sps.binomtest(min(b, c), n, 0.5).pvalue)
    return float(sps.chi2.sf(max(abs(b - c) - 1, 0) ** 2 / n, 1))


def test_mcnemar_matches_scipy() -> None:
    for b in range(60):
        for c in range(60):
            result = mcnemar_from_counts(b, c)
            assert result.method == ("exact" if b + c < 25 else "chi2")
            assert result.p_value == pytest.approx(scipy_mcnemar(b, c), rel=1e-9, abs=1e-15), (b, c)


def test_mcnemar_matches_statsmodels_when_installed() -> None:
    contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
    for b in range(60):
        for c in range(60):
            if b + c >= 25 and b == c:
                continue  # statsmodels does not clip |b - c| - 1 at 0 (documented in fmops.metrics.stats)
            exact = b + c < 25
            expected = contingency.mcnemar([[5, b], [c, 5]], exact=exact, correction=True).pvalue
            assert mcnemar_from_counts(b, c).p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mcnemar_counts_the_discordant_pairs() -> None:
    a = [True, True, False, False, True, False]
    b = [True, False, True, True, True, False]
    result = mcnemar(a, b)
    assert (result.b, result.c) == (1, 2)
    assert result.p_value == 1.0  # exact: 2 * P[X <= 1], X ~ Bin(3, 1/2) = 2 * 4/8
    with pytest.raises(ValueError, match="items"):
        mcnemar([True], [])
    with pytest.raises(ValueError, match="negative"):
        mcnemar_from_counts(-1, 3)
