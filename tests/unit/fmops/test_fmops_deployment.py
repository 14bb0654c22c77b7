"""Deploy: SageMaker model/config/endpoint (create, update, reuse) and Bedrock provisioned throughput."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from fmops_testkit import FakeAws, fixed_clock, load_event

from fmops.aws.bedrock import Bedrock
from fmops.aws.sagemaker import SageMaker
from fmops.config import DeployModelSettings
from fmops.errors import DeploymentError, ResourceNotReadyError
from fmops.lifecycle.deployment import deploy_model, max_polls
from fmops.schemas import DeploymentResult, parse
from fmops.schemas.steps import DeployModelEvent

RUN_ID = "churn-3f2a9c1d0b7e"


def approved_package() -> str:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    return str(
        client.create_model_package(
            ModelPackageGroupName="churn",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": "s3://fmops-artifacts/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    )


class FakeBedrock(Bedrock):
    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        super().__init__(client=object())
        self.existing = existing
        self.created: list[tuple[str, str, list[dict[str, str]]]] = []

    def get_provisioned_throughput(self, name: str) -> dict[str, Any] | None:
        return self.existing

    def create_provisioned_throughput(self, name: str, model_arn: str, tags: list[dict[str, str]]) -> str:
        self.created.append((name, model_arn, tags))
        return f"arn:aws:bedrock:us-east-1:123456789012:provisioned-model/{name}"


class StatusSageMaker(SageMaker):
    """moto endpoints are InService at once and moto has no UpdateEndpoint: script both."""

    def __init__(self, endpoint: dict[str, Any] | None) -> None:
        super().__init__(boto3.client("sagemaker"))
        self.endpoint = endpoint
        self.updates: list[tuple[str, str]] = []

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self.endpoint

    def update_endpoint(self, name: str, config_name: str) -> None:
        self.updates.append((name, config_name))


def deploy(
    aws: FakeAws, sagemaker: SageMaker | None = None, bedrock: Bedrock | None = None, **run: Any
) -> DeploymentResult:
    raw = load_event("deploy_model")
    raw["run"].update(run)
    raw["model_package"]["model_package_arn"] = approved_package() if run.get("backend") != "bedrock" else "arn:p"
    return deploy_model(
        parse(DeployModelEvent, raw),
        sagemaker=sagemaker or aws.sagemaker,
        bedrock=bedrock or FakeBedrock(),
        runs=aws.runs,
        settings=DeployModelSettings.from_env(),
        clock=fixed_clock,
    )


def test_first_deploy_creates_model_config_and_endpoint(aws: FakeAws, env: dict[str, str]) -> None:
    result = deploy(aws)
    assert result.model_dump() == {
        "backend": "sagemaker",
        "endpoint_name": "churn",
        "endpoint_config_name": RUN_ID,
        "model_name": RUN_ID,
        "provisioned_model_arn": None,
        "status": "Creating",
        "max_polls": 120,
    }
    client = boto3.client("sagemaker")
    model = client.describe_model(ModelName=RUN_ID)
    assert model["ExecutionRoleArn"] == env["SAGEMAKER_ROLE_ARN"]
    assert model["VpcConfig"]["Subnets"] == ["subnet-0a", "subnet-0b"]
    config = client.describe_endpoint_config(EndpointConfigName=RUN_ID)
    [variant] = config["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"], variant["InstanceType"]) == (
        "finetuned",
        RUN_ID,
        "ml.m5.xlarge",
    )
    assert config["KmsKeyId"] == env["KMS_KEY_ARN"]
    assert client.describe_endpoint(EndpointName="churn")["EndpointConfigName"] == RUN_ID
    run = aws.runs.get(RUN_ID)
    assert run is not None and run["status"] == "DEPLOYING" and run["endpoint_name"] == "churn"


def test_a_retry_reuses_everything(aws: FakeAws) -> None:
    deploy(aws)
    again = deploy(aws)
    assert again.endpoint_config_name == RUN_ID
    assert len(boto3.client("sagemaker").list_endpoints()["Endpoints"]) == 1


def test_an_existing_endpoint_is_updated_to_the_new_config(aws: FakeAws) -> None:
    sagemaker = StatusSageMaker({"EndpointName": "churn", "EndpointStatus": "InService", "EndpointConfigName": "old"})
    result = deploy(aws, sagemaker)
    assert result.status == "Updating"
    assert sagemaker.updates == [("churn", RUN_ID)]


def test_a_busy_endpoint_is_retried_later(aws: FakeAws) -> None:
    sagemaker = StatusSageMaker({"EndpointName": "churn", "EndpointStatus": "Updating", "EndpointConfigName": "old"})
    with pytest.raises(ResourceNotReadyError, match="endpoint churn is Updating"):
        deploy(aws, sagemaker)


def test_a_failed_endpoint_is_a_deployment_error(aws: FakeAws) -> None:
    sagemaker = StatusSageMaker(
        {"EndpointName": "churn", "EndpointStatus": "Failed", "EndpointConfigName": "old", "FailureReason": "boom"}
    )
    with pytest.raises(DeploymentError, match="endpoint churn is Failed \\(boom\\)"):
        deploy(aws, sagemaker)


def test_gpu_inference_instances_get_no_volume_key(aws: FakeAws) -> None:
    deploy(aws, inference_instance_type="ml.g4dn.xlarge")  # moto knows no g5 yet
    assert "KmsKeyId" not in boto3.client("sagemaker").describe_endpoint_config(EndpointConfigName=RUN_ID)


def bedrock_deploy(aws: FakeAws, bedrock: FakeBedrock) -> DeploymentResult:
    raw = load_event("deploy_model")
    raw["run"]["backend"] = "bedrock"
    raw["training"].update(backend="bedrock", custom_model_arn="arn:aws:bedrock:us-east-1:123456789012:custom-model/x")
    return deploy_model(
        parse(DeployModelEvent, raw),
        sagemaker=aws.sagemaker,
        bedrock=bedrock,
        runs=aws.runs,
        settings=DeployModelSettings.from_env(),
    )


def test_bedrock_creates_a_no_commitment_throughput_once(aws: FakeAws) -> None:
    bedrock = FakeBedrock()
    result = bedrock_deploy(aws, bedrock)
    assert result.backend == "bedrock" and result.status == "Creating" and result.endpoint_name == RUN_ID
    [(name, model, tags)] = bedrock.created
    assert (name, model) == (RUN_ID, "arn:aws:bedrock:us-east-1:123456789012:custom-model/x")
    assert {"key": "fmops:run-id", "value": RUN_ID} in tags
    existing = FakeBedrock({"provisionedModelArn": "arn:pt", "status": "InService"})
    again = bedrock_deploy(aws, existing)
    assert (again.status, again.provisioned_model_arn, existing.created) == ("InService", "arn:pt", [])


def test_poll_budget_is_about_an_hour() -> None:
    assert max_polls(30) == 120 and max_polls(300) == 12 and max_polls(7) == 515
