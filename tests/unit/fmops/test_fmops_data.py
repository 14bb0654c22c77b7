"""The classification line reader used to read prepared splits back (evaluation)."""

from __future__ import annotations

import hashlib

import pytest

from fmops.data.jsonl import HashingLineReader, parse_classification_line
from fmops.errors import DatasetValidationError


def lines(data: bytes, chunk: int = 7) -> list[tuple[int, bytes]]:
    return list(HashingLineReader(data[i : i + chunk] for i in range(0, len(data), chunk)))


def test_lines_are_numbered_from_one_across_chunk_boundaries() -> None:
    data = b'{"a": 1}\r\n\n{"b": 2}\nlast-without-newline'
    assert lines(data, chunk=3) == [(1, b'{"a": 1}'), (2, b""), (3, b'{"b": 2}'), (4, b"last-without-newline")]


def test_reader_hashes_and_sizes_the_whole_stream() -> None:
    data = b"x\n" * 1000
    reader = HashingLineReader([data[:999], data[999:]])
    assert sum(1 for _ in reader) == 1000
    assert reader.sha256 == hashlib.sha256(data).hexdigest()
    assert reader.size == len(data)


def test_a_byte_order_mark_on_line_one_is_ignored() -> None:
    assert lines(b'\xef\xbb\xbf{"text": "a", "label": "b"}\n') == [(1, b'{"text": "a", "label": "b"}')]


def test_an_overlong_line_is_rejected_with_its_number() -> None:
    reader = HashingLineReader([b"ok\n", b"x" * 50], max_line_bytes=10)
    with pytest.raises(DatasetValidationError, match="line 2: longer than 10 bytes"):
        list(reader)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "line 3: blank line (every line must be a JSON object)"),
        (b"   ", "line 3: blank line (every line must be a JSON object)"),
        (b'{"text": "a", "label": "b"', "line 3: invalid JSON: Expecting ',' delimiter (column 27)"),
        (b'["a", "b"]', "line 3: expected a JSON object, got array"),
        (b'"text"', "line 3: expected a JSON object, got string"),
        (b'{"label": "b"}', "line 3: field 'text': is missing"),
        (b'{"text": "a"}', "line 3: field 'label': is missing"),
        (b'{"text": 5, "label": "b"}', "line 3: field 'text': must be a string, got number"),
        (b'{"text": "a", "label": null}', "line 3: field 'label': must be a string, got null"),
        (b'{"text": "a", "label": ["b"]}', "line 3: field 'label': must be a string, got array"),
        (b'{"text": "  ", "label": "b"}', "line 3: field 'text': must be a non-empty string"),
        (b'{"text": "a", "label": ""}', "line 3: field 'label': must be a non-empty string"),
        (b'{"text": "caf\xe9", "label": "b"}', "line 3: not valid UTF-8 (byte 14 of the line)"),
    ],
)
def test_every_kind_of_bad_line_names_line_and_field(raw: bytes, message: str) -> None:
    with pytest.raises(DatasetValidationError) as caught:
        parse_classification_line(3, raw)
    assert str(caught.value) == message
    assert caught.value.line == 3


def test_a_good_line_keeps_text_and_label_exactly() -> None:
    record = parse_classification_line(1, '{"text": " héllo ", "label": "pos", "extra": 1}'.encode())
    assert record == (" héllo ", "pos")
