"""Ingest: one S3 event -> one run, skipped keys, use-case config, invalid requests."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from fmops_testkit import FIXED_NOW, FakeAws, fixed_clock, load_event

from fmops.config import IngestSettings
from fmops.lifecycle.ingest import classify_key, run_id_for, start_run
from fmops.schemas import IngestResult, parse
from fmops.schemas.s3event import S3ObjectCreatedEvent


def event_for(key: str, version: str | None = "v1") -> S3ObjectCreatedEvent:
    raw = load_event("ingest")
    raw["detail"]["object"]["key"] = key
    raw["detail"]["object"]["version-id"] = version
    return parse(S3ObjectCreatedEvent, raw)


def ingest(aws: FakeAws, event: S3ObjectCreatedEvent) -> IngestResult:
    return start_run(
        event,
        settings=IngestSettings.from_env(),
        s3=aws.s3,
        runs=aws.runs,
        sfn=aws.sfn,
        notifier=aws.notifier,
        clock=fixed_clock,
    )


def executions(aws: FakeAws) -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions")
    listed = client.list_executions(stateMachineArn=aws.env["FINETUNE_STATE_MACHINE_ARN"])["executions"]
    return [client.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_run_id_is_use_case_plus_hash_of_the_object_version() -> None:
    run_id = run_id_for("churn", "b", "datasets/churn/data.jsonl", "v1")
    assert run_id.startswith("churn-") and len(run_id) == len("churn-") + 12
    assert run_id == run_id_for("churn", "b", "datasets/churn/data.jsonl", "v1")
    assert run_id != run_id_for("churn", "b", "datasets/churn/data.jsonl", "v2")


@pytest.mark.parametrize(
    ("key", "use_case"),
    [
        ("datasets/churn/data.jsonl", "churn"),
        ("datasets/churn/fmops.json", None),
        ("datasets/churn/prepared/churn-abc/train.jsonl", None),
        ("datasets/churn/notes.txt", None),
        ("datasets/data.jsonl", None),
        ("other/churn/data.jsonl", None),
        ("datasets//data.jsonl", None),
    ],
)
def test_only_data_set_files_are_ingested(key: str, use_case: str | None) -> None:
    assert classify_key(key, "datasets/")[0] == use_case


def test_an_upload_starts_one_execution_named_after_the_run(aws: FakeAws) -> None:
    # Given an uploaded data set
    version = aws.put_dataset(b"{}\n")
    # When its event is ingested
    result = ingest(aws, event_for("datasets/churn/data.jsonl", version))
    # Then one execution runs, named run_id, with the run request as input, and the run is recorded
    assert result.started and not result.duplicate
    [execution] = executions(aws)
    assert execution["name"] == result.run_id
    request = json.loads(execution["input"])
    assert request["run_id"] == result.run_id
    assert request["dataset"] == {"bucket": "fmops-datasets", "key": "datasets/churn/data.jsonl", "version_id": version}
    record = aws.runs.get(str(result.run_id))
    assert record is not None
    assert record["status"] == "RUNNING"
    assert record["execution_arn"] == execution["executionArn"] == result.execution_arn
    assert record["created_at"] == FIXED_NOW.isoformat().replace("+00:00", "Z")


def test_the_same_event_twice_gives_exactly_one_execution(aws: FakeAws) -> None:
    version = aws.put_dataset(b"{}\n")
    first = ingest(aws, event_for("datasets/churn/data.jsonl", version))
    record = aws.runs.get(str(first.run_id))
    second = ingest(aws, event_for("datasets/churn/data.jsonl", version))
    assert second.duplicate and not second.started
    assert second.run_id == first.run_id
    assert len(executions(aws)) == 1
    assert aws.runs.get(str(first.run_id)) == record


def test_a_new_version_is_a_new_run(aws: FakeAws) -> None:
    first = ingest(aws, event_for("datasets/churn/data.jsonl", aws.put_dataset(b"1\n")))
    second = ingest(aws, event_for("datasets/churn/data.jsonl", aws.put_dataset(b"2\n")))
    assert first.run_id != second.run_id
    assert len(executions(aws)) == 2


def test_skipped_keys_start_nothing(aws: FakeAws) -> None:
    result = ingest(aws, event_for("datasets/churn/fmops.json"))
    assert result.skipped and result.reason == "use-case config file"
    assert executions(aws) == []


def test_the_use_case_config_overrides_defaults(aws: FakeAws) -> None:
    config = {"threshold": 0.9, "backend": "bedrock", "hyperparameters": {"epochs": 3}}
    aws.put_dataset(json.dumps(config).encode(), key="datasets/churn/fmops.json")
    result = ingest(aws, event_for("datasets/churn/data.jsonl", aws.put_dataset(b"x\n")))
    request = json.loads(executions(aws)[0]["input"])
    assert result.started
    assert (request["threshold"], request["backend"]) == (0.9, "bedrock")
    assert request["hyperparameters"] == {
        "epochs": "3",
        "learning_rate": "5e-5",
        "batch_size": "32",
        "max_length": "32",
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b'{"threshold": 2}', "fmops.json: field 'threshold': Input should be less than or equal to 1"),
        (b'{"treshold": 0.5}', "fmops.json: field 'treshold': is not a known field"),
        (b"{not json", "fmops.json: invalid JSON"),
        (b"[1]", "fmops.json: expected a JSON object"),
    ],
)
def test_an_invalid_config_fails_the_run_once_with_a_readable_cause(aws: FakeAws, config: bytes, message: str) -> None:
    # Given a broken use-case config
    aws.put_dataset(config, key="datasets/churn/fmops.json")
    event = event_for("datasets/churn/data.jsonl", aws.put_dataset(b"x\n"))
    # When the data set's event arrives (twice)
    first = ingest(aws, event)
    second = ingest(aws, event)
    # Then no execution starts, the run is FAILED with the cause, and one notification says why
    assert not first.started and message in str(first.reason)
    assert second.duplicate
    assert executions(aws) == []
    record = aws.runs.get(str(first.run_id))
    assert record is not None
    assert record["status"] == "FAILED" and record["error"] == "RequestValidationError"
    assert message in record["cause"]
    notes = aws.messages()
    assert len(notes) == 1
    assert message in notes[0]["Message"]


def test_an_invalid_use_case_folder_is_skipped_with_a_notification(aws: FakeAws) -> None:
    result = ingest(aws, event_for("datasets/Churn_Data/data.jsonl"))
    assert result.skipped and "not a valid use case name" in str(result.reason)
    assert executions(aws) == []
    assert "Churn_Data" in aws.messages()[0]["Message"]
