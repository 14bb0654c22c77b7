"""The cause a person sees when the HPO child execution fails: the fine-tune workflow's "Tune hyperparameters" state
(``states:startExecution.sync:2``) fails with the child's DescribeExecution as its Cause; the failure handler shows
the error of what failed inside the child. Child and parent are shaped as statemachines/hpo.asl.json and
finetune.asl.json (a Lambda state caught into ``$.error``, a Fail state with ErrorPath/CausePath)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fmops.lifecycle.completion import failed_step, readable_failure
from fmops.schemas.base import parse
from fmops.schemas.steps import HandleFailureEvent

from .conftest import create_function, role, run_execution

pytestmark = pytest.mark.integration

RECORD = """
class TuningFailedError(Exception):
    pass

def lambda_handler(event, context):
    raise TuningFailedError("tuning job t-5d0e9a1c (Failed) has no completed training job with a "
                            "validation_accuracy value among its 3 training jobs")
"""
TUNING_JOB_FAILED = {
    "HyperParameterTuningJobName": "t-5d0e9a1c",
    "HyperParameterTuningJobStatus": "Failed",
    "FailureReason": "No training job succeeded after 3 attempts",
}


def child_definition(function_arn: str) -> dict[str, Any]:
    """The HPO state machine's failure path: a failed tuning job (the .sync task's States.TaskFailed, its cause the
    DescribeHyperParameterTuningJob) or a failed Lambda, caught into $.error and raised by "Tuning failed"."""
    return {
        "StartAt": "Which",
        "States": {
            "Which": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.lambda", "BooleanEquals": True, "Next": "Record tuning results"}],
                "Default": "Run tuning job",
            },
            "Run tuning job": {
                "Type": "Pass",
                "Parameters": {"Error": "States.TaskFailed", "Cause": json.dumps(TUNING_JOB_FAILED)},
                "ResultPath": "$.error",
                "Next": "Tuning failed",
            },
            "Record tuning results": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Tuning failed"}],
                "End": True,
            },
            "Tuning failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }


def parent_definition(child_arn: str) -> dict[str, Any]:
    return {
        "StartAt": "Tune hyperparameters",
        "States": {
            "Tune hyperparameters": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {
                    "StateMachineArn": child_arn,
                    "Name.$": "States.Format('{}-hpo', $$.Execution.Name)",
                    "Input": {"lambda.$": "$.lambda"},
                },
                "ResultPath": "$.tuning",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle failure"}],
                "End": True,
            },
            # finetune.asl.json's "Handle failure" Lambda gets the whole state: here the state is the output.
            "Handle failure": {"Type": "Pass", "End": True},
        },
    }


@pytest.mark.parametrize(
    ("through_lambda", "error", "cause"),
    [
        (
            True,
            "TuningFailedError",
            "FAILED: tuning job t-5d0e9a1c (Failed) has no completed training job with a validation_accuracy value "
            "among its 3 training jobs",
        ),
        # hpo.asl.json's "Tuning failed" re-raises the tuning job's States.TaskFailed through ErrorPath, which the
        # local AWS refuses (States.Runtime): the tuning job's FailureReason does not reach the parent.
        (False, "HyperparameterTuningFailed", "FAILED: States.TaskFailed, re-raised by a Fail state"),
    ],
)
def test_the_child_executions_own_error_is_shown(aws: Any, through_lambda: bool, error: str, cause: str) -> None:
    function_arn = create_function(aws, f"record-{through_lambda}".lower(), RECORD)
    sfn = aws.client("stepfunctions")
    child_arn = sfn.create_state_machine(
        name=f"hpo-{through_lambda}".lower(), definition=json.dumps(child_definition(function_arn)), roleArn=role(aws)
    )["stateMachineArn"]
    name = f"run-{through_lambda}".lower()
    done = run_execution(aws, parent_definition(child_arn), {"lambda": through_lambda}, name)
    assert done["status"] == "SUCCEEDED", done.get("cause")
    caught = json.loads(done["output"])["error"]
    assert caught["Error"] == "States.TaskFailed"
    assert json.loads(caught["Cause"])["Name"] == f"{name}-hpo"  # the raw cause is the child's DescribeExecution

    # What "Handle failure" receives: the workflow state with the Catch's $.error.
    state = {
        "run": {"run_id": name, "backend": "sagemaker", "tuning": {"ranges": {}}},
        "data_plan": {},
        "dataset": {},
        "training_spec": {},
        "error": caught,
    }
    event = parse(HandleFailureEvent, state)
    step = failed_step(event)
    assert step == "Tune hyperparameters"
    shown_error, shown_cause = readable_failure(event, step)
    assert shown_error == error
    assert shown_cause.startswith(f"execution {name}-hpo {cause}"), shown_cause
