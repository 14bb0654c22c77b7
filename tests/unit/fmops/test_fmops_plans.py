"""Job plans: CreateTrainingJob, CreateModelCustomizationJob and CreateProcessingJob requests."""

from __future__ import annotations

import re

import pytest
from fmops_testkit import load_event

from fmops.config import PlanEvaluationSettings, PlanTrainingSettings
from fmops.errors import EvaluationError, RequestValidationError
from fmops.lifecycle.evaluation import plan_evaluation
from fmops.lifecycle.training import bedrock_hyperparameters, plan_training, supports_volume_kms
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
        "learning_rate",
        "tokens_per_second",
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
    assert {"Key": "fmops:run-id", "Value": "churn-3f2a9c1d0b7e"} in job["Tags"]


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

    raw = load_event("plan_training")
    raw["run"]["backend"] = "bedrock"
    raw["dataset"].update(bedrock_train_uri="s3://b/t.jsonl", bedrock_validation_uri="s3://b/v.jsonl")
    bedrock_event = parse(PlanTrainingEvent, raw)
    from fmops.lifecycle.training import plan_bedrock

    request = plan_bedrock(bedrock_event.run, bedrock_event.dataset, PlanTrainingSettings.from_env())
    validate_against_botocore("bedrock", "CreateModelCustomizationJob", request.to_api())
