"""DeployModelFunction (states "Deploy model" and "Check provisioned throughput")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.bedrock import Bedrock
from fmops.aws.dynamodb import Table
from fmops.aws.sagemaker import SageMaker
from fmops.config import DeployModelSettings
from fmops.lifecycle.deployment import deploy_model
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import DeployModelEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = DeployModelSettings.from_env()
    return {"settings": settings, "sagemaker": SageMaker(), "bedrock": Bedrock(), "runs": Table(settings.runs_table)}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(DeployModelEvent, event, "deploy model input")
    return deploy_model(request, **_deps()).model_dump(mode="json")
