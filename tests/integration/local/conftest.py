"""Fixtures for testing the local AWS's gap fillers on their own (no stack, tiny scripts)."""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from fmops_local.aws import LocalAws

BUCKET = "fmops-test-bucket"


@pytest.fixture
def aws(tmp_path: Any) -> Iterator[LocalAws]:
    local = LocalAws(root=tmp_path / "local")
    local.start()
    local.client("s3").create_bucket(Bucket=BUCKET)
    yield local
    local.stop()


def tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def role(aws: LocalAws) -> str:
    iam = aws.client("iam")
    try:
        return str(iam.get_role(RoleName="test-role")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName="test-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def create_function(aws: LocalAws, name: str, code: str, env: dict[str, str] | None = None) -> str:
    return str(
        aws.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role(aws),
            Handler="app.lambda_handler",
            Code={"ZipFile": zipped({"app.py": code})},
            Environment={"Variables": env or {}},
        )["FunctionArn"]
    )


def run_execution(aws: LocalAws, definition: dict[str, Any], payload: dict[str, Any], name: str) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"sm-{name}", definition=json.dumps(definition), roleArn=role(aws))[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"]
    return wait_execution(aws, execution)


def wait_execution(aws: LocalAws, execution_arn: str, timeout: float = 120) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.2)
    raise TimeoutError(execution_arn)
