"""train.py, evaluate.py and serve.py as SageMaker runs them: subprocesses with the SageMaker contract.

One small model is trained once per module (300 records, 1 epoch) and shared by the slow tests.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import tarfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from training_helpers import PYTHON, TRAINING_DIR, JobDirs, job_env, make_job_dirs, run_script

from fmops_local.sample_data import generate, write_jsonl
from fmops_training.metrics_log import METRIC_DEFINITIONS, METRIC_NAMES, parse_metric_line

# Small and fast, yet enough steps (38) to learn the negation task.
HPS = {"epochs": "1", "learning_rate": "2e-4", "batch_size": "8", "max_length": '"16"', "sagemaker_program": "train.py"}


@dataclass
class Trained:
    dirs: JobDirs
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    dirs = make_job_dirs(tmp_path_factory.mktemp("train"), n_train=300, n_validation=100)
    # SageMaker passes hyperparameters both ways; the command line says the same as SM_HPS.
    proc = run_script("train.py", ["--epochs", "1", "--learning_rate", "2e-4", "--seed", "42"], dirs.env(HPS))
    return Trained(dirs, proc)


@pytest.fixture(scope="module")
def evaluated(
    trained: Trained, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    assert trained.proc.returncode == 0, trained.proc.stderr
    root = tmp_path_factory.mktemp("evaluate")
    # As a processing input: the training job's model.tar.gz, downloaded as is.
    (root / "model").mkdir()
    with tarfile.open(root / "model" / "model.tar.gz", "w:gz") as tar:
        for f in sorted(trained.dirs.model.iterdir()):
            tar.add(f, arcname=f.name)
    write_jsonl(root / "test" / "test.jsonl", generate(100, seed=3))
    args = ["--model-dir", str(root / "model"), "--test", str(root / "test"), "--output", str(root / "output")]
    proc = run_script("evaluate.py", args, job_env())
    return root / "output", proc


@pytest.mark.slow
def test_train_writes_model_and_metrics(trained: Trained) -> None:
    proc, model = trained.proc, trained.dirs.model
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (model / name).is_file(), name
    assert json.loads((model / "labels.json").read_text()) == ["negative", "positive"]
    config = json.loads((model / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}

    metric_lines = [line for line in proc.stdout.splitlines() if line.startswith("fmops-metric")]
    parsed = [parse_metric_line(line) for line in metric_lines]
    assert None not in parsed, metric_lines
    # One process, single-label classification: the aggregate and accuracy metrics, no per-rank lines.
    expected = set(METRIC_NAMES) - {
        "validation_f1_micro",
        "validation_perplexity",
        "rank_train_loss",
        "rank_tokens_per_second",
    }
    assert {p[0] for p in parsed} == expected
    # What SageMaker's MetricDefinitions would record: the last match of each regex.
    last: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        for d in METRIC_DEFINITIONS:
            match = re.search(d["Regex"], line)
            if match:
                last[d["Name"]] = float(match.group(1))
    assert last["validation_accuracy"] > 0.8, proc.stdout
    assert last["tokens_per_second"] > 0
    assert [p[2] for p in parsed if p[0] == "train_loss"] == [10, 20, 30, 38]

    meta = json.loads((model / "fmops_model.json").read_text())
    assert meta["task"] == "classification"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["hyperparameters"]["learning_rate"] == pytest.approx(2e-4)
    assert meta["hyperparameters"]["max_length"] == 16
    assert meta["metrics"]["validation_accuracy"] == pytest.approx(last["validation_accuracy"], abs=1e-5)
    assert json.loads((trained.dirs.output / "data" / "metrics.json").read_text())["history"]
    assert not (trained.dirs.output / "failure").exists()


@pytest.mark.slow
def test_evaluate_compares_base_and_finetuned(evaluated: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    output, proc = evaluated
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
    test = generate(100, seed=3)
    assert len(rows) == 100
    assert [r["line"] for r in rows] == list(range(1, 101))
    assert [(r["text"], r["reference"]) for r in rows] == [(t["text"], t["label"]) for t in test]
    assert all(set(r) == {"line", "text", "reference", "base", "finetuned", "finetuned_score"} for r in rows)
    assert all(0.5 <= r["finetuned_score"] <= 1.0 for r in rows)
    base = sum(r["base"] == r["reference"] for r in rows) / len(rows)
    finetuned = sum(r["finetuned"] == r["reference"] for r in rows) / len(rows)
    assert base < 0.75, base
    assert finetuned > 0.8, finetuned
    summary = json.loads((output / "summary.json").read_text())
    assert summary["records"] == 100
    assert summary["base"]["accuracy"] == pytest.approx(base)
    assert summary["finetuned"]["correct"] == round(finetuned * 100)
    assert summary["base_matches_training_start"] is True  # the exact starting point was rebuilt
    assert sum(v["count"] for v in summary["per_label"].values()) == 100


@pytest.mark.slow
def test_evaluate_predicts_with_the_champion_too(
    trained: Trained, evaluated: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    # The champion is the same trained model, given as files: its answers must be the fine-tuned model's.
    assert evaluated[1].returncode == 0, evaluated[1].stderr[-3000:]
    root, out = evaluated[0].parent, tmp_path / "output"
    args = ["--model-dir", str(root / "model"), "--test", str(root / "test"), "--output", str(out)]
    proc = run_script("evaluate.py", [*args, "--champion-model-dir", str(trained.dirs.model)], job_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    before = [json.loads(line) for line in (evaluated[0] / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 100
    assert all(set(r) == {"line", "text", "reference", "base", "finetuned", "finetuned_score", "champion",
                          "champion_score"} for r in rows)  # fmt: skip
    assert [r["champion"] for r in rows] == [r["finetuned"] for r in rows] == [r["finetuned"] for r in before]
    assert [r["champion_score"] for r in rows] == pytest.approx([r["finetuned_score"] for r in rows], abs=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["champion"]["accuracy"] == summary["finetuned"]["accuracy"]
    assert summary["champion"]["labels"] == ["negative", "positive"]
    assert sum(v["champion_correct"] for v in summary["per_label"].values()) == summary["champion"]["correct"]
    assert "fmops-evaluate: champion model" in proc.stdout


def test_evaluate_fails_fast_on_a_bad_champion(trained: Trained, tmp_path: Path) -> None:
    assert trained.proc.returncode == 0, trained.proc.stderr
    write_jsonl(tmp_path / "processing" / "test" / "t.jsonl", generate(3, seed=0))
    (tmp_path / "processing" / "champion").mkdir()
    args = [
        "--model-dir",
        str(trained.dirs.model),
        "--test",
        str(tmp_path / "processing" / "test"),
        "--output",
        str(tmp_path / "processing" / "output"),
        "--champion-model-dir",
        str(tmp_path / "processing" / "champion"),
    ]
    proc = run_script("evaluate.py", args, job_env(), timeout=60)
    assert proc.returncode == 1
    failure = (tmp_path / "processing" / "failure").read_text()
    assert failure.startswith("ModelLoadError: champion: model dir") and "neither model files" in failure
    assert not (tmp_path / "processing" / "output" / "predictions.jsonl").exists()


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str


@pytest.fixture(scope="module")
def server(trained: Trained) -> Iterator[Server]:
    assert trained.proc.returncode == 0, trained.proc.stderr
    proc = subprocess.Popen(
        [PYTHON, "serve.py", "--model-dir", str(trained.dirs.model), "--port", "0"],
        cwd=TRAINING_DIR,
        env=job_env({"FMOPS_TORCH_THREADS": "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        port = None
        while port is None:
            line = lines.get(timeout=120)
            match = re.fullmatch(r"fmops-serve ready port=(\d+)\n?", line)
            port = int(match.group(1)) if match else None
        assert port > 0
        yield Server(proc, f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _request(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_serve_answers_ping_and_invocations(
    server: Server, evaluated: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    assert _request(server.url + "/ping") == (200, {"status": "ok"})
    # The endpoint gives the same answers as the evaluation job for the same texts.
    rows = [json.loads(line) for line in (evaluated[0] / "predictions.jsonl").read_text().splitlines()[:2]]
    status, body = _request(server.url + "/invocations", json.dumps({"inputs": [r["text"] for r in rows]}).encode())
    assert status == 200
    predictions = body["predictions"]
    assert [p["label"] for p in predictions] == [r["finetuned"] for r in rows]
    assert [p["score"] for p in predictions] == pytest.approx([r["finetuned_score"] for r in rows], abs=1e-4)
    status, body = _request(server.url + "/invocations", json.dumps({"inputs": "the staff was very friendly"}).encode())
    assert status == 200
    assert body["predictions"][0]["label"] == "positive" and 0.5 <= body["predictions"][0]["score"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b"{broken", "application/json", "not valid JSON"),
        (b'{"inputs": []}', "application/json", "non-empty list"),
        (b"a,b", "text/csv", "unsupported content type"),
    ],
)
def test_serve_rejects_bad_requests(server: Server, body: bytes, content_type: str, text: str) -> None:
    status, answer = _request(server.url + "/invocations", body, content_type)
    assert status == 400
    assert text in answer["error"]
    assert server.proc.poll() is None  # still serving
    assert _request(server.url + "/nope")[0] == 404


def test_bad_hyperparameter_fails_the_job(job_dirs: JobDirs) -> None:
    proc = run_script("train.py", [], job_dirs.env({"learning_rate": "abc"}), timeout=60)
    assert proc.returncode == 1
    failure = (job_dirs.output / "failure").read_text()
    assert failure.strip() == "HyperparameterError: hyperparameter learning_rate: could not parse 'abc' as a float"
    assert "hyperparameter learning_rate: could not parse 'abc' as a float" in proc.stderr
    assert not job_dirs.model.exists() or not any(job_dirs.model.iterdir())


def test_bad_data_line_fails_the_job(job_dirs: JobDirs) -> None:
    with (job_dirs.train / "train.jsonl").open("a") as fh:
        fh.write('{"text": "cut off", "label": \n')
    proc = run_script("train.py", [], job_dirs.env({}), timeout=60)
    assert proc.returncode == 1
    failure = (job_dirs.output / "failure").read_text()
    assert failure.startswith("DataError: channel train file train.jsonl line 21: invalid JSON"), failure


def test_evaluate_reports_errors(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "processing" / "test" / "t.jsonl", generate(3, seed=0))
    (tmp_path / "processing" / "model").mkdir()
    out = tmp_path / "processing" / "output"
    args = ["--model-dir", str(tmp_path / "processing" / "model"), "--test", str(tmp_path / "processing" / "test")]
    proc = run_script("evaluate.py", [*args, "--output", str(out)], job_env(), timeout=60)
    assert proc.returncode == 1
    failure = (tmp_path / "processing" / "failure").read_text()
    assert failure.startswith("ModelLoadError: model dir") and "neither model files" in failure
    proc = run_script("evaluate.py", args, job_env(), timeout=60)
    assert proc.returncode == 1
    assert "the following arguments are required: --output" in proc.stderr
