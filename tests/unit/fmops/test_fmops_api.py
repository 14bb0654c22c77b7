"""REST API: routes, caller identity, and the error mapping (400/401/404/409/500)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from fmops_testkit import FakeAws, RecordingStepFunctions, fixed_clock, load_event

from fmops.api import ApiServices, create_app
from fmops.config import RequestApprovalSettings
from fmops.lifecycle.approval import request_approval
from fmops.schemas import parse
from fmops.schemas.steps import RequestApprovalEvent

RUN_ID = "churn-3f2a9c1d0b7e"


class Context:
    function_name = "approval-api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:approval-api"
    aws_request_id = "req-1"


def call(aws: FakeAws, event: dict[str, Any], sfn: RecordingStepFunctions | None = None) -> tuple[int, dict[str, Any]]:
    services = ApiServices(
        runs=aws.runs,
        approvals=aws.approvals,
        sagemaker=aws.sagemaker,
        sfn=sfn or RecordingStepFunctions(),
        clock=fixed_clock,
    )
    response = create_app(services).resolve(event, Context())  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


def pending(aws: FakeAws) -> None:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    arn = client.create_model_package(ModelPackageGroupName="churn", ModelApprovalStatus="PendingManualApproval")
    raw = load_event("request_approval")
    raw["model_package"]["model_package_arn"] = arn["ModelPackageArn"]
    request_approval(
        parse(RequestApprovalEvent, raw),
        approvals=aws.approvals,
        runs=aws.runs,
        notifier=aws.notifier,
        settings=RequestApprovalSettings.from_env(),
        clock=fixed_clock,
    )


def test_list_get_and_approve(aws: FakeAws) -> None:
    pending(aws)
    status, body = call(aws, load_event("approval_api_list"))
    assert status == 200 and [a["run_id"] for a in body["approvals"]] == [RUN_ID]
    assert "task_token" not in body["approvals"][0]
    status, body = call(aws, load_event("approval_api_get_approval"))
    assert status == 200 and body["metric"] == "accuracy"
    sfn = RecordingStepFunctions()
    status, body = call(aws, load_event("approval_api_approve"), sfn)
    assert status == 200
    assert body["decision"] == "approved" and body["approver"] == "arn:aws:iam::123456789012:user/alice"
    assert sfn.calls[0][0] == "success"
    status, body = call(aws, load_event("approval_api_get_run"))
    assert status == 200 and body["status"] == "APPROVED"


def test_reject(aws: FakeAws) -> None:
    pending(aws)
    sfn = RecordingStepFunctions()
    status, body = call(aws, load_event("approval_api_reject"), sfn)
    assert status == 200 and body["decision"] == "rejected"
    assert sfn.calls[0][1]["error"] == "ApprovalRejected"


def test_deciding_twice_is_409(aws: FakeAws) -> None:
    pending(aws)
    assert call(aws, load_event("approval_api_approve"))[0] == 200
    status, body = call(aws, load_event("approval_api_reject"))
    assert status == 409 and body["error"] == "ApprovalAlreadyDecidedError"


def test_unknown_approval_and_run_are_404(aws: FakeAws) -> None:
    status, body = call(aws, load_event("approval_api_approve"))
    assert status == 404 and body == {
        "error": "ApprovalNotFoundError",
        "message": f"no pending approval for run {RUN_ID}",
    }
    assert call(aws, load_event("approval_api_get_run"))[0] == 404


def test_without_a_caller_identity_it_is_401(aws: FakeAws) -> None:
    event = load_event("approval_api_approve")
    event["requestContext"]["identity"]["userArn"] = None
    status, body = call(aws, event)
    assert status == 401 and body["error"] == "NotAuthenticatedError"


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({}, "reason", "is required"),
        ({"reason": ""}, "reason", "at least 1 character"),
        ({"reason": "ok", "extra": 1}, "extra", "is not a known field"),
        ("not json", None, "invalid JSON"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(aws: FakeAws, body: Any, field: str | None, text: str) -> None:
    pending(aws)
    event = load_event("approval_api_approve")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    status, response = call(aws, event)
    assert status == 400 and text in response["message"]
    assert response.get("field") == field
    assert aws.approvals.get(RUN_ID) is not None


def test_a_bad_run_id_is_400(aws: FakeAws) -> None:
    event = load_event("approval_api_get_run")
    event["path"] = "/runs/NOT_VALID"
    event["pathParameters"] = {"run_id": "NOT_VALID"}
    status, body = call(aws, event)
    assert status == 400 and body["field"] == "run_id"


def test_unknown_route_is_404_and_internal_errors_hide_details(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    event = load_event("approval_api_list")
    event["path"] = "/nothing"
    assert call(aws, event)[0] == 404

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("fmops.lifecycle.approval.list_approvals", boom)
    status, body = call(aws, load_event("approval_api_list"))
    assert status == 500 and body == {"error": "InternalError", "message": "internal error"}
