"""Deploy an approved model: SageMaker model + endpoint config + endpoint, or a Bedrock provisioned throughput."""

from __future__ import annotations

import math

from fmops.aws.bedrock import Bedrock
from fmops.aws.dynamodb import Table
from fmops.aws.sagemaker import SageMaker
from fmops.config import DeployModelSettings
from fmops.errors import DeploymentError, RequestValidationError, ResourceNotReadyError
from fmops.lifecycle._common import STATUS_DEPLOYING, Clock, iso, run_tags, utcnow
from fmops.lifecycle.training import supports_volume_kms
from fmops.observability import logger
from fmops.schemas.steps import DeploymentResult, DeployModelEvent

VARIANT_NAME = "finetuned"
DEPLOY_TIMEOUT_SECONDS = 3600
BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def max_polls(poll_seconds: int) -> int:
    """How many status checks the workflow makes before it gives up (about an hour)."""
    return max(1, math.ceil(DEPLOY_TIMEOUT_SECONDS / poll_seconds))


def deploy_model(
    event: DeployModelEvent,
    *,
    sagemaker: SageMaker,
    bedrock: Bedrock,
    runs: Table,
    settings: DeployModelSettings,
    clock: Clock = utcnow,
) -> DeploymentResult:
    """Create (or reuse, on retries) the serving resources of the approved model.

    SageMaker: model ``<run_id>`` from the model package, endpoint config ``<run_id>`` (variant
    ``finetuned``), endpoint ``<use_case>``, created, or updated to the new config when it exists.
    Bedrock: a no-commitment provisioned throughput ``<run_id>`` for the custom model. Called again, it
    creates nothing and reports the current status (the workflow's Bedrock status check).

    Raises:
        ResourceNotReadyError: the endpoint is busy with another update (retried).
        DeploymentError: the endpoint is in a state a retry will not fix, or the model is missing.
        TransientAwsError, AwsRequestError.
    """
    run = event.run
    tags = run_tags(run, settings.stack_name)
    polls = max_polls(run.poll_seconds)
    if run.backend == "bedrock":
        model_arn = event.training.custom_model_arn
        if not model_arn:
            raise DeploymentError(f"training job {event.training.job_name} reported no custom model ARN")
        existing = bedrock.get_provisioned_throughput(run.run_id)
        if existing is None:
            lower_tags = [{"key": t["Key"], "value": t["Value"]} for t in tags]
            arn = bedrock.create_provisioned_throughput(run.run_id, model_arn, lower_tags)
            status = "Creating"
        else:
            arn, status = str(existing["provisionedModelArn"]), str(existing["status"])
        _record(runs, run.run_id, run.run_id, clock)
        return DeploymentResult(
            backend="bedrock", endpoint_name=run.run_id, provisioned_model_arn=arn, status=status, max_polls=polls
        )

    if event.model_package is None or event.approval is None:
        raise RequestValidationError("field 'model_package': a SageMaker deployment needs the approved package")
    name = run.run_id
    endpoint = run.use_case
    sagemaker.create_model(
        {
            "ModelName": name,
            "ExecutionRoleArn": settings.sagemaker_role_arn,
            "Containers": [{"ModelPackageName": event.model_package.model_package_arn}],
            "VpcConfig": {
                "SecurityGroupIds": [settings.training_security_group_id],
                "Subnets": list(settings.subnet_ids),
            },
            "EnableNetworkIsolation": True,
            "Tags": tags,
        }
    )
    config: dict[str, object] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": name,
                "InitialInstanceCount": run.inference_instance_count,
                "InstanceType": run.inference_instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": tags,
    }
    if supports_volume_kms(run.inference_instance_type):
        config["KmsKeyId"] = settings.kms_key_arn
    sagemaker.create_endpoint_config(config)

    current = sagemaker.describe_endpoint(endpoint)
    if current is None:
        sagemaker.create_endpoint(endpoint, name, tags)
        status = "Creating"
    else:
        status = str(current.get("EndpointStatus", ""))
        if current.get("EndpointConfigName") == name:
            pass  # a retry: this run's config is already (being) deployed
        elif status == "InService":
            sagemaker.update_endpoint(endpoint, name)
            status = "Updating"
        elif status in BUSY:
            raise ResourceNotReadyError(f"endpoint {endpoint} is {status} with another config; retrying")
        else:
            raise DeploymentError(
                f"endpoint {endpoint} is {status} ({current.get('FailureReason', 'no reason given')}); "
                "fix or delete it, then run again"
            )
    _record(runs, run.run_id, endpoint, clock)
    logger.info("deploying", extra={"run_id": run.run_id, "endpoint": endpoint, "status": status})
    return DeploymentResult(
        backend="sagemaker",
        endpoint_name=endpoint,
        endpoint_config_name=name,
        model_name=name,
        status=status,
        max_polls=polls,
    )


def _record(runs: Table, run_id: str, endpoint: str, clock: Clock) -> None:
    runs.update(run_id, {"status": STATUS_DEPLOYING, "endpoint_name": endpoint, "updated_at": iso(clock())})
