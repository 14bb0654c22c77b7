"""Registered model versions for the registry tests: each with its manifest, evaluation and predictions in S3."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from fmops_testkit import FakeAws, fixed_clock, load_event

from fmops.config import RegisterModelSettings
from fmops.lifecycle._common import CODE_KEY
from fmops.lifecycle.registry import register_model
from fmops.schemas import ModelPackageRef, parse
from fmops.schemas.steps import RegisterModelEvent

CODE_ARCHIVE = b"not really a tar.gz, but the bytes registered as the training code"
CODE_SHA256 = hashlib.sha256(CODE_ARCHIVE).hexdigest()
TEST_SPLIT = "a" * 64
OTHER_TEST_SPLIT = "b" * 64
LABELS = ("churn", "stay")


def publish_code(aws: FakeAws, metadata: dict[str, str] | None = None) -> None:
    aws.s3_client.put_object(
        Bucket=aws.env["ARTIFACTS_BUCKET"], Key=CODE_KEY, Body=CODE_ARCHIVE, Metadata=metadata or {}
    )


def predictions_from(correct: list[bool]) -> list[dict[str, Any]]:
    """predictions.jsonl rows: line i's reference alternates labels; the fine-tuned label is right iff correct[i]."""
    rows = []
    for i, right in enumerate(correct):
        reference = LABELS[i % 2]
        wrong = LABELS[(i + 1) % 2]
        predicted = reference if right else wrong
        rows.append({"line": i + 1, "text": f"t{i}", "reference": reference, "base": wrong, "finetuned": predicted})
    return rows


CAUSAL_LM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass
class TaskRun:
    """A multilabel or generative version: its task, gate metric, metrics and predictions.jsonl rows (the evaluation's
    normalised lines: ``reference`` a list, ``finetuned`` a label list or a generated text)."""

    task: str
    metric: str
    rows: list[dict[str, Any]]
    finetuned_metrics: dict[str, float] = field(default_factory=dict)
    base_metrics: dict[str, float] = field(default_factory=dict)


def generated_rows(references: list[str], outputs: list[str]) -> list[dict[str, Any]]:
    """predictions.jsonl rows of a generative run: one gold text per line, the base model always says "no idea"."""
    return [
        {
            "line": i + 1,
            "prompt": f"q{i}",
            "reference": [ref],
            "base": "no idea",
            "finetuned": out,
            "finetuned_score": 0,
        }
        for i, (ref, out) in enumerate(zip(references, outputs, strict=True))
    ]


def register_version(
    aws: FakeAws,
    run_id: str,
    *,
    correct: list[bool] | None = None,
    test_sha256: str | None = TEST_SPLIT,
    backend: str = "sagemaker",
    use_case: str = "churn",
    hyperparameters: dict[str, str] | None = None,
    task_run: TaskRun | None = None,
) -> ModelPackageRef:
    """Register a version of ``use_case`` as the workflow would, with everything the registry reads in S3
    (a classification version from ``correct``, or ``task_run``'s)."""
    raw = copy.deepcopy(load_event("register_model"))
    raw["run"].update(run_id=run_id, use_case=use_case, backend=backend)
    if hyperparameters is not None:
        raw["run"]["hyperparameters"] = hyperparameters
    if task_run is not None:
        raw["run"].update(task=task_run.task, metric=task_run.metric, threshold=None)
        if task_run.task != "multilabel":
            raw["run"]["base_model"] = CAUSAL_LM
        raw["evaluation"].update(
            metric=task_run.metric,
            finetuned_metrics=task_run.finetuned_metrics,
            base_metrics=task_run.base_metrics,
        )
    datasets, artifacts, reports = aws.env["DATASETS_BUCKET"], aws.env["ARTIFACTS_BUCKET"], aws.env["REPORTS_BUCKET"]
    prefix = f"datasets/{use_case}/v-{run_id}/"
    manifest_uri = f"s3://{datasets}/{prefix}manifest.json"
    raw["dataset"].update(manifest_uri=manifest_uri, test_uri=f"s3://{datasets}/{prefix}test.jsonl")
    if test_sha256 is not None:
        splits = {"train": "c" * 64, "validation": "d" * 64, "test": test_sha256}
        manifest = {"splits": {name: {"sha256": sha} for name, sha in splits.items()}}
        aws.s3_client.put_object(Bucket=datasets, Key=f"{prefix}manifest.json", Body=json.dumps(manifest).encode())
    correct = correct if correct is not None else [True] * 8 + [False] * 2
    rows = predictions_from(correct) if task_run is None else task_run.rows
    if task_run is None:
        raw["evaluation"]["finetuned_metrics"]["accuracy"] = sum(correct) / len(correct)
    raw["evaluation"]["test_count"] = len(rows)
    raw["evaluation"]["evaluation_uri"] = f"s3://{reports}/runs/{run_id}/evaluation.json"
    raw["evaluation"]["report_uri"] = f"s3://{reports}/runs/{run_id}/report.html"
    if backend == "bedrock":
        predictions_key = f"runs/{run_id}/predictions.jsonl"
        predictions_uri = f"s3://{reports}/{predictions_key}"
        aws.s3_client.put_object(Bucket=reports, Key=predictions_key, Body=_jsonl(rows))
        raw["training"] = {
            "backend": "bedrock",
            "job_name": f"{run_id}-train",
            "job_arn": f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{run_id}",
            "status": "Completed",
            "custom_model_arn": f"arn:aws:bedrock:us-east-1:123456789012:custom-model/{run_id}",
            "output_uri": f"s3://{artifacts}/bedrock/{run_id}/",
        }
    else:
        predictions_key = f"evaluation/{run_id}/predictions.jsonl"
        predictions_uri = f"s3://{artifacts}/{predictions_key}"
        aws.s3_client.put_object(Bucket=artifacts, Key=predictions_key, Body=_jsonl(rows))
        raw["training"]["job_name"] = f"{run_id}-train"
        raw["training"]["job_arn"] = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{run_id}-train"
    evaluation = {"run_id": run_id, "predictions_uri": predictions_uri, "test_count": len(rows)}
    aws.s3_client.put_object(Bucket=reports, Key=f"runs/{run_id}/evaluation.json", Body=json.dumps(evaluation).encode())
    return register_model(
        parse(RegisterModelEvent, raw),
        sagemaker=aws.sagemaker,
        s3=aws.s3,
        runs=aws.runs,
        settings=RegisterModelSettings.from_env(),
        clock=fixed_clock,
    )


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def request_pending_approval(aws: FakeAws, ref: ModelPackageRef) -> None:
    """The workflow's "Request approval" for ``ref``: its run now waits for a person."""
    from fmops.config import RequestApprovalSettings
    from fmops.lifecycle.approval import request_approval
    from fmops.schemas.steps import RequestApprovalEvent

    raw = load_event("request_approval")
    raw["model_package"]["model_package_arn"] = ref.model_package_arn
    request_approval(
        parse(RequestApprovalEvent, raw),
        approvals=aws.approvals,
        runs=aws.runs,
        notifier=aws.notifier,
        settings=RequestApprovalSettings.from_env(),
        clock=fixed_clock,
    )
