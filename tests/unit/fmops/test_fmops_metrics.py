"""Pure-Python metrics against scikit-learn (installed for tests only)."""

from __future__ import annotations

import random

import pytest
from sklearn import metrics as skm

from fmops.metrics import accuracy, classification_report, confusion_matrix, precision_recall_f1

CASES = [
    (["a", "b", "a", "c", "b", "a"], ["a", "b", "b", "c", "a", "a"]),
    (["x", "x", "y", "y"], ["x", "x", "x", "x"]),  # a class never predicted
    (["x", "x", "y"], ["x", "z", "y"]),  # a label only predicted
]


def random_case(seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    labels = ["neg", "neu", "pos", "other"]
    y_true = [rng.choice(labels) for _ in range(200)]
    y_pred = [t if rng.random() < 0.7 else rng.choice(labels) for t in y_true]
    return y_true, y_pred


@pytest.mark.parametrize("case", [*CASES, random_case(1), random_case(2)])
def test_matches_sklearn(case: tuple[list[str], list[str]]) -> None:
    y_true, y_pred = case
    report = classification_report(y_true, y_pred)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        assert report[f"precision_{average}"] == pytest.approx(p)  # type: ignore[literal-required]
        assert report[f"recall_{average}"] == pytest.approx(r)  # type: ignore[literal-required]
        assert report[f"f1_{average}"] == pytest.approx(f)  # type: ignore[literal-required]
        assert precision_recall_f1(y_true, y_pred, average) == pytest.approx((p, r, f))  # type: ignore[arg-type]
    labels = sorted(set(y_true) | set(y_pred))
    assert confusion_matrix(y_true, y_pred) == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        scores = report["per_class"][label]
        assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert scores["support"] == s[i]


def test_explicit_labels_order_the_matrix() -> None:
    assert confusion_matrix(["a", "b"], ["b", "b"], labels=["b", "a"]) == [[1, 0], [1, 0]]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="2 items"):
        accuracy(["a", "b"], ["a"])
