"""Evaluate: metrics of base and fine-tuned model from predictions, evaluation.json and report.html."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fmops_testkit import FakeAws, fixed_clock, jsonl, load_event

from fmops.config import CommonSettings
from fmops.errors import EvaluationError
from fmops.lifecycle.evaluation import evaluate, parse_generated_label
from fmops.schemas import parse
from fmops.schemas.steps import EvaluateEvent

PREDICTIONS = "s3://fmops-artifacts/evaluation/churn-3f2a9c1d0b7e/predictions.jsonl"


def put_predictions(aws: FakeAws, body: bytes) -> None:
    aws.s3_client.put_object(Bucket="fmops-artifacts", Key="evaluation/churn-3f2a9c1d0b7e/predictions.jsonl", Body=body)


def rows() -> list[dict[str, Any]]:
    # 8 test records: the base model always says "stay" (accuracy 0.5), the fine-tuned one misses one
    references = ["churn", "stay"] * 4
    tuned = list(references)
    tuned[0] = "stay"
    return [
        {"line": i + 1, "text": f"t{i}", "reference": r, "base": "stay", "finetuned": t, "finetuned_score": 0.9}
        for i, (r, t) in enumerate(zip(references, tuned, strict=True))
    ]


def run_evaluate(aws: FakeAws, event: dict[str, Any] | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
    request = parse(EvaluateEvent, event or load_event("evaluate"))
    return evaluate(request, s3=aws.s3, settings=CommonSettings.from_env(), clock=fixed_clock, **kwargs)


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
    assert result.evaluation_uri == "s3://fmops-reports/runs/churn-3f2a9c1d0b7e/evaluation.json"
    assert result.report_uri == "s3://fmops-reports/runs/churn-3f2a9c1d0b7e/report.html"
    document = json.loads(aws.read(result.evaluation_uri))
    assert document["predictions_uri"] == PREDICTIONS
    assert document["finetuned"]["per_class"]["churn"]["recall"] == 0.75
    assert document["finetuned"]["confusion_matrix"] == [[3, 1], [0, 4]]
    html = aws.read(result.report_uri).decode()
    assert html.startswith("<!doctype html>") and "churn-3f2a9c1d0b7e" in html and "<script" not in html


def test_report_escapes_labels(aws: FakeAws) -> None:
    data = [dict(r, reference="<b>x</b>" if r["reference"] == "churn" else r["reference"]) for r in rows()]
    put_predictions(aws, jsonl(*data))
    html = aws.read(run_evaluate(aws).report_uri).decode()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


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
    assert len(runtime.calls) == 12
    assert aws.read("s3://fmops-reports/runs/churn-3f2a9c1d0b7e/predictions.jsonl").count(b"\n") == 6


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
