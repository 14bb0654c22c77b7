"""Register model (lineage, idempotency) and the quality gate (threshold, champion)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from fmops_testkit import FakeAws, fixed_clock, load_event

from fmops.config import CommonSettings, RegisterModelSettings
from fmops.lifecycle.registry import quality_gate, register_model
from fmops.schemas import ModelPackageRef, parse
from fmops.schemas.steps import QualityGateEvent, RegisterModelEvent


def register(aws: FakeAws, event: dict[str, Any] | None = None) -> ModelPackageRef:
    request = parse(RegisterModelEvent, event or load_event("register_model"))
    return register_model(
        request,
        sagemaker=aws.sagemaker,
        s3=aws.s3,
        runs=aws.runs,
        settings=RegisterModelSettings.from_env(),
        clock=fixed_clock,
    )


def test_register_creates_group_and_a_pending_version_with_lineage(aws: FakeAws) -> None:
    # Given an evaluated run, When it is registered
    ref = register(aws)
    # Then the use case's group holds one PendingManualApproval version carrying its lineage and metrics
    client = boto3.client("sagemaker")
    assert ref.model_package_group_name == "churn" and ref.created and ref.version == 1
    package = client.describe_model_package(ModelPackageName=ref.model_package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["run_id"] == "churn-3f2a9c1d0b7e"
    assert metadata["dataset_uri"] == "s3://fmops-datasets/datasets/churn/data.jsonl"
    assert metadata["dataset_version_id"] == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert len(metadata["dataset_sha256"]) == 64
    assert json.loads(metadata["hyperparameters"])["epochs"] == "1"
    assert metadata["training_job_arn"].endswith(":training-job/churn-3f2a9c1d0b7e-train")
    assert (metadata["accuracy"], metadata["f1_macro"]) == ("0.960000", "0.959000")
    assert metadata["report_uri"] == "s3://fmops-reports/runs/churn-3f2a9c1d0b7e/report.html"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"].endswith("/output/model.tar.gz")
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    quality = json.loads(aws.read(statistics["S3Uri"]))
    assert quality["multiclass_classification_metrics"]["accuracy"]["value"] == 0.96
    record = aws.runs.get("churn-3f2a9c1d0b7e")
    assert record is not None and record["model_package_arn"] == ref.model_package_arn


def test_register_twice_returns_the_same_package(aws: FakeAws) -> None:
    first = register(aws)
    second = register(aws)
    assert second.model_package_arn == first.model_package_arn and not second.created
    listed = boto3.client("sagemaker").list_model_packages(ModelPackageGroupName="churn")
    assert len(listed["ModelPackageSummaryList"]) == 1


def approved_champion(accuracy: str | None) -> str:
    """An Approved version registered earlier (by another run)."""
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    metadata = {"run_id": "churn-000000000000"}
    if accuracy is not None:
        metadata["accuracy"] = accuracy
    return str(
        client.create_model_package(
            ModelPackageGroupName="churn",
            ModelPackageDescription="fmops run churn-000000000000",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties=metadata,
        )["ModelPackageArn"]
    )


def gate(aws: FakeAws, ref: ModelPackageRef, threshold: float = 0.8):  # type: ignore[no-untyped-def]
    raw = load_event("quality_gate")
    raw["run"]["threshold"] = threshold
    raw["model_package"] = ref.model_dump()
    return quality_gate(parse(QualityGateEvent, raw), sagemaker=aws.sagemaker, settings=CommonSettings.from_env())


def test_gate_passes_above_threshold_without_champion(aws: FakeAws) -> None:
    result = gate(aws, register(aws))
    assert result.passed
    assert result.reason == "quality gate passed: accuracy 0.9600 >= threshold 0.8000; no approved champion yet"


def test_gate_fails_below_threshold_with_a_readable_reason(aws: FakeAws) -> None:
    result = gate(aws, register(aws), threshold=0.97)
    assert not result.passed
    assert result.reason == "quality gate failed: accuracy 0.9600 is below the threshold 0.9700"


def test_gate_fails_below_the_champion(aws: FakeAws) -> None:
    champion = approved_champion("0.970000")
    result = gate(aws, register(aws))
    assert not result.passed
    assert result.champion_arn == champion and result.champion_value == 0.97
    assert "is below the current champion's 0.9700" in result.reason and champion in result.reason


def test_gate_passes_at_or_above_the_champion(aws: FakeAws) -> None:
    champion = approved_champion("0.950000")
    result = gate(aws, register(aws))
    assert result.passed and result.champion_arn == champion
    assert ">= champion 0.9500" in result.reason


def test_a_champion_without_the_metric_compares_threshold_only(aws: FakeAws) -> None:
    approved_champion(None)
    result = gate(aws, register(aws))
    assert result.passed and result.champion_value is None
    assert "has no recorded accuracy" in result.reason
