"""Every deployed handler, given a malformed event, fails with a typed fmops error that names the field.

Run against the stack deployed in the local AWS (the same zip, environment and layer as on AWS): no
handler may crash into an unnamed error (KeyError, TypeError, ...), and none may write anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"
TYPED = {"RequestValidationError", "DatasetValidationError", "ConfigurationError"}

STEP_FUNCTIONS = {
    "ValidateDatasetFunction": "validate_dataset",
    "PlanTrainingFunction": "plan_training",
    "PlanEvaluationFunction": "plan_evaluation",
    "EvaluateFunction": "evaluate",
    "RegisterModelFunction": "register_model",
    "QualityGateFunction": "quality_gate",
    "RequestApprovalFunction": "request_approval",
    "DeployModelFunction": "deploy_model",
    "CompleteRunFunction": "complete_run",
    # The HPO state machine's (docs/TUNING.md).
    "PlanTuningFunction": "plan_tuning",
    "RecordTuningFunction": "record_tuning",
}


def _invoke(aws, logical_id: str, event: object) -> tuple[dict, bool]:
    resp = aws.client("lambda").invoke(FunctionName=aws.stack.resources[logical_id], Payload=json.dumps(event).encode())
    return json.loads(resp["Payload"].read() or b"{}"), "FunctionError" in resp


def _drop_first_field(event: dict) -> tuple[dict, str]:
    """The sample event without its first required-looking field, and that field's name."""
    key = next(k for k in event if k != "task_token")
    broken = dict(event)
    del broken[key]
    return broken, key


@pytest.mark.parametrize("logical_id", sorted(STEP_FUNCTIONS))
def test_step_handler_rejects_a_malformed_event_with_a_typed_error(stack_aws, logical_id):
    sample = json.loads((EVENTS / f"{STEP_FUNCTIONS[logical_id]}.json").read_text())
    broken, field = _drop_first_field(sample)
    packages_before = stack_aws.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]

    payload, errored = _invoke(stack_aws, logical_id, broken)

    assert errored, payload
    assert payload["errorType"] in TYPED, payload
    assert field in payload["errorMessage"], payload
    after = stack_aws.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert after == packages_before


@pytest.mark.parametrize("logical_id", sorted(STEP_FUNCTIONS))
def test_step_handler_rejects_a_non_object_event(stack_aws, logical_id):
    payload, errored = _invoke(stack_aws, logical_id, ["not", "an", "object"])
    assert errored
    assert payload["errorType"] in TYPED, payload


def test_api_handler_answers_bad_body_with_400_naming_the_field(stack_aws):
    event = json.loads((EVENTS / "approval_api_approve.json").read_text())
    event["body"] = json.dumps({"reason": ""})
    payload, errored = _invoke(stack_aws, "ApprovalApiFunction", event)
    assert not errored
    assert payload["statusCode"] == 400
    assert "reason" in payload["body"]


def test_ingest_rejects_an_event_without_detail_and_starts_nothing(stack_aws):
    event = json.loads((EVENTS / "ingest.json").read_text())
    del event["detail"]
    sfn = stack_aws.client("stepfunctions")
    arn = stack_aws.stack.output("FinetuneStateMachineArn")
    before = len(sfn.list_executions(stateMachineArn=arn)["executions"])

    payload, errored = _invoke(stack_aws, "IngestFunction", event)

    assert errored and payload["errorType"] in TYPED, payload
    assert "detail" in payload["errorMessage"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == before


def test_handle_failure_survives_a_malformed_state_and_still_notifies(stack_aws):
    payload, errored = _invoke(stack_aws, "HandleFailureFunction", {"error": {"Error": "Boom", "Cause": "x"}})
    assert not errored, payload
    assert payload["error"] == "Boom"


def _writes(aws) -> tuple[list, list, list]:
    """What a tuning function could write: run records, objects under the reports bucket's runs/, tuning jobs."""
    runs = aws.client("dynamodb").scan(TableName=aws.stack.output("RunsTableName"))["Items"]
    reports = aws.client("s3").list_objects_v2(Bucket=aws.stack.output("ReportsBucketName"), Prefix="runs/")
    tuning = aws.client("sagemaker").list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    return runs, reports.get("Contents", []), tuning


def _without(event: dict, path: str) -> dict:
    """``event`` with the field at a dotted ``path`` removed."""
    broken = json.loads(json.dumps(event))
    *parents, last = path.split(".")
    node = broken
    for part in parents:
        node = node[part]
    del node[last]
    return broken


@pytest.mark.parametrize(
    ("logical_id", "event", "change", "field"),
    [
        pytest.param(
            "PlanTuningFunction",
            "plan_tuning",
            lambda e: _without(e, "training_spec.sagemaker"),
            "training_spec",
        ),
        ("PlanTuningFunction", "plan_tuning", lambda e: {**e, "run": {**e["run"], "tuning": None}}, "tuning"),
        (
            "PlanTuningFunction",
            "plan_tuning",
            lambda e: _without(e, "training_spec.sagemaker.AlgorithmSpecification"),
            "AlgorithmSpecification",
        ),
        ("RecordTuningFunction", "record_tuning", lambda e: _without(e, "tuning_job.job_name"), "tuning_job.job_name"),
        (
            "RecordTuningFunction",
            "record_tuning",
            lambda e: {**e, "tuning_spec": {**e["tuning_spec"], "objective_type": "Sideways"}},
            "tuning_spec.objective_type",
        ),
    ],
)
def test_tuning_handlers_name_the_bad_field_and_write_nothing(stack_aws, logical_id, event, change, field):
    sample = json.loads((EVENTS / f"{event}.json").read_text())
    before = _writes(stack_aws)

    payload, errored = _invoke(stack_aws, logical_id, change(sample))

    assert errored, payload
    assert payload["errorType"] in TYPED, payload
    assert field in payload["errorMessage"], payload
    assert _writes(stack_aws) == before
