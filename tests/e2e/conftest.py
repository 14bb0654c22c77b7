"""The whole fine-tune workflow on the local AWS, with a tiny but real training configuration."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from fmops_local.api_client import ApiClient
from fmops_local.aws import LocalAws
from fmops_local.sample_data import generate

# Small enough for CI, large enough to learn: measured in tests/unit/training (see training/README.md).
TINY = {
    "epochs": "1",
    "learning_rate": "2e-4",
    "batch_size": "16",
    "max_length": "24",
    "seed": "3",
}


@dataclass
class Lab:
    aws: LocalAws
    api: ApiClient
    datasets_bucket: str
    state_machine_arn: str
    queue_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def upload(self, use_case: str, body: bytes, **options: Any) -> str:
        """Write the use case's config, upload its data set; returns the run id the S3 event started."""
        s3 = self.client("s3")
        config = {
            "hyperparameters": TINY,
            "threshold": 0.7,
            "poll_seconds": 1,
            "approval_timeout_seconds": 600,
            "split": {"ratios": [0.7, 0.15, 0.15], "seed": 5},
        }
        config.update(options)
        s3.put_object(
            Bucket=self.datasets_bucket, Key=f"datasets/{use_case}/fmops.json", Body=json.dumps(config).encode()
        )
        s3.put_object(Bucket=self.datasets_bucket, Key=f"datasets/{use_case}/data.jsonl", Body=body)
        return self.find_run(use_case)

    def find_run(self, use_case: str, timeout: float = 30) -> str:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = [e["name"] for e in sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]]
            mine = [n for n in names if n.startswith(f"{use_case}-")]
            if mine:
                return mine[0]
            time.sleep(0.1)
        raise TimeoutError(f"no execution for use case {use_case}")

    def executions(self, prefix: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        return [
            e
            for e in sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
            if e["name"].startswith(prefix)
        ]

    def execution_arn(self, run_id: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"

    def wait(self, run_id: str, timeout: float = 600) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=self.execution_arn(run_id))
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(0.3)
        raise TimeoutError(run_id)

    def wait_for_approval(self, run_id: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return dict(self.api.approval(run_id))
            except Exception:
                status = self.client("stepfunctions").describe_execution(executionArn=self.execution_arn(run_id))
                if status["status"] != "RUNNING":
                    raise AssertionError(f"{run_id} ended {status['status']}: {status.get('cause')}") from None
                time.sleep(0.3)
        raise TimeoutError(f"no pending approval for {run_id}")

    def notifications(self) -> list[dict[str, Any]]:
        """Every message published to the stack's topic so far (delivered to a test SQS subscription)."""
        sqs = self.client("sqs")
        while True:
            msgs = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return list(self.seen)
            for m in msgs:
                body = json.loads(m["Body"])
                self.seen.append({"subject": body.get("Subject"), "message": body.get("Message")})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def history(self, run_id: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        return list(sfn.get_execution_history(executionArn=self.execution_arn(run_id), maxResults=1000)["events"])


def dataset(n: int, seed: int) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in generate(n, seed=seed)).encode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    warnings.simplefilter("ignore")
    aws = LocalAws(root=tmp_path_factory.mktemp("local-aws"))
    aws.start()
    aws.executor.settings.torch_threads = 1
    stack = aws.deploy()
    front = aws.start_api()
    sqs, sns = aws.client("sqs"), aws.client("sns")
    queue_url = sqs.create_queue(QueueName="test-notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.output("NotificationTopicArn"), Protocol="sqs", Endpoint=queue_arn)
    yield Lab(
        aws=aws,
        api=ApiClient(front.url, region=aws.region),
        datasets_bucket=stack.output("DatasetsBucketName"),
        state_machine_arn=stack.output("FinetuneStateMachineArn"),
        queue_url=queue_url,
    )
    aws.stop()
