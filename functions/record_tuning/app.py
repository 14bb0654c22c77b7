"""RecordTuningFunction (HPO state machine, state "Record tuning results")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sagemaker import SageMakerTuning
from fmops.config import CommonSettings
from fmops.lifecycle.tuning import record_tuning
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.tuning import RecordTuningEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = CommonSettings.from_env()
    return {
        "sagemaker": SageMakerTuning(),
        "s3": S3Storage(kms_key_id=settings.kms_key_arn),
        "runs": Table(settings.runs_table),
        "reports_bucket": settings.reports_bucket,
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(RecordTuningEvent, event, "record tuning input")
    return record_tuning(request, **_deps()).model_dump(mode="json")
