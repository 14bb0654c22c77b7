"""Evaluate: metrics of base, fine-tuned and champion from predictions, with bootstrap intervals and paired tests;
evaluation.json, metrics.csv, predictions.jsonl and report.html in the reports bucket."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fmops_testkit import FakeAws, fixed_clock, jsonl, load_event
from scipy import stats

from fmops.config import CommonSettings
from fmops.errors import EvaluationError
from fmops.lifecycle.evaluation import (
    MAX_RESAMPLES,
    MIN_RESAMPLES,
    WORST_EXAMPLES,
    bootstrap_resamples,
    evaluate,
    metric_statistic,
    paired_test,
    parse_generated_label,
    verdict,
)
from fmops.metrics import HEADLINE_METRICS
from fmops.schemas import parse
from fmops.schemas.steps import EvaluateEvent

RUN = "churn-3f2a9c1d0b7e"
JOB_PREDICTIONS = f"s3://fmops-artifacts/evaluation/{RUN}/predictions.jsonl"
REPORTS = f"s3://fmops-reports/runs/{RUN}/"
CHAMPION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
HEADLINE = HEADLINE_METRICS["classification"]


def put_predictions(aws: FakeAws, body: bytes) -> None:
    aws.s3_client.put_object(Bucket="fmops-artifacts", Key=f"evaluation/{RUN}/predictions.jsonl", Body=body)


def rows() -> list[dict[str, Any]]:
    # 8 test records: the base model always says "stay" (accuracy 0.5), the fine-tuned one misses one
    references = ["churn", "stay"] * 4
    tuned = list(references)
    tuned[0] = "stay"
    return [
        {"line": i + 1, "text": f"t{i}", "reference": r, "base": "stay", "finetuned": t, "finetuned_score": 0.9}
        for i, (r, t) in enumerate(zip(references, tuned, strict=True))
    ]


def champion_rows() -> list[dict[str, Any]]:
    """The same 8 records, with a champion that misses two (lines 2 and 3)."""
    out = rows()
    for row in out:
        row["champion"] = row["reference"]
    out[1]["champion"], out[2]["champion"] = "churn", "stay"
    return out


def with_champion(event: dict[str, Any] | None = None) -> dict[str, Any]:
    event = event or load_event("evaluate")
    event["evaluation_spec"]["champion_arn"] = CHAMPION_ARN
    return event


def run_evaluate(aws: FakeAws, event: dict[str, Any] | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
    request = parse(EvaluateEvent, event or load_event("evaluate"))
    return evaluate(request, s3=aws.s3, settings=CommonSettings.from_env(), clock=fixed_clock, **kwargs)


def document(aws: FakeAws) -> dict[str, Any]:
    return json.loads(aws.read(REPORTS + "evaluation.json"))  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------- results


def test_metrics_reports_and_uris(aws: FakeAws) -> None:
    # Given the evaluation job's predictions
    put_predictions(aws, jsonl(*rows()))
    # When the metrics are computed
    result = run_evaluate(aws)
    # Then base and fine-tuned metrics are right and the reports are in the reports bucket
    assert result.test_count == 8
    assert result.base_metrics.accuracy == 0.5
    assert result.finetuned_metrics.accuracy == 7 / 8
    assert result.base_metrics.f1_macro == pytest.approx((0 + 2 * 0.5 * 1 / 1.5) / 2)
    assert result.evaluation_uri == REPORTS + "evaluation.json"
    assert result.report_uri == REPORTS + "report.html"
    assert aws.keys("fmops-reports", f"runs/{RUN}/") == [
        f"runs/{RUN}/{name}" for name in ("evaluation.json", "metrics.csv", "predictions.jsonl", "report.html")
    ]
    doc = json.loads(aws.read(result.evaluation_uri))
    assert doc["job_predictions_uri"] == JOB_PREDICTIONS
    assert doc["predictions_uri"] == REPORTS + "predictions.jsonl"
    assert doc["metrics_csv_uri"] == REPORTS + "metrics.csv"
    assert doc["finetuned"]["per_class"]["churn"]["recall"] == 0.75
    assert doc["finetuned"]["confusion_matrix"] == [[3, 1], [0, 4]]
    assert doc["labels"] == doc["finetuned"]["labels"] == ["churn", "stay"]
    assert doc["bootstrap"] == {"method": "percentile", "confidence": 0.95, "resamples": 1000, "seed": 0}
    html = aws.read(result.report_uri).decode()
    assert html.startswith("<!doctype html>") and RUN in html and "<script" not in html


def test_without_a_champion_only_the_base_is_compared(aws: FakeAws) -> None:
    put_predictions(aws, jsonl(*rows()))
    event = load_event("evaluate")
    event["evaluation_spec"]["champion_note"] = "no approved model in group churn yet"
    result = run_evaluate(aws, event)
    assert result.champion_arn is None and result.champion_metrics is None
    assert set(result.paired_tests) == {"finetuned_vs_base"}
    doc = document(aws)
    assert doc["champion"] is None and doc["champion_arn"] is None
    assert doc["champion_note"] == "no approved model in group churn yet"
    assert "No champion compared: no approved model in group churn yet." in aws.read(result.report_uri).decode()


def test_the_champion_is_evaluated_on_the_same_examples(aws: FakeAws) -> None:
    put_predictions(aws, jsonl(*champion_rows()))
    result = run_evaluate(aws, with_champion())
    assert result.champion_arn == CHAMPION_ARN
    assert result.champion_metrics is not None and result.champion_metrics.accuracy == 6 / 8
    assert set(result.paired_tests) == {"finetuned_vs_base", "finetuned_vs_champion"}
    versus = result.paired_tests["finetuned_vs_champion"]
    # Line 1: only the champion is right; lines 2 and 3: only the fine-tuned model.
    assert (versus.baseline, versus.baseline_only_correct, versus.finetuned_only_correct) == ("champion", 1, 2)
    assert versus.delta == pytest.approx(1 / 8)
    doc = document(aws)
    assert doc["champion"]["accuracy"] == 0.75 and doc["champion_arn"] == CHAMPION_ARN
    assert doc["model_ids"]["champion"] == CHAMPION_ARN
    assert doc["champion"]["confusion_matrix"] == [[3, 1], [1, 3]]
    copied = [json.loads(line) for line in aws.read(REPORTS + "predictions.jsonl").splitlines()]
    assert [r["champion"] for r in copied] == [r["champion"] for r in champion_rows()]
    assert copied[0] == {
        "line": 1,
        "text": "t0",
        "reference": "churn",
        "base": "stay",
        "finetuned": "stay",
        "finetuned_score": 0.9,
        "champion": "churn",
    }


def test_a_planned_champion_without_predictions_is_an_error(aws: FakeAws) -> None:
    put_predictions(aws, jsonl(*rows()))
    with pytest.raises(EvaluationError, match="no champion predictions although a champion was planned"):
        run_evaluate(aws, with_champion())


def test_champion_predictions_on_some_lines_only_are_an_error(aws: FakeAws) -> None:
    data = champion_rows()
    del data[4]["champion"]
    put_predictions(aws, jsonl(*data))
    with pytest.raises(EvaluationError, match="line 5: field 'champion' is missing on some lines only"):
        run_evaluate(aws, with_champion())


def test_every_interval_contains_its_point_estimate_and_is_seeded(aws: FakeAws) -> None:
    put_predictions(aws, jsonl(*champion_rows()))
    run_evaluate(aws, with_champion())
    first = document(aws)
    for model in ("base", "finetuned", "champion"):
        for name in HEADLINE:
            low, high = first[model]["ci"][name]
            assert 0.0 <= low <= first[model][name] <= high <= 1.0, (model, name)
    run_evaluate(aws, with_champion())
    again = document(aws)
    for model in ("base", "finetuned", "champion"):
        assert again[model]["ci"] == first[model]["ci"]
    assert again["paired_tests"] == first["paired_tests"]


def test_metrics_csv_has_one_row_per_model_and_metric(aws: FakeAws) -> None:
    put_predictions(aws, jsonl(*champion_rows()))
    run_evaluate(aws, with_champion())
    doc = document(aws)
    table = list(csv.DictReader(io.StringIO(aws.read(REPORTS + "metrics.csv").decode())))
    assert len(table) == 3 * len(HEADLINE)
    assert list(table[0]) == ["model", "model_id", "metric", "value", "ci_low", "ci_high", "n"]
    for row in table:
        model, name = row["model"], row["metric"]
        assert float(row["value"]) == pytest.approx(doc[model][name])
        assert [float(row["ci_low"]), float(row["ci_high"])] == pytest.approx(doc[model]["ci"][name])
        assert row["n"] == "8"
    assert {r["model_id"] for r in table if r["model"] == "champion"} == {CHAMPION_ARN}


def test_worst_examples_are_the_most_confident_mistakes(aws: FakeAws) -> None:
    data = [
        {"line": i + 1, "text": f"<i>text {i}</i>", "reference": "a", "base": "a", "finetuned": "b"}
        for i in range(WORST_EXAMPLES + 5)
    ]
    for i, row in enumerate(data):
        row["finetuned_score"] = round(0.5 + i / 100, 2)
    data.append({"line": 99, "text": "right", "reference": "a", "base": "a", "finetuned": "a", "finetuned_score": 1})
    put_predictions(aws, jsonl(*data))
    run_evaluate(aws)
    worst = document(aws)["worst_examples"]
    assert len(worst) == WORST_EXAMPLES
    assert [w["line"] for w in worst] == list(range(WORST_EXAMPLES + 5, 5, -1))
    assert all(w["finetuned"] != w["reference"] for w in worst)


def test_report_escapes_labels_and_texts(aws: FakeAws) -> None:
    data = [dict(r, reference="<b>x</b>" if r["reference"] == "churn" else r["reference"]) for r in rows()]
    data[0]["text"] = "<script>alert(1)</script>"
    put_predictions(aws, jsonl(*data))
    html = aws.read(run_evaluate(aws).report_uri).decode()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_missing_predictions_are_an_evaluation_error(aws: FakeAws) -> None:
    with pytest.raises(EvaluationError, match="wrote no predictions.jsonl"):
        run_evaluate(aws)


def test_a_malformed_prediction_line_is_named(aws: FakeAws) -> None:
    put_predictions(aws, jsonl(*rows()[:2]) + b'{"reference": "a", "base": "b"}\n')
    with pytest.raises(EvaluationError, match="line 3: field 'finetuned' is missing"):
        run_evaluate(aws)


def test_empty_predictions_are_an_error(aws: FakeAws) -> None:
    put_predictions(aws, b"\n")
    with pytest.raises(EvaluationError, match="no predictions"):
        run_evaluate(aws)


# ------------------------------------------------------------------------------------------ paired tests


def correctness(n: int, only_a: int, only_b: int, both: int) -> tuple[list[str], list[str], list[str]]:
    """References and two prediction lists with the given discordant counts (the rest: both wrong)."""
    references = ["x"] * n
    a = ["x"] * (only_a + both) + ["y"] * (n - only_a - both)
    b = ["y"] * only_a + ["x"] * both + ["x"] * only_b + ["y"] * (n - only_a - both - only_b)
    return references, a, b


@pytest.mark.parametrize(("only_a", "only_b"), [(2, 9), (7, 3), (4, 4), (0, 6)])
def test_mcnemar_exact_p_values_match_scipy(only_a: int, only_b: int) -> None:
    references, a, b = correctness(40, only_a, only_b, both=10)
    test = paired_test(references, a, b, baseline_name="base", metric="accuracy", resamples=200)
    assert (test.baseline_only_correct, test.finetuned_only_correct) == (only_a, only_b)
    assert test.mcnemar_method == "exact"
    expected = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert test.mcnemar_p_value == pytest.approx(expected, rel=1e-12)
    assert test.significant == bool(expected < 0.05)


def test_mcnemar_chi_square_p_value_matches_scipy() -> None:
    references, a, b = correctness(200, 12, 30, both=100)
    test = paired_test(references, a, b, baseline_name="champion", metric="accuracy", resamples=200)
    assert test.mcnemar_method == "chi2"
    expected = stats.chi2.sf((abs(12 - 30) - 1) ** 2 / 42, df=1)
    assert test.mcnemar_p_value == pytest.approx(expected, rel=1e-9)
    assert test.significant and "significantly better than the champion" in test.verdict


def test_paired_bootstrap_of_the_gate_metric() -> None:
    references, a, b = correctness(60, 3, 15, both=30)
    test = paired_test(references, a, b, baseline_name="base", metric="accuracy", resamples=500)
    assert test.delta == pytest.approx((45 - 33) / 60)
    low, high = test.delta_ci
    assert low <= test.delta <= high
    assert 0.0 <= test.bootstrap_p_value < 0.05  # B is clearly better: few resamples say otherwise


def test_f1_macro_statistic_matches_sklearn() -> None:
    from sklearn.metrics import f1_score

    references = ["a", "b", "c", "a", "b", "c", "a", "a"]
    predictions = ["a", "b", "b", "a", "c", "c", "b", "a"]
    statistic = metric_statistic(references, predictions, "f1_macro")
    assert statistic(list(range(8))) == pytest.approx(f1_score(references, predictions, average="macro"))
    picked = [0, 0, 1, 6, 7]  # a resample: labels a and b only
    expected = f1_score([references[i] for i in picked], [predictions[i] for i in picked], average="macro")
    assert statistic(picked) == pytest.approx(expected)


def test_verdicts_in_plain_words() -> None:
    assert "exactly the same test examples right" in verdict("base", 0, 0, 1.0, 10)
    better = verdict("base", 1, 12, 0.0034, 100)
    assert better.startswith("The fine-tuned model is significantly better than the base model (McNemar p = 0.0034")
    assert "gets 12 test examples right that the base model gets wrong" in better
    worse = verdict("champion", 20, 2, 0.00001, 100)
    assert worse.startswith("The fine-tuned model is significantly worse than the champion (McNemar p < 0.0001")
    same = verdict("champion", 3, 4, 1.0, 50)
    assert same.startswith("No significant difference between the fine-tuned model and the champion")
    assert "on 50 test examples this could be chance" in same


def test_resamples_shrink_only_for_large_test_splits() -> None:
    assert bootstrap_resamples(8) == MAX_RESAMPLES
    assert bootstrap_resamples(20_000) == MAX_RESAMPLES
    assert MIN_RESAMPLES < bootstrap_resamples(50_000) < MAX_RESAMPLES
    assert bootstrap_resamples(10_000_000) == MIN_RESAMPLES


# -------------------------------------------------------------------------------------------------- Bedrock


class FakeRuntime:
    """Bedrock runtime stand-in: the base model answers 'stay', the custom model the right label."""

    def __init__(self, truth: dict[str, str]) -> None:
        self.truth = truth
        self.calls: list[str] = []

    def invoke_json(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(model_id)
        text = body["inputText"].split("Text: ", 1)[1].split("\nLabel:", 1)[0]
        answer = self.truth[text] if model_id.startswith("arn:") else "stay"
        return {"results": [{"outputText": f" {answer.upper()}\n"}]}


def test_bedrock_evaluation_invokes_both_models(aws: FakeAws) -> None:
    records = [{"text": f"t{i}", "label": ["churn", "stay"][i % 2]} for i in range(6)]
    aws.s3_client.put_object(Bucket="fmops-datasets", Key="prepared/test.jsonl", Body=jsonl(*records))
    event = load_event("evaluate")
    del event["evaluation_spec"]
    event["dataset"]["test_uri"] = "s3://fmops-datasets/prepared/test.jsonl"
    event["training"].update(backend="bedrock", custom_model_arn="arn:aws:bedrock:us-east-1:1:custom-model/x")
    runtime = FakeRuntime({r["text"]: r["label"] for r in records})
    result = run_evaluate(aws, event, runtime=runtime)
    assert result.finetuned_metrics.accuracy == 1.0
    assert result.base_metrics.accuracy == 0.5
    assert result.champion_metrics is None and set(result.paired_tests) == {"finetuned_vs_base"}
    assert len(runtime.calls) == 12
    copied = [json.loads(line) for line in aws.read(REPORTS + "predictions.jsonl").splitlines()]
    assert [(r["line"], r["text"]) for r in copied] == [(i + 1, f"t{i}") for i in range(6)]
    doc = document(aws)
    assert doc["job_predictions_uri"] is None and doc["predictions_uri"] == REPORTS + "predictions.jsonl"
    assert doc["champion_note"] == "the Bedrock branch evaluates no champion"


@pytest.mark.parametrize(
    ("response", "label"),
    [
        ({"results": [{"outputText": " Churn"}]}, "churn"),
        ({"generation": "stay\nbecause"}, "stay"),
        ({"content": [{"text": "The label is churn."}]}, "churn"),
        ({"outputText": "unknown"}, "unknown"),
        ({}, ""),
    ],
)
def test_generated_labels_are_parsed(response: dict[str, Any], label: str) -> None:
    assert parse_generated_label(response, ["churn", "stay"]) == label
