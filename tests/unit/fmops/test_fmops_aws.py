"""The AWS wrappers: every botocore error becomes a domain error."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from fmops_testkit import FakeAws

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage, split_uri
from fmops.aws.sagemaker import SageMaker, SageMakerTuning
from fmops.aws.sns import clean_subject
from fmops.aws.stepfunctions import StepFunctions, execution_arn
from fmops.errors import (
    ApprovalNotFoundError,
    AwsRequestError,
    RequestValidationError,
    ResourceNotFoundError,
    TransientAwsError,
)


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, TransientAwsError),
        ("ProvisionedThroughputExceededException", 400, TransientAwsError),
        ("InternalServerError", 500, TransientAwsError),
        ("SomethingNew", 503, TransientAwsError),
        ("ValidationException", 400, AwsRequestError),
        ("AccessDeniedException", 400, AwsRequestError),
    ],
)
def test_client_errors_are_translated(code: str, status: int, error: type[Exception]) -> None:
    client, stub = stubbed("dynamodb")
    stub.add_client_error("get_item", service_error_code=code, service_message="nope", http_status_code=status)
    with stub, pytest.raises(error, match=f"GetItem runs: {code}: nope"):
        Table("runs", client).get("r")


def test_connection_errors_are_transient() -> None:
    class Broken:
        def get_item(self, **kwargs: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://dynamodb")

    with pytest.raises(TransientAwsError):
        Table("runs", Broken()).get("r")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_gone_task_token_means_no_pending_approval(code: str) -> None:
    client, stub = stubbed("stepfunctions")
    stub.add_client_error("send_task_success", service_error_code=code, service_message="gone")
    with stub, pytest.raises(ApprovalNotFoundError, match="no longer waits"):
        StepFunctions(client).send_task_success("token", {"decision": "approved"}, "run-1")


def test_execution_already_exists_is_not_an_error() -> None:
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:fmops-finetune"
    client, stub = stubbed("stepfunctions")
    stub.add_client_error("start_execution", service_error_code="ExecutionAlreadyExists", service_message="exists")
    with stub:
        assert StepFunctions(client).start_execution(machine, "run-1", {}) == (
            "arn:aws:states:us-east-1:123456789012:execution:fmops-finetune:run-1",
            False,
        )
    assert execution_arn(machine, "x").endswith(":execution:fmops-finetune:x")


def test_missing_s3_object_is_not_found(aws: FakeAws) -> None:
    with pytest.raises(ResourceNotFoundError, match="does not exist"):
        aws.s3.read_bytes("fmops-datasets", "nothing")
    assert aws.s3.read_json_if_exists("fmops-datasets", "nothing") == (False, b"")


def test_s3_writes_use_the_kms_key(aws: FakeAws) -> None:
    uri = aws.s3.put_json("fmops-reports", "a.json", {"x": 1})
    head = aws.s3_client.head_object(Bucket="fmops-reports", Key="a.json")
    assert uri == "s3://fmops-reports/a.json"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert S3Storage(aws.s3_client).put_bytes("fmops-reports", "b", b"1", "text/plain") == "s3://fmops-reports/b"


def test_split_uri() -> None:
    assert split_uri("s3://b/k/x.jsonl") == ("b", "k/x.jsonl")
    with pytest.raises(RequestValidationError):
        split_uri("https://b/k")


def test_conditional_writes(aws: FakeAws) -> None:
    table = aws.runs
    assert table.put({"run_id": "r", "n": 1.5}, only_if_absent=True)
    assert not table.put({"run_id": "r", "n": 2}, only_if_absent=True)
    table.update("r", {"status": "X", "nested": {"a": [1, 0.25]}, "skip": None})
    assert table.get("r") == {"run_id": "r", "n": 1.5, "status": "X", "nested": {"a": [1, 0.25]}}
    assert table.delete("r", only_if_exists=True)
    assert not table.delete("r", only_if_exists=True)
    assert table.scan() == []


def test_sagemaker_describe_of_a_missing_package_is_not_found(aws: FakeAws) -> None:
    with pytest.raises(ResourceNotFoundError):
        SageMaker(boto3.client("sagemaker")).describe_model_package(
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1"
        )
    assert aws.sagemaker.list_model_packages("no-such-group") == []
    assert aws.sagemaker.describe_endpoint("none") is None


def _summary(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CreationTime": datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": {"learning_rate": "0.001"},
    }


def test_the_tuning_wrapper_lists_every_page_oldest_first() -> None:
    client, stub = stubbed("sagemaker")
    request = {
        "HyperParameterTuningJobName": "t",
        "MaxResults": 100,
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
    }
    stub.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {"TrainingJobSummaries": [_summary("t-001-a")], "NextToken": "next"},
        request,
    )
    stub.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {"TrainingJobSummaries": [_summary("t-002-b")]},
        {**request, "NextToken": "next"},
    )
    with stub:
        jobs = SageMakerTuning(client).list_training_jobs("t")
    assert [j["TrainingJobName"] for j in jobs] == ["t-001-a", "t-002-b"]


def test_the_tuning_wrapper_drops_response_metadata_and_translates_errors() -> None:
    client, stub = stubbed("sagemaker")
    stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": "t-001-a",
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/t-001-a",
            "ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"},
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ResourceConfig": {"InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {},
            "CreationTime": datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
            "ResponseMetadata": {"HTTPStatusCode": 200},
        },
        {"TrainingJobName": "t-001-a"},
    )
    stub.add_client_error(
        "describe_hyper_parameter_tuning_job",
        service_error_code="ResourceNotFound",
        service_message="Amazon SageMaker can't find a tuning job named t",
        http_status_code=400,
    )
    stub.add_client_error(
        "describe_hyper_parameter_tuning_job", service_error_code="ThrottlingException", http_status_code=400
    )
    api = SageMakerTuning(client)
    with stub:
        assert "ResponseMetadata" not in api.describe_training_job("t-001-a")
        with pytest.raises(AwsRequestError, match="DescribeHyperParameterTuningJob t: ResourceNotFound"):
            api.describe_tuning_job("t")
        with pytest.raises(TransientAwsError):
            api.describe_tuning_job("t")


def test_sns_subjects_are_cleaned() -> None:
    assert clean_subject("a\nb\u00e9" + "x" * 200) == ("a b " + "x" * 200)[:100]
    assert clean_subject("\n") == "fmops"
