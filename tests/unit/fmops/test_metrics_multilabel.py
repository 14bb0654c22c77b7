"""fmops.metrics.multilabel against scikit-learn on MultiLabelBinarizer matrices, to 1e-12."""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import MultiLabelBinarizer

from fmops.metrics import (
    hamming_loss,
    multilabel_precision_recall_f1,
    multilabel_report,
    subset_accuracy,
)

TOL = 1e-12


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


def binarize(y_true: list[list[str]], y_pred: list[list[str]], labels: list[str]) -> tuple[Any, Any]:
    mlb = MultiLabelBinarizer(classes=labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "unknown class(es) will be ignored"
        return mlb.fit_transform(y_true), mlb.transform(y_pred)


def check(y_true: list[list[str]], y_pred: list[list[str]], labels: list[str] | None, zero_division: Any) -> None:
    universe = labels if labels is not None else sorted({x for row in y_true + y_pred for x in row})
    true_m, pred_m = binarize(y_true, y_pred, universe)
    assert close(subset_accuracy(y_true, y_pred, labels), skm.accuracy_score(true_m, pred_m))
    assert close(hamming_loss(y_true, y_pred, labels), skm.hamming_loss(true_m, pred_m))
    report = multilabel_report(y_true, y_pred, labels, zero_division)
    assert report["labels"] == universe
    for average in ("micro", "macro", "weighted", "samples"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = skm.precision_recall_fscore_support(
                true_m, pred_m, average=average, zero_division=zero_division
            )[:3]
        ours = multilabel_precision_recall_f1(y_true, y_pred, average, labels, zero_division)
        assert all(close(a, b) for a, b in zip(ours, expected, strict=True)), (average, ours, expected)
        for key, value in zip(("precision", "recall", "f1"), expected, strict=True):
            assert close(report[f"{key}_{average}"], value)  # type: ignore[literal-required]


def random_case(seed: int) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    labels = [f"l{i}" for i in range(rng.randint(2, 8))]
    n = rng.randint(1, 120)
    y_true = [rng.sample(labels, rng.randint(0, min(3, len(labels)))) for _ in range(n)]
    y_pred = []
    for row in y_true:
        pred = [x for x in row if rng.random() < 0.7]
        pred += rng.sample(labels + ["pred-only"], rng.randint(0, 2))
        y_pred.append(pred)
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_sklearn(seed: int) -> None:
    y_true, y_pred = random_case(seed)
    universe = sorted({x for row in y_true + y_pred for x in row})
    if len(universe) < 2:  # scikit-learn reads a one-column indicator matrix as binary
        y_true[0] = [*y_true[0], "pad-a", "pad-b"]
    zero_division = ("warn", 0.0, 1.0, math.nan)[seed % 4]
    check(y_true, y_pred, None, zero_division)


@pytest.mark.parametrize("zero_division", ["warn", 0.0, 1.0, math.nan])
@pytest.mark.parametrize(
    "case",
    [
        ([["a"], ["b"]], [["a"], ["b"]]),  # perfect
        ([["a"], ["b"]], [["b"], ["a"]]),  # all wrong
        ([[], ["a", "b"]], [[], ["a", "b"]]),  # an empty row predicted empty: samples scores undefined
        ([["a", "b"], []], [[], ["a", "b"]]),  # labels only predicted in a row
        ([["a", "a", "b"], ["b"]], [["b", "a"], ["c"]]),  # duplicates count once; "c" only predicted
        ([["é", "日本"], ["日本"]], [["日本"], ["é"]]),  # unicode labels
    ],
)
def test_edge_cases_match_sklearn(case: tuple[list[list[str]], list[list[str]]], zero_division: Any) -> None:
    y_true, y_pred = case
    check(y_true, y_pred, None, zero_division)


@pytest.mark.parametrize("zero_division", ["warn", 1.0])
def test_explicit_universe_matches_sklearn(zero_division: Any) -> None:
    y_true = [["a", "b"], ["c"], [], ["a", "x"]]
    y_pred = [["a"], ["c", "x"], ["b"], ["y"]]
    # "absent" has no sample; "x" and "y" are outside the universe and ignored.
    check(y_true, y_pred, ["a", "b", "c", "absent"], zero_division)


def test_hand_computed_values() -> None:
    y_true = [["a", "b"], ["b"], ["c"]]
    y_pred = [["a"], ["b"], ["a", "c"]]
    assert subset_accuracy(y_true, y_pred) == pytest.approx(1 / 3)
    assert hamming_loss(y_true, y_pred) == pytest.approx(2 / 9)
    # micro: tp 3, predicted 4, true 4
    assert multilabel_precision_recall_f1(y_true, y_pred, "micro") == pytest.approx((0.75, 0.75, 0.75))


def test_no_label_at_all() -> None:
    assert hamming_loss([[], []], [[], []]) == 0.0
    assert subset_accuracy([[], []], [[], []]) == 1.0
    assert multilabel_precision_recall_f1([[]], [[]], "samples", zero_division=1.0) == (1.0, 1.0, 1.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        subset_accuracy([], [])
    with pytest.raises(ValueError, match="2 items"):
        hamming_loss([["a"], ["b"]], [["a"]])
    with pytest.raises(ValueError, match="average"):
        multilabel_precision_recall_f1([["a"]], [["a"]], "binary")  # type: ignore[arg-type]
