"""Model folder files and model.tar.gz handling (no torch)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from fmops_training.artifacts import locate_model_dir, read_labels, read_metadata, write_model_files
from fmops_training.errors import ModelLoadError


def _model_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    write_model_files(folder, ["neg", "pos"], {"task": "classification", "base_model": "m", "hyperparameters": {}})


def test_write_and_read(tmp_path: Path) -> None:
    _model_files(tmp_path)
    assert read_labels(tmp_path) == ["neg", "pos"]
    assert read_metadata(tmp_path)["base_model"] == "m"


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("{", "is not valid JSON"),
        ('{"task": "classification", "base_model": "m"}', "lacks 'hyperparameters'"),
        ('{"task": "generation", "base_model": "m", "hyperparameters": {}}', "task 'generation' is not supported"),
    ],
)
def test_bad_metadata(tmp_path: Path, content: str, text: str) -> None:
    (tmp_path / "fmops_model.json").write_text(content)
    with pytest.raises(ModelLoadError, match=text):
        read_metadata(tmp_path)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not written by train.py"):
        read_metadata(tmp_path)
    with pytest.raises(ModelLoadError, match="not written by train.py"):
        read_labels(tmp_path)
    (tmp_path / "labels.json").write_text('["only"]')
    with pytest.raises(ModelLoadError, match="at least 2 label strings"):
        read_labels(tmp_path)


def test_plain_folder_is_used_as_is(tmp_path: Path) -> None:
    _model_files(tmp_path / "m")
    assert locate_model_dir(tmp_path / "m", tmp_path / "scratch") == tmp_path / "m"


@pytest.mark.parametrize("prefix", ["", "model/"])
def test_archive_is_extracted(tmp_path: Path, prefix: str) -> None:
    _model_files(tmp_path / "src")
    (tmp_path / "in").mkdir()
    with tarfile.open(tmp_path / "in" / "model.tar.gz", "w:gz") as tar:
        for f in (tmp_path / "src").iterdir():
            tar.add(f, arcname=prefix + f.name)
    found = locate_model_dir(tmp_path / "in", tmp_path / "scratch")
    assert found.is_relative_to(tmp_path / "scratch")
    assert json.loads((found / "labels.json").read_text()) == ["neg", "pos"]


def test_archive_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with tarfile.open(tmp_path / "in" / "model.tar.gz", "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../evil.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ModelLoadError, match="cannot extract"):
        locate_model_dir(tmp_path / "in", tmp_path / "scratch")
    assert not (tmp_path / "evil.json").exists()


def test_folder_without_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="neither model files"):
        locate_model_dir(tmp_path, tmp_path / "scratch")
    with pytest.raises(ModelLoadError, match="is not a directory"):
        locate_model_dir(tmp_path / "nope", tmp_path / "scratch")
