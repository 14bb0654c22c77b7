"""Fixtures for the fmops unit tests (helpers live in fmops_testkit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fmops_testkit import FakeAws, create_resources, set_env
from moto import mock_aws


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The functions' environment (and fake credentials: nothing reaches AWS)."""
    return set_env(monkeypatch)


@pytest.fixture
def aws(env: dict[str, str]) -> Iterator[FakeAws]:
    """moto with the stack's buckets, tables, topic (+ a queue to read notifications) and state machine."""
    with mock_aws():
        yield create_resources(env)
