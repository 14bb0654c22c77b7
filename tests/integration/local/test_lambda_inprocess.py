"""Lambda functions run in-process with their own environment; errors keep their class name."""

from __future__ import annotations

import json
import os
import threading

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


SETS_ENV = """
import os

def lambda_handler(event, context):
    os.environ["SET_BY_HANDLER"] = "1"
    return {"greeting": os.environ["GREETING"]}
"""


def test_environment_is_restored_after_invoke(aws, monkeypatch):
    monkeypatch.delenv("GREETING", raising=False)
    monkeypatch.delenv("SET_BY_HANDLER", raising=False)
    create_function(aws, "setter", SETS_ENV, {"GREETING": "hello"})
    before = os.environ.copy()

    out = json.loads(aws.client("lambda").invoke(FunctionName="setter", Payload=b"{}")["Payload"].read())

    assert out == {"greeting": "hello"}
    assert os.environ.copy() == before


def test_environment_copies_in_other_threads_never_see_a_half_removed_key(aws):
    # botocore copies os.environ whenever it builds a credential chain, from any thread, while
    # in-process handlers add and remove their function's variables.
    names = [f"VAR_{i}" for i in range(200)]
    create_function(aws, "wide", HANDLER, {"GREETING": "hello", **dict.fromkeys(names, "x")})
    lam = aws.client("lambda")
    errors: list[BaseException] = []
    stop = threading.Event()

    def copy_forever() -> None:
        while not stop.is_set():
            try:
                os.environ.copy()
            except BaseException as exc:  # the failure this test exists for
                errors.append(exc)
                return

    copier = threading.Thread(target=copy_forever)
    copier.start()
    try:
        for _ in range(40):
            lam.invoke(FunctionName="wide", Payload=b'{"name": "ada"}')
    finally:
        stop.set()
        copier.join()

    assert errors == []
    assert not any(name in os.environ for name in names)


def test_function_variables_are_seen_by_the_invoking_thread_only(aws, monkeypatch):
    # The CI failures ('AWS_LAMBDA_FUNCTION_NAME', 'STACK_NAME' as a run's cause) came from process-wide
    # variables changing under a running handler; a handler's variables now live in its thread's overlay.
    import threading

    from fmops_local.patches.lambda_inprocess import _environment

    monkeypatch.setenv("FMOPS_SHARED", "process")
    seen: dict[str, object] = {}

    def other_thread() -> None:
        seen["function_var"] = os.environ.get("FMOPS_FUNCTION_VAR")
        seen["shared"] = os.environ.get("FMOPS_SHARED")
        del os.environ["FMOPS_SHARED"]  # another thread changes the process environment meanwhile

    with _environment({"FMOPS_FUNCTION_VAR": "f", "FMOPS_SHARED": "function"}):
        os.environ["SET_INSIDE"] = "1"
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert os.environ["FMOPS_SHARED"] == "function"  # unaffected by the other thread's delete
        assert os.environ.copy()["FMOPS_FUNCTION_VAR"] == "f" and "SET_INSIDE" in os.environ
        del os.environ["FMOPS_FUNCTION_VAR"]
        assert "FMOPS_FUNCTION_VAR" not in os.environ and "FMOPS_FUNCTION_VAR" not in os.environ.copy()
    assert seen == {"function_var": None, "shared": "process"}
    assert "SET_INSIDE" not in os.environ and "FMOPS_SHARED" not in os.environ
