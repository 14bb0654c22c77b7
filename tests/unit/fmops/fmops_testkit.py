"""Test helpers shared by tests/unit/fmops and tests/unit/functions: moto resources, sample events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sagemaker import SageMaker
from fmops.aws.sns import Notifier
from fmops.aws.stepfunctions import StepFunctions

EVENTS = Path(__file__).resolve().parents[3] / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
FIXED_NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

BASE_ENV = {
    "RUNS_TABLE": "fmops-runs",
    "APPROVALS_TABLE": "fmops-approvals",
    "NOTIFICATION_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:fmops-notifications",
    "DATASETS_BUCKET": "fmops-datasets",
    "ARTIFACTS_BUCKET": "fmops-artifacts",
    "REPORTS_BUCKET": "fmops-reports",
    "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000",
    "STACK_NAME": "fmops-test",
    "FINETUNE_STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:fmops-finetune",
    "DATASET_PREFIX": "datasets/",
    "DATA_SHARD_BYTES": "268435456",
    "SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/fmops-sagemaker",
    "BEDROCK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/fmops-bedrock",
    "TRAINING_IMAGE_URI": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fmops-training:latest",
    "PROCESSING_IMAGE_URI": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fmops-training:latest",
    "INFERENCE_IMAGE_URI": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fmops-inference:latest",
    "SUBNET_IDS": "subnet-0a, subnet-0b",
    "TRAINING_SECURITY_GROUP_ID": "sg-0training",
    "API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com/prod/",
    "POWERTOOLS_SERVICE_NAME": "fmops",
    "POWERTOOLS_METRICS_NAMESPACE": "fmops",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/<name>.json (the same files ``sam local invoke -e`` uses)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def fixed_clock() -> datetime:
    return FIXED_NOW


def jsonl(*records: Any) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def sample_records(n: int = 40, labels: tuple[str, ...] = ("churn", "stay")) -> list[dict[str, str]]:
    return [{"text": f"customer message number {i}", "label": labels[i % len(labels)]} for i in range(n)]


@dataclass
class FakeAws:
    """The stack's resources inside moto, with the wrappers the use cases take."""

    env: dict[str, str]
    s3_client: Any
    queue_url: str
    sqs: Any
    messages_seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def s3(self) -> S3Storage:
        return S3Storage(self.s3_client, kms_key_id=self.env["KMS_KEY_ARN"])

    @property
    def runs(self) -> Table:
        return Table(self.env["RUNS_TABLE"], boto3.client("dynamodb"))

    @property
    def approvals(self) -> Table:
        return Table(self.env["APPROVALS_TABLE"], boto3.client("dynamodb"))

    @property
    def notifier(self) -> Notifier:
        return Notifier(self.env["NOTIFICATION_TOPIC_ARN"], boto3.client("sns"))

    @property
    def sagemaker(self) -> SageMaker:
        return SageMaker(boto3.client("sagemaker"))

    @property
    def sfn(self) -> StepFunctions:
        return StepFunctions(boto3.client("stepfunctions"))

    def put_dataset(self, body: bytes, key: str = "datasets/churn/data.jsonl") -> str:
        """Upload to the data-set bucket; returns the version id."""
        response = self.s3_client.put_object(Bucket=self.env["DATASETS_BUCKET"], Key=key, Body=body)
        return str(response["VersionId"])

    def read(self, uri: str) -> bytes:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return bytes(self.s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        response = self.s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for o in response.get("Contents", []))

    def messages(self) -> list[dict[str, str]]:
        """Every SNS notification published so far (Subject, Message)."""
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = response.get("Messages", [])
            if not batch:
                break
            for message in batch:
                body = json.loads(message["Body"])
                self.messages_seen.append({"Subject": body.get("Subject", ""), "Message": body["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return self.messages_seen


def create_resources(env: dict[str, str]) -> FakeAws:
    s3 = boto3.client("s3")
    for name in ("DATASETS_BUCKET", "ARTIFACTS_BUCKET", "REPORTS_BUCKET"):
        s3.create_bucket(Bucket=env[name])
        s3.put_bucket_versioning(Bucket=env[name], VersioningConfiguration={"Status": "Enabled"})
    dynamodb = boto3.client("dynamodb")
    for name in ("RUNS_TABLE", "APPROVALS_TABLE"):
        dynamodb.create_table(
            TableName=env[name],
            KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="fmops-notifications")["TopicArn"]
    assert topic == env["NOTIFICATION_TOPIC_ARN"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sfn = boto3.client("stepfunctions")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    machine = sfn.create_state_machine(
        name="fmops-finetune", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )["stateMachineArn"]
    assert machine == env["FINETUNE_STATE_MACHINE_ARN"]
    return FakeAws(env=env, s3_client=s3, queue_url=queue_url, sqs=sqs)


def set_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the functions' environment and fake credentials (nothing reaches AWS)."""
    values = {
        **BASE_ENV,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(key, raising=False)
    return dict(BASE_ENV)


class RecordingStepFunctions(StepFunctions):
    """Records task-token calls (moto accepts any token) and can make them fail."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        super().__init__(client=object())
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_with = fail_with

    def send_task_success(self, task_token: str, output: dict[str, Any], run_id: str) -> None:
        self.calls.append(("success", {"token": task_token, "output": output}))
        if self.fail_with:
            raise self.fail_with

    def send_task_failure(self, task_token: str, error: str, cause: str, run_id: str) -> None:
        self.calls.append(("failure", {"token": task_token, "error": error, "cause": cause}))
        if self.fail_with:
            raise self.fail_with
