"""Reading JSONL as physical lines, and the classification record format ``{"text": str, "label": str}``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from fmops.errors import DatasetValidationError

MAX_LINE_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"


class ClassificationRecord(NamedTuple):
    """One validated record."""

    text: str
    label: str


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class HashingLineReader:
    """Splits a stream of byte chunks into physical lines (``\\n``; a trailing ``\\r`` is dropped),
    numbering them from 1, while computing the sha256 and size of the whole stream."""

    def __init__(self, chunks: Iterable[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._chunks = chunks
        self._max = max_line_bytes
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        pending = b""
        line_no = 0
        for chunk in self._chunks:
            if not chunk:
                continue
            self._hash.update(chunk)
            self.size += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                line_no += 1
                yield line_no, self._clean(line_no, line)
            if len(pending) > self._max:
                raise DatasetValidationError(f"longer than {self._max} bytes", line=line_no + 1)
        if pending:
            line_no += 1
            yield line_no, self._clean(line_no, pending)

    def _clean(self, line_no: int, line: bytes) -> bytes:
        if len(line) > self._max:
            raise DatasetValidationError(f"longer than {self._max} bytes", line=line_no)
        if line_no == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        return line[:-1] if line.endswith(b"\r") else line


def parse_classification_line(line_no: int, raw: bytes) -> ClassificationRecord:
    """Validate one physical line.

    Raises:
        DatasetValidationError: e.g. ``line 7: field 'label': must be a non-empty string``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetValidationError(f"not valid UTF-8 (byte {exc.start + 1} of the line)", line=line_no) from exc
    if not text.strip():
        raise DatasetValidationError("blank line (every line must be a JSON object)", line=line_no)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetValidationError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=line_no) from exc
    if not isinstance(obj, dict):
        raise DatasetValidationError(f"expected a JSON object, got {json_type(obj)}", line=line_no)
    values = []
    for field in ("text", "label"):
        if field not in obj:
            raise DatasetValidationError("is missing", line=line_no, field=field)
        value = obj[field]
        if not isinstance(value, str):
            raise DatasetValidationError(f"must be a string, got {json_type(value)}", line=line_no, field=field)
        if not value.strip():
            raise DatasetValidationError("must be a non-empty string", line=line_no, field=field)
        values.append(value)
    return ClassificationRecord(values[0], values[1])


def dump_record(record: ClassificationRecord) -> bytes:
    """The normalised line written to the prepared splits (the training contract's format)."""
    return json.dumps({"text": record.text, "label": record.label}, ensure_ascii=False).encode() + b"\n"
