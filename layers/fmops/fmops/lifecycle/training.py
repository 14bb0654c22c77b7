"""Plan the training job: a validated CreateTrainingJob (SageMaker) or CreateModelCustomizationJob request."""

from __future__ import annotations

from fmops.config import PlanTrainingSettings
from fmops.errors import RequestValidationError
from fmops.lifecycle._common import CODE_KEY, METRIC_NAMES, run_tags
from fmops.schemas.jobs import (
    AlgorithmSpecification,
    BedrockVpcConfig,
    Channel,
    CreateModelCustomizationJobRequest,
    CreateTrainingJobRequest,
    DataSource,
    MetricDefinition,
    ResourceConfig,
    S3DataSource,
    S3UriConfig,
    StoppingCondition,
    Tag,
    TrainingOutputDataConfig,
    ValidationDataConfig,
    VpcConfig,
)
from fmops.schemas.run import RunRequest
from fmops.schemas.steps import DatasetInfo, TrainingSpec

# Instance families with local NVMe storage: SageMaker encrypts it itself and refuses a volume KMS key.
LOCAL_STORAGE_FAMILIES = frozenset(
    {
        "c5d",
        "m5d",
        "r5d",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "trn1",
        "trn1n",
        "inf2",
    }
)

# Bedrock's names for the common hyperparameters; other snake_case names (max_length, seed) are local-only.
BEDROCK_HYPERPARAMETERS = {
    "epochs": "epochCount",
    "batch_size": "batchSize",
    "learning_rate": "learningRate",
    "warmup_steps": "learningRateWarmupSteps",
}


def training_job_name(run_id: str) -> str:
    return f"{run_id}-train"


def supports_volume_kms(instance_type: str) -> bool:
    """False for instance types with local instance storage (no VolumeKmsKeyId allowed)."""
    parts = instance_type.split(".")
    return len(parts) < 2 or parts[1] not in LOCAL_STORAGE_FAMILIES


def metric_regex(name: str) -> str:
    """Regex for ``fmops-metric name=<name> value=<float> step=<int>`` lines of train.py."""
    return rf"fmops-metric name={name} value=([0-9.eE+-]+)"


def training_output_uri(artifacts_bucket: str, run_id: str) -> str:
    return f"s3://{artifacts_bucket}/training/{run_id}/"


def plan_sagemaker(run: RunRequest, dataset: DatasetInfo, settings: PlanTrainingSettings) -> CreateTrainingJobRequest:
    """The CreateTrainingJob request of a run."""
    code_uri = f"s3://{settings.artifacts_bucket}/{CODE_KEY}"
    hyperparameters = {
        "seed": str(run.split.seed),
        **run.hyperparameters,
        "base_model": run.base_model,
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": code_uri,
    }

    def channel(name: str, uri: str) -> Channel:
        return Channel(
            channel_name=name,
            data_source=DataSource(s3_data_source=S3DataSource(s3_uri=uri)),
            content_type="application/jsonlines",
        )

    channels = [channel("train", dataset.train_uri), channel("validation", dataset.validation_uri)]
    if run.base_model.startswith("s3://"):
        channels.append(channel("base_model", run.base_model))
    kms = settings.kms_key_arn
    return CreateTrainingJobRequest(
        training_job_name=training_job_name(run.run_id),
        role_arn=settings.sagemaker_role_arn,
        algorithm_specification=AlgorithmSpecification(
            training_image=settings.training_image_uri,
            training_input_mode="File",
            metric_definitions=[MetricDefinition(name=n, regex=metric_regex(n)) for n in METRIC_NAMES],
        ),
        hyper_parameters=hyperparameters,
        input_data_config=channels,
        output_data_config=TrainingOutputDataConfig(
            s3_output_path=training_output_uri(settings.artifacts_bucket, run.run_id), kms_key_id=kms
        ),
        resource_config=ResourceConfig(
            instance_type=run.instance_type,
            instance_count=run.instance_count,
            volume_size_in_gb=run.volume_size_gb,
            volume_kms_key_id=kms if supports_volume_kms(run.instance_type) else None,
        ),
        vpc_config=VpcConfig(
            security_group_ids=[settings.training_security_group_id], subnets=list(settings.subnet_ids)
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=run.max_runtime_seconds),
        enable_network_isolation=True,
        enable_inter_container_traffic_encryption=run.instance_count > 1,
        environment={"FMOPS_RUN_ID": run.run_id, "FMOPS_USE_CASE": run.use_case},
        tags=[Tag.model_validate(t) for t in run_tags(run, settings.stack_name)],
    )


def bedrock_hyperparameters(hyperparameters: dict[str, str]) -> dict[str, str]:
    """Translate the common names; keep names already in Bedrock's camelCase; drop local-only ones."""
    out: dict[str, str] = {}
    for key, value in hyperparameters.items():
        if key in BEDROCK_HYPERPARAMETERS:
            out[BEDROCK_HYPERPARAMETERS[key]] = value
        elif "_" not in key:
            out[key] = value
    return out


def plan_bedrock(
    run: RunRequest, dataset: DatasetInfo, settings: PlanTrainingSettings
) -> CreateModelCustomizationJobRequest:
    """The CreateModelCustomizationJob request of a run (Step Functions integration shape)."""
    if not dataset.bedrock_train_uri or not dataset.bedrock_validation_uri:
        raise RequestValidationError("the data set has no Bedrock-format splits (was it prepared for bedrock?)")
    tags = [Tag.model_validate(t) for t in run_tags(run, settings.stack_name)]
    return CreateModelCustomizationJobRequest(
        job_name=training_job_name(run.run_id),
        custom_model_name=run.run_id,
        role_arn=settings.bedrock_role_arn,
        base_model_identifier=run.base_model,
        customization_type="FINE_TUNING",
        hyper_parameters=bedrock_hyperparameters(run.hyperparameters),
        training_data_config=S3UriConfig(s3_uri=dataset.bedrock_train_uri),
        validation_data_config=ValidationDataConfig(validators=[S3UriConfig(s3_uri=dataset.bedrock_validation_uri)]),
        output_data_config=S3UriConfig(s3_uri=training_output_uri(settings.artifacts_bucket, run.run_id)),
        custom_model_kms_key_id=settings.kms_key_arn,
        vpc_config=BedrockVpcConfig(
            security_group_ids=[settings.training_security_group_id], subnet_ids=list(settings.subnet_ids)
        ),
        job_tags=tags,
        custom_model_tags=tags,
    )


def plan_training(run: RunRequest, dataset: DatasetInfo, *, settings: PlanTrainingSettings) -> TrainingSpec:
    """The training request for the run's backend; the job name is ``<run_id>-train``.

    Raises:
        RequestValidationError: the data set was not prepared for the chosen backend.
    """
    if run.backend == "bedrock":
        bedrock = plan_bedrock(run, dataset, settings)
        return TrainingSpec(backend="bedrock", job_name=bedrock.job_name, bedrock=bedrock.dump())
    sagemaker = plan_sagemaker(run, dataset, settings)
    return TrainingSpec(backend="sagemaker", job_name=sagemaker.training_job_name, sagemaker=sagemaker.dump())
