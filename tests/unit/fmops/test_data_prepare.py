"""Splitting: deterministic, exact, stratified, group-aware; nothing lost; stored with a manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from fmops_testkit import FakeAws, jsonl, sample_records

from fmops.config import CommonSettings
from fmops.data.prepare import prepare_dataset, store_local, store_s3
from fmops.data.split import assign_splits, split_counts
from fmops.errors import DatasetValidationError
from fmops.lifecycle.dataset import validate_dataset
from fmops.schemas.run import RunRequest


@pytest.mark.parametrize("total", [10, 11, 99, 1000, 1001])
def test_split_counts_are_exact(total: int) -> None:
    counts = split_counts(total, (0.8, 0.1, 0.1))
    assert sum(counts) == total
    assert all(abs(c - r * total) < 1 for c, r in zip(counts, (0.8, 0.1, 0.1), strict=True))


def test_assignment_is_deterministic_exact_and_stratified() -> None:
    strata = [0] * 600 + [1] * 300 + [2] * 100
    first = assign_splits(strata, (0.8, 0.1, 0.1), seed=7)
    assert first == assign_splits(strata, (0.8, 0.1, 0.1), seed=7)
    assert first != assign_splits(strata, (0.8, 0.1, 0.1), seed=8)
    assert Counter(first) == {0: 800, 1: 100, 2: 100}
    for stratum, size in ((0, 600), (1, 300), (2, 100)):
        per_split = Counter(s for s, st in zip(first, strata, strict=True) if st == stratum)
        for split, ratio in enumerate((0.8, 0.1, 0.1)):
            assert abs(per_split[split] - ratio * size) <= 1


def test_assignment_is_pinned_across_machines_and_python_versions() -> None:
    # The order comes from BLAKE2b, not from ``random``: these exact values hold on any machine.
    assert bytes(assign_splits([0] * 10, (0.6, 0.2, 0.2), seed=42)).hex() == "01010000020200000000"


def test_groups_never_straddle_splits() -> None:
    groups = [i // 7 for i in range(700)]  # 100 groups of 7
    strata = [0] * 700
    assignment = assign_splits(strata, (0.8, 0.1, 0.1), seed=3, groups=groups)
    by_group: dict[int, set[int]] = {}
    for group, split in zip(groups, assignment, strict=True):
        by_group.setdefault(group, set()).add(split)
    assert all(len(splits) == 1 for splits in by_group.values())
    assert Counter(assignment) == {0: 560, 1: 70, 2: 70}  # 80/10/10 groups of 7


def test_zero_ratio_gives_an_empty_split() -> None:
    assert Counter(assign_splits([0, 1] * 10, (0.5, 0.0, 0.5), seed=1)) == {0: 10, 2: 10}


# -- prepare: files, quarantine, manifest ----------------------------------------------------------------
def _rows(n: int, labels: tuple[str, ...] = ("pos", "neg")) -> list[dict[str, str]]:
    return [{"text": f"review {i}", "label": labels[i % len(labels)]} for i in range(n)]


def _bytes(rows: list[dict[str, str]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_prepare_partitions_every_record_and_quarantines_bad_ones(tmp_path: Path) -> None:
    data = _bytes(_rows(40)) + b'{"text": "", "label": "pos"}\n' + b"not json\n" + _bytes(_rows(10))
    prepared = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=1, stratify_by="label")
    manifest = store_local(prepared, tmp_path, source_uri="data.jsonl")
    prepared.close()
    written = sum(manifest["splits"][name]["records"] for name in ("train", "validation", "test"))
    assert (prepared.report.records, written, manifest["quarantine"]["records"]) == (52, 50, 2)
    quarantined = [json.loads(line) for line in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["line"], q["errors"][0]["code"]) for q in quarantined] == [(41, "empty_text"), (42, "invalid_json")]
    assert quarantined[1]["raw"] == "not json"
    for name in ("train", "validation", "test"):
        content = (tmp_path / f"{name}.jsonl").read_bytes()
        assert manifest["splits"][name]["sha256"] == hashlib.sha256(content).hexdigest()
    assert manifest["splits"]["train"]["values"] == {"neg": 20, "pos": 20}
    assert (manifest["seed"], manifest["ratios"], manifest["stratify_by"]) == (1, [0.8, 0.1, 0.1], "label")
    assert manifest["source"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_prepare_is_deterministic_and_versioned_by_content_and_options() -> None:
    data = _bytes(_rows(30))
    one = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=5)
    two = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=5)
    other = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=6)
    assert one.version == two.version != other.version
    assert one.files["test"].sha256 == two.files["test"].sha256
    for prepared in (one, two, other):
        prepared.close()


def test_group_field_outside_the_format_is_allowed_and_removed_from_the_output(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "completion": "a", "user": f"u{i // 5}"} for i in range(100)]
    prepared = prepare_dataset(lambda: [_bytes(rows)], ratios=(0.8, 0.1, 0.1), seed=2, group_by="user")
    assert prepared.report.valid, prepared.report.as_dict()
    store_local(prepared, tmp_path, source_uri="x")
    prepared.close()
    users: dict[str, set[str]] = {}
    for name in ("train", "validation", "test"):
        for line in (tmp_path / f"{name}.jsonl").read_text().splitlines():
            record = json.loads(line)
            assert set(record) == {"prompt", "completion"}
            user = rows[int(record["prompt"][1:])]["user"]
            users.setdefault(user, set()).add(name)
    assert all(len(splits) == 1 for splits in users.values())


def test_a_record_without_the_group_field_is_quarantined() -> None:
    rows = [{"prompt": "q", "completion": "a", "user": "u1"}] * 10 + [{"prompt": "q", "completion": "a"}]
    prepared = prepare_dataset(lambda: [_bytes(rows)], ratios=(0.8, 0.1, 0.1), seed=2, group_by="user")
    prepared.close()
    assert [(e.line, e.field, e.code) for e in prepared.report.errors] == [(11, "user", "missing_field")]
    assert prepared.quarantine.records == 1
    assert prepared.report.valid_records == 10


def test_bad_ratios() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        prepare_dataset(lambda: [b""], ratios=(0.8, 0.3, 0.1), seed=1)


def test_store_s3_uses_a_versioned_prefix_and_ties_objects_to_the_manifest(aws: FakeAws) -> None:
    data = _bytes(_rows(20))
    prepared = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=1)
    manifest = store_s3(
        prepared, aws.s3, "fmops-datasets", "datasets/churn/", source_uri="s3://x/y", source_version="v1"
    )
    prepared.close()
    base = f"datasets/churn/{prepared.version}/"
    assert aws.keys("fmops-datasets", base) == [
        base + f for f in ("manifest.json", "test.jsonl", "train.jsonl", "validation.jsonl")
    ]
    head = aws.s3_client.head_object(Bucket="fmops-datasets", Key=base + "train.jsonl")
    assert head["Metadata"]["fmops-manifest"] == f"s3://fmops-datasets/{base}manifest.json"
    assert head["Metadata"]["fmops-sha256"] == manifest["splits"]["train"]["sha256"]
    stored = json.loads(aws.read(manifest["uri"]))
    assert stored["source"] == {**stored["source"], "uri": "s3://x/y", "version_id": "v1"}


# -- the workflow step -----------------------------------------------------------------------------------
def _run(
    aws: FakeAws, body: bytes, backend: str = "sagemaker", base_model: str = "sentence-transformers/all-MiniLM-L6-v2"
) -> RunRequest:
    version = aws.put_dataset(body)
    return RunRequest.model_validate(
        {
            "run_id": "churn-abc",
            "use_case": "churn",
            "dataset": {"bucket": "fmops-datasets", "key": "datasets/churn/data.jsonl", "version_id": version},
            "backend": backend,
            "base_model": base_model,
        }
    )


def test_the_step_writes_splits_under_a_versioned_prefix(aws: FakeAws) -> None:
    records = sample_records(50)
    info = validate_dataset(_run(aws, jsonl(*records)), s3=aws.s3, settings=CommonSettings.from_env(aws.env))
    assert info.counts.model_dump() == {"train": 40, "validation": 5, "test": 5}
    assert info.labels == ["churn", "stay"]
    assert info.prepared_prefix.startswith("s3://fmops-datasets/datasets/churn/")
    assert info.train_uri.startswith(info.prepared_prefix)
    manifest = json.loads(aws.read(info.manifest_uri))
    assert manifest["source"]["version_id"] == info.version_id
    assert manifest["splits"]["train"]["values"] == {"churn": 20, "stay": 20}


def test_bedrock_runs_get_prompt_completion_files_checked_against_the_model(aws: FakeAws) -> None:
    run = _run(aws, jsonl(*sample_records(40)), backend="bedrock", base_model="amazon.titan-text-express-v1")
    info = validate_dataset(run, s3=aws.s3, settings=CommonSettings.from_env(aws.env))
    assert info.bedrock_train_uri and info.bedrock_validation_uri
    line = json.loads(aws.read(info.bedrock_train_uri).splitlines()[0])
    assert set(line) == {"prompt", "completion"}


def test_bedrock_model_limits_end_the_run_before_training(aws: FakeAws) -> None:
    # Claude 3 Haiku needs at least 32 training records.
    run = _run(aws, jsonl(*sample_records(20)), backend="bedrock", base_model="anthropic.claude-3-haiku-20240307-v1:0")
    with pytest.raises(DatasetValidationError) as caught:
        validate_dataset(run, s3=aws.s3, settings=CommonSettings.from_env(aws.env))
    assert "anthropic.claude-3-haiku" in str(caught.value)
    assert "report: s3://fmops-reports/runs/churn-abc/data-validation.json" in str(caught.value)


def test_invalid_data_stores_the_report_and_quarantine_and_writes_no_splits(aws: FakeAws) -> None:
    good = [json.dumps(r).encode() for r in sample_records(20)]
    body = b"\n".join([*good[:6], b'{"text": "x", "label": ""}', good[0], b"{broken", *good[6:]]) + b"\n"
    with pytest.raises(DatasetValidationError) as caught:
        validate_dataset(_run(aws, body), s3=aws.s3, settings=CommonSettings.from_env(aws.env))
    message = str(caught.value)
    assert message.startswith("line 7: field 'label': must not be empty")
    assert "2 problem(s) in all" in message
    report = json.loads(aws.read("s3://fmops-reports/runs/churn-abc/data-validation.json"))
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(7, "empty_text"), (9, "invalid_json")]
    assert report["records"] == 23
    assert len(aws.read(report["quarantine_uri"]).splitlines()) == 2
    assert [k for k in aws.keys("fmops-datasets", "datasets/churn/") if k != "datasets/churn/data.jsonl"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the file is empty"),
        (jsonl(*sample_records(5)), "5 valid record(s); at least 10 needed"),
        (jsonl(*sample_records(12, labels=("only",))), "only 1 distinct label ('only')"),
        (jsonl(*sample_records(11)) + b"\n\n", "line 12: is blank"),
    ],
)
def test_whole_file_problems(aws: FakeAws, body: bytes, message: str) -> None:
    with pytest.raises(DatasetValidationError) as caught:
        validate_dataset(_run(aws, body), s3=aws.s3, settings=CommonSettings.from_env(aws.env))
    assert message in str(caught.value)


def test_a_missing_object_is_a_dataset_error(aws: FakeAws) -> None:
    run = _run(aws, b"x").model_copy(
        update={"dataset": _run(aws, b"x").dataset.model_copy(update={"key": "datasets/churn/none.jsonl"})}
    )
    with pytest.raises(DatasetValidationError, match="does not exist"):
        validate_dataset(run, s3=aws.s3, settings=CommonSettings.from_env(aws.env))


def test_a_line_with_two_problems_is_quarantined_once_and_the_rest_is_split() -> None:
    bad = json.dumps(
        {"schemaVersion": "x", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    )  # wrong version and no assistant turn: two errors, one line
    good = json.dumps(
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"text": "yo"}]},
            ],
        }
    )
    data = ("\n".join([good] * 20 + [bad]) + "\n").encode()
    prepared = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=1)
    prepared.close()
    assert (prepared.report.error_count, prepared.quarantine.records) == (2, 1)
    assert sum(prepared.counts.values()) == 20


def test_whole_file_problems_are_listed_even_past_max_errors() -> None:
    data = b"[]\n" * 5
    prepared = prepare_dataset(lambda: [data], ratios=(0.8, 0.1, 0.1), seed=1, max_errors=2)
    prepared.close()
    codes = [e.code for e in prepared.report.errors]
    assert codes == ["not_object", "not_object", "too_few_records"]
    assert prepared.report.error_count == 6


@pytest.mark.parametrize(
    ("base_model", "expected"),
    [
        ("amazon.titan-text-express-v1", {"prompt", "completion"}),
        ("amazon.nova-micro-v1:0:128k", {"schemaVersion", "messages"}),
        ("anthropic.claude-3-haiku-20240307-v1:0", {"messages"}),
    ],
)
def test_bedrock_files_are_written_in_the_format_the_base_model_takes(
    aws: FakeAws, base_model: str, expected: set[str]
) -> None:
    run = _run(aws, jsonl(*sample_records(60)), backend="bedrock", base_model=base_model)
    info = validate_dataset(run, s3=aws.s3, settings=CommonSettings.from_env(aws.env))
    assert info.bedrock_train_uri
    first = json.loads(aws.read(info.bedrock_train_uri).splitlines()[0])
    assert set(first) == expected
