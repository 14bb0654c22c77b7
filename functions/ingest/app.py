"""IngestFunction: an S3 "Object Created" event (EventBridge) starts one fine-tune run."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sns import Notifier
from fmops.aws.stepfunctions import StepFunctions
from fmops.config import IngestSettings
from fmops.lifecycle.ingest import start_run
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.s3event import S3ObjectCreatedEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = IngestSettings.from_env()
    return {
        "settings": settings,
        "s3": S3Storage(kms_key_id=settings.kms_key_arn),
        "runs": Table(settings.runs_table),
        "sfn": StepFunctions(),
        "notifier": Notifier(settings.notification_topic_arn),
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(S3ObjectCreatedEvent, event, "S3 event")
    return start_run(request, **_deps()).model_dump(mode="json")
