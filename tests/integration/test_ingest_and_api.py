"""Ingestion and the approval API against the deployed stack (no training needed)."""

from __future__ import annotations

import json
import time

import pytest

from fmops_local.api_client import ApiClient, ApiError

pytestmark = pytest.mark.integration

BAD_DATA = b'{"text": "good", "label": "positive"}\n{"text": "bad", "label": "negative"}\nnot json\n'


def _executions(aws, prefix):
    sfn = aws.client("stepfunctions")
    arn = aws.stack.output("FinetuneStateMachineArn")
    return [e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"].startswith(prefix)]


def _wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError


def test_same_s3_event_twice_starts_exactly_one_execution(stack_aws):
    s3, lam = stack_aws.client("s3"), stack_aws.client("lambda")
    bucket = stack_aws.stack.output("DatasetsBucketName")
    version = s3.put_object(Bucket=bucket, Key="datasets/dupes/data.jsonl", Body=BAD_DATA)["VersionId"]
    first = _wait_for(lambda: _executions(stack_aws, "dupes-"))
    event = {
        "version": "0",
        "id": "4f7c9d3e-0000-0000-0000-000000000001",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-27T07:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": "datasets/dupes/data.jsonl",
                "size": len(BAD_DATA),
                "version-id": version,
                "etag": "x",
                "sequencer": "1",
            },
            "request-id": "r",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }
    function = stack_aws.stack.resources["IngestFunction"]
    for _ in range(2):  # EventBridge delivers at least once: the same event again, twice
        resp = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        assert "FunctionError" not in resp, resp["Payload"].read()

    assert len(_executions(stack_aws, "dupes-")) == 1
    assert first[0]["name"] == _executions(stack_aws, "dupes-")[0]["name"]


def test_ingest_ignores_objects_that_are_not_data_sets(stack_aws):
    s3 = stack_aws.client("s3")
    bucket = stack_aws.stack.output("DatasetsBucketName")
    s3.put_object(Bucket=bucket, Key="datasets/ignored/fmops.json", Body=b"{}")
    time.sleep(1.0)
    assert _executions(stack_aws, "ignored-") == []


def test_api_refuses_decision_on_unknown_run(stack_aws):
    client = ApiClient(stack_aws.api.url, region=stack_aws.region)
    with pytest.raises(ApiError) as err:
        client.decide("nope-000000000000", "approve", "why not")
    assert err.value.status == 404


def test_api_lists_no_pending_approvals_on_a_fresh_stack(stack_aws):
    client = ApiClient(stack_aws.api.url, region=stack_aws.region)
    listed = client.approvals()
    items = listed.get("approvals", listed) if isinstance(listed, dict) else listed
    assert items == []


def test_cli_lists_and_decides_through_the_signed_api(stack_aws, capsys):
    from fmops_local import cli

    assert cli.main(["approvals", "--api-url", stack_aws.api.url]) == 0
    assert json.loads(capsys.readouterr().out) == {"approvals": []}

    code = cli.main(["approve", "nope-000000000000", "--reason", "looks fine", "--api-url", stack_aws.api.url])
    assert code == 1
    assert "no pending approval for run nope-000000000000" in capsys.readouterr().err


def test_cli_without_reason_is_a_usage_error(capsys):
    from fmops_local import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["approve", "some-run"])
    assert exit_info.value.code == 2
    assert "--reason" in capsys.readouterr().err
