"""Plan the training job: a validated CreateTrainingJob (SageMaker) or CreateModelCustomizationJob request.

Everything is checked before any AWS call: the run's options (spot, max wait), the training image setting, and,
for Bedrock, the base model and every hyperparameter against the model's documented ranges. ``plan_training``
then estimates the run's cost (``fmops.pricing``) and stores it on the run record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmops.config import PlanTrainingSettings
from fmops.data.limits import MODEL_LIMITS, ModelLimits, check_hyperparameters, get_limits
from fmops.errors import AwsRequestError, ConfigurationError, RequestValidationError, UnknownModelError
from fmops.lifecycle._common import CODE_KEY, METRIC_NAMES, run_tags
from fmops.observability import logger
from fmops.pricing import CostEstimate, DataVolume, estimate_cost
from fmops.schemas.jobs import (
    AlgorithmSpecification,
    BedrockVpcConfig,
    Channel,
    CheckpointConfig,
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
from fmops.schemas.run import DEFAULT_HYPERPARAMETERS, RunRequest
from fmops.schemas.steps import DatasetInfo, TrainingSpec

if TYPE_CHECKING:
    from fmops.aws.dynamodb import Table
    from fmops.aws.s3 import S3Storage

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


# The AWS Hugging Face PyTorch training images (Deep Learning Containers), by framework version, for
# TRAINING_IMAGE_URI "auto" / "auto:<version>" (the stack's TrainingImageUri parameter empty or "auto").
# Sources, looked up on HF_TRAINING_IMAGES_AS_OF: the tags in
# https://github.com/aws/deep-learning-containers/blob/master/available_images.md#huggingface-training-containers
# and the registry account of each region in
# https://github.com/aws/sagemaker-python-sdk/blob/master/src/sagemaker/image_uri_config/huggingface.json
HF_TRAINING_IMAGES_AS_OF = "2026-11-27"
HF_TRAINING_REPOSITORY = "huggingface-pytorch-training"
HF_TRAINING_IMAGES = {
    # framework version (PyTorch-transformers) -> image tag
    "2.1.0-transformers4.36.0": "2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04",
    "2.3.0-transformers4.48.0": "2.3.0-transformers4.48.0-gpu-py311-cu121-ubuntu20.04",
    "2.5.1-transformers4.49.0": "2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04",
}
DEFAULT_FRAMEWORK_VERSION = "2.1.0-transformers4.36.0"  # the template's default image (and the processing image)
_DLC_ACCOUNT = "763104351884"
DLC_REGISTRIES = {
    **dict.fromkeys(
        (
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "eu-central-1",
            "eu-north-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ),
        _DLC_ACCOUNT,
    ),
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-south-1": "692866216735",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "us-gov-west-1": "442386744353",
}
AUTO_IMAGE = "auto"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
MAX_WAIT_LIMIT_SECONDS = 28 * 24 * 3600


def hf_training_image(region: str, framework_version: str = DEFAULT_FRAMEWORK_VERSION) -> str:
    """The AWS Hugging Face PyTorch training image of ``region`` for ``framework_version``.

    Raises:
        ConfigurationError: a framework version or a region the table does not hold (both listed).
    """
    tag = HF_TRAINING_IMAGES.get(framework_version)
    if tag is None:
        known = ", ".join(HF_TRAINING_IMAGES)
        raise ConfigurationError(
            f"TRAINING_IMAGE_URI: no Hugging Face training image for framework version {framework_version!r} "
            f"(known: {known}); set the TrainingImageUri parameter to an image URI"
        )
    account = DLC_REGISTRIES.get(region)
    if account is None:
        raise ConfigurationError(
            f"TRAINING_IMAGE_URI: no Hugging Face training image known in region {region!r} (known: "
            f"{', '.join(sorted(DLC_REGISTRIES))}); set the TrainingImageUri parameter to an image URI"
        )
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{HF_TRAINING_REPOSITORY}:{tag}"


def resolve_training_image(setting: str, region: str) -> str:
    """``TRAINING_IMAGE_URI``: an explicit URI as is; ``auto`` or ``auto:<framework version>`` from the table.

    Raises:
        ConfigurationError: see ``hf_training_image``.
    """
    value = setting.strip()
    if value.lower() == AUTO_IMAGE:
        return hf_training_image(region)
    if value.lower().startswith(AUTO_IMAGE + ":"):
        return hf_training_image(region, value.split(":", 1)[1].strip())
    return value


def max_wait_seconds(run: RunRequest) -> int:
    """The spot job's MaxWaitTimeInSeconds: the run's, else twice its max runtime (at most 28 days).

    Raises:
        RequestValidationError: a max wait below the max runtime (field ``max_wait_seconds``).
    """
    if run.max_wait_seconds is None:
        return max(run.max_runtime_seconds, min(2 * run.max_runtime_seconds, MAX_WAIT_LIMIT_SECONDS))
    if run.max_wait_seconds < run.max_runtime_seconds:
        raise RequestValidationError(
            f"max_wait_seconds ({run.max_wait_seconds}) must be >= max_runtime_seconds ({run.max_runtime_seconds})",
            field="max_wait_seconds",
        )
    return run.max_wait_seconds


def checkpoint_uri(artifacts_bucket: str, run_id: str) -> str:
    return f"s3://{artifacts_bucket}/checkpoints/{run_id}/"


def training_tags(run: RunRequest, settings: PlanTrainingSettings) -> list[Tag]:
    """The run's tags plus the stack's cost-allocation stage tag (``fmops:stage``, when the stage is known)."""
    tags = run_tags(run, settings.stack_name)
    if settings.stage_name:
        tags.append({"Key": "fmops:stage", "Value": settings.stage_name})
    return [Tag.model_validate(t) for t in tags]


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


SPOT_CHECKPOINT_STEPS = 200


def plan_sagemaker(run: RunRequest, dataset: DatasetInfo, settings: PlanTrainingSettings) -> CreateTrainingJobRequest:
    """The CreateTrainingJob request of a run: managed spot (with its max wait) when ``run.spot``, checkpoints synced
    to ``s3://<artifacts>/checkpoints/<run_id>/``, traffic between instances encrypted when there are several,
    network isolation, and the cost-allocation tags.

    Raises:
        RequestValidationError: max wait below max runtime (``max_wait_seconds``).
        ConfigurationError: ``TRAINING_IMAGE_URI`` is ``auto`` and the table holds no image for it.
    """
    wait = max_wait_seconds(run) if run.spot else None
    image = resolve_training_image(settings.training_image_uri, settings.region)
    code_uri = f"s3://{settings.artifacts_bucket}/{CODE_KEY}"
    hyperparameters = {
        "seed": str(run.split.seed),
        # A spot job also checkpoints on a schedule (not only on SIGTERM): a reclaimed instance may not get
        # its two-minute warning through. The run's own value wins.
        **({"checkpoint_steps": str(SPOT_CHECKPOINT_STEPS)} if run.spot else {}),
        **run.hyperparameters,
        "task": run.task,
        "base_model": run.base_model,
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": code_uri,
    }
    # Several instances: nothing more to ask SageMaker for. train.py reads SM_HOSTS/SM_CURRENT_HOST and re-launches
    # itself under torchrun (one process per GPU, --nnodes = the hosts, the first host as rendezvous), so the
    # SDK's ``sagemaker_torch_distributed_enabled``/``sagemaker_distributed_dataparallel_enabled`` launchers must
    # stay off (they would start torchrun around train.py's own). Every host gets the whole of each channel
    # (FullyReplicated, the channels' default): each rank takes its slice of every global batch. The instances
    # talk over the training security group's self rule, encrypted (EnableInterContainerTrafficEncryption).

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
            training_image=image,
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
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=run.max_runtime_seconds, max_wait_time_in_seconds=wait
        ),
        enable_network_isolation=True,
        enable_inter_container_traffic_encryption=run.instance_count > 1,
        enable_managed_spot_training=run.spot,
        # Always set (spot needs it; an on-demand job just syncs whatever the container writes there, today
        # nothing), so that the state machine can map every field of the request unconditionally.
        checkpoint_config=CheckpointConfig(
            s3_uri=checkpoint_uri(settings.artifacts_bucket, run.run_id), local_path=CHECKPOINT_LOCAL_PATH
        ),
        environment={"FMOPS_RUN_ID": run.run_id, "FMOPS_USE_CASE": run.use_case},
        tags=training_tags(run, settings),
    )


def bedrock_hyperparameters(hyperparameters: dict[str, str], limits: ModelLimits | None = None) -> dict[str, str]:
    """Translate the common names; keep names already in Bedrock's camelCase; drop local-only ones.

    With the base model's ``limits``, a common name still at fmops' default value (``DEFAULT_HYPERPARAMETERS``,
    which every run carries) is dropped when the model would refuse it (Nova takes no batch size, Llama only a
    batch size of 1...): Bedrock then uses the model's own default. A value the run set is always passed on (and
    checked).
    """
    out: dict[str, str] = {}
    for key, value in hyperparameters.items():
        if key in BEDROCK_HYPERPARAMETERS:
            name = BEDROCK_HYPERPARAMETERS[key]
            if limits is not None and DEFAULT_HYPERPARAMETERS.get(key) == value:
                if check_hyperparameters(limits, {name: value}):
                    continue
            out[name] = value
        elif "_" not in key:
            out[key] = value
    return out


def bedrock_limits(base_model: str) -> ModelLimits:
    """The Bedrock row of ``base_model``.

    Raises:
        RequestValidationError: a base model fmops has no row for (field ``base_model``; the message lists the
            known Bedrock model ids).
    """
    try:
        return get_limits(base_model, backend="bedrock")
    except UnknownModelError:
        known = ", ".join(row.model_id for row in MODEL_LIMITS if row.backend == "bedrock")
        raise RequestValidationError(
            f"unknown Bedrock base model {base_model!r}: fmops knows {known}", field="base_model"
        ) from None


def checked_bedrock_hyperparameters(hyperparameters: dict[str, str], limits: ModelLimits) -> dict[str, str]:
    """``bedrock_hyperparameters`` of a run's, every one checked against the model's documented range.

    Raises:
        RequestValidationError: listing every problem as ``hyperparameters.<name>: <why>`` (``field``: the first).
    """
    params = bedrock_hyperparameters(hyperparameters, limits)
    problems = check_hyperparameters(limits, params)
    if problems:
        listed = "; ".join(f"hyperparameters.{p.name}: {p.message}" for p in problems)
        count = f"{len(problems)} hyperparameter problem{'s' if len(problems) > 1 else ''}"
        raise RequestValidationError(
            f"{count} for {limits.model_id}: {listed}", field=f"hyperparameters.{problems[0].name}"
        )
    return params


def plan_bedrock(
    run: RunRequest, dataset: DatasetInfo, settings: PlanTrainingSettings
) -> CreateModelCustomizationJobRequest:
    """The CreateModelCustomizationJob request of a run (Step Functions integration shape).

    KMS: the custom model is encrypted with the stack key (``CustomModelKmsKeyId``); the API takes no key for the
    output data (``OutputDataConfig`` is an S3 URI only): the artifacts bucket's default encryption (the stack key)
    applies. The job runs in the stack's private subnets (``VpcConfig``); job and model carry the cost tags.

    Raises:
        RequestValidationError: no Bedrock-format splits; an unknown base model; hyperparameters the model refuses.
    """
    if not dataset.bedrock_train_uri or not dataset.bedrock_validation_uri:
        raise RequestValidationError("the data set has no Bedrock-format splits (was it prepared for bedrock?)")
    limits = bedrock_limits(run.base_model)
    hyperparameters = checked_bedrock_hyperparameters(run.hyperparameters, limits)
    tags = training_tags(run, settings)
    return CreateModelCustomizationJobRequest(
        job_name=training_job_name(run.run_id),
        custom_model_name=run.run_id,
        role_arn=settings.bedrock_role_arn,
        base_model_identifier=run.base_model,
        customization_type="FINE_TUNING",
        hyper_parameters=hyperparameters,
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


def training_volume(run: RunRequest, dataset: DatasetInfo, s3: S3Storage | None) -> DataVolume:
    """The training split's records and, for Bedrock, its size in bytes (HeadObject of the Bedrock-format training
    file: an upper bound of its characters, JSON syntax included) when ``s3`` is given.

    Raises:
        TransientAwsError.
    """
    records = dataset.counts.train
    if run.backend != "bedrock" or s3 is None or not dataset.bedrock_train_uri:
        return DataVolume(records=records, basis="training split record count")
    from fmops.aws.s3 import split_uri

    bucket, key = split_uri(dataset.bedrock_train_uri)
    try:
        head = s3.head(bucket, key)
    except AwsRequestError as exc:  # refused (permissions...): the estimate falls back to an assumption
        logger.warning("training file size unknown", extra={"uri": dataset.bedrock_train_uri, "error": str(exc)})
        head = None
    if head is None:
        return DataVolume(records=records, basis="training split record count")
    return DataVolume(records=records, characters=int(head["size"]), basis="Bedrock training file size (bytes)")


def record_estimate(runs: Table, run_id: str, estimate: CostEstimate) -> None:
    """``cost_estimate`` on the run record. Advisory: a refused write is logged, not raised.

    Raises:
        TransientAwsError (the state retries the step).
    """
    try:
        runs.update(run_id, {"cost_estimate": estimate.as_dict()})
    except AwsRequestError as exc:
        logger.warning("cost estimate not stored", extra={"run_id": run_id, "error": str(exc)})


def plan_training(
    run: RunRequest,
    dataset: DatasetInfo,
    *,
    settings: PlanTrainingSettings,
    runs: Table | None = None,
    s3: S3Storage | None = None,
) -> TrainingSpec:
    """The training request for the run's backend (job name ``<run_id>-train``), validated before any AWS call.

    Then the run's cost estimate (``fmops.pricing.estimate_cost``) is logged and, with ``runs``, stored on the run
    record as ``cost_estimate``; with ``s3``, a Bedrock estimate uses the size of the training file.

    Raises:
        RequestValidationError: the data set was not prepared for the chosen backend; an invalid option
            (``max_wait_seconds``), base model or hyperparameter.
        ConfigurationError: ``TRAINING_IMAGE_URI`` is ``auto`` and the table holds no image for it.
        TransientAwsError.
    """
    if run.backend == "bedrock":
        bedrock = plan_bedrock(run, dataset, settings)
        spec = TrainingSpec(backend="bedrock", job_name=bedrock.job_name, bedrock=bedrock.dump())
    else:
        sagemaker = plan_sagemaker(run, dataset, settings)
        spec = TrainingSpec(backend="sagemaker", job_name=sagemaker.training_job_name, sagemaker=sagemaker.dump())
    estimate = estimate_cost(run, training_volume(run, dataset, s3))
    logger.info(
        "training cost estimate",
        extra={"run_id": run.run_id, "total_usd": estimate.total_usd, "backend": estimate.backend},
    )
    if runs is not None:
        record_estimate(runs, run.run_id, estimate)
    return spec
