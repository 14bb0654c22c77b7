"""train.py then evaluate.py for a generative task, as the SageMaker training and processing jobs run them:
the prediction lines the workflow's evaluate step reads (base, fine-tuned and champion answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import make_tiny_llama
from training_helpers import JobDirs, run_script

QA = [
    {
        "context": f"The parcel number {i} went to {city}.",
        "question": f"Where did parcel {i} go?",
        "answers": [city, city.lower()],
    }
    for i, city in enumerate(["Paris", "Oslo", "Rome", "Lima"] * 6)
]


@pytest.mark.slow
def test_qa_model_is_trained_then_evaluated_with_every_gold_answer(tmp_path: Path) -> None:
    dirs = JobDirs(tmp_path, tmp_path / "train", tmp_path / "validation", tmp_path / "model", tmp_path / "output")
    for folder, rows in ((dirs.train, QA[:16]), (dirs.validation, QA[16:20]), (tmp_path / "test", QA[20:])):
        folder.mkdir(parents=True)
        (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    base = make_tiny_llama(tmp_path / "base", [json.dumps(r) for r in QA])
    hps = {
        "task": "qa",
        "base_model": str(base),
        "epochs": "2",
        "batch_size": "4",
        "learning_rate": "5e-3",
        "max_length": "96",
        "lora_r": "4",
        "max_new_tokens": "4",
    }
    trained = run_script("train.py", [], dirs.env(hps))
    assert trained.returncode == 0, trained.stderr[-3000:]
    meta = json.loads((dirs.model / "fmops_model.json").read_text())
    assert meta["task"] == "qa" and meta["training"]["mode"] == "lora" and meta["labels"] == []
    assert meta["metrics"]["validation_perplexity"] > 1 and (dirs.model / "adapter" / "adapter_config.json").is_file()
    assert "validation_loss" in meta["metrics"] and meta["packing"]["train_rows"] <= 16

    out = tmp_path / "eval"
    evaluated = run_script(
        "evaluate.py",
        [
            "--model-dir",
            str(dirs.model),
            "--test",
            str(tmp_path / "test"),
            "--output",
            str(out),
            "--champion-model-dir",
            str(dirs.model),
            "--batch-size",
            "3",
        ],
        dirs.env({}),
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3, 4]
    assert lines[0]["reference"] == [QA[20]["answers"][0], QA[20]["answers"][1]]
    assert lines[0]["prompt"].startswith("Answer the question using the context.")
    assert all(isinstance(x["base"], str) and isinstance(x["finetuned"], str) for x in lines)
    # The champion is the same model here: greedy decoding gives the same answers.
    assert [x["champion"] for x in lines] == [x["finetuned"] for x in lines]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "qa" and summary["records"] == 4 and summary["champion"] is True


@pytest.mark.slow
def test_a_champion_of_another_task_is_refused(tmp_path: Path) -> None:
    from fmops_training.errors import ModelLoadError
    from fmops_training.evaluation_tasks import _champion_folder

    (tmp_path / "champ").mkdir()
    (tmp_path / "champ" / "config.json").write_text("{}")
    (tmp_path / "champ" / "fmops_model.json").write_text(
        json.dumps({"task": "classification", "base_model": "x", "hyperparameters": {}})
    )
    with pytest.raises(ModelLoadError, match="champion: it was trained for task classification, not qa"):
        _champion_folder(tmp_path / "champ", tmp_path / "scratch", "qa")
