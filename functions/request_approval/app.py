"""RequestApprovalFunction (state "Request approval", invoked with a task token)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.aws.sns import Notifier
from fmops.config import RequestApprovalSettings
from fmops.lifecycle.approval import request_approval
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import RequestApprovalEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = RequestApprovalSettings.from_env()
    return {
        "settings": settings,
        "approvals": Table(settings.approvals_table),
        "runs": Table(settings.runs_table),
        "notifier": Notifier(settings.notification_topic_arn),
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(RequestApprovalEvent, event, "request approval input")
    return request_approval(request, **_deps()).model_dump(mode="json")
