"""Reading JSONL data channels: one ``{"text": str, "label": str}`` record per line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fmops_training.errors import DataError


@dataclass(frozen=True)
class Record:
    """One labelled example and where it came from (file name, 1-based line number)."""

    text: str
    label: str
    source: str
    line: int


def channel_files(directory: Path, channel: str) -> list[Path]:
    """The data files of a channel folder, sorted by relative path; hidden files are skipped."""
    if not directory.is_dir():
        raise DataError(f"channel {channel}: {directory} is not a directory")
    files = [
        p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    ]
    if not files:
        raise DataError(f"channel {channel}: no files in {directory}")
    return files


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def read_jsonl(path: Path, name: str | None = None) -> Iterator[Record]:
    """Records of one JSONL file; a malformed line raises ``DataError`` naming the file and line."""
    label = name or path.name
    try:
        with _open(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                where = f"{label} line {lineno}"
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
                text, lab = obj.get("text"), obj.get("label")
                if not isinstance(text, str) or not text.strip():
                    raise DataError(f"{where}: field 'text' must be a non-empty string, got {text!r}")
                if not isinstance(lab, str) or not lab.strip():
                    raise DataError(f"{where}: field 'label' must be a non-empty string, got {lab!r}")
                yield Record(text=text, label=lab.strip(), source=label, line=lineno)
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{label}: cannot be read ({exc})") from None


def read_channel(directory: Path, channel: str) -> list[Record]:
    """All records of a channel folder, in file then line order; an empty channel is an error."""
    records: list[Record] = []
    for path in channel_files(directory, channel):
        records.extend(read_jsonl(path, f"channel {channel} file {path.relative_to(directory)}"))
    if not records:
        raise DataError(f"channel {channel}: no records in {directory}")
    return records


def label_set(*groups: Iterable[Record]) -> list[str]:
    """The sorted distinct labels over all groups; fewer than two is an error."""
    labels = sorted({r.label for group in groups for r in group})
    if len(labels) < 2:
        raise DataError(f"need at least 2 distinct labels to train a classifier, found {labels}")
    return labels
