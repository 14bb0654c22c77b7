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


def gate(  # type: ignore[no-untyped-def]
    aws: FakeAws, ref: ModelPackageRef, threshold: float = 0.8, champion_test: dict[str, Any] | None = None
):
    raw = load_event("quality_gate")
    raw["run"]["threshold"] = threshold
    raw["model_package"] = ref.model_dump()
    if champion_test is not None:
        champion_accuracy = champion_test.pop("champion_accuracy")
        raw["evaluation"]["champion_arn"] = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1"
        raw["evaluation"]["champion_metrics"] = {
            **raw["evaluation"]["finetuned_metrics"],
            "accuracy": champion_accuracy,
        }
        raw["evaluation"]["paired_tests"] = {"finetuned_vs_champion": paired(**champion_test)}
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
    assert "is below the current champion's recorded 0.9700" in result.reason and champion in result.reason


def test_gate_passes_at_or_above_the_champion(aws: FakeAws) -> None:
    champion = approved_champion("0.950000")
    result = gate(aws, register(aws))
    assert result.passed and result.champion_arn == champion
    assert ">= champion's recorded 0.9500" in result.reason


def test_a_champion_without_the_metric_compares_threshold_only(aws: FakeAws) -> None:
    approved_champion(None)
    result = gate(aws, register(aws))
    assert result.passed and result.champion_value is None
    assert "has no recorded accuracy" in result.reason


def paired(b: int, c: int, p: float, ci: tuple[float, float]) -> dict[str, Any]:
    """A paired test of the fine-tuned model against the champion (b: only the champion right)."""
    return {
        "baseline": "champion",
        "baseline_only_correct": b,
        "finetuned_only_correct": c,
        "mcnemar_p_value": p,
        "mcnemar_method": "exact binomial",
        "metric": "accuracy",
        "delta": (c - b) / 100,
        "delta_ci": list(ci),
        "bootstrap_p_value": 0.5,
        "significant": p < 0.05 and b != c,
        "verdict": "words",
    }


def test_a_small_drop_within_chance_passes_against_a_champion_evaluated_on_the_same_split(aws: FakeAws) -> None:
    # The fine-tuned model is 0.01 below the champion, but McNemar says it could be chance: not significantly worse.
    result = gate(
        aws, register(aws), champion_test={"champion_accuracy": 0.97, "b": 3, "c": 2, "p": 1.0, "ci": (-0.04, 0.02)}
    )
    assert result.passed and result.champion_value == 0.97
    assert "not significantly worse than champion 0.9700 on the same test split (McNemar p = 1.0000" in result.reason


def test_a_significantly_worse_model_fails_against_the_champion(aws: FakeAws) -> None:
    result = gate(
        aws, register(aws), champion_test={"champion_accuracy": 0.99, "b": 12, "c": 1, "p": 0.003, "ci": (-0.05, -0.01)}
    )
    assert not result.passed
    assert "significantly worse than the champion's 0.9900 on the same test split" in result.reason


def test_a_bootstrap_interval_below_zero_is_significantly_worse_too(aws: FakeAws) -> None:
    result = gate(
        aws, register(aws), champion_test={"champion_accuracy": 0.98, "b": 5, "c": 2, "p": 0.45, "ci": (-0.04, -0.001)}
    )
    assert not result.passed
