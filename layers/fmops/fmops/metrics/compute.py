"""One entry point for evaluation rows: headline metrics of a task, with bootstrap intervals.

``compute_metrics(task, rows)`` validates the rows (``MetricInputError`` names the 1-based row and the field) and
returns, per task, exactly:

- ``classification``: accuracy, precision_macro, recall_macro, f1_macro, f1_micro, f1_weighted
  (rows: ``prediction`` and ``reference`` labels, strings);
- ``multilabel``: subset_accuracy, hamming_loss, f1_micro, f1_macro, f1_samples
  (rows: lists of string labels; the label universe is the union of every row's labels);
- ``summarization``: rouge1, rouge2, rougeL, rougeLsum (mean F-measure over rows; rows: strings);
- ``qa``: exact_match, f1 (SQuAD v1.1, 0-100; rows: ``prediction`` string, ``reference`` non-empty list of
  gold answers);
- ``generation``: perplexity (rows: ``token_logprobs``, a non-empty list of natural-log probabilities);

plus ``n`` (rows) and, when ``ci``, ``<metric>_ci = [low, high]``: the seeded percentile bootstrap interval
(:func:`fmops.metrics.stats.bootstrap_cis`, 95%, all metrics on the same resamples). Each resample recomputes the
metric on the resampled rows exactly as on the full data (classification labels, the multi-label universe and
perplexity token weights are those of the resample). ``zero_division`` is scikit-learn's default (0.0).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any, Literal, TypeVar

from fmops.errors import MetricInputError
from fmops.metrics.classification import averages_from_counts, classification_report
from fmops.metrics.generation import MAX_EXP, nll_to_perplexity
from fmops.metrics.multilabel import multilabel_report, sample_scores
from fmops.metrics.qa import exact_match, token_f1
from fmops.metrics.rouge import ROUGE_TYPES, rouge_scores
from fmops.metrics.stats import Statistic, bootstrap_cis, mean_of

Task = Literal["classification", "multilabel", "summarization", "qa", "generation"]

HEADLINE_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted"),
    "multilabel": ("subset_accuracy", "hamming_loss", "f1_micro", "f1_macro", "f1_samples"),
    "summarization": ROUGE_TYPES,
    "qa": ("exact_match", "f1"),
    "generation": ("perplexity",),
}

Row = Mapping[str, Any]
T = TypeVar("T")
Statistics = dict[str, Statistic]


# ------------------------------------------------------------------------------------------- validation


def _rows(rows: Iterable[Row]) -> list[Row]:
    if isinstance(rows, str | bytes | Mapping):
        raise MetricInputError(f"rows must be a list of objects, not {type(rows).__name__}")
    items = list(rows)
    if not items:
        raise MetricInputError("no rows: metrics need at least one row")
    for number, row in enumerate(items, start=1):
        if not isinstance(row, Mapping):
            raise MetricInputError(f"a row must be an object, not {type(row).__name__}", line=number)
    return items


def _get(row: Row, field: str, number: int) -> Any:
    if field not in row:
        raise MetricInputError("missing field", line=number, field=field)
    return row[field]


def _text(row: Row, field: str, number: int) -> str:
    value = _get(row, field, number)
    if not isinstance(value, str):
        raise MetricInputError(f"must be a string, not {type(value).__name__}", line=number, field=field)
    return value


def _texts(row: Row, field: str, number: int, *, non_empty: bool) -> list[str]:
    value = _get(row, field, number)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise MetricInputError("must be a list of strings", line=number, field=field)
    if non_empty and not value:
        raise MetricInputError("must not be empty", line=number, field=field)
    return list(value)


def _logprobs(row: Row, number: int) -> list[float]:
    field = "token_logprobs"
    value = _get(row, field, number)
    if not isinstance(value, list | tuple):
        raise MetricInputError(f"must be a list of numbers, not {type(value).__name__}", line=number, field=field)
    if not value:
        raise MetricInputError("must not be empty", line=number, field=field)
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise MetricInputError(f"must be a list of numbers, found {type(v).__name__}", line=number, field=field)
        if not math.isfinite(v) or v > 0:
            raise MetricInputError(f"log-probability {v!r} is not finite and <= 0", line=number, field=field)
    return [float(v) for v in value]


# ------------------------------------------------------------------------------------------- statistics


def _last_result(compute: Callable[[list[int]], T]) -> Callable[[list[int]], T]:
    """Memoise on the identity of the index list: the statistics of one resample share one computation."""
    cache: list[Any] = [None, None]

    def wrapper(indices: list[int]) -> T:
        if cache[0] is not indices:
            cache[0], cache[1] = indices, compute(indices)
        result: T = cache[1]
        return result

    return wrapper


def classification_statistics(y_true: list[str], y_pred: list[str]) -> Statistics:
    """The six classification metrics as bootstrap statistics: each recomputed on the resampled examples
    (with the labels of the resample, as on the full data), all six from one pass over each resample."""
    names = sorted(set(y_true) | set(y_pred))
    index = {label: i for i, label in enumerate(names)}
    k = len(names)
    cells = [index[t] * k + index[p] for t, p in zip(y_true, y_pred, strict=True)]

    @_last_result
    def resampled(indices: list[int]) -> tuple[float, ...]:
        tp, predicted, true = [0] * k, [0] * k, [0] * k
        for cell, count in Counter(map(cells.__getitem__, indices)).items():
            t, p = divmod(cell, k)
            true[t] += count
            predicted[p] += count
            if t == p:
                tp[t] += count
        present = [i for i in range(k) if true[i] or predicted[i]]  # the labels of the resample, sorted
        avg = averages_from_counts(
            [tp[i] for i in present], [predicted[i] for i in present], [true[i] for i in present], 0.0
        )
        return sum(tp) / len(indices), *avg["macro"], avg["micro"][2], avg["weighted"][2]

    def pick(j: int) -> Statistic:
        return lambda indices: resampled(indices)[j]

    return {name: pick(j) for j, name in enumerate(HEADLINE_METRICS["classification"])}


def _classification(rows: list[Row]) -> tuple[dict[str, float], Statistics]:
    y_true = [_text(r, "reference", i) for i, r in enumerate(rows, start=1)]
    y_pred = [_text(r, "prediction", i) for i, r in enumerate(rows, start=1)]
    report = classification_report(y_true, y_pred)
    values = {name: float(report[name]) for name in HEADLINE_METRICS["classification"]}  # type: ignore[literal-required]
    return values, classification_statistics(y_true, y_pred)


def _multilabel(rows: list[Row]) -> tuple[dict[str, float], Statistics]:
    y_true = [_texts(r, "reference", i, non_empty=False) for i, r in enumerate(rows, start=1)]
    y_pred = [_texts(r, "prediction", i, non_empty=False) for i, r in enumerate(rows, start=1)]
    report = multilabel_report(y_true, y_pred)
    values = {name: float(report[name]) for name in HEADLINE_METRICS["multilabel"]}  # type: ignore[literal-required]
    true_sets = [frozenset(t) for t in y_true]
    pred_sets = [frozenset(p) for p in y_pred]
    exact = [float(t == p) for t, p in zip(true_sets, pred_sets, strict=True)]
    sample_f1 = [sample_scores(t, p, 0.0)[2] for t, p in zip(true_sets, pred_sets, strict=True)]
    # Rows with the same (true set, predicted set) are interchangeable: a resample is counted per pattern.
    names = report["labels"]
    index = {label: i for i, label in enumerate(names)}
    k = len(names)
    pattern_of: dict[tuple[frozenset[str], frozenset[str]], int] = {}
    row_pattern = [pattern_of.setdefault((t, p), len(pattern_of)) for t, p in zip(true_sets, pred_sets, strict=True)]
    patterns = [
        ([index[x] for x in t], [index[x] for x in p], [index[x] for x in t & p], len(t ^ p)) for t, p in pattern_of
    ]

    @_last_result
    def resampled(indices: list[int]) -> tuple[float, float, float]:
        tp, predicted, true = [0] * k, [0] * k, [0] * k
        n_wrong = 0
        for pattern, count in Counter(map(row_pattern.__getitem__, indices)).items():
            true_ids, pred_ids, hit_ids, wrong = patterns[pattern]
            for i in true_ids:
                true[i] += count
            for i in pred_ids:
                predicted[i] += count
            for i in hit_ids:
                tp[i] += count
            n_wrong += wrong * count
        present = [i for i in range(k) if true[i] or predicted[i]]  # the resample's universe, sorted
        avg = averages_from_counts(
            [tp[i] for i in present], [predicted[i] for i in present], [true[i] for i in present], 0.0
        )
        hamming = n_wrong / (len(indices) * len(present)) if present else 0.0
        return hamming, avg["micro"][2], avg["macro"][2]

    return values, {
        "subset_accuracy": mean_of(exact),
        "hamming_loss": lambda idx: resampled(idx)[0],
        "f1_micro": lambda idx: resampled(idx)[1],
        "f1_macro": lambda idx: resampled(idx)[2],
        "f1_samples": mean_of(sample_f1),
    }


def _summarization(rows: list[Row], stem: bool) -> tuple[dict[str, float], Statistics]:
    predictions = [_text(r, "prediction", i) for i, r in enumerate(rows, start=1)]
    references = [_text(r, "reference", i) for i, r in enumerate(rows, start=1)]
    scores = rouge_scores(predictions, references, use_stemmer=stem)
    per_type = {t: [s[t].fmeasure for s in scores] for t in ROUGE_TYPES}
    values = {t: sum(v) / len(v) for t, v in per_type.items()}
    return values, {t: mean_of(v) for t, v in per_type.items()}


def _qa(rows: list[Row]) -> tuple[dict[str, float], Statistics]:
    em: list[float] = []
    f1: list[float] = []
    for number, row in enumerate(rows, start=1):
        prediction = _text(row, "prediction", number)
        golds = _texts(row, "reference", number, non_empty=True)
        em.append(exact_match(prediction, golds))
        f1.append(token_f1(prediction, golds))
    values = {"exact_match": 100.0 * sum(em) / len(em), "f1": 100.0 * sum(f1) / len(f1)}
    return values, {"exact_match": mean_of(em, 100.0), "f1": mean_of(f1, 100.0)}


def _generation(rows: list[Row]) -> tuple[dict[str, float], Statistics]:
    logprobs = [_logprobs(r, i) for i, r in enumerate(rows, start=1)]
    nll = [-math.fsum(lp) for lp in logprobs]
    counts = [len(lp) for lp in logprobs]
    mean_nll = -math.fsum(chain.from_iterable(logprobs)) / sum(counts)

    def statistic(indices: list[int]) -> float:
        resampled = sum(map(nll.__getitem__, indices)) / sum(map(counts.__getitem__, indices))
        return math.exp(resampled) if resampled <= MAX_EXP else math.inf

    return {"perplexity": nll_to_perplexity(mean_nll)}, {"perplexity": statistic}


def compute_metrics(
    task: Task,
    rows: Iterable[Row],
    *,
    stem: bool = True,
    ci: bool = True,
    seed: int = 0,
    resamples: int = 1000,
) -> dict[str, Any]:
    """Headline metrics of ``task`` on ``rows``, ``n``, and (``ci``) their 95% bootstrap intervals.

    ``stem``: Porter stemming for ROUGE. ``seed`` and ``resamples``: the bootstrap's.

    Raises:
        MetricInputError: unknown task, no rows, a row that is not an object, a missing field or a wrong type
            (``.line`` is the 1-based row number).
    """
    if task not in HEADLINE_METRICS:
        raise MetricInputError(f"unknown task {task!r} (known: {', '.join(HEADLINE_METRICS)})", field="task")
    items = _rows(rows)
    if task == "classification":
        values, statistics = _classification(items)
    elif task == "multilabel":
        values, statistics = _multilabel(items)
    elif task == "summarization":
        values, statistics = _summarization(items, stem)
    elif task == "qa":
        values, statistics = _qa(items)
    else:
        values, statistics = _generation(items)
    result: dict[str, Any] = {name: values[name] for name in HEADLINE_METRICS[task]}
    result["n"] = len(items)
    if ci:
        intervals = bootstrap_cis(len(items), statistics, resamples=resamples, seed=seed)
        for name in HEADLINE_METRICS[task]:
            low, high = intervals[name]
            result[f"{name}_ci"] = [low, high]
    return result
