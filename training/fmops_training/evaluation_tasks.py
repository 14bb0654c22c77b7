"""Evaluation jobs of the tasks other than single-label classification: multi-label classifiers and
instruction-tuned causal LMs. Each writes one prediction line per test record for the base model (the exact
starting point of training), the fine-tuned model and the champion when there is one; the layer's evaluate
step computes the metrics (fmops.metrics), so the numbers are computed in one place for every backend.

``predictions.jsonl`` lines:

- multilabel: ``{"line", "text", "reference": [labels], "base": [labels], "finetuned": [labels], "champion"?}``
- summarization, qa, chat: ``{"line", "prompt", "reference": [str, ...], "base": str, "finetuned": str,
  "champion"?}`` (greedy generation, at most ``max_new_tokens``; qa references are every gold answer)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fmops_training.artifacts import locate_model_dir, read_labels, read_metadata
from fmops_training.data import read_channel, read_examples
from fmops_training.errors import ModelLoadError
from fmops_training.runtime import prepare_torch

PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"


def _hp(meta: dict[str, Any], name: str, default: int) -> int:
    value = meta.get("hyperparameters", {}).get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ModelLoadError(f"fmops_model.json hyperparameter {name} is not an integer: {value!r}") from None


def _base_name(meta: dict[str, Any], given: str | None, model_dir: Path) -> str:
    name = given or str(meta["base_model"])
    # An S3 base model comes as files: the processing input "base_model" next to "model", by convention.
    beside = model_dir.resolve().parent / "base_model"
    return str(beside) if name.startswith("s3://") and beside.is_dir() else name


def _champion_folder(champion_dir: Path | None, scratch: Path, task: str) -> Path | None:
    if champion_dir is None:
        return None
    try:
        folder = locate_model_dir(champion_dir, scratch / "champion")
        meta = read_metadata(folder)
    except ModelLoadError as exc:
        raise ModelLoadError(f"champion: {exc}") from None
    if meta.get("task", "classification") != task:
        raise ModelLoadError(f"champion: it was trained for task {meta.get('task', 'classification')}, not {task}")
    return folder


def _write(output_dir: Path, lines: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / PREDICTIONS_FILE).open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def evaluate_task(
    task: str,
    folder: Path,
    meta: dict[str, Any],
    test_dir: Path,
    output_dir: Path,
    base_model: str | None,
    model_dir: Path,
    seed: int | None,
    batch_size: int,
    echo: Any,
    champion_dir: Path | None,
    scratch: Path,
) -> dict[str, Any]:
    """Predictions of base, fine-tuned (and champion) for ``task``; returns the summary."""
    started = time.perf_counter()
    champion = _champion_folder(champion_dir, scratch, task)
    base_name = _base_name(meta, base_model, model_dir)
    prepare_torch()
    if task == "multilabel":
        lines, extra = _multilabel(folder, meta, test_dir, base_name, seed, batch_size, champion, scratch, echo)
    else:
        lines, extra = _generative(folder, meta, test_dir, base_name, batch_size, champion, scratch, echo)
    summary: dict[str, Any] = {
        "task": task,
        "records": len(lines),
        "base_model": base_name,
        "champion": champion is not None,
        "seconds": round(time.perf_counter() - started, 3),
        **extra,
    }
    _write(output_dir, lines, summary)
    echo(f"fmops-evaluate: {task}: {len(lines)} records predicted ({summary['seconds']:.1f} s)", flush=True)
    return summary


def _multilabel(
    folder: Path,
    meta: dict[str, Any],
    test_dir: Path,
    base_name: str,
    seed: int | None,
    batch_size: int,
    champion: Path | None,
    scratch: Path,
    echo: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import torch

    from fmops_training.loop import encode, predict_logits
    from fmops_training.modeling import (
        build_classifier,
        load_tokenizer,
        load_trained,
        model_labels,
        pick_device,
        resolve_base_model,
    )

    records = read_channel(test_dir, "test", multilabel=True)
    texts = [r.text for r in records]
    device = pick_device()
    labels = read_labels(folder)
    max_length = _hp(meta, "max_length", 32)
    seed = _hp(meta, "seed", 42) if seed is None else seed

    def predicted(model: Any, tokenizer: Any, names: list[str], length: int) -> list[list[str]]:
        model.to(device)
        logits = predict_logits(model, encode(tokenizer, texts, length), tokenizer.pad_token_id, batch_size, device)
        hot = torch.sigmoid(logits) > 0.5
        return [[names[j] for j in range(len(names)) if row[j]] for row in hot.tolist()]

    source = resolve_base_model(base_name, scratch=scratch / "base")
    base_tokenizer = load_tokenizer(source.location)
    base, digest = build_classifier(source, labels, seed, base_tokenizer.pad_token_id, multilabel=True)
    matches = None if not meta.get("initial_head_sha256") else digest == meta["initial_head_sha256"]
    echo(
        f"fmops-evaluate: multilabel, {len(records)} test records, base {source.describe()}, same start: {matches}",
        flush=True,
    )
    base_pred = predicted(base, base_tokenizer, labels, max_length)
    del base
    model, tokenizer = load_trained(folder)
    ft_pred = predicted(model, tokenizer, model_labels(model), max_length)
    del model
    champ_pred = None
    if champion is not None:
        cmodel, ctokenizer = load_trained(champion)
        champ_pred = predicted(cmodel, ctokenizer, model_labels(cmodel), _hp(read_metadata(champion), "max_length", 32))
    lines = []
    for i, record in enumerate(records):
        line: dict[str, Any] = {
            "line": record.line,
            "text": record.text,
            "reference": list(record.labels),
            "base": base_pred[i],
            "finetuned": ft_pred[i],
        }
        if champ_pred is not None:
            line["champion"] = champ_pred[i]
        lines.append(line)
    return lines, {"labels": labels, "seed": seed, "max_length": max_length, "base_matches_training_start": matches}


def _generative(
    folder: Path,
    meta: dict[str, Any],
    test_dir: Path,
    base_name: str,
    batch_size: int,
    champion: Path | None,
    scratch: Path,
    echo: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from fmops_training.generation import generate
    from fmops_training.modeling import (
        build_causal_lm,
        load_tokenizer,
        load_trained_causal,
        pick_device,
        resolve_generative_base,
    )

    examples = read_examples(test_dir, "test")
    prompts = [e.prompt_messages for e in examples]
    device = pick_device()
    new_tokens = _hp(meta, "max_new_tokens", 64)
    max_prompt = _hp(meta, "max_length", 512)

    def answers(model: Any, tokenizer: Any) -> list[str]:
        model.to(device)
        return generate(model, tokenizer, prompts, new_tokens, batch_size, device, max_prompt=max_prompt)

    source = resolve_generative_base(base_name, None, scratch / "base")
    echo(
        f"fmops-evaluate: {len(examples)} test records, base {source.describe()}, up to {new_tokens} new tokens",
        flush=True,
    )
    base_answers = answers(build_causal_lm(source), load_tokenizer(source.location))
    ft_answers = answers(*load_trained_causal(folder))
    champ_answers = answers(*load_trained_causal(champion)) if champion is not None else None
    lines = []
    for i, example in enumerate(examples):
        line: dict[str, Any] = {
            "line": example.line,
            "prompt": prompts[i][-1]["content"],
            "reference": list(example.references),
            "base": base_answers[i],
            "finetuned": ft_answers[i],
        }
        if champ_answers is not None:
            line["champion"] = champ_answers[i]
        lines.append(line)
    exact = sum(
        a.strip().lower() in {r.strip().lower() for r in e.references}
        for a, e in zip(ft_answers, examples, strict=True)
    )
    return lines, {"max_new_tokens": new_tokens, "finetuned_exact_matches": exact}
