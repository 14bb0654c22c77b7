"""``fmops train estimate``: options from fmops.json and flags, data measured from a file, table and JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from fmops_local.train_cmd import add_parser

pytestmark = pytest.mark.integration


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="group", required=True)
    add_parser(sub)
    args = parser.parse_args(["train", "estimate", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def config(tmp_path: Path, **options: Any) -> str:
    path = tmp_path / "fmops.json"
    path.write_text(json.dumps(options))
    return str(path)


def test_sagemaker_table_from_record_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--records", "2000")
    assert code == 0
    # 1,600 training records (80%) on ml.g5.xlarge: (300 + 1600 / 1500) s x 1.408 USD/h = 0.1178 USD
    assert "training records         1,600 (80% training split)" in out
    assert "instance                 ml.g5.xlarge x 1 (on-demand)" in out
    assert "estimated total          $0.12 (USD, us-east-1 list prices of 2026-11-27)" in out
    assert "assumptions:" in out and "us-east-1 list prices" in out
    assert "https://aws.amazon.com/sagemaker/ai/pricing/" in out


def test_spot_and_instances_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    result = as_json(capsys, "--records", "2000", "--spot", "--instance-count", "2", "--epochs", "3")
    estimate = result["estimate"]
    assert (estimate["spot"], estimate["instance_count"], estimate["epochs"]) == (True, 2, 3)
    seconds = 300 + 1600 * 3 / 1500
    assert estimate["total_usd"] == pytest.approx(seconds / 3600 * 2 * 1.408 * 0.3, abs=1e-4)
    assert result["data"] == {
        "source": "--records",
        "records": 2000,
        "invalid_lines": 0,
        "characters": None,
        "train_fraction": 0.8,
    }


def test_the_use_case_config_then_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(
        tmp_path,
        instance_type="ml.m5.xlarge",
        spot=True,
        split={"ratios": [0.5, 0.25, 0.25]},
        hyperparameters={"epochs": 2},
    )
    from_config = as_json(capsys, "--use-case-config", path, "--records", "1200")["estimate"]
    assert (from_config["instance_type"], from_config["spot"], from_config["records"]) == ("ml.m5.xlarge", True, 600)
    # 600 records x 2 epochs / 60 records/s = 20 s + 300 s; 30% of 0.23 USD/h
    assert from_config["total_usd"] == pytest.approx(320 / 3600 * 0.23 * 0.3, abs=1e-4)
    flags = as_json(capsys, "--use-case-config", path, "--records", "1200", "--instance-type", "ml.g5.2xlarge")
    assert flags["estimate"]["instance_type"] == "ml.g5.2xlarge"
    no_spot = as_json(capsys, "--use-case-config", path, "--records", "1200", "--no-spot")
    assert no_spot["estimate"]["spot"] is False


def test_bedrock_from_the_config_with_average_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(
        tmp_path, backend="bedrock", base_model="amazon.titan-text-lite-v1", hyperparameters={"epochCount": 2}
    )
    code, out, _ = run(capsys, "--use-case-config", path, "--records", "1000", "--avg-chars", "600")
    assert code == 0
    # 800 training records x 600 characters / 6 = 80,000 tokens x 2 epochs x 0.0004 USD per 1,000 = 0.064 USD
    assert "training tokens         80,000 x 2 epochs = 160,000" in out
    assert "model storage           $1.95 per month (not in the total)" in out
    assert "estimated total         $0.06" in out
    flag = as_json(capsys, "--use-case-config", path, "--records", "1000", "--avg-chars", "600", "--epochs", "1")
    assert flag["estimate"]["epochs"] == 1 and flag["estimate"]["total_usd"] == pytest.approx(0.032)


def test_the_data_file_is_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tickets.jsonl"
    lines = [json.dumps({"text": "x" * (10 * (i + 1)), "label": "a" if i % 2 else "b"}) for i in range(10)]
    data.write_text("\n".join([*lines, '{"text": "", "label": "a"}']) + "\n")
    result = as_json(capsys, "--data", str(data), "--backend", "bedrock", "--base-model", "amazon.titan-text-lite-v1")
    # 10 usable records of 10, 20, ..., 100 characters (550); the blank one is skipped
    assert result["data"] == {
        "source": str(data),
        "records": 10,
        "invalid_lines": 1,
        "characters": 550,
        "train_fraction": 0.8,
    }
    estimate = result["estimate"]
    # 8 training records: 80% of the characters (440) and of the measured tokens
    per_record = sum(-(-10 * (i + 1) // 6) for i in range(10))  # ceil(characters / 6) per record
    assert estimate["records"] == 8 and estimate["characters"] == 440
    assert estimate["tokens"] == round(per_record * 0.8)
    code, out, _ = run(capsys, "--data", str(data))
    assert code == 0 and "10 records (" + str(data) + "), 1 line with problems skipped" in out


def test_a_generative_task_is_priced_as_a_causal_lm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--records", "2000", "--task", "chat")
    assert code == 0
    # 1,600 training records x 32 tokens (max_length; the data's tokens are unknown) / 10,000 tokens/s on ml.g5
    assert "task                     chat" in out
    assert "throughput               10,000 tokens/s (small causal LM), 32 tokens per record (max_length 32)" in out
    estimate = as_json(capsys, "--records", "2000", "--task", "summarization")["estimate"]
    seconds = 300 + 1600 * 32 / 10_000
    assert estimate["task"] == "summarization"
    assert estimate["total_usd"] == pytest.approx(seconds / 3600 * 1.408, abs=1e-4)
    # The config's task, then the flag; a config metric of another task is refused, naming the field.
    path = config(tmp_path, task="qa", hyperparameters={"max_length": 256})
    assert as_json(capsys, "--use-case-config", path, "--records", "100")["estimate"]["tokens_per_record"] == 256
    flagged = as_json(capsys, "--use-case-config", path, "--records", "100", "--task", "classification")
    assert flagged["estimate"]["task"] == "classification" and "tokens_per_second" not in flagged["estimate"]
    code, _, err = run(
        capsys, "--use-case-config", config(tmp_path, metric="accuracy"), "--records", "9", "--task", "qa"
    )
    assert code == 2 and "field 'metric'" in err


def test_the_task_choices_are_the_runs() -> None:
    from typing import get_args

    from fmops.schemas.run import Task
    from fmops_local.train_cmd import TASKS

    assert TASKS == get_args(Task)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give --data FILE.jsonl or --records N"),
        (("--records", "0"), "--records must be >= 1"),
        (("--records", "10", "--instance-count", "0"), "instance_count"),
        (("--records", "10", "--backend", "bedrock", "--base-model", "acme.big-model"), "unknown Bedrock base model"),
        (
            ("--records", "10", "--backend", "bedrock", "--base-model", "amazon.nova-micro-v1:0", "--epochs", "9"),
            "hyperparameters.epochCount: epochCount 9 is outside 1..5",
        ),
        (("--data", "missing.jsonl"), "missing.jsonl"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("fmops train estimate: ") and message in err


def test_a_bad_config_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--use-case-config", config(tmp_path, treshold=0.9), "--records", "10")
    assert code == 2 and "treshold" in err


def test_a_file_without_a_usable_record_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text("not json\n")
    code, _, err = run(capsys, "--data", str(data))
    assert code == 1 and "fmops data validate" in err
