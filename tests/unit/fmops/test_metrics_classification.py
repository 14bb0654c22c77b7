"""fmops.metrics.classification against scikit-learn (installed for tests only), to 1e-12."""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import pytest
from sklearn import metrics as skm

from fmops.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    per_class_scores,
    precision_recall_f1,
)

TOL = 1e-12
ZERO_DIVISIONS: tuple[Any, ...] = ("warn", 0.0, 1.0, math.nan)


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


def sk_prf(
    y_true: list[str], y_pred: list[str], average: str | None, labels: list[str] | None, zero_division: Any
) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning under zero_division="warn"
        return skm.precision_recall_fscore_support(
            y_true, y_pred, average=average, labels=labels, zero_division=zero_division
        )


def random_case(seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    classes = [f"c{i}" for i in range(rng.randint(1, 7))]
    extra = ["only-predicted", "also-predicted"]
    n = rng.randint(1, 300)
    y_true = [rng.choice(classes) for _ in range(n)]
    accuracy_target = rng.random()
    y_pred = [t if rng.random() < accuracy_target else rng.choice(classes + extra[: rng.randint(0, 2)]) for t in y_true]
    return y_true, y_pred


EDGE_CASES = [
    (["a"], ["a"]),  # one sample, one class
    (["a", "a", "a"], ["a", "a", "a"]),  # single class, all right
    (["a", "a", "a"], ["b", "b", "b"]),  # all wrong, the predicted class never true
    (["a", "b", "c"], ["b", "c", "a"]),  # all wrong, every class
    (["x", "x", "y", "y"], ["x", "x", "x", "x"]),  # a class never predicted
    (["x", "x", "y"], ["x", "z", "y"]),  # a label only predicted
    (["é", "日本", "é"], ["日本", "日本", "é"]),  # unicode labels
]


def check_against_sklearn(y_true: list[str], y_pred: list[str], labels: list[str] | None, zero_division: Any) -> None:
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = sk_prf(y_true, y_pred, average, labels, zero_division)
        ours = precision_recall_f1(y_true, y_pred, average, labels, zero_division)
        assert all(close(a, b) for a, b in zip(ours, (p, r, f), strict=True)), (average, ours, (p, r, f))
    names = labels if labels is not None else sorted(set(y_true) | set(y_pred))
    p, r, f, s = sk_prf(y_true, y_pred, None, names, zero_division)
    scores = per_class_scores(y_true, y_pred, labels, zero_division)
    assert list(scores) == names
    for i, label in enumerate(names):
        ours_i = scores[label]
        assert close(ours_i["precision"], p[i]) and close(ours_i["recall"], r[i]) and close(ours_i["f1"], f[i])
        assert ours_i["support"] == s[i]


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_sklearn(seed: int) -> None:
    y_true, y_pred = random_case(seed)
    zero_division = ZERO_DIVISIONS[seed % len(ZERO_DIVISIONS)]
    check_against_sklearn(y_true, y_pred, None, zero_division)
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=TOL)
    names = sorted(set(y_true) | set(y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "A single label was found"
        assert confusion_matrix(y_true, y_pred) == skm.confusion_matrix(y_true, y_pred, labels=names).tolist()
    report = classification_report(y_true, y_pred, zero_division=zero_division)
    for average in ("macro", "weighted", "micro"):
        expected = sk_prf(y_true, y_pred, average, None, zero_division)
        for key, value in zip(("precision", "recall", "f1"), expected[:3], strict=False):
            assert close(report[f"{key}_{average}"], value)  # type: ignore[literal-required]


@pytest.mark.parametrize("case", EDGE_CASES)
@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS)
def test_edge_cases_match_sklearn(case: tuple[list[str], list[str]], zero_division: Any) -> None:
    y_true, y_pred = case
    check_against_sklearn(y_true, y_pred, None, zero_division)
    assert accuracy(y_true, y_pred) == skm.accuracy_score(y_true, y_pred)


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS)
@pytest.mark.parametrize(
    "labels",
    [
        ["a", "b", "c", "absent"],  # a label with no sample: undefined precision and recall
        ["b"],  # a subset: predictions of "b" count even when the true label is not listed
        ["absent", "missing"],  # no listed label occurs: weighted falls back to the plain mean
        ["c", "a"],  # order given by the caller
    ],
)
def test_explicit_labels_and_zero_division_match_sklearn(labels: list[str], zero_division: Any) -> None:
    y_true = ["a", "a", "b", "c", "c", "c", "a"]
    y_pred = ["a", "b", "b", "a", "c", "b", "z"]
    check_against_sklearn(y_true, y_pred, labels, zero_division)
    matrix = confusion_matrix(y_true, y_pred, labels)
    if set(labels) & set(y_true):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "A single label was found"
            assert matrix == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    else:  # scikit-learn refuses labels that are all absent from y_true; we count nothing
        assert matrix == [[0] * len(labels) for _ in labels]


def test_zero_division_values() -> None:
    # "b" is never predicted: its precision is undefined.
    scores = per_class_scores(["a", "b"], ["a", "a"], zero_division=1.0)
    assert scores["b"] == {"precision": 1.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_class_scores(["a", "b"], ["a", "a"])["b"]["precision"] == 0.0
    assert math.isnan(per_class_scores(["a", "b"], ["a", "a"], zero_division=math.nan)["b"]["precision"])
    with pytest.raises(ValueError, match="zero_division"):
        per_class_scores(["a"], ["a"], zero_division=0.5)
    with pytest.raises(ValueError, match="zero_division"):
        precision_recall_f1(["a"], ["a"], zero_division="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="average"):
        precision_recall_f1(["a"], ["a"], average="samples")  # type: ignore[arg-type]


def test_report_keeps_its_keys() -> None:
    report = classification_report(["a", "b", "a"], ["a", "b", "b"])
    assert set(report) == {
        "labels",
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "precision_micro",
        "recall_micro",
        "f1_micro",
        "per_class",
        "confusion_matrix",
        "support",
    }
    assert report["confusion_matrix"] == [[1, 1], [0, 1]]
    assert report["support"] == 3
