"""Every handler, loaded by file path and called with its events/ sample and a Lambda context."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from fmops_testkit import jsonl, sample_records

from fmops.errors import ConfigurationError, DatasetValidationError, RequestValidationError

Handler = Callable[[dict[str, Any], Any], Any]
Load = Callable[[str], Handler]
Event = Callable[[str], dict[str, Any]]
FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
ASL = json.loads((Path(__file__).resolve().parents[3] / "statemachines" / "finetune.asl.json").read_text())


def selected(state: str) -> set[str]:
    """The fields the state machine selects from this state's Lambda result."""
    return {k.removesuffix(".$") for k in ASL["States"][state]["ResultSelector"]}


def package(status: str = "PendingManualApproval") -> str:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    return str(
        client.create_model_package(
            ModelPackageGroupName="churn",
            ModelApprovalStatus=status,
            CustomerMetadataProperties={"run_id": "churn-000000000000"},
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": "s3://fmops-artifacts/m.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    )


def test_every_function_folder_has_a_sample_event() -> None:
    events = {p.stem for p in (FUNCTIONS.parent / "events").glob("*.json")}
    for folder in FUNCTIONS.iterdir():
        if (folder / "app.py").exists():
            assert any(e == folder.name or e.startswith(folder.name + "_") for e in events), folder.name


def test_ingest(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    event = load_event("ingest")
    event["detail"]["object"]["version-id"] = aws.put_dataset(jsonl(*sample_records(20)))
    result = handler("ingest")(event, lambda_context)
    assert result["started"] is True and result["run_id"].startswith("churn-")
    assert handler("ingest")(event, lambda_context)["duplicate"] is True


def test_validate_dataset(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    event = load_event("validate_dataset")
    event["run"]["dataset"]["version_id"] = aws.put_dataset(jsonl(*sample_records(20)))
    result = handler("validate_dataset")(event, lambda_context)
    assert set(result) == selected("Validate and split dataset")
    assert result["counts"] == {"train": 16, "validation": 2, "test": 2}


def test_plan_dataset_and_validate_shard(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    body = jsonl(*sample_records(200))
    version = aws.put_dataset(body)
    event = load_event("plan_dataset")
    event["run"]["dataset"]["version_id"] = version
    event["run"]["split"]["shard_bytes"] = 4096
    plan = handler("plan_dataset")(event, lambda_context)
    assert plan["sharded"] is True and plan["size"] == len(body)
    assert [s["end"] for s in plan["shards"]][-1] == len(body)
    lines = 0
    for shard in plan["shards"]:
        shard_event = load_event("validate_shard")
        shard_event["run"] = event["run"]
        shard_event["shard"] = shard
        summary = handler("validate_shard")(shard_event, lambda_context)
        assert summary["index"] == shard["index"] and summary["error_count"] == 0
        lines += summary["lines"]
    assert lines == 200


def test_validate_dataset_raises_the_typed_error(
    aws: Any, handler: Load, load_event: Event, lambda_context: Any
) -> None:
    event = load_event("validate_dataset")
    body = jsonl(*sample_records(5)) + b'{"text": "x"}\n'
    event["run"]["dataset"]["version_id"] = aws.put_dataset(body)
    with pytest.raises(DatasetValidationError, match="^line 6: field 'label': is missing "):
        handler("validate_dataset")(event, lambda_context)


def test_a_malformed_step_input_is_a_request_validation_error(
    handler: Load, load_event: Event, lambda_context: Any
) -> None:
    event = load_event("validate_dataset")
    event["run"]["threshold"] = "high"
    with pytest.raises(RequestValidationError, match="field 'run.threshold'"):
        handler("validate_dataset")(event, lambda_context)


def test_missing_configuration_fails_loudly(
    handler: Load, load_event: Event, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAINING_IMAGE_URI")
    with pytest.raises(ConfigurationError, match="TRAINING_IMAGE_URI"):
        handler("plan_training")(load_event("plan_training"), lambda_context)


def test_plan_training(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    result = handler("plan_training")(load_event("plan_training"), lambda_context)
    assert set(result) == selected("Plan training")
    assert result["sagemaker"]["TrainingJobName"] == "churn-3f2a9c1d0b7e-train"
    run = aws.runs.get("churn-3f2a9c1d0b7e")
    assert run is not None and run["cost_estimate"]["instance_type"] == "ml.g5.xlarge"
    assert run["cost_estimate"]["total_usd"] > 0


def test_plan_training_refuses_bedrock_hyperparameters_before_any_call(
    aws: Any, handler: Load, load_event: Event, lambda_context: Any
) -> None:
    event = load_event("plan_training")
    event["run"].update(backend="bedrock", base_model="amazon.titan-text-lite-v1")
    event["run"]["hyperparameters"]["epochCount"] = "99"
    event["dataset"].update(bedrock_train_uri="s3://b/t.jsonl", bedrock_validation_uri="s3://b/v.jsonl")
    with pytest.raises(RequestValidationError, match="hyperparameters.epochCount"):
        handler("plan_training")(event, lambda_context)
    assert aws.runs.get("churn-3f2a9c1d0b7e") is None


def test_plan_evaluation(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    result = handler("plan_evaluation")(load_event("plan_evaluation"), lambda_context)
    assert set(result) == selected("Plan evaluation")
    assert result["sagemaker"]["ProcessingJobName"] == "churn-3f2a9c1d0b7e-eval"
    assert result["champion_arn"] is None and result["champion_note"] == "no approved model in group churn yet"


def test_plan_evaluation_adds_the_champion(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    arn = package("Approved")
    described = aws.sagemaker.describe_model_package(arn)
    result = handler("plan_evaluation")(load_event("plan_evaluation"), lambda_context)
    assert result["champion_arn"] == arn
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in result["sagemaker"]["ProcessingInputs"]}
    assert inputs["champion"] == described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]


def test_evaluate(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    rows = [{"line": 1, "text": "a", "reference": "churn", "base": "stay", "finetuned": "churn"}] * 3
    aws.s3_client.put_object(
        Bucket="fmops-artifacts", Key="evaluation/churn-3f2a9c1d0b7e/predictions.jsonl", Body=jsonl(*rows)
    )
    result = handler("evaluate")(load_event("evaluate"), lambda_context)
    assert set(result) == selected("Compute metrics")
    assert result["finetuned_metrics"]["accuracy"] == 1.0 and result["base_metrics"]["accuracy"] == 0.0


def test_register_model(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    result = handler("register_model")(load_event("register_model"), lambda_context)
    assert set(result) == selected("Register model")
    assert result["model_package_arn"].endswith("model-package/churn/1")


def test_quality_gate(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    event = load_event("quality_gate")
    event["model_package"]["model_package_arn"] = package()
    result = handler("quality_gate")(event, lambda_context)
    assert set(result) == selected("Quality gate")
    assert result["passed"] is True


def test_request_approval(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    result = handler("request_approval")(load_event("request_approval"), lambda_context)
    assert result["run_id"] == "churn-3f2a9c1d0b7e"
    assert aws.approvals.get("churn-3f2a9c1d0b7e")["task_token"] == load_event("request_approval")["task_token"]
    assert "fmops approve churn-3f2a9c1d0b7e" in aws.messages()[0]["Message"]


@pytest.mark.parametrize(("name", "status"), [("approval_api_list", 200), ("approval_api_get_run", 404)])
def test_approval_api_reads(
    aws: Any, handler: Load, load_event: Event, lambda_context: Any, name: str, status: int
) -> None:
    response = handler("approval_api")(load_event(name), lambda_context)
    assert response["statusCode"] == status


def test_approval_api_decides(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    event = load_event("request_approval")
    event["model_package"]["model_package_arn"] = package()
    handler("request_approval")(event, lambda_context)
    api = handler("approval_api")
    assert api(load_event("approval_api_get_approval"), lambda_context)["statusCode"] == 200
    response = api(load_event("approval_api_reject"), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["decision"] == "rejected"
    assert api(load_event("approval_api_approve"), lambda_context)["statusCode"] == 409


def test_deploy_model(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    event = load_event("deploy_model")
    event["model_package"]["model_package_arn"] = package("Approved")
    result = handler("deploy_model")(event, lambda_context)
    assert set(result) == selected("Deploy model")
    assert (result["endpoint_name"], result["status"]) == ("churn", "Creating")


def test_complete_run(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    result = handler("complete_run")(load_event("complete_run"), lambda_context)
    assert set(result) == selected("Complete run")
    assert result["status"] == "SUCCEEDED"


def test_handle_failure(aws: Any, handler: Load, load_event: Event, lambda_context: Any) -> None:
    result = handler("handle_failure")(load_event("handle_failure"), lambda_context)
    assert set(result) == selected("Handle failure")
    assert result["cause"] == "line 7: field 'label': must be a non-empty string"
    assert aws.runs.get("churn-3f2a9c1d0b7e")["status"] == "FAILED"


def test_handlers_import_only_fmops_and_libraries() -> None:
    for app in FUNCTIONS.glob("*/app.py"):
        text = app.read_text()
        assert "from ." not in text and "import app" not in text, app
        assert "os.environ" not in text, app
