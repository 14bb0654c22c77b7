"""Complete run, and the notify-and-fail path with readable causes and clean-up."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from fmops_testkit import FakeAws, fixed_clock, load_event

from fmops.config import RequestApprovalSettings
from fmops.lifecycle.approval import request_approval
from fmops.lifecycle.completion import complete_run, failed_step, handle_failure
from fmops.schemas import FailureResult, parse
from fmops.schemas.steps import CompleteRunEvent, HandleFailureEvent, RequestApprovalEvent

RUN_ID = "churn-3f2a9c1d0b7e"


def fail(aws: FakeAws, event: dict[str, Any]) -> FailureResult:
    return handle_failure(
        parse(HandleFailureEvent, event),
        runs=aws.runs,
        approvals=aws.approvals,
        sagemaker=aws.sagemaker,
        notifier=aws.notifier,
        clock=fixed_clock,
    )


def lambda_cause(error_type: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": ["..."]})


def test_complete_run_records_success_and_notifies(aws: FakeAws) -> None:
    result = complete_run(
        parse(CompleteRunEvent, load_event("complete_run")), runs=aws.runs, notifier=aws.notifier, clock=fixed_clock
    )
    assert (result.status, result.endpoint_name) == ("SUCCEEDED", "churn")
    run = aws.runs.get(RUN_ID)
    assert run is not None and run["status"] == "SUCCEEDED"
    assert run["finetuned_metrics"]["accuracy"] == 0.96
    [note] = aws.messages()
    assert note["Subject"] == f"fmops: run {RUN_ID} deployed to churn"
    assert "Approved by arn:aws:iam::123456789012:user/alice: metrics look good" in note["Message"]


def test_a_dataset_error_becomes_a_readable_failure(aws: FakeAws) -> None:
    # Given the Catch output of a DatasetValidationError raised by the validate function
    result = fail(aws, load_event("handle_failure"))
    # Then the cause is the function's own message, the run is FAILED and a notification says so
    assert result.model_dump() == {
        "run_id": RUN_ID,
        "error": "DatasetValidationError",
        "cause": "line 7: field 'label': must be a non-empty string",
        "failed_step": "Validate and split dataset",
    }
    run = aws.runs.get(RUN_ID)
    assert run is not None
    assert (run["status"], run["error"], run["failed_step"]) == ("FAILED", "DatasetValidationError", result.failed_step)
    assert run["cause"] == "line 7: field 'label': must be a non-empty string"
    [note] = aws.messages()
    assert note["Subject"] == f"fmops: run {RUN_ID} FAILED at Validate and split dataset"
    assert "line 7: field 'label'" in note["Message"]


def pending_package() -> str:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    return str(
        client.create_model_package(ModelPackageGroupName="churn", ModelApprovalStatus="PendingManualApproval")[
            "ModelPackageArn"
        ]
    )


def state_at_approval(package_arn: str) -> dict[str, Any]:
    event = load_event("request_approval")
    event["model_package"]["model_package_arn"] = package_arn
    state: dict[str, Any] = {k: v for k, v in event.items() if k != "task_token"}
    state.update({"dataset": {}, "training_spec": {}, "training": {}, "evaluation_spec": {}, "evaluation_job": {}})
    return state


def test_an_approval_timeout_rejects_the_package_and_drops_the_token(aws: FakeAws) -> None:
    # Given a run waiting for approval (token stored, package pending)
    package = pending_package()
    raw = load_event("request_approval")
    raw["model_package"]["model_package_arn"] = package
    request_approval(
        parse(RequestApprovalEvent, raw),
        approvals=aws.approvals,
        runs=aws.runs,
        notifier=aws.notifier,
        settings=RequestApprovalSettings.from_env(),
    )
    # When the approval state times out
    state = state_at_approval(package)
    state["error"] = {"Error": "States.Timeout", "Cause": ""}
    result = fail(aws, state)
    # Then the cause says so in words, the package is Rejected, the token is gone
    assert result.error == "ApprovalTimedOut"
    assert result.cause == "the approval timed out after 86400 seconds without a decision"
    assert result.failed_step == "Request approval"
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert "timed out after 86400 seconds" in described["ApprovalDescription"]
    assert aws.approvals.get(RUN_ID) is None


def test_a_rejection_keeps_the_approvers_words(aws: FakeAws) -> None:
    state = state_at_approval(pending_package())
    state["error"] = {"Error": "ApprovalRejected", "Cause": "rejected by arn:aws:iam::1:user/bob: too slow"}
    result = fail(aws, state)
    assert (result.error, result.cause) == ("ApprovalRejected", "rejected by arn:aws:iam::1:user/bob: too slow")


def test_an_approved_package_is_left_approved(aws: FakeAws) -> None:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    package = client.create_model_package(ModelPackageGroupName="churn", ModelApprovalStatus="Approved")[
        "ModelPackageArn"
    ]
    state = state_at_approval(package)
    state.update(approval={"decision": "approved"}, error={"Error": "DeploymentError", "Cause": "x"})
    result = fail(aws, state)
    assert result.failed_step == "Deploy model"
    assert client.describe_model_package(ModelPackageName=package)["ModelApprovalStatus"] == "Approved"


def test_a_failed_training_job_reports_its_failure_reason(aws: FakeAws) -> None:
    state = load_event("plan_training")
    state["training_spec"] = {}
    state["error"] = {
        "Error": "States.TaskFailed",
        "Cause": json.dumps(
            {
                "TrainingJobName": f"{RUN_ID}-train",
                "TrainingJobStatus": "Failed",
                "FailureReason": "AlgorithmError: ZeroDivisionError: division by zero",
            }
        ),
    }
    result = fail(aws, state)
    assert result.failed_step == "Train on SageMaker"
    assert result.cause == f"{RUN_ID}-train Failed: AlgorithmError: ZeroDivisionError: division by zero"


def test_a_failed_gate_rejects_with_the_reason(aws: FakeAws) -> None:
    package = pending_package()
    state = state_at_approval(package)
    state["gate"] = {"passed": False, "reason": "quality gate failed: accuracy 0.7 is below the threshold 0.8"}
    state["error"] = {"Error": "QualityGateFailed", "Cause": state["gate"]["reason"]}
    result = fail(aws, state)
    assert (result.error, result.failed_step) == ("QualityGateFailed", "Quality gate")
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert "below the threshold" in described["ApprovalDescription"]


def test_a_malformed_request_still_notifies(aws: FakeAws) -> None:
    event = {
        "run": {"use_case": "Bad Name"},
        "error": {"Error": "RequestValidationError", "Cause": lambda_cause("RequestValidationError", "run request: x")},
    }
    result = fail(aws, event)
    assert result.run_id is None and result.cause == "run request: x"
    assert "unknown" in aws.messages()[0]["Subject"]


@pytest.mark.parametrize(
    ("keys", "step"),
    [
        ({}, "Plan data validation"),
        ({"data_plan"}, "Validate and split dataset"),
        ({"data_plan", "dataset"}, "Plan training"),
        ({"dataset", "training_spec"}, "Train on SageMaker"),
        ({"dataset", "training_spec", "training"}, "Plan evaluation"),
        ({"dataset", "training_spec", "training", "evaluation_spec"}, "Evaluate on SageMaker"),
        ({"dataset", "training_spec", "training", "evaluation_spec", "evaluation_job"}, "Compute metrics"),
    ],
)
def test_the_failed_step_is_inferred_from_the_state(keys: set[str], step: str) -> None:
    state: dict[str, Any] = {k: {} for k in keys}
    state["run"] = {"backend": "sagemaker"}
    assert failed_step(parse(HandleFailureEvent, state)) == step


def test_a_failed_fan_out_is_named() -> None:
    event = HandleFailureEvent.model_validate({"run": {}, "data_plan": {"sharded": True}, "shard_results": None})
    assert failed_step(event) == "Validate shards"
