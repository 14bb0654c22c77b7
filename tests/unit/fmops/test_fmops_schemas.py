"""RunRequest and friends: defaults, coercion, and errors that name the field."""

from __future__ import annotations

import pytest
from fmops_testkit import load_event

from fmops.errors import ConfigurationError, DatasetValidationError, RequestValidationError
from fmops.schemas import RunRequest, UseCaseConfig, parse
from fmops.schemas.jobs import CreateModelCustomizationJobRequest


def minimal(**overrides: object) -> dict[str, object]:
    return {
        "run_id": "churn-3f2a9c1d0b7e",
        "use_case": "churn",
        "dataset": {"bucket": "fmops-datasets", "key": "datasets/churn/data.jsonl"},
        **overrides,
    }


def test_the_sample_event_is_a_valid_run_request() -> None:
    run = parse(RunRequest, load_event("validate_dataset")["run"])
    assert run.run_id == "churn-3f2a9c1d0b7e"
    assert run.split.ratios == (0.8, 0.1, 0.1)


def test_defaults_fill_everything_but_the_identity() -> None:
    run = parse(RunRequest, minimal())
    assert run.backend == "sagemaker"
    assert run.metric == "accuracy"
    assert run.hyperparameters["epochs"] == "1"
    assert run.approval_timeout_seconds == 86400
    assert run.dataset.uri == "s3://fmops-datasets/datasets/churn/data.jsonl"


def test_numbers_in_hyperparameters_become_strings() -> None:
    run = parse(RunRequest, minimal(hyperparameters={"epochs": 3, "learning_rate": 5e-5, "fp16": True}))
    assert run.hyperparameters == {"epochs": "3", "learning_rate": "5e-05", "fp16": "true"}


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"use_case": "Churn"}, "use_case", "should match pattern"),
        ({"use_case": "a" * 25}, "use_case", "should match pattern"),
        ({"backend": "vertex"}, "backend", "'sagemaker' or 'bedrock'"),
        ({"task": "generation"}, "task", "classification"),
        ({"metric": "auc"}, "metric", "accuracy"),
        ({"threshold": 1.5}, "threshold", "less than or equal to 1"),
        ({"threshold": -0.1}, "threshold", "greater than or equal to 0"),
        ({"split": {"ratios": [0.8, 0.1, 0.2]}}, "split.ratios", "must sum to 1"),
        ({"split": {"ratios": [1.2, -0.1, -0.1]}}, "split.ratios", "must be >= 0"),
        ({"split": {"ratios": [0.9, 0.1, 0.0]}}, "split.ratios", "test ratios must be > 0"),
        ({"approval_timeout_seconds": 4}, "approval_timeout_seconds", "greater than or equal to 5"),
        ({"approval_timeout_seconds": 7 * 86400 + 1}, "approval_timeout_seconds", "less than or equal"),
        ({"poll_seconds": 0}, "poll_seconds", "greater than or equal to 1"),
        ({"poll_seconds": 301}, "poll_seconds", "less than or equal to 300"),
        ({"hyperparameters": {"epochs": [1]}}, "hyperparameters.epochs", "valid string"),
        ({"hyperparameters": {"sagemaker_program": "x.py"}}, "hyperparameters", "reserved"),
        ({"instance_type": "g5.xlarge"}, "instance_type", "should match pattern"),
        ({"epochs": 3}, "epochs", "is not a known field"),
        ({"dataset": {"bucket": "b"}}, "dataset.bucket", "at least 3"),
    ],
)
def test_a_bad_run_request_names_the_field(overrides: dict[str, object], field: str, text: str) -> None:
    # Given a request with one bad field, When it is parsed, Then the error names that field
    with pytest.raises(RequestValidationError) as caught:
        parse(RunRequest, minimal(**overrides), "run request")
    assert caught.value.field == field
    assert f"run request: field '{field}'" in str(caught.value)
    assert text in str(caught.value)


def test_a_missing_field_is_reported_as_required() -> None:
    with pytest.raises(RequestValidationError, match="field 'run_id': is required"):
        parse(RunRequest, {"use_case": "churn", "dataset": {"bucket": "abc", "key": "k"}}, "run request")


def test_use_case_config_is_all_optional_and_strict() -> None:
    assert UseCaseConfig().options() == {}
    assert parse(UseCaseConfig, {"threshold": 0.9, "hyperparameters": {"epochs": 2}}).options() == {
        "threshold": 0.9,
        "hyperparameters": {"epochs": "2"},
    }
    with pytest.raises(RequestValidationError, match="field 'treshold': is not a known field"):
        parse(UseCaseConfig, {"treshold": 0.9}, "fmops.json")


def test_dataset_error_message_names_line_and_field() -> None:
    error = DatasetValidationError("must be a non-empty string", line=7, field="label")
    assert str(error) == "line 7: field 'label': must be a non-empty string"
    assert (error.line, error.field) == (7, "label")
    assert str(DatasetValidationError("is empty")) == "is empty"


def test_bedrock_request_has_both_shapes() -> None:
    request = CreateModelCustomizationJobRequest(
        job_name="r-train",
        custom_model_name="r",
        role_arn="arn:role",
        base_model_identifier="amazon.titan-text-lite-v1",
        hyper_parameters={"epochCount": "1"},
        training_data_config={"s3_uri": "s3://b/train.jsonl"},  # type: ignore[arg-type]
        validation_data_config={"validators": [{"s3_uri": "s3://b/v.jsonl"}]},  # type: ignore[arg-type]
        output_data_config={"s3_uri": "s3://b/out/"},  # type: ignore[arg-type]
        custom_model_kms_key_id="arn:key",
        vpc_config={"security_group_ids": ["sg"], "subnet_ids": ["s"]},  # type: ignore[arg-type]
        job_tags=[{"key": "k", "value": "v"}],  # type: ignore[list-item]
        custom_model_tags=[],
    )
    sfn = request.dump()
    assert sfn["TrainingDataConfig"] == {"S3Uri": "s3://b/train.jsonl"}
    assert sfn["ValidationDataConfig"] == {"Validators": [{"S3Uri": "s3://b/v.jsonl"}]}
    assert sfn["JobTags"] == [{"Key": "k", "Value": "v"}]
    api = request.to_api()
    assert api["trainingDataConfig"] == {"s3Uri": "s3://b/train.jsonl"}
    assert api["hyperParameters"] == {"epochCount": "1"}
    assert api["vpcConfig"] == {"securityGroupIds": ["sg"], "subnetIds": ["s"]}


def test_configuration_error_is_an_fmops_error() -> None:
    assert issubclass(ConfigurationError, Exception)
