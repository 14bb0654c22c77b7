"""Reading JSONL data channels.

Classification: ``{"text": str, "label": str}``; multi-label: ``{"text": str, "labels": [str, ...]}``;
generative tasks: any format of :mod:`fmops_training.prompts` (prompt/completion, conversations,
summarization, QA).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fmops_training.errors import DataError
from fmops_training.prompts import Example, to_example


@dataclass(frozen=True)
class Record:
    """One labelled example and where it came from (file name, 1-based line number)."""

    text: str
    label: str
    source: str
    line: int
    labels: tuple[str, ...] = ()  # multi-label records: every label (``label`` is then the first)


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


def read_objects(path: Path, name: str | None = None) -> Iterator[tuple[Any, str, int]]:
    """``(decoded JSON, where, line)`` of each non-blank line; bad JSON raises ``DataError`` naming file and line."""
    label = name or path.name
    try:
        with _open(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{label} line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
                yield obj, label, lineno
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{label}: cannot be read ({exc})") from None


def _label_record(obj: Any, source: str, lineno: int, multilabel: bool) -> Record:
    where = f"{source} line {lineno}"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: field 'text' must be a non-empty string, got {text!r}")
    if multilabel:
        labs = obj.get("labels")
        if not isinstance(labs, list) or not all(isinstance(x, str) and x.strip() for x in labs):
            raise DataError(f"{where}: field 'labels' must be a list of non-empty strings, got {labs!r}")
        clean = tuple(sorted({x.strip() for x in labs}))
        return Record(text=text, label=clean[0] if clean else "", source=source, line=lineno, labels=clean)
    lab = obj.get("label")
    if not isinstance(lab, str) or not lab.strip():
        raise DataError(f"{where}: field 'label' must be a non-empty string, got {lab!r}")
    return Record(text=text, label=lab.strip(), source=source, line=lineno)


def read_jsonl(path: Path, name: str | None = None, multilabel: bool = False) -> Iterator[Record]:
    """Labelled records of one JSONL file; a malformed line raises ``DataError`` naming the file and line."""
    for obj, source, lineno in read_objects(path, name):
        yield _label_record(obj, source, lineno, multilabel)


def _channel_sources(directory: Path, channel: str) -> Iterator[tuple[Path, str]]:
    for path in channel_files(directory, channel):
        yield path, f"channel {channel} file {path.relative_to(directory)}"


def read_examples(directory: Path, channel: str) -> list[Example]:
    """All generative examples of a channel folder, in file then line order; an empty channel is an error."""
    examples = [
        to_example(obj, source, lineno)
        for path, name in _channel_sources(directory, channel)
        for obj, source, lineno in read_objects(path, name)
    ]
    if not examples:
        raise DataError(f"channel {channel}: no records in {directory}")
    return examples


def read_channel(directory: Path, channel: str, multilabel: bool = False) -> list[Record]:
    """All labelled records of a channel folder, in file then line order; an empty channel is an error."""
    records: list[Record] = []
    for path, name in _channel_sources(directory, channel):
        records.extend(read_jsonl(path, name, multilabel))
    if not records:
        raise DataError(f"channel {channel}: no records in {directory}")
    return records


def label_set(*groups: Iterable[Record]) -> list[str]:
    """The sorted distinct labels over all groups (every label of multi-label records); fewer than two is an error."""
    labels = sorted({lab for group in groups for r in group for lab in (r.labels or ((r.label,) if r.label else ()))})
    if len(labels) < 2:
        raise DataError(f"need at least 2 distinct labels to train a classifier, found {labels}")
    return labels
