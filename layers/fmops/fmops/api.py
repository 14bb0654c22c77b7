"""The REST API (API Gateway, IAM auth): runs, approvals and the model registry.

Routes: GET /runs/{run_id}, GET /approvals, GET /approvals/{run_id},
POST /approvals/{run_id}/approve and /reject with body ``{"reason": "..."}``;
GET /models/{group}, GET /models/{group}/compare?versions=1,2[,...], GET /models/{group}/{version},
GET /models/{group}/{version}/lineage, POST /models/{group}/{version}/approve and /reject (body ``{"reason"}``).
The /models answers are ``fmops.registry.Registry``'s: each version's ``task`` and that task's metrics; compare
pairs versions with McNemar's test (classification) or the paired bootstrap of the gate metric (the other tasks),
and refuses versions of different tasks (400, field ``versions``).
The approver is the caller's IAM identity (``requestContext.identity.userArn``); without one: 401.
Errors are mapped to JSON responses in one place: 400 (with the field), 401, 404, 409, 503, 500.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sagemaker import SageMaker
from fmops.aws.stepfunctions import StepFunctions
from fmops.errors import (
    ApprovalAlreadyDecidedError,
    ApprovalNotFoundError,
    FmopsError,
    NotAuthenticatedError,
    RequestValidationError,
    ResourceNotFoundError,
    TransientAwsError,
)
from fmops.lifecycle import approval
from fmops.lifecycle._common import Clock, utcnow
from fmops.observability import logger
from fmops.registry import Registry, WorkflowApprovalPendingError, parse_versions, validate_version
from fmops.schemas.api import DecisionBody, ErrorBody
from fmops.schemas.base import parse
from fmops.schemas.run import RUN_ID_PATTERN

STATUS_BY_ERROR: tuple[tuple[type[FmopsError], int], ...] = (
    (RequestValidationError, 400),
    (NotAuthenticatedError, 401),
    (ApprovalNotFoundError, 404),
    (ResourceNotFoundError, 404),
    (ApprovalAlreadyDecidedError, 409),
    (WorkflowApprovalPendingError, 409),
    (TransientAwsError, 503),
)


@dataclass(frozen=True)
class ApiServices:
    """What the API needs (built once per process by the handler)."""

    runs: Table
    approvals: Table
    sagemaker: SageMaker
    sfn: StepFunctions
    clock: Clock = utcnow
    s3: S3Storage | None = None  # approval histories, lineage and predictions (a default client when None)
    reports_bucket: str | None = None


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def error_response(exc: Exception) -> Response[str]:
    """The one mapping from exceptions to responses; 500 never shows internals."""
    if isinstance(exc, FmopsError):
        for kind, status in STATUS_BY_ERROR:
            if isinstance(exc, kind):
                field = exc.field if isinstance(exc, RequestValidationError) else None
                return _json(status, ErrorBody(error=type(exc).__name__, message=exc.message, field=field).to_dict())
    if isinstance(exc, ServiceError):  # Powertools' own (unknown route: 404, wrong method...)
        return _json(exc.status_code, ErrorBody(error=type(exc).__name__, message=exc.msg).to_dict())
    logger.exception("unhandled error in the API")
    return _json(500, ErrorBody(error="InternalError", message="internal error").to_dict())


def _run_id(value: str) -> str:
    if not re.match(RUN_ID_PATTERN, value):
        raise RequestValidationError(f"run_id {value!r} is not a valid run id", field="run_id")
    return value


def create_app(services: ApiServices) -> APIGatewayRestResolver:
    """A resolver with the routes bound to ``services``."""
    app = APIGatewayRestResolver()
    s3 = services.s3 or S3Storage()
    registry = Registry(
        services.sagemaker,
        s3,
        reports_bucket=services.reports_bucket,
        approvals=services.approvals,
        clock=services.clock,
    )

    def approver() -> str:
        identity = app.current_event.request_context.identity
        user_arn = identity.user_arn if identity else None
        if not user_arn:
            raise NotAuthenticatedError("no caller identity: call the API with IAM (SigV4) credentials")
        return user_arn

    def body() -> DecisionBody:
        raw = app.current_event.body
        try:
            document = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise RequestValidationError(f"request body: invalid JSON: {exc}") from exc
        return parse(DecisionBody, document, "request body")

    @app.get("/runs/<run_id>")
    def get_run(run_id: str) -> dict[str, Any]:
        approver()
        return approval.get_run(_run_id(run_id), runs=services.runs).model_dump(mode="json")

    @app.get("/approvals")
    def list_approvals() -> dict[str, Any]:
        approver()
        return approval.list_approvals(approvals=services.approvals, clock=services.clock).model_dump(mode="json")

    @app.get("/approvals/<run_id>")
    def get_approval(run_id: str) -> dict[str, Any]:
        approver()
        return approval.get_approval(_run_id(run_id), approvals=services.approvals).model_dump(mode="json")

    def decide(run_id: str, decision: approval.Decision) -> dict[str, Any]:
        who = approver()
        request = body()
        result = approval.decide_approval(
            _run_id(run_id),
            decision,
            approver=who,
            reason=request.reason,
            approvals=services.approvals,
            runs=services.runs,
            sagemaker=services.sagemaker,
            sfn=services.sfn,
            clock=services.clock,
            s3=s3,
            reports_bucket=services.reports_bucket,
        )
        return result.model_dump(mode="json")

    @app.post("/approvals/<run_id>/approve")
    def approve(run_id: str) -> dict[str, Any]:
        return decide(run_id, "approved")

    @app.post("/approvals/<run_id>/reject")
    def reject(run_id: str) -> dict[str, Any]:
        return decide(run_id, "rejected")

    # Models: /compare is registered before /<version> (routes match in registration order).
    @app.get("/models/<group>")
    def list_models(group: str) -> dict[str, Any]:
        approver()
        return {"group": group, "versions": registry.list_versions(group)}

    @app.get("/models/<group>/compare")
    def compare_models(group: str) -> dict[str, Any]:
        approver()
        versions = parse_versions(app.current_event.get_query_string_value("versions"))
        return registry.compare(group, versions)

    @app.get("/models/<group>/<version>")
    def show_model(group: str, version: str) -> dict[str, Any]:
        approver()
        return registry.show(group, validate_version(version))

    @app.get("/models/<group>/<version>/lineage")
    def model_lineage(group: str, version: str) -> dict[str, Any]:
        approver()
        return registry.lineage(group, validate_version(version))

    def decide_model(group: str, version: str, decision: Literal["approve", "reject"]) -> dict[str, Any]:
        who = approver()
        request = body()
        return registry.decide(group, validate_version(version), decision, request.reason, who)

    @app.post("/models/<group>/<version>/approve")
    def approve_model(group: str, version: str) -> dict[str, Any]:
        return decide_model(group, version, "approve")

    @app.post("/models/<group>/<version>/reject")
    def reject_model(group: str, version: str) -> dict[str, Any]:
        return decide_model(group, version, "reject")

    @app.exception_handler(Exception)
    def handle(exc: Exception) -> Response[str]:
        return error_response(exc)

    return app
