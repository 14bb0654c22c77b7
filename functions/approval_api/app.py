"""ApprovalApiFunction: the REST API (runs, approvals and the model registry), IAM auth."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.api import ApiServices, create_app
from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sagemaker import SageMaker
from fmops.aws.stepfunctions import StepFunctions
from fmops.config import CommonSettings
from fmops.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _app() -> APIGatewayRestResolver:
    settings = CommonSettings.from_env()
    return create_app(
        ApiServices(
            runs=Table(settings.runs_table),
            approvals=Table(settings.approvals_table),
            sagemaker=SageMaker(),
            sfn=StepFunctions(),
            s3=S3Storage(kms_key_id=settings.kms_key_arn),
            reports_bucket=settings.reports_bucket,
        )
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _app().resolve(event, context)
