"""Lambda functions run in-process with their own environment; errors keep their class name."""

from __future__ import annotations

import json

from .conftest import create_function, run_execution

HANDLER = """
import os

class QuotaError(Exception):
    pass

def lambda_handler(event, context):
    if event.get("fail"):
        raise QuotaError("over quota at field 'x'")
    return {"greeting": os.environ["GREETING"], "name": event["name"], "fn": context.function_name,
            "remaining_ok": context.get_remaining_time_in_millis() > 0}
"""


def test_invoke_returns_result_with_function_environment(aws):
    create_function(aws, "greeter", HANDLER, {"GREETING": "hello"})
    create_function(aws, "other", HANDLER, {"GREETING": "hi"})
    lam = aws.client("lambda")

    first = json.loads(lam.invoke(FunctionName="greeter", Payload=b'{"name": "ada"}')["Payload"].read())
    second = json.loads(lam.invoke(FunctionName="other", Payload=b'{"name": "bob"}')["Payload"].read())

    assert first == {"greeting": "hello", "name": "ada", "fn": "greeter", "remaining_ok": True}
    assert second["greeting"] == "hi"


def test_handler_error_is_reported_with_its_type(aws):
    create_function(aws, "greeter", HANDLER, {"GREETING": "hello"})
    resp = aws.client("lambda").invoke(FunctionName="greeter", Payload=b'{"fail": true}')

    payload = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Handled"
    assert payload["errorType"] == "QuotaError"
    assert "field 'x'" in payload["errorMessage"]


def test_state_machine_catches_handler_error_by_class_name(aws):
    arn = create_function(aws, "greeter", HANDLER, {"GREETING": "hello"})
    definition = {
        "StartAt": "Greet",
        "States": {
            "Greet": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["QuotaError"], "ResultPath": "$.error", "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }
    result = run_execution(aws, definition, {"fail": True}, "catch-by-name")

    assert result["status"] == "FAILED"
    assert result["error"] == "QuotaError"
    assert "over quota" in result["cause"]
