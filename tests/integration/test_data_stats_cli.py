"""``fmops data stats``: JSON and HTML output, a folder of splits with leakage, S3 sources, usage errors (exit 2)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fmops_local.data_stats_cmd import add_parser


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="fmops data")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    args = parser.parse_args(["stats", *argv])
    rc: int = args.func(args)
    return rc


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


RECORDS = [
    {"text": "Great product, works well", "label": "pos"},
    {"text": "great product works well!", "label": "pos"},
    {"text": "Terrible. Email me at jane.doe@example.com", "label": "neg"},
    {"text": "Great product, works well", "label": "pos"},
    {"text": "", "label": "neg"},
]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "reviews.jsonl", RECORDS)


@pytest.fixture
def splits_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "splits"
    folder.mkdir()
    write_jsonl(
        folder / "train.jsonl", [{"prompt": "What is AI?", "completion": "a"}, {"prompt": "Hi", "completion": "b"}]
    )
    write_jsonl(
        folder / "validation.jsonl", [{"prompt": "what is ai", "completion": "c"}, {"prompt": "New", "completion": "d"}]
    )
    write_jsonl(folder / "test.jsonl", [{"prompt": "Other", "completion": "e"}])
    return folder


def test_json_on_stdout(data_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(data_file)) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"format", "records", "valid_records", "invalid_records", "tokens", "duplicates", "pii"}
    assert set(data) >= {"empty_fields", "labels", "over_token_limit", "issues_by_code", "file_issues", "source"}
    assert (data["format"], data["records"], data["valid_records"], data["invalid_records"]) == (
        "classification",
        5,
        4,
        1,
    )
    assert data["source"] == str(data_file)
    assert data["duplicates"]["exact"]["first_groups"] == [{"count": 2, "lines": [1, 4]}]
    assert data["duplicates"]["normalised"]["records"] == 2
    assert data["pii"]["email"]["lines"] == [3]
    assert data["labels"]["counts"] == {"pos": 3, "neg": 2}
    assert data["empty_fields"]["fields"] == {"text": {"count": 1, "lines": [5]}}
    assert data["tokens"]["basis"] == "default"
    assert "jane.doe@example.com" not in json.dumps(data)


def test_json_to_a_file_with_a_model(data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stats.json"
    assert run(str(data_file), "--out", str(out), "--model", "sagemaker", "--data-format", "classification") == 0
    assert capsys.readouterr().out.strip() == str(out)
    data = json.loads(out.read_text())
    assert (data["model"], data["tokens"]["basis"], data["tokens"]["chars_per_token"]) == ("sagemaker", "model", 4.0)


def test_html_written_to_out(data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert run(str(data_file), "--format", "html", "--out", str(out)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<svg" in page and 'class="bar"' in page and 'class="label-bar"' in page
    assert "jane.doe@example.com" not in page


def test_folder_of_splits_reports_leakage(splits_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(splits_dir)) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"train_split", "splits", "leakage"}
    assert list(data["splits"]) == ["train", "validation", "test"]
    assert data["splits"]["validation"]["source"] == str(splits_dir / "validation.jsonl")
    assert data["leakage"]["validation"] == {
        "records": 2,
        "leaked": 1,
        "fraction": 0.5,
        "first": [{"line": 1, "train_line": 1}],
    }
    assert data["leakage"]["test"]["leaked"] == 0


def test_folder_without_optional_splits(splits_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (splits_dir / "test.jsonl").unlink()
    assert run(str(splits_dir)) == 0
    assert set(json.loads(capsys.readouterr().out)["leakage"]) == {"validation"}


def test_folder_html(splits_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "splits.html"
    assert run(str(splits_dir), "--format", "html", "--out", str(out)) == 0
    page = out.read_text(encoding="utf-8")
    assert "Leakage into train" in page and page.count('<section id="split-') == 3


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        yield s3


def test_s3_file_and_prefix(s3_bucket: Any, capsys: pytest.CaptureFixture[str]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    s3_bucket.put_object(Bucket="data", Key="one/reviews.jsonl", Body=body)
    assert run("s3://data/one/reviews.jsonl") == 0
    assert json.loads(capsys.readouterr().out)["records"] == 5

    s3_bucket.put_object(Bucket="data", Key="split/train.jsonl", Body=b'{"prompt": "Q1", "completion": "a"}\n')
    s3_bucket.put_object(Bucket="data", Key="split/test.jsonl", Body=b'{"prompt": "q1!", "completion": "b"}\n')
    assert run("s3://data/split/") == 0  # no validation.jsonl: optional
    data = json.loads(capsys.readouterr().out)
    assert list(data["splits"]) == ["train", "test"] and data["leakage"]["test"]["leaked"] == 1

    assert run("s3://data/missing/") == 2  # no train.jsonl
    err = capsys.readouterr().err
    assert err.startswith("fmops data stats: s3://data/missing/train.jsonl") and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{missing}"], "no such file"),
        (["{file}", "--model", "acme.no-such-model"], "unknown base model"),
        (["{file}", "--format", "html"], "--format html needs --out"),
        (["{file}", "--out", "{tmp}/no/such/folder/x.json"], "not a file in an existing folder"),
        (["{file}", "--out", "{tmp}"], "not a file in an existing folder"),
        (["{file}", "--out", "s3://bucket/x.json"], "--out must be a local file"),
        (["{empty_dir}"], "a folder needs train.jsonl"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    names = {"missing": tmp_path / "missing.jsonl", "file": data_file, "tmp": tmp_path, "empty_dir": empty_dir}
    assert run(*[arg.format(**names) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.startswith("fmops data stats: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreadable_file_exits_2(
    data_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreadable(uri: str, chunk_bytes: int = 0) -> Iterator[bytes]:
        raise PermissionError(13, "Permission denied", uri)
        yield b""  # a generator, as read_chunks is

    monkeypatch.setattr("fmops_local.data_stats_cmd.read_chunks", unreadable)
    assert run(str(data_file)) == 2
    err = capsys.readouterr().err
    assert err == f"fmops data stats: {data_file}: Permission denied\n"


def test_bad_options_are_argparse_errors(data_file: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run(str(data_file), "--data-format", "csv")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        run(str(data_file), "--format", "xml")
    assert exc.value.code == 2
