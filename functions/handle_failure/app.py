"""HandleFailureFunction (state "Handle failure": the notify-and-fail path)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.bedrock import Bedrock
from fmops.aws.dynamodb import Table
from fmops.aws.sagemaker import SageMaker
from fmops.aws.sns import Notifier
from fmops.config import CommonSettings
from fmops.lifecycle.completion import handle_failure
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import HandleFailureEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = CommonSettings.from_env()
    return {
        "runs": Table(settings.runs_table),
        "approvals": Table(settings.approvals_table),
        "sagemaker": SageMaker(),
        "bedrock": Bedrock(),
        "notifier": Notifier(settings.notification_topic_arn),
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(HandleFailureEvent, event, "failure input")
    return handle_failure(request, **_deps()).model_dump(mode="json")
