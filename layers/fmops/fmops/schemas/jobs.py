"""Job requests, validated and dumped by alias in the API's own field names.

SageMaker models dump to the CreateTrainingJob / CreateProcessingJob request shape (PascalCase). The Bedrock
model dumps to the shape of the Step Functions ``bedrock:createModelCustomizationJob`` integration, which
is PascalCase too (``JobName``, ``TrainingDataConfig.S3Uri``...); ``to_api()`` gives the camelCase shape
of the Bedrock API for a direct boto3 call.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_pascal


class _Pascal(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid", defer_build=True)

    def dump(self) -> dict[str, Any]:
        """The request as the API (or the Step Functions integration) takes it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Tag(_Pascal):
    key: str
    value: str


class VpcConfig(_Pascal):
    security_group_ids: list[str] = Field(min_length=1)
    subnets: list[str] = Field(min_length=1)


class StoppingCondition(_Pascal):
    max_runtime_in_seconds: int = Field(ge=1)
    # Managed spot training only: the bound on waiting for spot capacity plus running (SageMaker: >= the runtime).
    max_wait_time_in_seconds: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _wait_covers_runtime(self) -> StoppingCondition:
        if self.max_wait_time_in_seconds is not None and self.max_wait_time_in_seconds < self.max_runtime_in_seconds:
            raise ValueError("MaxWaitTimeInSeconds must be >= MaxRuntimeInSeconds")
        return self


# ------------------------------------------------------------------------------------------ SageMaker


class MetricDefinition(_Pascal):
    name: str
    regex: str


class AlgorithmSpecification(_Pascal):
    training_image: str
    training_input_mode: Literal["File", "Pipe", "FastFile"] = "File"
    metric_definitions: list[MetricDefinition] = Field(default_factory=list)
    enable_sage_maker_metrics_time_series: bool = Field(default=True, alias="EnableSageMakerMetricsTimeSeries")


class S3DataSource(_Pascal):
    s3_data_type: Literal["S3Prefix", "ManifestFile"] = Field(default="S3Prefix", alias="S3DataType")
    s3_uri: str = Field(alias="S3Uri", pattern=r"^s3://")
    s3_data_distribution_type: Literal["FullyReplicated", "ShardedByS3Key"] = Field(
        default="FullyReplicated", alias="S3DataDistributionType"
    )


class DataSource(_Pascal):
    s3_data_source: S3DataSource = Field(alias="S3DataSource")


class Channel(_Pascal):
    channel_name: str
    data_source: DataSource
    content_type: str | None = None
    compression_type: Literal["None", "Gzip"] = "None"


class TrainingOutputDataConfig(_Pascal):
    s3_output_path: str = Field(alias="S3OutputPath", pattern=r"^s3://")
    kms_key_id: str | None = None


class CheckpointConfig(_Pascal):
    """Where SageMaker syncs the container's checkpoint folder (what an interrupted spot job restarts from)."""

    s3_uri: str = Field(alias="S3Uri", pattern=r"^s3://")
    local_path: str = "/opt/ml/checkpoints"


class ResourceConfig(_Pascal):
    instance_type: str
    instance_count: int = Field(ge=1)
    volume_size_in_gb: int = Field(ge=1, alias="VolumeSizeInGB")
    volume_kms_key_id: str | None = None


class CreateTrainingJobRequest(_Pascal):
    """sagemaker:CreateTrainingJob (every field the ASL maps is always present).

    Managed spot training (``enable_managed_spot_training``) requires ``stopping_condition.max_wait_time_in_seconds``
    (and that only with spot); fmops always sets ``checkpoint_config``, which spot jobs restart from.
    """

    training_job_name: str = Field(max_length=63, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    role_arn: str
    algorithm_specification: AlgorithmSpecification
    hyper_parameters: dict[str, str]
    input_data_config: list[Channel]
    output_data_config: TrainingOutputDataConfig
    resource_config: ResourceConfig
    vpc_config: VpcConfig
    stopping_condition: StoppingCondition
    enable_network_isolation: bool = True
    enable_inter_container_traffic_encryption: bool = False
    enable_managed_spot_training: bool = False
    checkpoint_config: CheckpointConfig | None = None
    environment: dict[str, str]
    tags: list[Tag]

    @model_validator(mode="after")
    def _spot_is_complete(self) -> CreateTrainingJobRequest:
        waits = self.stopping_condition.max_wait_time_in_seconds is not None
        if self.enable_managed_spot_training and not waits:
            raise ValueError("managed spot training needs StoppingCondition.MaxWaitTimeInSeconds")
        if waits and not self.enable_managed_spot_training:
            raise ValueError("StoppingCondition.MaxWaitTimeInSeconds is for managed spot training only")
        return self


class S3Input(_Pascal):
    s3_uri: str = Field(alias="S3Uri", pattern=r"^s3://")
    local_path: str
    s3_data_type: Literal["S3Prefix", "ManifestFile"] = Field(default="S3Prefix", alias="S3DataType")
    s3_input_mode: Literal["File", "Pipe"] = Field(default="File", alias="S3InputMode")
    s3_data_distribution_type: Literal["FullyReplicated", "ShardedByS3Key"] = Field(
        default="FullyReplicated", alias="S3DataDistributionType"
    )
    s3_compression_type: Literal["None", "Gzip"] = Field(default="None", alias="S3CompressionType")


class ProcessingInput(_Pascal):
    input_name: str
    s3_input: S3Input = Field(alias="S3Input")


class S3Output(_Pascal):
    s3_uri: str = Field(alias="S3Uri", pattern=r"^s3://")
    local_path: str
    s3_upload_mode: Literal["EndOfJob", "Continuous"] = Field(default="EndOfJob", alias="S3UploadMode")


class ProcessingOutput(_Pascal):
    output_name: str
    s3_output: S3Output = Field(alias="S3Output")


class ProcessingOutputConfig(_Pascal):
    outputs: list[ProcessingOutput]
    kms_key_id: str | None = None


class ClusterConfig(_Pascal):
    instance_count: int = Field(ge=1)
    instance_type: str
    volume_size_in_gb: int = Field(ge=1, alias="VolumeSizeInGB")
    volume_kms_key_id: str | None = None


class ProcessingResources(_Pascal):
    cluster_config: ClusterConfig


class AppSpecification(_Pascal):
    image_uri: str
    container_entrypoint: list[str]
    container_arguments: list[str]


class NetworkConfig(_Pascal):
    enable_inter_container_traffic_encryption: bool = False
    enable_network_isolation: bool = True
    vpc_config: VpcConfig


class CreateProcessingJobRequest(_Pascal):
    """sagemaker:CreateProcessingJob."""

    processing_job_name: str = Field(max_length=63, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    role_arn: str
    processing_inputs: list[ProcessingInput]
    processing_output_config: ProcessingOutputConfig
    processing_resources: ProcessingResources
    app_specification: AppSpecification
    network_config: NetworkConfig
    stopping_condition: StoppingCondition
    environment: dict[str, str]
    tags: list[Tag]


# -------------------------------------------------------------------------------------------- Bedrock


class S3UriConfig(_Pascal):
    s3_uri: str = Field(alias="S3Uri", pattern=r"^s3://")


class ValidationDataConfig(_Pascal):
    validators: list[S3UriConfig]


class BedrockVpcConfig(_Pascal):
    security_group_ids: list[str] = Field(min_length=1)
    subnet_ids: list[str] = Field(min_length=1)


class CreateModelCustomizationJobRequest(_Pascal):
    """bedrock:CreateModelCustomizationJob, in the Step Functions integration's PascalCase."""

    job_name: str = Field(max_length=63)
    custom_model_name: str = Field(max_length=63)
    role_arn: str
    base_model_identifier: str
    customization_type: Literal["FINE_TUNING", "CONTINUED_PRE_TRAINING"] = "FINE_TUNING"
    hyper_parameters: dict[str, str]
    training_data_config: S3UriConfig
    validation_data_config: ValidationDataConfig
    output_data_config: S3UriConfig
    custom_model_kms_key_id: str
    vpc_config: BedrockVpcConfig
    job_tags: list[Tag]
    custom_model_tags: list[Tag]

    def to_api(self) -> dict[str, Any]:
        """The same request in the Bedrock API's camelCase (boto3 ``create_model_customization_job``)."""
        return _camel(self.dump())


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: (item if key in _KEEP else _camel(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


_KEEP = frozenset({"HyperParameters"})
