"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import JobDirs, make_job_dirs


@pytest.fixture
def job_dirs(tmp_path: Path) -> JobDirs:
    return make_job_dirs(tmp_path, n_train=20, n_validation=10)
