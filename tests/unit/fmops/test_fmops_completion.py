"""Complete run, and the notify-and-fail path with readable causes and clean-up."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from fmops_testkit import FakeAws, fixed_clock, load_event

from fmops.config import RequestApprovalSettings
from fmops.lifecycle.approval import request_approval
from fmops.lifecycle.completion import complete_run, failed_step, handle_failure, readable_failure
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


# ------------------------------------------------------------------------------- the success notification


def completed_message(aws: FakeAws, event: dict[str, Any]) -> str:
    complete_run(parse(CompleteRunEvent, event), runs=aws.runs, notifier=aws.notifier, clock=fixed_clock)
    [note] = aws.messages()
    return note["Message"]


def test_the_success_notification_shows_the_gate_metric_first_for_classification(aws: FakeAws) -> None:
    message = completed_message(aws, load_event("complete_run"))
    lines = message.splitlines()
    assert lines[0] == f"Run {RUN_ID} (use case churn, task classification) succeeded."
    assert "accuracy (gate metric, 200 test records): 0.9600 (base 0.5200, threshold 0.8000)" in lines
    assert (
        "f1_macro 0.9590 (base 0.4000), f1_weighted 0.9600 (base 0.4100), precision_macro 0.9580 (base 0.4500), "
        "recall_macro 0.9610 (base 0.5000)"
    ) in lines


def generative_event(task: str, metric: str, tuned: dict[str, float], base: dict[str, float]) -> dict[str, Any]:
    event = load_event("complete_run")
    event["run"].update(task=task, metric=metric, threshold=None, base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    event["evaluation"].update(metric=metric, finetuned_metrics=tuned, base_metrics=base)
    event["evaluation"]["paired_tests"] = {
        "finetuned_vs_base": {
            "baseline": "base",
            "metric": metric,
            "delta": round(tuned[metric] - base[metric], 4),
            "delta_ci": [0.05, 0.2],
            "bootstrap_p_value": 0.0,
            "significant": True,
            "verdict": "The fine-tuned model is significantly better than the base model.",
        }
    }
    return event


def test_a_generative_runs_notification_shows_its_own_metrics_with_the_interval(aws: FakeAws) -> None:
    tuned = {"rougeL": 0.31, "rouge1": 0.42, "rouge2": 0.18, "rougeLsum": 0.3}
    base = {"rougeL": 0.19, "rouge1": 0.3, "rouge2": 0.08, "rougeLsum": 0.2}
    message = completed_message(aws, generative_event("summarization", "rougeL", tuned, base))
    assert "n/a" not in message and "accuracy" not in message
    lines = message.splitlines()
    gate = next(i for i, line in enumerate(lines) if line.startswith("rougeL (gate metric"))
    assert lines[gate] == (
        "rougeL (gate metric, 200 test records): 0.3100 (base 0.1900, threshold 0.2000); "
        "fine-tuned - base +0.1200, 95% CI [+0.0500, +0.2000] (paired bootstrap)"
    )
    assert lines[gate + 1] == "rouge1 0.4200 (base 0.3000), rouge2 0.1800 (base 0.0800), rougeLsum 0.3000 (base 0.2000)"


def test_a_qa_run_gating_on_exact_match_shows_it_first_on_its_0_100_scale(aws: FakeAws) -> None:
    event = generative_event("qa", "exact_match", {"f1": 71.5, "exact_match": 62.0}, {"f1": 40.0, "exact_match": 31.0})
    message = completed_message(aws, event)
    assert "exact_match (gate metric, 200 test records): 62.0000 (base 31.0000, threshold 50.0000)" in message
    assert "f1 71.5000 (base 40.0000)" in message


def test_a_multilabel_runs_notification_marks_hamming_loss_and_the_champion(aws: FakeAws) -> None:
    tuned = {"f1_micro": 0.8, "f1_macro": 0.7, "f1_samples": 0.75, "subset_accuracy": 0.5, "hamming_loss": 0.1}
    base = {"f1_micro": 0.4, "f1_macro": 0.3, "f1_samples": 0.35, "subset_accuracy": 0.1, "hamming_loss": 0.4}
    event = load_event("complete_run")
    event["run"].update(task="multilabel", metric=None, threshold=None)
    event["evaluation"].update(
        metric="f1_micro",
        finetuned_metrics=tuned,
        base_metrics=base,
        champion_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1",
        champion_metrics={**tuned, "f1_micro": 0.78},
    )
    message = completed_message(aws, event)
    assert "f1_micro (gate metric, 200 test records): 0.8000 (base 0.4000, threshold 0.5000, champion 0.7800)" in (
        message.splitlines()
    )
    assert "subset_accuracy 0.5000 (base 0.1000), hamming_loss 0.1000 (base 0.4000) (lower is better)" in message
    assert "n/a" not in message


# ------------------------------------------------------------------------------- the tuning child execution

TUNING_JOB = "churn-3f2a9c1d0b7e-5d0e9a1c"


def child_execution_cause(error: str | None, cause: str | None, status: str = "FAILED", **extra: Any) -> str:
    """The Cause of a failed ``states:startExecution.sync:2``: the child's DescribeExecution, as Step Functions gives
    it (Input and Output as JSON)."""
    described: dict[str, Any] = {
        "ExecutionArn": f"arn:aws:states:us-east-1:123456789012:execution:fmops-hpo:{RUN_ID}-hpo",
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:fmops-hpo",
        "Name": f"{RUN_ID}-hpo",
        "Status": status,
        "StartDate": 1735732800000,
        "StopDate": 1735736400000,
        "Input": {"run": {"run_id": RUN_ID}, "training_spec": {"job_name": f"{RUN_ID}-train"}},
        "InputDetails": {"Included": True},
        **extra,
    }
    if error is not None:
        described["Error"] = error
    if cause is not None:
        described["Cause"] = cause
    return json.dumps(described)


def tuning_state(cause: str) -> dict[str, Any]:
    state = load_event("plan_training")
    state["run"]["tuning"] = {"ranges": {"learning_rate": {"type": "continuous", "min": 1e-5, "max": 1e-3}}}
    state["training_spec"] = {"backend": "sagemaker", "job_name": f"{RUN_ID}-train"}
    state["error"] = {"Error": "States.TaskFailed", "Cause": cause}
    return state


def test_a_failed_tuning_job_inside_the_hpo_execution_shows_its_failure_reason(aws: FakeAws) -> None:
    tuning_job = {
        "HyperParameterTuningJobName": TUNING_JOB,
        "HyperParameterTuningJobStatus": "Failed",
        "FailureReason": "No training job succeeded after 5 attempts. See the training jobs for their errors.",
        "TrainingJobStatusCounters": {"NonRetryableError": 5},
    }
    result = fail(aws, tuning_state(child_execution_cause("States.TaskFailed", json.dumps(tuning_job))))
    assert result.failed_step == "Tune hyperparameters"
    assert result.error == "HyperparameterTuningFailed"
    assert result.cause == (
        f"execution {RUN_ID}-hpo FAILED: tuning job {TUNING_JOB} Failed: No training job succeeded after 5 attempts. "
        "See the training jobs for their errors."
    )
    [note] = aws.messages()
    assert note["Subject"] == f"fmops: run {RUN_ID} FAILED at Tune hyperparameters"
    assert "Error: HyperparameterTuningFailed" in note["Message"] and "ExecutionArn" not in note["Message"]


def test_a_lambda_error_inside_the_hpo_execution_keeps_its_own_name_and_message(aws: FakeAws) -> None:
    message = f"tuning job {TUNING_JOB} (Completed) has no completed training job with a validation_accuracy value"
    inner = lambda_cause("TuningFailedError", message)
    result = fail(aws, tuning_state(child_execution_cause("TuningFailedError", inner)))
    assert (result.error, result.cause, result.failed_step) == (
        "TuningFailedError",
        f"execution {RUN_ID}-hpo FAILED: {message}",
        "Tune hyperparameters",
    )


def test_a_stopped_or_timed_out_hpo_execution_says_so(aws: FakeAws) -> None:
    result = fail(aws, tuning_state(child_execution_cause(None, None, status="ABORTED")))
    assert (result.error, result.cause) == ("HyperparameterTuningFailed", f"execution {RUN_ID}-hpo ended ABORTED")
    timed_out = tuning_state(child_execution_cause("States.Timeout", ""))
    result = fail(aws, timed_out)
    assert result.error == "Timeout"
    assert result.cause == f"Tune hyperparameters timed out: execution {RUN_ID}-hpo FAILED: ended with States.Timeout"


def test_a_child_cause_in_its_output_or_camel_case_is_read_too(aws: FakeAws) -> None:
    with_output = child_execution_cause("States.TaskFailed", None, Output={"reason": "no objective values"})
    result = fail(aws, tuning_state(with_output))
    assert result.cause == f'execution {RUN_ID}-hpo FAILED: {{"reason": "no objective values"}}'
    camel = json.dumps(
        {"executionArn": "arn:x", "name": "child", "status": "FAILED", "error": "Boom", "cause": "it broke"}
    )
    assert fail(aws, tuning_state(camel)).model_dump(include={"error", "cause"}) == {
        "error": "Boom",
        "cause": "execution child FAILED: it broke",
    }


def test_a_states_error_re_raised_by_the_childs_fail_state_is_named_after_it(aws: FakeAws) -> None:
    # The local AWS refuses a Fail state whose ErrorPath gives a States.* name: the child fails with States.Runtime.
    refused = "ValueError(Custom Error Names MUST NOT begin with the prefix 'States.', got 'States.TaskFailed'.)"
    result = fail(aws, tuning_state(child_execution_cause("States.Runtime", refused)))
    assert result.error == "HyperparameterTuningFailed"
    assert result.cause.startswith(f"execution {RUN_ID}-hpo FAILED: States.TaskFailed, re-raised by a Fail state")


def test_a_cause_that_is_json_but_not_a_known_shape_is_kept() -> None:
    event = HandleFailureEvent.model_validate({"error": {"Error": "States.Runtime", "Cause": '{"x": 1}'}})
    assert readable_failure(event, "Plan training") == ("Runtime", '{"x": 1}')


def test_a_tuning_run_that_fails_after_the_hpo_execution_is_named_by_its_later_state() -> None:
    state: dict[str, Any] = {k: {} for k in ("dataset", "training_spec", "training")}
    state["run"] = {"backend": "sagemaker", "tuning": {"ranges": {}}}
    assert failed_step(parse(HandleFailureEvent, state)) == "Plan evaluation"
    del state["training"]
    assert failed_step(parse(HandleFailureEvent, state)) == "Tune hyperparameters"
    state["run"]["tuning"] = None
    assert failed_step(parse(HandleFailureEvent, state)) == "Train on SageMaker"
