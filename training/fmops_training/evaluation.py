"""Evaluation job: the fine-tuned model, its exact starting point and (optionally) the current champion over
every test record."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fmops_training.artifacts import locate_model_dir, read_labels, read_metadata
from fmops_training.data import read_channel
from fmops_training.errors import ContractError, ModelLoadError
from fmops_training.runtime import prepare_torch

PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"


def _int_hp(meta: dict[str, Any], name: str, default: int) -> int:
    value = meta["hyperparameters"].get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ModelLoadError(f"fmops_model.json hyperparameter {name} is not an integer: {value!r}") from None


def run_evaluation(
    model_dir: Path,
    test_dir: Path,
    output_dir: Path,
    base_model: str | None = None,
    seed: int | None = None,
    batch_size: int = 64,
    echo: Any = print,
    champion_dir: Path | None = None,
) -> dict[str, Any]:
    """Write ``predictions.jsonl`` and ``summary.json`` into ``output_dir``; returns the summary.

    ``champion_dir``: the current champion's model files or ``model.tar.gz``; its predictions are added to every
    line (``champion``, ``champion_score``) and to the summary. Its labels may differ from the fine-tuned model's.
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise ContractError(f"--batch-size must be >= 1, got {batch_size}")
    with tempfile.TemporaryDirectory(prefix="fmops-eval-") as scratch:
        folder = locate_model_dir(model_dir, Path(scratch))
        meta = read_metadata(folder)
        task = str(meta.get("task", "classification"))
        if task != "classification":
            from fmops_training.evaluation_tasks import evaluate_task

            return evaluate_task(
                task,
                folder,
                meta,
                test_dir,
                output_dir,
                base_model,
                model_dir,
                seed,
                batch_size,
                echo,
                champion_dir,
                Path(scratch),
            )
        records = read_channel(test_dir, "test")
        labels = read_labels(folder)
        max_length = _int_hp(meta, "max_length", 32)
        seed = _int_hp(meta, "seed", 42) if seed is None else seed
        base_name = base_model or str(meta["base_model"])
        # The champion's files are checked before any model is loaded: a bad champion fails fast.
        champion_model = None if champion_dir is None else _open_champion(champion_dir, Path(scratch) / "champion")
        # An S3 base model comes as files: the processing input "base_model" next to "model", by convention.
        beside = model_dir.resolve().parent / "base_model"
        if base_name.startswith("s3://") and beside.is_dir():
            base_name = str(beside)

        prepare_torch()
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

        device = pick_device()
        finetuned, ft_tokenizer = load_trained(folder)
        if model_labels(finetuned) != labels:
            raise ModelLoadError(f"labels.json {labels} disagrees with the model config {model_labels(finetuned)}")
        source = resolve_base_model(base_name, scratch=Path(scratch) / "base")
        base_tokenizer = load_tokenizer(source.location)
        base, digest = build_classifier(source, labels, seed, base_tokenizer.pad_token_id)
        expected = meta.get("initial_head_sha256")
        matches = None if not expected else digest == expected
        echo(
            f"fmops-evaluate: {len(records)} test records; fine-tuned model {folder}; base model "
            f"{source.describe()} seed {seed}; same start as training: {matches}; device {device}",
            flush=True,
        )
        if matches is False:
            echo("fmops-evaluate: WARNING the rebuilt base head differs from the one training started from", flush=True)

        texts = [r.text for r in records]
        base.to(device)
        base_logits = predict_logits(
            base, encode(base_tokenizer, texts, max_length), base_tokenizer.pad_token_id, batch_size, device
        )
        del base
        finetuned.to(device)
        ft_logits = predict_logits(
            finetuned, encode(ft_tokenizer, texts, max_length), ft_tokenizer.pad_token_id, batch_size, device
        )
        del finetuned
        champion = None
        if champion_model is not None:
            champion = _predict_champion(champion_model, texts, batch_size, device, echo)
    base_pred = base_logits.argmax(dim=-1).tolist()
    ft_probs = torch.softmax(ft_logits, dim=-1)
    ft_score, ft_pred = ft_probs.max(dim=-1)

    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {"base": 0, "finetuned": 0, "champion": 0}
    per_label: dict[str, dict[str, int]] = {}
    with (output_dir / PREDICTIONS_FILE).open("w", encoding="utf-8") as fh:
        for i, record in enumerate(records):
            b, f = labels[base_pred[i]], labels[int(ft_pred[i])]
            row = per_label.setdefault(record.label, {"count": 0, "base_correct": 0, "finetuned_correct": 0})
            row["count"] += 1
            row["base_correct"] += b == record.label
            row["finetuned_correct"] += f == record.label
            counts["base"] += b == record.label
            counts["finetuned"] += f == record.label
            line = {
                "line": record.line,
                "text": record.text,
                "reference": record.label,
                "base": b,
                "finetuned": f,
                "finetuned_score": round(float(ft_score[i]), 6),
            }
            if champion is not None:
                c = champion["labels"][champion["predictions"][i]]
                row["champion_correct"] = row.get("champion_correct", 0) + (c == record.label)
                counts["champion"] += c == record.label
                line["champion"] = c
                line["champion_score"] = round(champion["scores"][i], 6)
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    n = len(records)
    unknown = Counter(r.label for r in records if r.label not in labels)
    summary: dict[str, Any] = {
        "task": "classification",
        "records": n,
        "files": sorted({r.source for r in records}),
        "labels": labels,
        "base_model": base_name,
        "base_model_source": {"kind": source.kind, "location": source.location},
        "seed": seed,
        "max_length": max_length,
        "base_matches_training_start": matches,
        "base": {"correct": counts["base"], "accuracy": counts["base"] / n},
        "finetuned": {"correct": counts["finetuned"], "accuracy": counts["finetuned"] / n},
        "champion": None
        if champion is None
        else {
            "correct": counts["champion"],
            "accuracy": counts["champion"] / n,
            "labels": champion["labels"],
            "base_model": champion["base_model"],
            "max_length": champion["max_length"],
        },
        "per_label": per_label,
        "unknown_reference_labels": dict(unknown),
        "seconds": round(time.perf_counter() - started, 3),
    }
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    versus = "" if champion is None else f" (champion {counts['champion'] / n:.4f})"
    echo(
        f"fmops-evaluate: accuracy base {counts['base'] / n:.4f} -> "
        f"fine-tuned {counts['finetuned'] / n:.4f}{versus} over {n} records ({summary['seconds']:.1f} s)",
        flush=True,
    )
    return summary


def _open_champion(champion_dir: Path, scratch: Path) -> dict[str, Any]:
    """The champion's model folder (a ``model.tar.gz`` is extracted into ``scratch``), metadata and labels."""
    try:
        folder = locate_model_dir(champion_dir, scratch)
        meta = read_metadata(folder)
        labels = read_labels(folder)
    except ModelLoadError as exc:
        raise ModelLoadError(f"champion: {exc}") from None
    return {"folder": folder, "meta": meta, "labels": labels, "max_length": _int_hp(meta, "max_length", 32)}


def _predict_champion(
    champion: dict[str, Any], texts: list[str], batch_size: int, device: Any, echo: Any
) -> dict[str, Any]:
    """The champion's label index and probability for every text, with its own tokenizer and max_length."""
    import torch

    from fmops_training.loop import encode, predict_logits
    from fmops_training.modeling import load_trained, model_labels

    folder, meta, labels, max_length = champion["folder"], champion["meta"], champion["labels"], champion["max_length"]
    model, tokenizer = load_trained(folder)
    if model_labels(model) != labels:
        raise ModelLoadError(f"champion labels.json {labels} disagrees with its model config {model_labels(model)}")
    echo(f"fmops-evaluate: champion model {folder} (base {meta['base_model']}, labels {labels})", flush=True)
    model.to(device)
    logits = predict_logits(model, encode(tokenizer, texts, max_length), tokenizer.pad_token_id, batch_size, device)
    scores, predictions = torch.softmax(logits, dim=-1).max(dim=-1)
    return {
        "labels": labels,
        "predictions": [int(p) for p in predictions.tolist()],
        "scores": [float(v) for v in scores.tolist()],
        "base_model": str(meta["base_model"]),
        "max_length": max_length,
    }
