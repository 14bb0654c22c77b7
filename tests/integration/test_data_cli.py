"""``fmops data validate|split|models``: the output contract and the exit codes, as a user runs them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from fmops_local.cli import main

pytestmark = pytest.mark.integration

PC = '{"prompt": "route: my invoice is wrong", "completion": "billing"}'


def write(tmp_path: Path, *rows: str, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(r + "\n" for r in rows))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_json_contract_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, PC, PC, name="good.jsonl")
    code, out, _ = run(capsys, "data", "validate", str(good), "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert {k: report[k] for k in ("valid", "records", "valid_records", "errors", "warnings", "format")} == {
        "valid": True,
        "records": 2,
        "valid_records": 2,
        "errors": [],
        "warnings": [],
        "format": "prompt-completion",
    }

    bad = write(tmp_path, PC, '{"prompt": 1, "completion": "x"}', "[]", name="bad.jsonl")
    code, out, _ = run(capsys, "data", "validate", str(bad), "--format", "json", "--max-errors", "1")
    report = json.loads(out)
    assert code == 1
    assert report["errors"] == [
        {"line": 2, "field": "prompt", "code": "wrong_type", "message": "must be a string, got an integer"}
    ]
    assert (report["error_count"], report["valid_records"]) == (2, 1)


def test_validate_text_output_names_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, PC, '{"prompt": "", "completion": "x"}')
    code, out, _ = run(capsys, "data", "validate", str(bad))
    assert code == 1
    assert "INVALID: 1 of 2 records valid" in out
    assert "line 2: prompt: must not be empty or whitespace only  [empty_text]" in out


def test_validate_against_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path, *[PC] * 5)
    code, out, _ = run(
        capsys, "data", "validate", str(data), "--model", "amazon.titan-text-express-v1", "--format", "json"
    )
    report = json.loads(out)
    assert code == 1 and report["model"] == "amazon.titan-text-express-v1:0:8k"
    assert [e["code"] for e in report["errors"]] == ["too_few_records"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "validate", "/no/such/file.jsonl"], "no such file"),
        (["data", "validate", "{data}", "--model", "gpt-4"], "unknown base model 'gpt-4'"),
        (["data", "split", "/no/such/file.jsonl", "--out", "{tmp}/out"], "no such file"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = write(tmp_path, PC)
    argv = [a.format(data=data, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_ratios_are_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["data", "split", str(write(tmp_path, PC)), "--ratios", "0.8,0.3", "--out", str(tmp_path / "o")])
    assert caught.value.code == 2
    assert "summing to 1" in capsys.readouterr().err


def test_split_writes_splits_quarantine_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) for i in range(50)]
    rows.insert(7, '{"text": "t", "label": ""}')
    data = write(tmp_path, *rows)
    out_dir = tmp_path / "out"
    code, out, _ = run(
        capsys,
        "data",
        "split",
        str(data),
        "--ratios",
        "0.8,0.1,0.1",
        "--seed",
        "9",
        "--stratify-by",
        "label",
        "--out",
        str(out_dir),
    )
    summary = json.loads(out)
    assert code == 1  # one record quarantined; everything else written
    assert (summary["records"], summary["written"], summary["quarantined"]) == (51, 50, 1)
    assert summary["counts"] == {"train": 40, "validation": 5, "test": 5}
    manifest = json.loads((out_dir / "manifest.json").read_text())
    for name in ("train", "validation", "test"):
        digest = hashlib.sha256((out_dir / f"{name}.jsonl").read_bytes()).hexdigest()
        assert manifest["splits"][name]["sha256"] == digest
    assert json.loads((out_dir / "quarantine.jsonl").read_text())["line"] == 8

    # The same command on another machine writes the same bytes.
    again = tmp_path / "again"
    run(capsys, "data", "split", str(data), "--seed", "9", "--stratify-by", "label", "--out", str(again))
    assert (again / "train.jsonl").read_bytes() == (out_dir / "train.jsonl").read_bytes()


def test_strict_split_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path, *[PC] * 20, "{broken")
    code, out, err = run(capsys, "data", "split", str(data), "--strict", "--out", str(tmp_path / "out"))
    assert code == 1 and json.loads(out)["written"] == 0
    assert "line 21" in err
    assert not (tmp_path / "out").exists()


def test_split_to_s3_uses_a_versioned_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
        version = s3.put_object(Bucket="data", Key="raw/tickets.jsonl", Body="".join(PC + "\n" for _ in range(30)))[
            "VersionId"
        ]
        code, out, _ = run(
            capsys, "data", "split", "s3://data/raw/tickets.jsonl", "--out", "s3://data/datasets/tickets"
        )
        summary = json.loads(out)
        assert code == 0
        base = f"datasets/tickets/{summary['version']}/"
        assert summary["manifest"] == f"s3://data/{base}manifest.json"
        manifest = json.loads(s3.get_object(Bucket="data", Key=base + "manifest.json")["Body"].read())
        assert manifest["source"]["version_id"] == version
        head = s3.head_object(Bucket="data", Key=base + "train.jsonl")
        assert head["Metadata"]["fmops-dataset-version"] == summary["version"]


def test_models_lists_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "data", "models", "--format", "json")
    rows = json.loads(out)
    assert code == 0
    assert {"amazon.nova-micro-v1:0:128k", "anthropic.claude-3-haiku-20240307-v1:0:200k", "sagemaker"} <= {
        r["model_id"] for r in rows
    }
    assert all(r["source"].startswith("https://") for r in rows)
