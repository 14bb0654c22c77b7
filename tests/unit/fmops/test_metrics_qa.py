"""fmops.metrics.qa against the official SQuAD v1.1 evaluation script.

The reference below is ``evaluate-v1.1.py`` ("Official evaluation script for v1.1 of the SQuAD dataset", distributed
with SQuAD 1.1 at https://rajpurkar.github.io/SQuAD-explorer/), copied verbatim except for the command line and the
stderr message for unanswered questions.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from typing import Any

import pytest

from fmops.metrics import exact_match, normalize_answer, squad_evaluate, token_f1

# ------------------------------------------------------------------ evaluate-v1.1.py (verbatim, see the docstring)


def official_normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text: str) -> str:
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def official_exact_match_score(prediction: str, ground_truth: str) -> bool:
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn: Any, prediction: str, ground_truths: list[str]) -> Any:
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def official_evaluate(dataset: list[dict[str, Any]], predictions: dict[str, str]) -> dict[str, float]:
    f1: Any
    exact_match: Any
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                ground_truths = list(map(lambda x: x["text"], qa["answers"]))  # noqa: C417 (verbatim)
                prediction = predictions[qa["id"]]
                exact_match += metric_max_over_ground_truths(official_exact_match_score, prediction, ground_truths)
                f1 += metric_max_over_ground_truths(official_f1_score, prediction, ground_truths)

    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total

    return {"exact_match": exact_match, "f1": f1}


# ------------------------------------------------------------------ tests

WORDS = "the a an The An A Paris France capital of is city Eiffel tower 1889 $1.5 million 42 café Zürich".split()
PUNCT = list(string.punctuation) + ["«", "»", "—", "’"]


def random_answer(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 8)):
        parts.append(rng.choice(WORDS))
        if rng.random() < 0.2:
            parts.append(rng.choice(PUNCT))
    return rng.choice((" ", "  ", "\t")).join(parts)


def as_squad(predictions: list[str], references: list[list[str]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    qas = [{"id": str(i), "answers": [{"text": g} for g in golds]} for i, golds in enumerate(references)]
    return [{"paragraphs": [{"qas": qas}]}], {str(i): p for i, p in enumerate(predictions)}


@pytest.mark.parametrize("seed", range(20))
def test_random_cases_match_the_official_script(seed: int) -> None:
    rng = random.Random(seed)
    references = [[random_answer(rng) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(1, 80))]
    predictions = []
    for golds in references:
        r = rng.random()
        if r < 0.3:  # a gold answer with different case, spacing and punctuation
            predictions.append(" " + rng.choice(golds).upper() + rng.choice(PUNCT))
        elif r < 0.6:  # a partial answer
            predictions.append(" ".join(rng.choice(golds).split()[: rng.randint(0, 4)]))
        else:
            predictions.append(random_answer(rng))
    for prediction, golds in zip(predictions, references, strict=True):
        assert normalize_answer(prediction) == official_normalize_answer(prediction)
        assert exact_match(prediction, golds) == metric_max_over_ground_truths(
            official_exact_match_score, prediction, golds
        )
        assert token_f1(prediction, golds) == metric_max_over_ground_truths(official_f1_score, prediction, golds)
    assert squad_evaluate(predictions, references) == official_evaluate(*as_squad(predictions, references))


@pytest.mark.parametrize(
    ("prediction", "golds"),
    [
        ("", [""]),  # empty against empty: EM 1, F1 0 in v1.1
        ("", ["Paris"]),
        ("the", ["a"]),  # articles only: both normalise to ""
        ("!!!", ["..."]),  # punctuation only
        ("Paris", ["paris", "PARIS, France"]),
        ("The Eiffel Tower.", ["eiffel tower"]),
        ("anthem", ["an them"]),  # "an" is removed only as a word
        ("1,889", ["1889"]),  # punctuation inside numbers is removed
        ("café", ["cafe"]),  # accents are kept
        ("« Zürich »", ["Zürich"]),  # non-ASCII punctuation is kept
        ("the the cat", ["cat cat"]),
        ("x " * 500, ["x"]),  # long
    ],
)
def test_edge_cases_match_the_official_script(prediction: str, golds: list[str]) -> None:
    assert exact_match(prediction, golds) == metric_max_over_ground_truths(
        official_exact_match_score, prediction, golds
    )
    assert token_f1(prediction, golds) == metric_max_over_ground_truths(official_f1_score, prediction, golds)


def test_scale_and_known_values() -> None:
    scores = squad_evaluate(["Paris", "in France"], [["Paris"], ["France", "capital"]])
    assert scores["exact_match"] == 50.0
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        exact_match("a", [])
    with pytest.raises(ValueError, match="non-empty list"):
        token_f1("a", "a")
    with pytest.raises(ValueError, match="no samples"):
        squad_evaluate([], [])
    with pytest.raises(ValueError, match="references"):
        squad_evaluate(["a"], [])
