"""A deployed stack on the local AWS, shared by the integration tests of the handlers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from fmops_local.aws import LocalAws


@pytest.fixture(scope="module")
def stack_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    warnings.simplefilter("ignore")
    aws = LocalAws(root=tmp_path_factory.mktemp("stack"))
    aws.start()
    aws.deploy()
    aws.start_api()
    yield aws
    aws.stop()
