"""Failure reporting and thread settings shared by the scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmops_training.errors import ContractError, DataError
from fmops_training.runtime import run_guarded, torch_threads


def test_success_returns_zero_and_writes_nothing(tmp_path: Path) -> None:
    assert run_guarded(lambda: None, tmp_path / "failure") == 0
    assert not (tmp_path / "failure").exists()


def test_typed_error_is_reported_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> None:
        raise DataError("channel train file a.jsonl line 3: invalid JSON\n(more)")

    assert run_guarded(boom, tmp_path / "out" / "failure") == 1
    text = (tmp_path / "out" / "failure").read_text()
    assert text == "DataError: channel train file a.jsonl line 3: invalid JSON (more)\n"
    err = capsys.readouterr().err
    assert "Traceback" not in err and "DataError: channel train" in err


def test_unexpected_error_gets_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> None:
        raise RuntimeError("kaput")

    assert run_guarded(boom, lambda: tmp_path / "late" / "failure") == 1
    assert (tmp_path / "late" / "failure").read_text() == "RuntimeError: kaput\n"
    assert "Traceback" in capsys.readouterr().err


def test_torch_threads() -> None:
    assert torch_threads({"FMOPS_TORCH_THREADS": "3"}) == 3
    assert 1 <= torch_threads({}) <= 2
    for bad in ("0", "two"):
        with pytest.raises(ContractError, match="FMOPS_TORCH_THREADS must be a positive integer"):
            torch_threads({"FMOPS_TORCH_THREADS": bad})
