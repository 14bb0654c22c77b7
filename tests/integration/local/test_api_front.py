"""The local API front demands SigV4 (IAM auth) and hands API Gateway proxy events to the handler."""

from __future__ import annotations

import json

import boto3
import pytest
import requests

from fmops_local.api_client import ApiClient, ApiError
from fmops_local.api_front import ApiFront, route

SECRET = "test-secret-key"


@pytest.fixture
def front():
    calls = []

    def invoke(function_name, event):
        calls.append((function_name, event))
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(
                {
                    "path": event["pathParameters"],
                    "who": event["requestContext"]["identity"]["userArn"],
                    "body": json.loads(event["body"]) if event["body"] else None,
                }
            ),
        }

    api = ApiFront(
        invoke=invoke,
        function_names={"ApprovalApiFunction": "approval-fn"},
        secrets={"AKIDTEST": SECRET},
        identities={"AKIDTEST": "arn:aws:iam::123456789012:user/ada"},
        region="us-east-1",
        account="123456789012",
        routes=[
            route("POST", "/approvals/{run_id}/approve", "ApprovalApiFunction"),
            route("GET", "/approvals", "ApprovalApiFunction"),
        ],
    ).start()
    api.calls = calls
    yield api
    api.stop()


def _client(front, secret=SECRET):
    session = boto3.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key=secret, region_name="us-east-1")
    return ApiClient(front.url, session=session)


def test_signed_request_reaches_handler_with_identity_and_path(front):
    result = _client(front).decide("run-1", "approve", "looks good")

    assert result == {
        "path": {"run_id": "run-1"},
        "who": "arn:aws:iam::123456789012:user/ada",
        "body": {"reason": "looks good"},
    }
    function_name, event = front.calls[0]
    assert function_name == "approval-fn"
    assert event["resource"] == "/approvals/{run_id}/approve" and event["httpMethod"] == "POST"


def test_unsigned_request_is_refused(front):
    resp = requests.get(front.url + "/approvals", timeout=5)
    assert resp.status_code == 403
    assert resp.json()["message"] == "Missing Authentication Token"
    assert front.calls == []


def test_wrong_secret_is_refused(front):
    with pytest.raises(ApiError) as err:
        _client(front, secret="not-the-secret").approvals()
    assert err.value.status == 403
    assert "signature" in err.value.message
    assert front.calls == []


def test_unknown_route_is_404(front):
    with pytest.raises(ApiError) as err:
        _client(front).request("GET", "/nothing-here")
    assert err.value.status == 404
