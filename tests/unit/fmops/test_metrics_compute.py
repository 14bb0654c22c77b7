"""fmops.metrics.compute_metrics: keys per task, values and intervals against the plain functions, input errors."""

from __future__ import annotations

import functools
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fmops.errors import FmopsError, MetricInputError
from fmops.metrics import (
    HEADLINE_METRICS,
    bootstrap_cis,
    classification_report,
    compute_metrics,
    multilabel_report,
    perplexity,
    rouge_scores,
    squad_evaluate,
)

LAYER = Path(__file__).resolve().parents[3] / "layers" / "fmops"
RESAMPLES = 200


def classification_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    labels = ["billing", "tech", "sales", "rare"]
    rows = []
    for _ in range(n):
        reference = rng.choice(labels[:3]) if rng.random() < 0.95 else "rare"
        prediction = reference if rng.random() < 0.7 else rng.choice([*labels, "only-predicted"])
        rows.append({"prediction": prediction, "reference": reference})
    return rows


def multilabel_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    labels = ["a", "b", "c", "d", "e"]
    rows = []
    for _ in range(n):
        reference = rng.sample(labels, rng.randint(0, 3))
        prediction = [x for x in reference if rng.random() < 0.7] + rng.sample(labels, rng.randint(0, 1))
        rows.append({"prediction": prediction, "reference": reference})
    return rows


def summarization_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = "the model was trained on invoices and tickets\n routing billing questions quickly".split(" ")
    rows = []
    for _ in range(n):
        reference = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25)))
        prediction = " ".join(w for w in reference.split(" ") if rng.random() < 0.8)
        rows.append({"prediction": prediction, "reference": reference})
    return rows


def qa_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    answers = ["Paris", "the Eiffel Tower", "1889", "Gustave Eiffel", "iron"]
    rows = []
    for _ in range(n):
        golds = rng.sample(answers, rng.randint(1, 2))
        prediction = rng.choice([golds[0], golds[0].upper() + ".", "the " + rng.choice(answers), "no idea"])
        rows.append({"prediction": prediction, "reference": golds})
    return rows


def generation_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"token_logprobs": [math.log(rng.uniform(0.01, 1)) for _ in range(rng.randint(1, 30))]} for _ in range(n)]


ROWS = {
    "classification": classification_rows,
    "multilabel": multilabel_rows,
    "summarization": summarization_rows,
    "qa": qa_rows,
    "generation": generation_rows,
}


def reference_metrics(task: str, rows: list[dict[str, Any]]) -> dict[str, float]:
    """The headline metrics from the plain functions (the definition that resamples must follow too)."""
    if task == "classification":
        report = classification_report([r["reference"] for r in rows], [r["prediction"] for r in rows])
        return {k: report[k] for k in HEADLINE_METRICS[task]}  # type: ignore[literal-required]
    if task == "multilabel":
        ml = multilabel_report([r["reference"] for r in rows], [r["prediction"] for r in rows])
        return {k: ml[k] for k in HEADLINE_METRICS[task]}  # type: ignore[literal-required]
    if task == "summarization":
        scores = rouge_scores([r["prediction"] for r in rows], [r["reference"] for r in rows])
        return {t: sum(s[t].fmeasure for s in scores) / len(scores) for t in HEADLINE_METRICS[task]}
    if task == "qa":
        qa = squad_evaluate([r["prediction"] for r in rows], [r["reference"] for r in rows])
        return {"exact_match": qa["exact_match"], "f1": qa["f1"]}
    return {"perplexity": perplexity([r["token_logprobs"] for r in rows])}


@pytest.mark.parametrize("task", list(ROWS))
def test_keys_and_values(task: str) -> None:
    rows = ROWS[task](150)
    result = compute_metrics(task, rows, resamples=RESAMPLES)  # type: ignore[arg-type]
    headline = HEADLINE_METRICS[task]
    assert list(result) == [*headline, "n", *(f"{m}_ci" for m in headline)]
    assert result["n"] == 150
    expected = reference_metrics(task, rows)
    for metric in headline:
        assert result[metric] == pytest.approx(expected[metric], abs=1e-12)
        low, high = result[f"{metric}_ci"]
        assert low <= high
    assert list(compute_metrics(task, rows, ci=False)) == [*headline, "n"]  # type: ignore[arg-type]


@pytest.mark.parametrize("task", list(ROWS))
def test_intervals_recompute_the_metric_on_resampled_rows(task: str) -> None:
    """The fast per-task statistics give what the plain functions give on the resampled rows."""
    rows = ROWS[task](80, seed=1)
    result = compute_metrics(task, rows, seed=3, resamples=RESAMPLES)  # type: ignore[arg-type]

    @functools.lru_cache(maxsize=1)
    def on_resample(indices: tuple[int, ...]) -> dict[str, float]:
        return reference_metrics(task, [rows[i] for i in indices])

    def statistic(metric: str) -> Any:
        return lambda indices: on_resample(tuple(indices))[metric]

    expected = bootstrap_cis(len(rows), {m: statistic(m) for m in HEADLINE_METRICS[task]}, resamples=RESAMPLES, seed=3)
    for metric in HEADLINE_METRICS[task]:
        assert result[f"{metric}_ci"] == pytest.approx(list(expected[metric]), abs=1e-12), metric


def test_seeded_and_typical_intervals() -> None:
    rows = classification_rows(400, seed=2)
    first = compute_metrics("classification", rows, seed=5, resamples=RESAMPLES)
    assert compute_metrics("classification", rows, seed=5, resamples=RESAMPLES) == first
    assert compute_metrics("classification", rows, seed=6, resamples=RESAMPLES) != first
    for metric in HEADLINE_METRICS["classification"]:
        low, high = first[f"{metric}_ci"]
        assert low < first[metric] < high


def test_summarization_stemming_switch() -> None:
    rows = [{"prediction": "the cats were running", "reference": "a cat runs"}]
    assert compute_metrics("summarization", rows, ci=False)["rouge1"] > 0
    assert compute_metrics("summarization", rows, stem=False, ci=False)["rouge1"] == 0


@pytest.mark.parametrize(
    ("task", "rows", "line", "field", "message"),
    [
        ("classification", [], None, None, "no rows"),
        ("classification", [{"prediction": "a", "reference": "a"}, "oops"], 2, None, "object"),
        ("classification", [{"prediction": "a", "reference": "a"}, {"prediction": "b"}], 2, "reference", "missing"),
        ("classification", [{"prediction": 1, "reference": "a"}], 1, "prediction", "string"),
        ("multilabel", [{"prediction": ["a"], "reference": "a"}], 1, "reference", "list of strings"),
        ("multilabel", [{"prediction": ["a"], "reference": ["a", 2]}], 1, "reference", "list of strings"),
        (
            "summarization",
            [{"prediction": "x", "reference": "y"}] * 3 + [{"prediction": None}],
            4,
            "prediction",
            "string",
        ),
        ("qa", [{"prediction": "x", "reference": "x"}], 1, "reference", "list of strings"),
        ("qa", [{"prediction": "x", "reference": []}], 1, "reference", "not be empty"),
        ("generation", [{"token_logprobs": []}], 1, "token_logprobs", "not be empty"),
        ("generation", [{"token_logprobs": [-0.1]}, {"token_logprobs": [0.3]}], 2, "token_logprobs", "<= 0"),
        ("generation", [{"token_logprobs": [-0.1, "x"]}], 1, "token_logprobs", "numbers"),
        ("generation", [{"token_logprobs": -0.1}], 1, "token_logprobs", "list of numbers"),
        ("generation", [{"prediction": "x"}], 1, "token_logprobs", "missing"),
        ("translation", [{"prediction": "x", "reference": "y"}], None, "task", "unknown task"),
    ],
)
def test_bad_input_names_the_row(task: str, rows: Any, line: int | None, field: str | None, message: str) -> None:
    with pytest.raises(MetricInputError, match=message) as raised:
        compute_metrics(task, rows)  # type: ignore[arg-type]
    assert raised.value.line == line
    assert raised.value.field == field
    assert isinstance(raised.value, FmopsError)
    if line is not None:
        assert str(raised.value).startswith(f"row {line}")


def test_rows_may_be_any_iterable() -> None:
    result = compute_metrics("qa", iter(qa_rows(5)), ci=False)
    assert result["n"] == 5
    with pytest.raises(MetricInputError, match="list of objects"):
        compute_metrics("qa", {"prediction": "x", "reference": ["x"]})  # type: ignore[dict-item]


def test_numpy_is_never_imported() -> None:
    """The metrics run in Lambda without numpy: importing and using them must not load it."""
    code = (
        "import sys; from fmops.metrics import compute_metrics; "
        "rows = [{'prediction': 'a b', 'reference': 'a c', 'token_logprobs': [-0.5]}] * 20; "
        "[compute_metrics(t, rows, resamples=20) for t in ('classification', 'summarization', 'generation')]; "
        "assert 'numpy' not in sys.modules, 'numpy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(LAYER)})
