"""Fixtures for the handler tests: handlers loaded by file path (as the local AWS does), moto, a context."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = ROOT / "functions"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pydantic look their module up while it executes
    spec.loader.exec_module(module)
    return module


# The shared helpers (moto resources, sample events) live beside the fmops unit tests.
testkit = sys.modules.get("fmops_testkit") or _load(
    ROOT / "tests" / "unit" / "fmops" / "fmops_testkit.py", "fmops_testkit"
)


@dataclass
class FakeLambdaContext:
    function_name: str = "fmops-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fmops-test-function"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    log_group_name: str = "/aws/lambda/fmops-test-function"
    log_stream_name: str = "2025/01/01/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def load_event() -> Callable[[str], dict[str, Any]]:
    return testkit.load_event  # type: ignore[no-any-return]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return testkit.set_env(monkeypatch)  # type: ignore[no-any-return]


@pytest.fixture
def aws(env: dict[str, str]) -> Iterator[Any]:
    with mock_aws():
        yield testkit.create_resources(env)


@pytest.fixture
def handler(env: dict[str, str]) -> Callable[[str], Callable[[dict[str, Any], Any], Any]]:
    """``handler("validate_dataset")``: functions/<name>/app.py loaded by path under a unique module name."""

    def load(folder: str) -> Callable[[dict[str, Any], Any], Any]:
        module = _load(FUNCTIONS / folder / "app.py", f"fmops_function_{folder}")
        return module.lambda_handler  # type: ignore[no-any-return]

    return load
