"""REST API: the /models routes (list, show, lineage, compare, approve, reject) and their errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fmops_testkit import FakeAws, RecordingStepFunctions, fixed_clock, load_event
from models_testkit import TaskRun, generated_rows, register_version, request_pending_approval

from fmops.api import ApiServices, create_app

ALICE = "arn:aws:iam::123456789012:user/alice"


class Context:
    function_name = "approval-api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:approval-api"
    aws_request_id = "req-1"


def event(
    method: str, resource: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway proxy event for ``path`` (matched by ``resource``), signed by alice."""
    raw = load_event("approval_api_approve" if method == "POST" else "approval_api_get_run")
    names = [part[1:-1] for part in resource.split("/") if part.startswith("{")]
    values = [v for r, v in zip(resource.split("/"), path.split("/"), strict=True) if r.startswith("{")]
    raw.update(
        resource=resource,
        path=path,
        httpMethod=method,
        pathParameters=dict(zip(names, values, strict=True)) or None,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        body=None if body is None else (body if isinstance(body, str) else json.dumps(body)),
    )
    raw["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/prod{path}")
    return raw


def call(aws: FakeAws, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    services = ApiServices(
        runs=aws.runs,
        approvals=aws.approvals,
        sagemaker=aws.sagemaker,
        sfn=RecordingStepFunctions(),
        clock=fixed_clock,
        s3=aws.s3,
        reports_bucket=aws.env["REPORTS_BUCKET"],
    )
    response = create_app(services).resolve(request, Context())  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def two_versions(aws: FakeAws) -> FakeAws:
    register_version(aws, "churn-000000000001", correct=[True] * 10 + [False] * 2 + [True] * 20)
    register_version(aws, "churn-000000000002", correct=[False] * 10 + [True] * 2 + [True] * 20)
    return aws


def test_list_show_and_lineage(two_versions: FakeAws) -> None:
    status, body = call(two_versions, event("GET", "/models/{group}", "/models/churn"))
    assert status == 200 and body["group"] == "churn"
    assert [v["version"] for v in body["versions"]] == [2, 1]
    status, body = call(two_versions, event("GET", "/models/{group}/{version}", "/models/churn/1"))
    assert status == 200 and body["run_id"] == "churn-000000000001" and body["status"] == "PendingManualApproval"
    status, body = call(two_versions, event("GET", "/models/{group}/{version}/lineage", "/models/churn/2/lineage"))
    assert status == 200 and body["run_id"] == "churn-000000000002"
    assert body["dataset"]["test_sha256"] and body["training"]["training_job_arn"]


def test_compare(two_versions: FakeAws) -> None:
    request = event("GET", "/models/{group}/compare", "/models/churn/compare", query={"versions": "1,2"})
    status, body = call(two_versions, request)
    assert status == 200 and [v["version"] for v in body["versions"]] == [1, 2]
    (pair,) = body["paired_tests"]
    assert pair["test"]["only_a_correct"] == 10 and pair["test"]["only_b_correct"] == 2
    assert pair["test"]["better"] == 1


@pytest.mark.parametrize("query", [None, {"versions": "1"}, {"versions": "1,two"}])
def test_compare_needs_versions(two_versions: FakeAws, query: dict[str, str] | None) -> None:
    status, body = call(two_versions, event("GET", "/models/{group}/compare", "/models/churn/compare", query=query))
    assert status == 400 and body["field"] == "versions"


def test_approve_and_reject_as_the_iam_caller(two_versions: FakeAws) -> None:
    path = "/models/churn/1/approve"
    status, body = call(two_versions, event("POST", "/models/{group}/{version}/approve", path, {"reason": "good"}))
    assert status == 200 and body["status"] == "Approved" and body["who"] == ALICE
    assert body["approval_history"][-1] == {
        "who": ALICE,
        "when": "2025-01-01T12:00:00Z",
        "decision": "approved",
        "reason": "good",
    }
    path = "/models/churn/1/reject"
    status, body = call(two_versions, event("POST", "/models/{group}/{version}/reject", path, {"reason": "drift"}))
    assert status == 200 and body["status"] == "Rejected" and body["previous_status"] == "Approved"
    status, body = call(two_versions, event("GET", "/models/{group}/{version}", "/models/churn/1"))
    assert [e["decision"] for e in body["approval_history"]] == ["approved", "rejected"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"reason": ""}, "reason"), ({"reason": "   "}, "reason"), ({}, "reason"), ("not json", None)],
)
def test_a_decision_needs_a_reason(two_versions: FakeAws, body: Any, field: str | None) -> None:
    status, response = call(
        two_versions, event("POST", "/models/{group}/{version}/approve", "/models/churn/1/approve", body)
    )
    assert status == 400 and response.get("field") == field


@pytest.mark.parametrize(
    ("resource", "path", "message"),
    [
        ("/models/{group}", "/models/nothing", "no model package group nothing"),
        ("/models/{group}/{version}", "/models/churn/9", "model package group churn has no version 9"),
        ("/models/{group}/{version}/lineage", "/models/nothing/1/lineage", "no model package group nothing"),
    ],
)
def test_unknown_group_or_version_is_404(two_versions: FakeAws, resource: str, path: str, message: str) -> None:
    status, body = call(two_versions, event("GET", resource, path))
    assert status == 404 and body == {"error": "ResourceNotFoundError", "message": message}


def test_a_bad_version_is_400(two_versions: FakeAws) -> None:
    status, body = call(two_versions, event("GET", "/models/{group}/{version}", "/models/churn/latest"))
    assert status == 400 and body["field"] == "version"


def test_without_a_caller_identity_it_is_401(two_versions: FakeAws) -> None:
    request = event("GET", "/models/{group}", "/models/churn")
    request["requestContext"]["identity"]["userArn"] = None
    assert call(two_versions, request)[0] == 401


def test_a_version_waiting_for_its_workflow_approval_is_409(aws: FakeAws) -> None:
    ref = register_version(aws, "churn-3f2a9c1d0b7e")
    request_pending_approval(aws, ref)
    path = "/models/churn/1/approve"
    status, body = call(aws, event("POST", "/models/{group}/{version}/approve", path, {"reason": "ok"}))
    assert status == 409 and body["error"] == "WorkflowApprovalPendingError"
    assert "POST /approvals/churn-3f2a9c1d0b7e/approve" in body["message"]


def chat_version(aws: FakeAws, run_id: str, outputs: list[str]) -> None:
    gold = [f"reply number {i} to the customer" for i in range(len(outputs))]
    metrics = {"rougeL": 0.4, "rouge1": 0.4, "rouge2": 0.2, "rougeLsum": 0.4, "exact_match": 30.0, "f1": 50.0}
    task_run = TaskRun("chat", "rougeL", generated_rows(gold, outputs), metrics, dict.fromkeys(metrics, 0.0))
    register_version(aws, run_id, task_run=task_run)


def test_generative_versions_show_their_metrics_and_compare_by_bootstrap(aws: FakeAws) -> None:
    gold = [f"reply number {i} to the customer" for i in range(12)]
    chat_version(aws, "churn-000000000001", gold)
    chat_version(aws, "churn-000000000002", ["sorry"] * 12)
    status, body = call(aws, event("GET", "/models/{group}", "/models/churn"))
    assert status == 200 and {v["task"] for v in body["versions"]} == {"chat"}
    assert list(body["versions"][0]["metrics"])[:2] == ["rougeL", "rouge1"]
    request = event("GET", "/models/{group}/compare", "/models/churn/compare", query={"versions": "1,2"})
    status, body = call(aws, request)
    assert status == 200 and (body["task"], body["test"], body["metric"]) == ("chat", "paired_bootstrap", "rougeL")
    assert list(body["metrics"]) == ["rougeL", "rouge1", "rouge2", "rougeLsum", "exact_match", "f1"]
    (pair,) = body["paired_tests"]
    assert pair["test"]["name"] == "paired_bootstrap" and pair["test"]["better"] == 1


def test_comparing_versions_of_different_tasks_is_400_naming_the_field(two_versions: FakeAws) -> None:
    chat_version(two_versions, "churn-000000000003", ["hello"] * 4)
    request = event("GET", "/models/{group}/compare", "/models/churn/compare", query={"versions": "1,3"})
    status, body = call(two_versions, request)
    assert status == 400 and body["field"] == "versions" and body["error"] == "RequestValidationError"
    assert body["message"].startswith("versions of different tasks cannot be compared (v1 classification, v3 chat)")
