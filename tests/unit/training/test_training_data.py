"""Reading JSONL channels: record order, and errors that name the file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fmops_training.data import label_set, read_channel
from fmops_training.errors import DataError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_files_in_order_with_line_numbers(tmp_path: Path) -> None:
    _write(tmp_path / "b.jsonl", '{"text": "b1", "label": "x"}\n')
    _write(tmp_path / "a.jsonl", '{"text": "a1", "label": "x"}\n\n{"text": "a3", "label": " y "}\n')
    _write(tmp_path / ".hidden", "not json\n")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write('{"text": "c1", "label": "z", "extra": 1}\n')
    records = read_channel(tmp_path, "train")
    assert [(r.text, r.label, r.line) for r in records] == [
        ("a1", "x", 1),
        ("a3", "y", 3),
        ("b1", "x", 1),
        ("c1", "z", 1),
    ]
    assert records[0].source == "channel train file a.jsonl"
    assert label_set(records) == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok", "label": "x"}\n{"text": "ok", "label": "x"}\n{"text": "broken",\n', "line 3: invalid JSON"),
        ('{"text": "ok", "label": "x"}\n["a", "b"]\n', "line 2: expected a JSON object, got list"),
        ('{"text": "ok"}\n', "line 1: field 'label' must be a non-empty string, got None"),
        ('{"text": "", "label": "x"}\n', "line 1: field 'text' must be a non-empty string"),
        ('{"text": "t", "label": 1}\n', "line 1: field 'label' must be a non-empty string, got 1"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    _write(tmp_path / "data.jsonl", content)
    with pytest.raises(DataError) as info:
        read_channel(tmp_path, "validation")
    assert str(info.value).startswith("channel validation file data.jsonl " + message)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_bytes(b'{"text": "\xff\xfe", "label": "x"}\n')
    with pytest.raises(DataError, match="data.jsonl: not UTF-8"):
        read_channel(tmp_path, "train")


def test_missing_and_empty_channels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="channel train: .* is not a directory"):
        read_channel(tmp_path / "nope", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="channel train: no files"):
        read_channel(tmp_path / "empty", "train")
    _write(tmp_path / "blank" / "a.jsonl", "\n\n")
    with pytest.raises(DataError, match="channel train: no records"):
        read_channel(tmp_path / "blank", "train")


def test_single_label_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a.jsonl", '{"text": "t", "label": "x"}\n')
    with pytest.raises(DataError, match="at least 2 distinct labels"):
        label_set(read_channel(tmp_path, "train"))
