"""Uncertainty and significance: seeded bootstrap intervals, a paired bootstrap test, McNemar's test.

Pure Python (``random.Random(seed)``), so the same seed gives the same numbers on every machine and in Lambda.

- :func:`bootstrap_ci`: percentile interval. Each resample draws ``n`` indices with replacement; the statistic gets
  the index list, so it can be a mean of per-example scores (:func:`mean_of`) or any corpus metric recomputed on
  the resampled examples (macro F1, perplexity...). The bounds are the ``alpha/2`` and ``1 - alpha/2`` quantiles
  of the resampled statistics, linearly interpolated (numpy's default ``"linear"`` method).
- :func:`bootstrap_cis`: several statistics on the same resamples (what :func:`bootstrap_ci` gives for each one
  separately with the same seed).
- :func:`paired_bootstrap_test`: Koehn (2004): both systems are scored on the same resampled examples; the
  p-value is ONE-SIDED, the fraction of resamples in which system B is not better than system A
  (``stat_b - stat_a <= 0``). Small values support "B is better than A".
- :func:`mcnemar`: paired correctness of two classifiers on the same examples, two-sided. With ``b`` examples only
  A gets right and ``c`` only B gets right: exact binomial test (``min(1, 2 P[X <= min(b, c)])``,
  ``X ~ Binomial(b + c, 1/2)``) when ``b + c < 25``, else the chi-square statistic with Edwards' continuity
  correction ``max(|b - c| - 1, 0)^2 / (b + c)`` on 1 degree of freedom. (statsmodels' ``mcnemar(exact=False)``
  does not clip ``|b - c| - 1`` at 0, so it differs from this only when ``b == c``, where this gives p = 1.)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

Statistic = Callable[[list[int]], float]

EXACT_BELOW = 25


class PairedBootstrapResult(NamedTuple):
    delta: float  # stat_b - stat_a on all examples
    p_value: float  # one-sided: fraction of resamples with stat_b - stat_a <= 0
    low: float  # percentile interval of stat_b - stat_a
    high: float


class McNemarResult(NamedTuple):
    b: int  # A right, B wrong
    c: int  # A wrong, B right
    statistic: float  # min(b, c) for the exact test, the corrected chi-square otherwise
    p_value: float  # two-sided
    method: str  # "exact" or "chi2"


def _check(n: int, resamples: int, alpha: float) -> None:
    if n < 1:
        raise ValueError("the bootstrap needs at least one example")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")


def resample_indices(n: int, resamples: int = 1000, seed: int = 0) -> Iterator[list[int]]:
    """``resamples`` lists of ``n`` indices in ``range(n)`` drawn with replacement (seeded)."""
    rng = random.Random(seed)
    population = range(n)
    for _ in range(resamples):
        yield rng.choices(population, k=n)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linearly interpolated quantile of sorted values (numpy's default method)."""
    position = (len(sorted_values) - 1) * q
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


def _interval(values: list[float], alpha: float, name: str) -> tuple[float, float]:
    if any(math.isnan(v) for v in values):
        raise ValueError(f"the statistic {name} returned NaN on a resample")
    values.sort()
    return quantile(values, alpha / 2), quantile(values, 1 - alpha / 2)


def bootstrap_cis(
    n: int,
    statistics: Mapping[str, Statistic],
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile ``1 - alpha`` intervals of several statistics, all computed on the same resamples.

    Raises:
        ValueError: ``n < 1``, ``resamples < 1``, ``alpha`` outside (0, 1), or a statistic returned NaN.
    """
    _check(n, resamples, alpha)
    values: dict[str, list[float]] = {name: [] for name in statistics}
    for indices in resample_indices(n, resamples, seed):
        for name, statistic in statistics.items():
            values[name].append(statistic(indices))
    return {name: _interval(v, alpha, name) for name, v in values.items()}


def bootstrap_ci(
    n: int, statistic: Statistic, resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile ``1 - alpha`` bootstrap interval ``(low, high)`` of ``statistic`` over ``n`` examples.

    ``statistic(indices)`` computes the metric on the examples at ``indices`` (duplicates included).
    """
    return bootstrap_cis(n, {"statistic": statistic}, resamples, seed, alpha)["statistic"]


def mean_of(values: Sequence[float], scale: float = 1.0) -> Statistic:
    """The statistic ``scale * mean(values[i] for i in indices)``."""
    getter = values.__getitem__
    if scale == 1.0:
        return lambda indices: sum(map(getter, indices)) / len(indices)
    return lambda indices: scale * sum(map(getter, indices)) / len(indices)


def paired_bootstrap_test(
    n: int,
    statistic_a: Statistic,
    statistic_b: Statistic,
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedBootstrapResult:
    """Koehn's paired bootstrap: is system B better than system A on the same ``n`` examples?

    Returns the observed difference ``B - A``, the one-sided p-value (fraction of resamples where B is not better,
    ``B - A <= 0``) and the percentile interval of the difference.
    """
    _check(n, resamples, alpha)
    everything = list(range(n))
    delta = statistic_b(everything) - statistic_a(everything)
    deltas = [statistic_b(i) - statistic_a(i) for i in resample_indices(n, resamples, seed)]
    not_better = sum(d <= 0 for d in deltas)
    low, high = _interval(deltas, alpha, "B - A")
    return PairedBootstrapResult(delta, not_better / resamples, low, high)


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemarResult:
    """McNemar's two-sided test of two classifiers' paired correctness (see the module docstring)."""
    if len(correct_a) != len(correct_b):
        raise ValueError(f"correct_a has {len(correct_a)} items, correct_b {len(correct_b)}")
    b = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if y and not x)
    return mcnemar_from_counts(b, c)


def mcnemar_from_counts(b: int, c: int) -> McNemarResult:
    """McNemar's test from the discordant counts ``b`` (only A right) and ``c`` (only B right)."""
    if b < 0 or c < 0:
        raise ValueError("counts must not be negative")
    discordant = b + c
    if discordant < EXACT_BELOW:
        k = min(b, c)
        tail = sum(math.comb(discordant, i) for i in range(k + 1))
        return McNemarResult(b, c, float(k), min(1.0, 2 * tail / 2**discordant), "exact")
    statistic = max(abs(b - c) - 1, 0) ** 2 / discordant
    # Survival function of chi-square with 1 degree of freedom.
    return McNemarResult(b, c, statistic, math.erfc(math.sqrt(statistic / 2)), "chi2")
