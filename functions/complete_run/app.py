"""CompleteRunFunction (state "Complete run")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.aws.sns import Notifier
from fmops.config import CommonSettings
from fmops.lifecycle.completion import complete_run
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import CompleteRunEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = CommonSettings.from_env()
    return {"runs": Table(settings.runs_table), "notifier": Notifier(settings.notification_topic_arn)}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(CompleteRunEvent, event, "complete run input")
    return complete_run(request, **_deps()).model_dump(mode="json")
