"""Data sets: line reading, record validation with exact line numbers, splits, prepared files."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from fmops_testkit import FakeAws, jsonl, sample_records

from fmops.data.jsonl import HashingLineReader, parse_classification_line
from fmops.data.prepare import prepare_classification_dataset
from fmops.data.split import assign_splits, split_counts
from fmops.errors import DatasetValidationError
from fmops.schemas.run import DatasetRef


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


@pytest.mark.parametrize("total", [10, 11, 99, 1000, 1001])
def test_split_counts_are_exact(total: int) -> None:
    counts = split_counts(total, (0.8, 0.1, 0.1))
    assert sum(counts) == total
    assert all(abs(c - r * total) < 1 for c, r in zip(counts, (0.8, 0.1, 0.1), strict=True))


def test_assignment_is_deterministic_exact_and_stratified() -> None:
    names = ["a", "b", "c"]
    label_ids = [0] * 600 + [1] * 300 + [2] * 100
    first = assign_splits(label_ids, names, (0.8, 0.1, 0.1), seed=7)
    assert first == assign_splits(label_ids, names, (0.8, 0.1, 0.1), seed=7)
    assert first != assign_splits(label_ids, names, (0.8, 0.1, 0.1), seed=8)
    assert Counter(first) == {0: 800, 1: 100, 2: 100}
    for label, size in ((0, 600), (1, 300), (2, 100)):
        per_split = Counter(s for s, lab in zip(first, label_ids, strict=True) if lab == label)
        assert abs(per_split[0] - 0.8 * size) <= 1
        assert abs(per_split[1] - 0.1 * size) <= 1
        assert abs(per_split[2] - 0.1 * size) <= 1


def test_zero_validation_ratio_gives_no_validation_records() -> None:
    assignment = assign_splits([0, 1] * 10, ["a", "b"], (0.5, 0.0, 0.5), seed=1)
    assert Counter(assignment) == {0: 10, 2: 10}


def prepare(aws: FakeAws, body: bytes, **kwargs: object):  # type: ignore[no-untyped-def]
    version = aws.put_dataset(body)
    return prepare_classification_dataset(
        s3=aws.s3,
        source=DatasetRef(bucket="fmops-datasets", key="datasets/churn/data.jsonl", version_id=version),
        output_bucket="fmops-datasets",
        output_prefix="datasets/churn/prepared/churn-abc/",
        ratios=(0.8, 0.1, 0.1),
        seed=42,
        run_id="churn-abc",
        **kwargs,  # type: ignore[arg-type]
    )


def test_prepare_writes_splits_and_manifest(aws: FakeAws) -> None:
    # Given a valid data set of 50 records and two labels
    records = sample_records(50)
    body = jsonl(*records)
    # When it is prepared
    info = prepare(aws, body)
    # Then the three splits partition the records exactly, in file order, and the manifest describes them
    assert info.counts.model_dump() == {"train": 40, "validation": 5, "test": 5}
    assert info.labels == ["churn", "stay"]
    assert info.sha256 == hashlib.sha256(body).hexdigest()
    seen = []
    for uri in (info.train_uri, info.validation_uri, info.test_uri):
        content = aws.read(uri)
        seen.extend(json.loads(line) for line in content.splitlines())
    assert sorted(r["text"] for r in seen) == sorted(r["text"] for r in records)
    train = [json.loads(line) for line in aws.read(info.train_uri).splitlines()]
    assert train == sorted(train, key=lambda r: int(r["text"].rsplit(" ", 1)[1]))
    manifest = json.loads(aws.read(info.manifest_uri))
    assert manifest["source"]["sha256"] == info.sha256
    assert manifest["source"]["version_id"] == info.version_id
    assert manifest["splits"]["test"]["sha256"] == hashlib.sha256(aws.read(info.test_uri)).hexdigest()
    assert manifest["splits"]["train"]["labels"] == {"churn": 20, "stay": 20}
    assert manifest["seed"] == 42
    assert manifest["ratios"] == [0.8, 0.1, 0.1]


def test_prepare_is_deterministic(aws: FakeAws) -> None:
    body = jsonl(*sample_records(30))
    first, second = prepare(aws, body), prepare(aws, body)
    assert aws.read(first.test_uri) == aws.read(second.test_uri)


def test_prepare_for_bedrock_adds_prompt_completion_files(aws: FakeAws) -> None:
    info = prepare(aws, jsonl(*sample_records(20)), bedrock_format=True)
    assert info.bedrock_train_uri and info.bedrock_validation_uri
    line = json.loads(aws.read(info.bedrock_train_uri).splitlines()[0])
    assert set(line) == {"prompt", "completion"}
    assert line["prompt"].startswith("Classify the text into one of: churn, stay.")


def test_the_first_bad_line_is_reported_and_nothing_is_written(aws: FakeAws) -> None:
    # Given 6 good lines, then a record with an empty label on line 7, then a broken line 9
    good = [json.dumps(r).encode() for r in sample_records(6)]
    body = b"\n".join([*good, b'{"text": "x", "label": ""}', good[0], b"{broken"]) + b"\n"
    # When it is prepared, Then the error names line 7 and its field, and no file was written
    with pytest.raises(DatasetValidationError) as caught:
        prepare(aws, body)
    assert str(caught.value) == "line 7: field 'label': must be a non-empty string"
    assert aws.keys("fmops-datasets", "datasets/churn/prepared/") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "is empty"),
        (jsonl(*sample_records(5)), "5 record(s); at least 10 are needed"),
        (jsonl(*sample_records(12, labels=("only",))), "only 1 distinct label ('only')"),
        (jsonl(*sample_records(11)) + b"\n\n", "line 12: blank line"),
    ],
)
def test_whole_file_problems(aws: FakeAws, body: bytes, message: str) -> None:
    with pytest.raises(DatasetValidationError) as caught:
        prepare(aws, body)
    assert message in str(caught.value)


def test_a_missing_object_is_a_dataset_error(aws: FakeAws) -> None:
    with pytest.raises(DatasetValidationError, match="does not exist"):
        prepare_classification_dataset(
            s3=aws.s3,
            source=DatasetRef(bucket="fmops-datasets", key="datasets/churn/none.jsonl"),
            output_bucket="fmops-datasets",
            output_prefix="p/",
            ratios=(0.8, 0.1, 0.1),
            seed=1,
            run_id="r",
        )
