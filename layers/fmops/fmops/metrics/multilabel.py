"""Multi-label metrics on lists of label lists, matching scikit-learn on the binarised indicator matrix.

Each sample is a list of labels (order and duplicates do not matter). The label universe is the sorted union of
every true and predicted label unless ``labels`` is given; labels outside a given universe are ignored (what
scikit-learn's ``MultiLabelBinarizer(classes=labels)`` does). ``zero_division`` behaves as in
:mod:`fmops.metrics.classification` (``"warn"`` gives 0.0, without a warning).

- subset accuracy: fraction of samples whose label set is predicted exactly;
- Hamming loss: wrong (sample, label) cells over ``samples x labels`` (0.0 when the universe is empty);
- micro: precision/recall/F1 of the summed counts; macro: mean over labels; weighted: weighted by support;
  samples: mean over samples of each sample's precision/recall/F1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Literal, TypedDict, TypeVar

from fmops.metrics.classification import (
    ZeroDivision,
    averages_from_counts,
    divide,
    nan_average,
    zero_division_value,
)

MultilabelAverage = Literal["micro", "macro", "weighted", "samples"]

L = TypeVar("L", bound=Hashable)


class MultilabelReport(TypedDict):
    labels: list[str]
    subset_accuracy: float
    hamming_loss: float
    precision_micro: float
    recall_micro: float
    f1_micro: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    precision_samples: float
    recall_samples: float
    f1_samples: float
    support: int


def _sets(
    y_true: Sequence[Iterable[L]], y_pred: Sequence[Iterable[L]], labels: Sequence[L] | None
) -> tuple[list[L], list[frozenset[L]], list[frozenset[L]]]:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items, y_pred {len(y_pred)}")
    if not y_true:
        raise ValueError("no samples")
    true_sets = [frozenset(t) for t in y_true]
    pred_sets = [frozenset(p) for p in y_pred]
    if labels is None:
        names: list[L] = sorted(frozenset().union(*true_sets, *pred_sets))  # type: ignore[type-var]
    else:
        names = list(labels)
        universe = frozenset(names)
        true_sets = [s & universe for s in true_sets]
        pred_sets = [s & universe for s in pred_sets]
    return names, true_sets, pred_sets


def _counts(
    names: Sequence[L], true_sets: Iterable[frozenset[L]], pred_sets: Iterable[frozenset[L]]
) -> tuple[list[int], list[int], list[int]]:
    tp: Counter[L] = Counter()
    predicted: Counter[L] = Counter()
    true: Counter[L] = Counter()
    for t, p in zip(true_sets, pred_sets, strict=True):
        true.update(t)
        predicted.update(p)
        tp.update(t & p)
    return [tp[n] for n in names], [predicted[n] for n in names], [true[n] for n in names]


def sample_scores(true_set: frozenset[L], pred_set: frozenset[L], zero: float) -> tuple[float, float, float]:
    """One sample's precision, recall and F1 (the terms of the ``samples`` average)."""
    tp = len(true_set & pred_set)
    return (
        divide(tp, len(pred_set), zero),
        divide(tp, len(true_set), zero),
        divide(2.0 * tp, len(true_set) + len(pred_set), zero),
    )


def _samples_average(
    true_sets: Sequence[frozenset[L]], pred_sets: Sequence[frozenset[L]], zero: float
) -> tuple[float, float, float]:
    scores = [sample_scores(t, p, zero) for t, p in zip(true_sets, pred_sets, strict=True)]
    return (
        nan_average([s[0] for s in scores]),
        nan_average([s[1] for s in scores]),
        nan_average([s[2] for s in scores]),
    )


def subset_accuracy(
    y_true: Sequence[Iterable[L]], y_pred: Sequence[Iterable[L]], labels: Sequence[L] | None = None
) -> float:
    """Fraction of samples whose predicted label set equals the true one."""
    _, true_sets, pred_sets = _sets(y_true, y_pred, labels)
    return sum(t == p for t, p in zip(true_sets, pred_sets, strict=True)) / len(true_sets)


def hamming_loss(
    y_true: Sequence[Iterable[L]], y_pred: Sequence[Iterable[L]], labels: Sequence[L] | None = None
) -> float:
    """Fraction of wrong (sample, label) decisions; 0.0 when there is no label at all."""
    names, true_sets, pred_sets = _sets(y_true, y_pred, labels)
    if not names:
        return 0.0
    wrong = sum(len(t ^ p) for t, p in zip(true_sets, pred_sets, strict=True))
    return wrong / (len(true_sets) * len(names))


def multilabel_precision_recall_f1(
    y_true: Sequence[Iterable[L]],
    y_pred: Sequence[Iterable[L]],
    average: MultilabelAverage = "micro",
    labels: Sequence[L] | None = None,
    zero_division: ZeroDivision = "warn",
) -> tuple[float, float, float]:
    """Averaged precision, recall and F1 (``average``: micro, macro, weighted or samples)."""
    if average not in ("micro", "macro", "weighted", "samples"):
        raise ValueError(f"average must be micro, macro, weighted or samples, not {average!r}")
    zero = zero_division_value(zero_division)
    names, true_sets, pred_sets = _sets(y_true, y_pred, labels)
    if average == "samples":
        return _samples_average(true_sets, pred_sets, zero)
    return averages_from_counts(*_counts(names, true_sets, pred_sets), zero)[average]


def multilabel_report(
    y_true: Sequence[Iterable[str]],
    y_pred: Sequence[Iterable[str]],
    labels: Sequence[str] | None = None,
    zero_division: ZeroDivision = "warn",
) -> MultilabelReport:
    """Every multi-label metric in one pass."""
    zero = zero_division_value(zero_division)
    names, true_sets, pred_sets = _sets(y_true, y_pred, labels)
    avg = averages_from_counts(*_counts(names, true_sets, pred_sets), zero)
    samples = _samples_average(true_sets, pred_sets, zero)
    n = len(true_sets)
    wrong = sum(len(t ^ p) for t, p in zip(true_sets, pred_sets, strict=True))
    return {
        "labels": names,
        "subset_accuracy": sum(t == p for t, p in zip(true_sets, pred_sets, strict=True)) / n,
        "hamming_loss": wrong / (n * len(names)) if names else 0.0,
        "precision_micro": avg["micro"][0],
        "recall_micro": avg["micro"][1],
        "f1_micro": avg["micro"][2],
        "precision_macro": avg["macro"][0],
        "recall_macro": avg["macro"][1],
        "f1_macro": avg["macro"][2],
        "precision_weighted": avg["weighted"][0],
        "recall_weighted": avg["weighted"][1],
        "f1_weighted": avg["weighted"][2],
        "precision_samples": samples[0],
        "recall_samples": samples[1],
        "f1_samples": samples[2],
        "support": n,
    }
