"""``fmops data convert`` end to end: files in, output + quarantine out, the summary and the exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fmops.data.validate import Validator
from fmops_local.data_convert_cmd import add_parser

pytestmark = pytest.mark.integration


def convert(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    """Run the command; returns the exit code, the JSON summary (None when none was printed) and stderr."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    args = parser.parse_args(["convert", *argv])
    rc = args.func(args)
    out, err = capsys.readouterr()
    return rc, json.loads(out) if out.strip() else None, err


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_valid_output(path: Path, data_format: str) -> int:
    validator = Validator(data_format=data_format)
    for _ in validator.check_chunks([path.read_bytes()]):
        pass
    report = validator.report()
    assert report.valid, report.errors
    return report.records


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


CSV = (
    "id,text,label\n"
    '1,"A review that\nspans three\nlines, with a comma",pos\n'
    "2,plain,neg\n"
    '3,"quoted ""inner"" text",pos\n'
    "4,too,many,fields\n"
    '5,"another\nmulti-line",\n'
    "6,fine,neutral\n"
)


def test_csv_with_multi_line_fields_and_bad_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reviews.csv"
    source.write_text(CSV, encoding="utf-8")
    out = tmp_path / "train.jsonl"
    rc, summary, err = convert(capsys, str(source), "--from", "csv", "--to", "prompt-completion", "--out", str(out))
    quarantine = tmp_path / "train.jsonl.quarantine.jsonl"
    assert rc == 1, err
    assert summary == {
        "records": 6,
        "written": 4,
        "quarantined": 2,
        "output": str(out),
        "quarantine": str(quarantine),
        "from": "csv",
        "to": "prompt-completion",
        "format": "classification",
    }
    assert summary["records"] == summary["written"] + summary["quarantined"]
    assert assert_valid_output(out, "prompt-completion") == 4
    records = jsonl(out)
    assert records[0]["prompt"].startswith("Classify the text into one of: neg, neutral, pos.\nText: A review that\n")
    assert [r["completion"] for r in records] == ["pos", "neg", "pos", "neutral"]
    bad = jsonl(quarantine)
    # row 4 is on physical line 7 (row 1 spans lines 2-4); row 5 starts on line 8 and spans two lines
    assert [(b["line"], b["errors"][0]["code"]) for b in bad] == [(7, "field_count"), (8, "empty_text")]
    assert bad[0]["raw"] == "4,too,many,fields"
    assert bad[1]["raw"] == '5,"another\nmulti-line",'
    assert bad[1]["errors"][0]["field"] == "label"
    assert files(tmp_path) == {"reviews.csv", "train.jsonl", "train.jsonl.quarantine.jsonl"}  # no temporary files


def test_csv_column_mapping_and_system_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "faq.csv"
    source.write_text('question,answer\nWhat is 2+2?,4\n"Why?\nReally?",Because.\n', encoding="utf-8")
    out = tmp_path / "faq.jsonl"
    rc, summary, _ = convert(
        capsys,
        str(source),
        "--from",
        "csv",
        "--columns",
        "prompt=question,completion=answer",
        "--to",
        "conversation",
        "--system",
        "You answer questions.",
        "--out",
        str(out),
    )
    assert rc == 0
    assert summary is not None and summary["quarantine"] is None and summary["written"] == 2
    assert assert_valid_output(out, "conversation") == 2
    assert jsonl(out)[1]["system"] == [{"text": "You answer questions."}]
    assert jsonl(out)[1]["messages"][0]["content"][0]["text"] == "Why?\nReally?"
    assert files(tmp_path) == {"faq.csv", "faq.jsonl"}


def test_jsonl_format_is_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "qa.jsonl"
    lines = [
        {"context": "Paris is in France.", "question": "Where is Paris?", "answers": ["France"]},
        {"context": "c", "question": "q", "answers": []},
        {"context": "Ice is cold.", "question": "Is ice cold?", "answers": ["Yes", "Very"]},
    ]
    source.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines) + "{oops\n")
    out = tmp_path / "qa.conversation.jsonl"
    rc, summary, _ = convert(capsys, str(source), "--from", "jsonl", "--to", "conversation", "--out", str(out))
    assert rc == 1
    assert summary is not None
    assert (summary["format"], summary["records"], summary["written"], summary["quarantined"]) == ("qa", 4, 2, 2)
    assert assert_valid_output(out, "conversation") == 2
    assert [b["line"] for b in jsonl(Path(summary["quarantine"]))] == [2, 4]


def test_parquet_in_out_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 2500
    table = pa.table(
        {
            "document": [f"Document number {i}." if i % 500 else "" for i in range(n)],
            "summary": [f"Doc {i}." for i in range(n)],
            "extra": list(range(n)),
        }
    )
    source = tmp_path / "docs.parquet"
    pq.write_table(table, source, row_group_size=700)
    out = tmp_path / "docs.jsonl"
    rc, summary, _ = convert(capsys, str(source), "--from", "parquet", "--to", "prompt-completion", "--out", str(out))
    assert rc == 1
    assert summary is not None
    assert (summary["records"], summary["written"], summary["quarantined"]) == (n, n - 5, 5)
    assert assert_valid_output(out, "prompt-completion") == n - 5
    assert jsonl(out)[0] == {
        "prompt": "Summarize the following document.\n\nDocument number 1.",
        "completion": "Doc 1.",
    }
    bad = jsonl(Path(summary["quarantine"]))
    assert [b["line"] for b in bad] == [1, 501, 1001, 1501, 2001]  # 1-based row numbers
    assert json.loads(bad[1]["raw"]) == {"document": "", "summary": "Doc 500."}


def test_parquet_list_columns_and_wrong_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": ["a", "b", "c"], "labels": [["x", "y"], ["y"], None]})
    pq.write_table(table, tmp_path / "ml.parquet")
    out = tmp_path / "ml.jsonl"
    rc, summary, _ = convert(
        capsys, str(tmp_path / "ml.parquet"), "--from", "parquet", "--to", "prompt-completion", "--out", str(out)
    )
    assert rc == 1 and summary is not None
    assert [r["completion"] for r in jsonl(out)] == ["x, y", "y"]
    assert jsonl(Path(summary["quarantine"]))[0]["errors"][0]["code"] == "wrong_type"


def test_strict_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reviews.csv"
    source.write_text(CSV, encoding="utf-8")
    out = tmp_path / "train.jsonl"
    rc, summary, err = convert(
        capsys, str(source), "--from", "csv", "--to", "conversation", "--out", str(out), "--strict"
    )
    assert rc == 1
    assert summary is not None and summary["output"] is None and summary["written"] == 0
    assert summary["rejected"] == 2
    assert "nothing written" in err and "first: line 7:" in err
    assert files(tmp_path) == {"reviews.csv"}


def test_strict_writes_everything_when_all_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "pc.jsonl"
    source.write_text('{"prompt": "p", "completion": "c"}\n' * 3)
    out = tmp_path / "out.jsonl"
    rc, summary, _ = convert(
        capsys, str(source), "--from", "jsonl", "--to", "conversation", "--out", str(out), "--strict"
    )
    assert rc == 0 and summary is not None and summary["written"] == 3
    assert assert_valid_output(out, "conversation") == 3


def test_given_labels_quarantine_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": "meh"}\n')
    out = tmp_path / "o.jsonl"
    rc, summary, _ = convert(
        capsys,
        str(source),
        "--from",
        "classification",
        "--to",
        "prompt-completion",
        "--labels",
        "pos,neg",
        "--out",
        str(out),
    )
    assert rc == 1 and summary is not None
    assert jsonl(out)[0]["prompt"].startswith("Classify the text into one of: neg, pos.")
    assert jsonl(Path(summary["quarantine"]))[0]["errors"][0]["code"] == "unknown_label"


def test_a_rerun_replaces_the_outputs_and_drops_a_stale_quarantine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "pc.jsonl"
    source.write_text('{"prompt": "p", "completion": "c"}\nbad\n')
    out = tmp_path / "out.jsonl"
    assert convert(capsys, str(source), "--from", "jsonl", "--to", "prompt-completion", "--out", str(out))[0] == 1
    source.write_text('{"prompt": "p", "completion": "c"}\n')
    assert convert(capsys, str(source), "--from", "jsonl", "--to", "prompt-completion", "--out", str(out))[0] == 0
    assert files(tmp_path) == {"pc.jsonl", "out.jsonl"}
    assert len(jsonl(out)) == 1


def test_s3_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="in.csv", Body=b"prompt,completion\nq,a\n")
        out = tmp_path / "o.jsonl"
        rc, summary, _ = convert(capsys, "s3://data/in.csv", "--from", "csv", "--to", "conversation", "--out", str(out))
        assert rc == 0 and summary is not None and summary["written"] == 1
        rc, _, err = convert(
            capsys, "s3://data/missing.csv", "--from", "csv", "--to", "conversation", "--out", str(out)
        )
        assert rc == 2 and err.startswith("fmops data convert: s3://data/missing.csv")


USAGE_ERRORS = [
    (["missing.jsonl", "--from", "jsonl"], "no such file"),
    (["{csv}", "--from", "csv", "--columns", "text=nope"], "unknown column 'nope'"),
    (["{csv}", "--from", "csv", "--columns", "bogus"], "--columns"),
    (["{csv}", "--from", "jsonl", "--columns", "text=id"], "--columns applies to"),
    (["{csv}", "--from", "csv", "--labels", "a,,b"], "--labels"),
    (["{jsonl}", "--from", "summarization", "--labels", "a,b"], "--labels applies to classification"),
    (["{csv}", "--from", "csv", "--to", "prompt-completion", "--system", "S"], "--system applies"),
    (["{csv}", "--from", "parquet"], "not a readable Parquet file"),
    (["{gz}", "--from", "jsonl"], "gzip"),
    (["{empty}", "--from", "jsonl"], "no records"),
    (["{empty}", "--from", "csv"], "empty"),
    (["{header_only}", "--from", "csv"], "no records"),
    (["{csv}", "--from", "csv", "--out", "{tmp}/no/such/dir/o.jsonl"], "no such folder"),
    (["{csv}", "--from", "csv", "--out", "{csv}"], "must not overwrite"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_usage_errors_exit_2_without_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    if "parquet" in argv:
        pytest.importorskip("pyarrow")
    data = tmp_path / "data"
    data.mkdir()
    paths = {
        "csv": data / "reviews.csv",
        "jsonl": data / "s.jsonl",
        "gz": data / "s.jsonl.gz",
        "empty": data / "empty",
        "header_only": data / "h.csv",
    }
    paths["csv"].write_text(CSV)
    paths["jsonl"].write_text('{"document": "d", "summary": "s"}\n')
    paths["gz"].write_bytes(b"\x1f\x8b\x08\x00rest")
    paths["empty"].write_bytes(b"")
    paths["header_only"].write_text("text,label\n")
    names = {k: str(v) for k, v in paths.items()} | {"tmp": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    if "--to" not in argv:
        argv += ["--to", "conversation"]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out.jsonl")]
    before = files(data)
    rc, summary, err = convert(capsys, *argv)
    assert rc == 2
    assert summary is None
    assert err.startswith("fmops data convert: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert files(tmp_path) == {"data"} and files(data) == before


def test_a_crash_midway_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fmops_local.data_convert_cmd as cmd

    real = cmd.convert_rows

    def crashing(rows: Any, to: str, write: Any, quarantine: Any, **options: Any) -> Any:
        def rows_then_crash() -> Any:
            yield from rows
            raise RuntimeError("disk on fire")

        return real(rows_then_crash(), to, write, quarantine, **options)

    monkeypatch.setattr(cmd, "convert_rows", crashing)
    source = tmp_path / "reviews.csv"
    source.write_text(CSV, encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk on fire"):
        convert(capsys, str(source), "--from", "csv", "--to", "conversation", "--out", str(tmp_path / "o.jsonl"))
    assert files(tmp_path) == {"reviews.csv"}
