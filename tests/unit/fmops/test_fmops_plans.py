"""Job plans: CreateTrainingJob, CreateModelCustomizationJob and CreateProcessingJob requests."""

from __future__ import annotations

import re

import pytest
from fmops_testkit import FakeAws, load_event

from fmops.config import PlanEvaluationSettings, PlanTrainingSettings
from fmops.errors import AwsRequestError, ConfigurationError, EvaluationError, RequestValidationError
from fmops.lifecycle.evaluation import plan_evaluation
from fmops.lifecycle.training import (
    DEFAULT_FRAMEWORK_VERSION,
    DLC_REGISTRIES,
    HF_TRAINING_IMAGES,
    bedrock_hyperparameters,
    plan_bedrock,
    plan_training,
    resolve_training_image,
    supports_volume_kms,
)
from fmops.schemas import parse
from fmops.schemas.steps import PlanEvaluationEvent, PlanTrainingEvent


def training_event(**run_overrides: object) -> PlanTrainingEvent:
    raw = load_event("plan_training")
    raw["run"].update(run_overrides)
    return parse(PlanTrainingEvent, raw)


def test_sagemaker_training_request(env: dict[str, str]) -> None:
    event = training_event()
    spec = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env())
    assert spec.backend == "sagemaker" and spec.bedrock is None
    job = spec.sagemaker
    assert job is not None
    assert job["TrainingJobName"] == spec.job_name == "churn-3f2a9c1d0b7e-train"
    assert job["RoleArn"] == env["SAGEMAKER_ROLE_ARN"]
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == env["TRAINING_IMAGE_URI"]
    assert algorithm["TrainingInputMode"] == "File"
    regexes = {m["Name"]: m["Regex"] for m in algorithm["MetricDefinitions"]}
    assert set(regexes) == {
        "train_loss",
        "validation_loss",
        "validation_accuracy",
        "validation_f1_micro",
        "validation_perplexity",
        "learning_rate",
        "tokens_per_second",
        "rank_train_loss",
        "rank_tokens_per_second",
    }
    line = "fmops-metric name=train_loss value=1.25e-01 step=10"
    match = re.search(regexes["train_loss"], line)
    assert match is not None and float(match.group(1)) == 0.125
    assert re.search(regexes["validation_loss"], line) is None
    hp = job["HyperParameters"]
    assert hp["sagemaker_program"] == "train.py"
    assert hp["sagemaker_submit_directory"] == "s3://fmops-artifacts/code/training/sourcedir.tar.gz"
    assert hp["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert (hp["epochs"], hp["seed"]) == ("1", "42")
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    assert channels["train"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": event.dataset.train_uri,
        "S3DataDistributionType": "FullyReplicated",
    }
    assert channels["validation"]["ContentType"] == "application/jsonlines"
    assert job["OutputDataConfig"] == {
        "S3OutputPath": "s3://fmops-artifacts/training/churn-3f2a9c1d0b7e/",
        "KmsKeyId": env["KMS_KEY_ARN"],
    }
    # ml.g5 has local NVMe storage: SageMaker refuses a volume key for it
    assert job["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["VpcConfig"] == {"SecurityGroupIds": ["sg-0training"], "Subnets": ["subnet-0a", "subnet-0b"]}
    assert job["EnableNetworkIsolation"] is True
    assert job["EnableInterContainerTrafficEncryption"] is False
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert job["EnableManagedSpotTraining"] is False
    # checkpoints are always configured, so that the state machine can map the field unconditionally
    assert job["CheckpointConfig"] == {
        "S3Uri": "s3://fmops-artifacts/checkpoints/churn-3f2a9c1d0b7e/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert {"Key": "fmops:run-id", "Value": "churn-3f2a9c1d0b7e"} in job["Tags"]
    assert {"Key": "fmops:stack", "Value": "fmops-test"} in job["Tags"]


def test_distributed_training_encrypts_traffic_and_ebs_volumes_get_the_key(env: dict[str, str]) -> None:
    event = training_event(instance_type="ml.m5.4xlarge", instance_count=2)
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == env["KMS_KEY_ARN"]


def test_a_base_model_in_s3_becomes_a_channel(env: dict[str, str]) -> None:
    event = training_event(base_model="s3://fmops-artifacts/base-models/minilm/")
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation", "base_model"]


@pytest.mark.parametrize(
    ("instance", "ok"), [("ml.m5.xlarge", True), ("ml.g5.2xlarge", False), ("ml.p4d.24xlarge", False)]
)
def test_volume_kms_support(instance: str, ok: bool) -> None:
    assert supports_volume_kms(instance) is ok


def test_bedrock_customization_request(env: dict[str, str]) -> None:
    raw = load_event("plan_training")
    raw["run"].update(backend="bedrock", base_model="amazon.titan-text-lite-v1")
    prefix = raw["dataset"]["prepared_prefix"]
    raw["dataset"].update(
        bedrock_train_uri=prefix + "train.bedrock.jsonl", bedrock_validation_uri=prefix + "validation.bedrock.jsonl"
    )
    event = parse(PlanTrainingEvent, raw)
    spec = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env())
    job = spec.bedrock
    assert spec.backend == "bedrock" and spec.sagemaker is None and job is not None
    assert job["JobName"] == "churn-3f2a9c1d0b7e-train"
    assert job["CustomModelName"] == "churn-3f2a9c1d0b7e"
    assert job["RoleArn"] == env["BEDROCK_ROLE_ARN"]
    assert job["BaseModelIdentifier"] == "amazon.titan-text-lite-v1"
    assert job["CustomizationType"] == "FINE_TUNING"
    assert job["HyperParameters"] == {"epochCount": "1", "learningRate": "5e-5", "batchSize": "32"}
    assert job["TrainingDataConfig"] == {"S3Uri": prefix + "train.bedrock.jsonl"}
    assert job["ValidationDataConfig"] == {"Validators": [{"S3Uri": prefix + "validation.bedrock.jsonl"}]}
    assert job["OutputDataConfig"] == {"S3Uri": "s3://fmops-artifacts/training/churn-3f2a9c1d0b7e/"}
    assert job["CustomModelKmsKeyId"] == env["KMS_KEY_ARN"]
    assert job["VpcConfig"] == {"SecurityGroupIds": ["sg-0training"], "SubnetIds": ["subnet-0a", "subnet-0b"]}
    assert {"Key": "fmops:use-case", "Value": "churn"} in job["JobTags"]


def test_bedrock_needs_bedrock_format_splits(env: dict[str, str]) -> None:
    event = training_event(backend="bedrock")
    with pytest.raises(RequestValidationError, match="Bedrock-format"):
        plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env())


def test_bedrock_hyperparameter_names() -> None:
    assert bedrock_hyperparameters({"epochs": "2", "max_length": "32", "learningRateWarmupSteps": "5"}) == {
        "epochCount": "2",
        "learningRateWarmupSteps": "5",
    }


def test_evaluation_processing_request(env: dict[str, str]) -> None:
    event = parse(PlanEvaluationEvent, load_event("plan_evaluation"))
    spec = plan_evaluation(event.run, event.dataset, event.training, settings=PlanEvaluationSettings.from_env())
    job = spec.sagemaker
    assert job["ProcessingJobName"] == spec.job_name == "churn-3f2a9c1d0b7e-eval"
    assert spec.output_uri == "s3://fmops-artifacts/evaluation/churn-3f2a9c1d0b7e/"
    inputs = {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}
    assert inputs["model"]["S3Uri"] == event.training.model_artifacts_uri
    assert inputs["model"]["LocalPath"] == "/opt/ml/processing/model"
    assert inputs["test"] == {
        "S3Uri": event.dataset.test_uri,
        "LocalPath": "/opt/ml/processing/test",
        "S3DataType": "S3Prefix",
        "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated",
        "S3CompressionType": "None",
    }
    assert inputs["code"]["S3Uri"] == "s3://fmops-artifacts/code/training/sourcedir.tar.gz"
    [output] = job["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"] == {
        "S3Uri": spec.output_uri,
        "LocalPath": "/opt/ml/processing/output",
        "S3UploadMode": "EndOfJob",
    }
    app = job["AppSpecification"]
    assert app["ImageUri"] == env["PROCESSING_IMAGE_URI"]
    assert app["ContainerEntrypoint"][:2] == ["/bin/sh", "-c"] and app["ContainerEntrypoint"][3] == "sh"
    assert "tar xzf sourcedir.tar.gz" in app["ContainerEntrypoint"][2]
    assert 'python3 evaluate.py "$@"' in app["ContainerEntrypoint"][2]
    assert app["ContainerArguments"] == [
        "--model-dir",
        "/opt/ml/processing/model",
        "--test",
        "/opt/ml/processing/test",
        "--output",
        "/opt/ml/processing/output",
    ]
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert job["NetworkConfig"]["VpcConfig"]["Subnets"] == ["subnet-0a", "subnet-0b"]
    assert job["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == env["KMS_KEY_ARN"]
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 6 * 3600


def test_evaluation_needs_model_artifacts(env: dict[str, str]) -> None:
    raw = load_event("plan_evaluation")
    raw["training"]["model_artifacts_uri"] = None
    event = parse(PlanEvaluationEvent, raw)
    with pytest.raises(EvaluationError, match="no model artifacts"):
        plan_evaluation(event.run, event.dataset, event.training, settings=PlanEvaluationSettings.from_env())


def validate_against_botocore(service: str, operation: str, params: dict[str, object]) -> None:
    """botocore's own parameter validation against the service model (types, required, lengths)."""
    import botocore.session
    from botocore.validate import validate_parameters

    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    validate_parameters(params, shape)


def test_plans_are_valid_api_requests(env: dict[str, str]) -> None:
    event = training_event(instance_count=2, instance_type="ml.m5.xlarge")
    sagemaker = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert sagemaker is not None
    validate_against_botocore("sagemaker", "CreateTrainingJob", sagemaker)

    evaluation = parse(PlanEvaluationEvent, load_event("plan_evaluation"))
    processing = plan_evaluation(
        evaluation.run, evaluation.dataset, evaluation.training, settings=PlanEvaluationSettings.from_env()
    )
    validate_against_botocore("sagemaker", "CreateProcessingJob", processing.sagemaker)

    spot = training_event(spot=True, max_wait_seconds=100_000)
    spot_request = plan_training(spot.run, spot.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert spot_request is not None
    validate_against_botocore("sagemaker", "CreateTrainingJob", spot_request)

    raw = load_event("plan_training")
    raw["run"].update(backend="bedrock", base_model="amazon.titan-text-lite-v1")
    raw["dataset"].update(bedrock_train_uri="s3://b/t.jsonl", bedrock_validation_uri="s3://b/v.jsonl")
    bedrock_event = parse(PlanTrainingEvent, raw)
    from fmops.lifecycle.training import plan_bedrock

    request = plan_bedrock(bedrock_event.run, bedrock_event.dataset, PlanTrainingSettings.from_env())
    validate_against_botocore("bedrock", "CreateModelCustomizationJob", request.to_api())


# ------------------------------------------------------------------------------------ spot and max wait


def test_spot_training_waits_and_checkpoints(env: dict[str, str]) -> None:
    event = training_event(spot=True)
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    assert job["EnableManagedSpotTraining"] is True
    # max_wait_seconds unset: twice the max runtime
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800}
    assert job["CheckpointConfig"] == {
        "S3Uri": "s3://fmops-artifacts/checkpoints/churn-3f2a9c1d0b7e/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    # ... and checkpoints on a schedule too, unless the run says otherwise
    assert job["HyperParameters"]["checkpoint_steps"] == "200"
    own = training_event(spot=True, hyperparameters={"epochs": "1", "checkpoint_steps": "50"})
    job = plan_training(own.run, own.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None and job["HyperParameters"]["checkpoint_steps"] == "50"
    on_demand = training_event()
    job = plan_training(on_demand.run, on_demand.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None and "checkpoint_steps" not in job["HyperParameters"]


def test_spot_max_wait_is_the_runs_and_never_below_the_runtime(env: dict[str, str]) -> None:
    settings = PlanTrainingSettings.from_env()
    event = training_event(spot=True, max_runtime_seconds=3600, max_wait_seconds=7200)
    job = plan_training(event.run, event.dataset, settings=settings).sagemaker
    assert job is not None and job["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    longest = training_event(spot=True, max_runtime_seconds=28 * 24 * 3600)
    job = plan_training(longest.run, longest.dataset, settings=settings).sagemaker
    assert job is not None and job["StoppingCondition"]["MaxWaitTimeInSeconds"] == 28 * 24 * 3600


def test_max_wait_below_the_runtime_is_refused_with_its_field(env: dict[str, str]) -> None:
    with pytest.raises(RequestValidationError, match="max_runtime_seconds") as caught:
        training_event(spot=True, max_runtime_seconds=3600, max_wait_seconds=1800)
    assert caught.value.field == "run.max_wait_seconds"
    # a run that skipped validation is refused by the planner, before any AWS call
    event = training_event(spot=True, max_runtime_seconds=3600)
    run = event.run.model_copy(update={"max_wait_seconds": 1800})
    with pytest.raises(RequestValidationError) as planned:
        plan_training(run, event.dataset, settings=PlanTrainingSettings.from_env(), runs=NoCalls())
    assert planned.value.field == "max_wait_seconds"


def test_max_wait_without_spot_is_left_out(env: dict[str, str]) -> None:
    event = training_event(max_wait_seconds=200_000)
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None and job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert job["EnableManagedSpotTraining"] is False


def test_one_instance_needs_no_traffic_encryption(env: dict[str, str]) -> None:
    for count, encrypted in ((1, False), (2, True), (8, True)):
        event = training_event(instance_count=count)
        job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
        assert job is not None and job["EnableInterContainerTrafficEncryption"] is encrypted
        assert job["EnableNetworkIsolation"] is True


def test_the_stage_is_a_cost_allocation_tag(env: dict[str, str]) -> None:
    settings = PlanTrainingSettings.from_env({**env, "STAGE_NAME": "prod"})
    event = training_event()
    job = plan_training(event.run, event.dataset, settings=settings).sagemaker
    assert job is not None
    assert {"Key": "fmops:stage", "Value": "prod"} in job["Tags"]
    assert {t["Key"] for t in job["Tags"]} == {"fmops:run-id", "fmops:use-case", "fmops:stack", "fmops:stage"}


# ---------------------------------------------------------------------------------------- training image


def test_auto_picks_the_hugging_face_image_of_the_region(env: dict[str, str]) -> None:
    settings = PlanTrainingSettings.from_env({**env, "TRAINING_IMAGE_URI": "auto", "AWS_REGION": "eu-west-1"})
    event = training_event()
    job = plan_training(event.run, event.dataset, settings=settings).sagemaker
    assert job is not None
    assert job["AlgorithmSpecification"]["TrainingImage"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
        "huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04"
    )


def test_without_aws_region_the_region_is_the_kms_keys(env: dict[str, str]) -> None:
    key = "arn:aws:kms:ap-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    settings = PlanTrainingSettings.from_env({**env, "KMS_KEY_ARN": key})
    assert settings.region == "ap-east-1"
    assert resolve_training_image("auto", settings.region).startswith("871362719292.dkr.ecr.ap-east-1.amazonaws.com/")


@pytest.mark.parametrize(
    ("setting", "region", "expected"),
    [
        (
            "auto:2.5.1-transformers4.49.0",
            "us-west-2",
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/"
            "huggingface-pytorch-training:2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04",
        ),
        (
            "AUTO",
            "eu-south-1",
            "692866216735.dkr.ecr.eu-south-1.amazonaws.com/"
            "huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04",
        ),
        (
            "auto:2.3.0-transformers4.48.0",
            "cn-north-1",
            "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
            "huggingface-pytorch-training:2.3.0-transformers4.48.0-gpu-py311-cu121-ubuntu20.04",
        ),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1", "us-east-1", None),
    ],
)
def test_image_table(setting: str, region: str, expected: str | None) -> None:
    assert resolve_training_image(setting, region) == (expected or setting)


def test_the_image_table_is_complete() -> None:
    assert DEFAULT_FRAMEWORK_VERSION in HF_TRAINING_IMAGES
    for version, tag in HF_TRAINING_IMAGES.items():
        assert tag.startswith(version + "-gpu-py3")
    assert all(re.fullmatch(r"\d{12}", account) for account in DLC_REGISTRIES.values())


@pytest.mark.parametrize(
    ("setting", "region", "named"), [("auto:9.9", "us-east-1", "9.9"), ("auto", "xx-east-9", "xx")]
)
def test_an_image_the_table_lacks_is_a_configuration_error(setting: str, region: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match="TrainingImageUri") as caught:
        resolve_training_image(setting, region)
    assert named in str(caught.value)


# ------------------------------------------------------------------------------ Bedrock hyperparameters


def bedrock_event(base_model: str, **hyperparameters: object) -> PlanTrainingEvent:
    raw = load_event("plan_training")
    raw["run"].update(backend="bedrock", base_model=base_model)
    raw["run"]["hyperparameters"].update(hyperparameters)
    raw["dataset"].update(bedrock_train_uri="s3://b/t.jsonl", bedrock_validation_uri="s3://b/v.jsonl")
    return parse(PlanTrainingEvent, raw)


class NoCalls:
    """A runs table that fails the test when called (the plan must be refused before any AWS call)."""

    def update(self, key: str, fields: dict[str, object]) -> None:
        raise AssertionError("AWS was called")


def test_every_hyperparameter_problem_is_listed_before_any_call(env: dict[str, str]) -> None:
    event = bedrock_event("amazon.titan-text-lite-v1", epochCount=20, learningRate="fast", dropout="0.1")
    with pytest.raises(RequestValidationError) as caught:
        plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env(), runs=NoCalls())
    message = str(caught.value)
    assert message.startswith("3 hyperparameter problems for amazon.titan-text-lite-v1:0:4k")
    assert "hyperparameters.epochCount: epochCount 20 is outside 1..10" in message
    assert "hyperparameters.learningRate: learningRate 'fast' is not a number" in message
    assert "hyperparameters.dropout: unknown hyperparameter 'dropout'" in message
    assert caught.value.field == "hyperparameters.epochCount"


def test_an_unknown_bedrock_model_names_the_known_ones(env: dict[str, str]) -> None:
    event = bedrock_event("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(RequestValidationError) as caught:
        plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env(), runs=NoCalls())
    assert caught.value.field == "base_model"
    assert "amazon.nova-micro-v1:0:128k" in str(caught.value) and "'sagemaker'" not in str(caught.value)


def test_fmops_defaults_a_model_refuses_are_left_to_bedrock(env: dict[str, str]) -> None:
    settings = PlanTrainingSettings.from_env()
    # Nova takes no batch size; the default learning rate 5e-5 is in its range
    nova = bedrock_event("amazon.nova-micro-v1:0")
    job = plan_training(nova.run, nova.dataset, settings=settings).bedrock
    assert job is not None and job["HyperParameters"] == {"epochCount": "1", "learningRate": "5e-5"}
    # Llama: batch size 1 only
    llama = bedrock_event("meta.llama3-1-8b-instruct-v1:0", epochCount=3)
    job = plan_training(llama.run, llama.dataset, settings=settings).bedrock
    assert job is not None and job["HyperParameters"] == {"epochCount": "3", "learningRate": "5e-5"}
    # a value the run set is checked, not dropped
    refused = bedrock_event("amazon.nova-micro-v1:0", batch_size=8)
    with pytest.raises(RequestValidationError, match="unknown hyperparameter 'batchSize'"):
        plan_training(refused.run, refused.dataset, settings=settings)


def test_bedrock_request_keeps_kms_vpc_and_tags(env: dict[str, str]) -> None:
    settings = PlanTrainingSettings.from_env({**env, "STAGE_NAME": "dev"})
    event = bedrock_event("amazon.titan-text-express-v1")
    request = plan_bedrock(event.run, event.dataset, settings)
    api = request.to_api()
    assert api["customModelKmsKeyId"] == env["KMS_KEY_ARN"]
    assert api["vpcConfig"] == {"securityGroupIds": ["sg-0training"], "subnetIds": ["subnet-0a", "subnet-0b"]}
    for tags in (api["jobTags"], api["customModelTags"]):
        assert {"key": "fmops:stage", "value": "dev"} in tags and {"key": "fmops:use-case", "value": "churn"} in tags


# ------------------------------------------------------------------------------------- cost estimate


def test_the_estimate_is_stored_on_the_run(aws: FakeAws) -> None:
    event = training_event(spot=True)
    aws.runs.put({"run_id": event.run.run_id, "status": "RUNNING"})
    plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env(), runs=aws.runs)
    item = aws.runs.get(event.run.run_id)
    assert item is not None and item["status"] == "RUNNING"
    stored = item["cost_estimate"]
    # 1,600 training records, 1 epoch, max_length 32 on ml.g5.xlarge (1,500 records/s) + 300 s, at 30% of 1.408
    hours = (300 + 1600 / 1500) / 3600
    assert stored["total_usd"] == pytest.approx(hours * 1.408 * 0.3, abs=1e-4)
    assert (stored["backend"], stored["spot"], stored["records"], stored["price_region"]) == (
        "sagemaker",
        True,
        1600,
        "us-east-1",
    )
    assert stored["assumptions"] and stored["sources"] == ["https://aws.amazon.com/sagemaker/ai/pricing/"]


def test_a_bedrock_estimate_uses_the_size_of_the_training_file(aws: FakeAws) -> None:
    body = b'{"prompt": "pp", "completion": "c"}\n' * 1000
    assert len(body) == 36_000
    aws.s3_client.put_object(Bucket="fmops-datasets", Key="datasets/churn/v1/train.bedrock.jsonl", Body=body)
    event = bedrock_event("amazon.titan-text-lite-v1", epochCount=2)
    dataset = event.dataset.model_copy(
        update={"bedrock_train_uri": "s3://fmops-datasets/datasets/churn/v1/train.bedrock.jsonl"}
    )
    plan_training(event.run, dataset, settings=PlanTrainingSettings.from_env(), runs=aws.runs, s3=aws.s3)
    item = aws.runs.get(event.run.run_id)
    assert item is not None
    stored = item["cost_estimate"]
    # 36,000 characters / 6 per token = 6,000 tokens x 2 epochs x 0.0004 USD per 1,000
    assert (stored["characters"], stored["tokens"], stored["training_tokens"]) == (36_000, 6_000, 12_000)
    assert stored["total_usd"] == pytest.approx(0.0048)
    assert stored["storage_usd_per_month"] == 1.95


def test_a_refused_estimate_write_does_not_stop_the_run(env: dict[str, str]) -> None:
    class Refusing:
        def update(self, key: str, fields: dict[str, object]) -> None:
            raise AwsRequestError("UpdateItem: AccessDenied", code="AccessDeniedException")

    event = training_event()
    spec = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env(), runs=Refusing())
    assert spec.sagemaker is not None
