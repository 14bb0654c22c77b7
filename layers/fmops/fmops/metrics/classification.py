"""Accuracy, per-class precision/recall/F1, macro/weighted/micro averages, confusion matrix.

Definitions follow scikit-learn's ``precision_recall_fscore_support``:

- labels default to the sorted union of the true and predicted labels; with explicit ``labels`` the per-class
  counts still see every sample (a prediction of a listed label counts even when the true label is not listed),
  and micro averages sum the counts of the listed labels only;
- F1 is ``2 tp / (true + predicted)`` (scikit-learn's formula, not the harmonic mean of rounded ratios);
- ``zero_division`` is what an undefined ratio (a 0 denominator) becomes: ``"warn"`` (the default) gives 0.0
  like scikit-learn, but without the warning; ``0.0`` / ``1.0`` give that value; ``nan`` gives NaN, which the
  averages then skip (scikit-learn's ``_nanaverage``). Weighted averages weight by support; when every listed
  label has support 0 they fall back to the plain mean, as scikit-learn does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Literal, TypedDict, TypeVar

Average = Literal["macro", "weighted", "micro"]
ZeroDivision = Literal["warn"] | float

L = TypeVar("L", bound=Hashable)


class ClassScores(TypedDict):
    precision: float
    recall: float
    f1: float
    support: int


class ClassificationReport(TypedDict):
    labels: list[str]
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    precision_micro: float
    recall_micro: float
    f1_micro: float
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]]
    support: int


def zero_division_value(zero_division: ZeroDivision) -> float:
    """The value an undefined ratio takes (scikit-learn's ``_check_zero_division``).

    Raises:
        ValueError: anything but ``"warn"``, 0, 1 or NaN.
    """
    if isinstance(zero_division, str):
        if zero_division == "warn":
            return 0.0
    elif isinstance(zero_division, int | float) and not isinstance(zero_division, bool):
        if zero_division in (0, 1):
            return float(zero_division)
        if math.isnan(zero_division):
            return math.nan
    raise ValueError(f'zero_division must be "warn", 0.0, 1.0 or nan, not {zero_division!r}')


def _check(y_true: Sequence[object], y_pred: Sequence[object]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items, y_pred {len(y_pred)}")
    if not y_true:
        raise ValueError("no samples")


def _labels(y_true: Sequence[L], y_pred: Sequence[L], labels: Sequence[L] | None) -> list[L]:
    return list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))  # type: ignore[type-var]


def divide(numerator: float, denominator: float, zero: float) -> float:
    """``numerator / denominator``, or ``zero`` when the denominator is 0."""
    return numerator / denominator if denominator else zero


def nan_average(values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Mean (weighted when ``weights``) skipping NaN; NaN when empty or all NaN; plain mean when weights sum to 0."""
    kept = [(v, 1.0 if weights is None else weights[i]) for i, v in enumerate(values) if not math.isnan(v)]
    if not kept:
        return math.nan
    total_weight = sum(w for _, w in kept)
    if weights is None or not total_weight:
        return sum(v for v, _ in kept) / len(kept)
    return sum(v * w for v, w in kept) / total_weight


def prf_from_counts(
    tp: Sequence[int], predicted: Sequence[int], true: Sequence[int], zero: float
) -> tuple[list[float], list[float], list[float]]:
    """Per-label precision, recall, F1 from true-positive, predicted and true counts."""
    precision = [divide(t, p, zero) for t, p in zip(tp, predicted, strict=True)]
    recall = [divide(t, s, zero) for t, s in zip(tp, true, strict=True)]
    f1 = [divide(2.0 * t, s + p, zero) for t, p, s in zip(tp, predicted, true, strict=True)]
    return precision, recall, f1


def averages_from_counts(
    tp: Sequence[int], predicted: Sequence[int], true: Sequence[int], zero: float
) -> dict[Average, tuple[float, float, float]]:
    """Macro, weighted and micro (precision, recall, F1) from per-label counts (scikit-learn's rules)."""
    precision, recall, f1 = prf_from_counts(tp, predicted, true, zero)
    macro = (nan_average(precision), nan_average(recall), nan_average(f1))
    weighted = (nan_average(precision, true), nan_average(recall, true), nan_average(f1, true))
    tp_all, predicted_all, true_all = sum(tp), sum(predicted), sum(true)
    micro = (
        divide(tp_all, predicted_all, zero),
        divide(tp_all, true_all, zero),
        divide(2.0 * tp_all, true_all + predicted_all, zero),
    )
    return {"macro": macro, "weighted": weighted, "micro": micro}


def label_counts(
    y_true: Iterable[L], y_pred: Iterable[L], names: Sequence[L]
) -> tuple[list[int], list[int], list[int]]:
    """``(tp, predicted, true)`` per label of ``names``, counted over every sample."""
    true_counts: Counter[L] = Counter()
    pred_counts: Counter[L] = Counter()
    tp_counts: Counter[L] = Counter()
    for t, p in zip(y_true, y_pred, strict=True):
        true_counts[t] += 1
        pred_counts[p] += 1
        if t == p:
            tp_counts[t] += 1
    return [tp_counts[n] for n in names], [pred_counts[n] for n in names], [true_counts[n] for n in names]


def accuracy(y_true: Sequence[L], y_pred: Sequence[L]) -> float:
    """Fraction of exact matches."""
    _check(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def confusion_matrix(y_true: Sequence[L], y_pred: Sequence[L], labels: Sequence[L] | None = None) -> list[list[int]]:
    """``matrix[i][j]``: samples of true label ``labels[i]`` predicted as ``labels[j]``.

    Samples whose true or predicted label is not in ``labels`` are left out (as in scikit-learn).
    """
    _check(y_true, y_pred)
    names = _labels(y_true, y_pred, labels)
    index = {label: i for i, label in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    return matrix


def per_class_scores(
    y_true: Sequence[L],
    y_pred: Sequence[L],
    labels: Sequence[L] | None = None,
    zero_division: ZeroDivision = "warn",
) -> dict[L, ClassScores]:
    """Precision, recall, F1 and support of each label."""
    _check(y_true, y_pred)
    zero = zero_division_value(zero_division)
    names = _labels(y_true, y_pred, labels)
    tp, predicted, true = label_counts(y_true, y_pred, names)
    precision, recall, f1 = prf_from_counts(tp, predicted, true, zero)
    return {
        name: {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": true[i]}
        for i, name in enumerate(names)
    }


def precision_recall_f1(
    y_true: Sequence[L],
    y_pred: Sequence[L],
    average: Average = "macro",
    labels: Sequence[L] | None = None,
    zero_division: ZeroDivision = "warn",
) -> tuple[float, float, float]:
    """Averaged precision, recall and F1 (``average``: macro, weighted or micro)."""
    if average not in ("macro", "weighted", "micro"):
        raise ValueError(f"average must be macro, weighted or micro, not {average!r}")
    _check(y_true, y_pred)
    zero = zero_division_value(zero_division)
    names = _labels(y_true, y_pred, labels)
    return averages_from_counts(*label_counts(y_true, y_pred, names), zero)[average]


def classification_report(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str] | None = None,
    zero_division: ZeroDivision = "warn",
) -> ClassificationReport:
    """Every metric above in one pass over the data."""
    _check(y_true, y_pred)
    zero = zero_division_value(zero_division)
    names = _labels(y_true, y_pred, labels)
    tp, predicted, true = label_counts(y_true, y_pred, names)
    precision, recall, f1 = prf_from_counts(tp, predicted, true, zero)
    avg = averages_from_counts(tp, predicted, true, zero)
    return {
        "labels": names,
        "accuracy": accuracy(y_true, y_pred),
        "precision_macro": avg["macro"][0],
        "recall_macro": avg["macro"][1],
        "f1_macro": avg["macro"][2],
        "precision_weighted": avg["weighted"][0],
        "recall_weighted": avg["weighted"][1],
        "f1_weighted": avg["weighted"][2],
        "precision_micro": avg["micro"][0],
        "recall_micro": avg["micro"][1],
        "f1_micro": avg["micro"][2],
        "per_class": {
            name: {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": true[i]}
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, names),
        "support": len(y_true),
    }
