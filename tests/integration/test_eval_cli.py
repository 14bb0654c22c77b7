"""``fmops eval metrics``: output keys per task, CSV, and bad input with its line number."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from fmops_local.cli import main

pytestmark = pytest.mark.integration

KEYS = {
    "classification": {"accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted"},
    "multilabel": {"subset_accuracy", "hamming_loss", "f1_micro", "f1_macro", "f1_samples"},
    "summarization": {"rouge1", "rouge2", "rougeL", "rougeLsum"},
    "qa": {"exact_match", "f1"},
    "generation": {"perplexity"},
}
ROWS: dict[str, list[dict[str, Any]]] = {
    "classification": [{"prediction": p, "reference": r} for p, r in [("a", "a"), ("b", "a"), ("b", "b"), ("a", "a")]],
    "multilabel": [
        {"prediction": ["x"], "reference": ["x", "y"]},
        {"prediction": ["y"], "reference": ["y"]},
        {"prediction": ["x", "y"], "reference": ["x"]},
    ],
    "summarization": [
        {"prediction": "the cats are running fast", "reference": "a cat runs fast"},
        {"prediction": "rain tomorrow", "reference": "it will rain tomorrow"},
    ],
    "qa": [
        {"prediction": "the Eiffel Tower", "reference": ["Eiffel Tower", "tower"]},
        {"prediction": "Paris, France", "reference": ["Paris"]},
    ],
    "generation": [{"token_logprobs": [-0.1, -2.0]}, {"token_logprobs": [-0.5]}],
}


def write(tmp_path: Path, rows: list[Any], raw: str | None = None) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("task", list(KEYS))
def test_json_keys_per_task(tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str) -> None:
    code, out, _ = run(capsys, "eval", "metrics", "--task", task, "--input", str(write(tmp_path, ROWS[task])))
    result = json.loads(out)
    assert code == 0
    assert set(result) == KEYS[task] | {"n"} | {f"{k}_ci" for k in KEYS[task]}
    assert result["n"] == len(ROWS[task])
    for key in KEYS[task]:
        low, high = result[f"{key}_ci"]
        assert low <= result[key] <= high or math.isclose(low, result[key]) or math.isclose(high, result[key])


def test_known_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "eval", "metrics", "--task", "qa", "--input", str(write(tmp_path, ROWS["qa"])), "--no-ci")
    result = json.loads(out)
    # "the Eiffel Tower" normalises to "eiffel tower": exact; "paris france" vs "paris": F1 2/3.
    assert result["exact_match"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx((100 + 100 * 2 / 3) / 2)
    _, out, _ = run(
        capsys, "eval", "metrics", "--task", "generation", "--input", str(write(tmp_path, ROWS["generation"]))
    )
    assert json.loads(out)["perplexity"] == pytest.approx(math.exp((0.1 + 2.0 + 0.5) / 3))


def test_stemming_can_be_switched_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write(tmp_path, ROWS["summarization"]))
    _, stemmed, _ = run(capsys, "eval", "metrics", "--task", "summarization", "--input", path, "--no-ci")
    _, plain, _ = run(capsys, "eval", "metrics", "--task", "summarization", "--input", path, "--no-ci", "--no-stem")
    assert json.loads(stemmed)["rouge1"] > json.loads(plain)["rouge1"]


def test_csv_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write(tmp_path, ROWS["classification"]))
    code, out, _ = run(capsys, "eval", "metrics", "--task", "classification", "--input", path, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [r["metric"] for r in table] == [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "f1_micro",
        "f1_weighted",
        "n",
    ]
    by_metric = {r["metric"]: r for r in table}
    assert float(by_metric["accuracy"]["value"]) == pytest.approx(0.75)
    assert by_metric["accuracy"]["ci_low"] != ""
    assert by_metric["n"]["value"] == "4"


@pytest.mark.parametrize(
    ("task", "raw", "message"),
    [
        ("classification", '{"prediction": "a", "reference": "a"}\n{"prediction": "a"}\n', "line 2: field 'reference'"),
        ("classification", '{"prediction": "a", "reference": 3}\n', "line 1: field 'reference'"),
        ("classification", "", "the file is empty"),
        ("classification", '{"prediction": "a", "reference": "a"}\n{broken\n', "line 2: not valid JSON"),
        ("classification", '{"prediction": "z", "reference": "a"}\n', "line 1: predicted label 'z' is in no reference"),
        ("qa", '{"prediction": "a", "reference": "a"}\n', "line 1: field 'reference'"),
        ("generation", '{"token_logprobs": []}\n', "line 1"),
    ],
)
def test_bad_input_names_the_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, raw: str, message: str
) -> None:
    code, out, err = run(capsys, "eval", "metrics", "--task", task, "--input", str(write(tmp_path, [], raw)))
    assert code == 1 and out == ""
    assert message in err and "Traceback" not in err


def test_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "eval", "metrics", "--task", "qa", "--input", "/no/such.jsonl")
    assert code == 2 and "no such file" in err
