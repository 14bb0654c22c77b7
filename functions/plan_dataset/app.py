"""PlanDatasetFunction (state "Plan data validation")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.s3 import S3Storage
from fmops.config import PlanDatasetSettings
from fmops.lifecycle.dataset import plan_dataset
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import PlanDatasetEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> tuple[PlanDatasetSettings, S3Storage]:
    settings = PlanDatasetSettings.from_env()
    return settings, S3Storage(kms_key_id=settings.kms_key_arn)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(PlanDatasetEvent, event, "plan data validation input")
    settings, s3 = _deps()
    return plan_dataset(request.run, s3=s3, default_shard_bytes=settings.data_shard_bytes).model_dump(mode="json")
