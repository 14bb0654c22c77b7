"""Accuracy, per-class precision/recall/F1, macro/weighted/micro averages, confusion matrix.

Definitions follow scikit-learn (``zero_division=0``): labels default to the sorted union of the true
and predicted labels; a class with no prediction has precision 0, a class with no support recall 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypedDict

Average = Literal["macro", "weighted", "micro"]


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


def _check(y_true: Sequence[str], y_pred: Sequence[str]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items, y_pred {len(y_pred)}")
    if not y_true:
        raise ValueError("no samples")


def _labels(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None) -> list[str]:
    return list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))


def _div(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _div(2 * precision * recall, precision + recall)


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Fraction of exact matches."""
    _check(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> list[list[int]]:
    """``matrix[i][j]``: samples of true label ``labels[i]`` predicted as ``labels[j]``."""
    _check(y_true, y_pred)
    names = _labels(y_true, y_pred, labels)
    index = {label: i for i, label in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    return matrix


def _per_class(matrix: list[list[int]], names: list[str]) -> dict[str, ClassScores]:
    scores: dict[str, ClassScores] = {}
    for i, label in enumerate(names):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = _div(tp, predicted)
        recall = _div(tp, support)
        scores[label] = {"precision": precision, "recall": recall, "f1": _f1(precision, recall), "support": support}
    return scores


def precision_recall_f1(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    average: Average = "macro",
    labels: Sequence[str] | None = None,
) -> tuple[float, float, float]:
    """Averaged precision, recall and F1."""
    names = _labels(y_true, y_pred, labels)
    matrix = confusion_matrix(y_true, y_pred, names)
    return _averages(matrix, names, _per_class(matrix, names))[average]


def _averages(
    matrix: list[list[int]], names: list[str], per_class: dict[str, ClassScores]
) -> dict[Average, tuple[float, float, float]]:
    count = len(names)
    total_support = sum(s["support"] for s in per_class.values())
    scores = list(per_class.values())
    columns = [
        [s["precision"] for s in scores],
        [s["recall"] for s in scores],
        [s["f1"] for s in scores],
    ]
    supports = [s["support"] for s in scores]
    macro = [_div(sum(column), count) for column in columns]
    weighted = [_div(sum(v * n for v, n in zip(column, supports, strict=True)), total_support) for column in columns]
    tp = sum(matrix[i][i] for i in range(count))
    predicted = sum(sum(row) for row in matrix)
    micro_p = _div(tp, predicted)
    micro_r = _div(tp, total_support)
    return {
        "macro": (macro[0], macro[1], macro[2]),
        "weighted": (weighted[0], weighted[1], weighted[2]),
        "micro": (micro_p, micro_r, _f1(micro_p, micro_r)),
    }


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> ClassificationReport:
    """Every metric above in one pass over the confusion matrix."""
    names = _labels(y_true, y_pred, labels)
    matrix = confusion_matrix(y_true, y_pred, names)
    per_class = _per_class(matrix, names)
    avg = _averages(matrix, names, per_class)
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
        "per_class": per_class,
        "confusion_matrix": matrix,
        "support": len(y_true),
    }
