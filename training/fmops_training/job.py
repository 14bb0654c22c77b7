"""A whole training job: channels → base model with a seeded head → loop → SM_MODEL_DIR."""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from fmops_training.artifacts import write_model_files
from fmops_training.contract import TrainingEnv
from fmops_training.data import label_set, read_channel
from fmops_training.errors import ContractError
from fmops_training.metrics_log import MetricLogger
from fmops_training.runtime import prepare_torch, sigterm_flag, torch_threads


def run_training(env: TrainingEnv, echo: Any = print) -> dict[str, Any]:
    """Train, save the model folder and return its ``fmops_model.json`` content."""
    started = time.perf_counter()
    hps = env.hyperparameters
    if len(env.hosts) > 1:
        raise ContractError(
            f"train.py trains on a single host; this job has {len(env.hosts)} ({', '.join(env.hosts)}): "
            "use an instance count of 1"
        )
    train = read_channel(env.train_dir, "train")
    validation = read_channel(env.validation_dir, "validation") if env.validation_dir else []
    labels = label_set(train, validation)

    prepare_torch()
    import torch

    from fmops_training.loop import encode, train_classifier
    from fmops_training.modeling import build_classifier, load_tokenizer, pick_device, resolve_base_model

    device = pick_device()
    # An archived base model channel is unpacked in a scratch folder for as long as loading takes.
    with tempfile.TemporaryDirectory(prefix="fmops-train-") as scratch:
        source = resolve_base_model(hps.base_model, env.model_channel_dir, scratch=Path(scratch))
        tokenizer = load_tokenizer(source.location)
        model, head_digest = build_classifier(source, labels, hps.seed, tokenizer.pad_token_id)
    model.to(device)
    every = f"every {hps.checkpoint_steps} steps and " if hps.checkpoint_steps else ""
    checkpoints = f"{env.checkpoint_dir} ({every}on SIGTERM)" if env.checkpoint_dir else "disabled (not writable)"
    echo(
        f"fmops-train: {len(train)} train / {len(validation)} validation records, labels {labels}; "
        f"base model {source.describe()}; device {device}, torch threads {torch_threads()}, "
        f"host {env.current_host}; checkpoints {checkpoints}",
        flush=True,
    )
    if not validation:
        echo("fmops-train: no validation channel: no evaluation, the final weights are kept", flush=True)

    index = {label: i for i, label in enumerate(labels)}
    train_seqs = encode(tokenizer, [r.text for r in train], hps.max_length)
    val_seqs = encode(tokenizer, [r.text for r in validation], hps.max_length) if validation else []
    train_y = torch.tensor([index[r.label] for r in train], dtype=torch.long)
    val_y = torch.tensor([index[r.label] for r in validation], dtype=torch.long)

    logger = MetricLogger()
    # SIGTERM (spot interruption) from here on: checkpoint at the next step boundary, exit 143.
    with sigterm_flag() as stop_requested:
        result = train_classifier(
            model,
            train_seqs,
            train_y,
            val_seqs,
            val_y,
            hps,
            tokenizer.pad_token_id,
            device,
            logger,
            echo,
            checkpoint_dir=env.checkpoint_dir,
            stop_requested=stop_requested,
        )

    metrics: dict[str, Any] = {
        "train_loss": result.train_loss,
        "tokens_per_second": result.tokens_per_second,
        "train_seconds": round(result.train_seconds, 3),
        "steps": result.steps,
        "best_step": result.best_step,
    }
    if result.best_accuracy is not None:
        metrics["validation_accuracy"] = result.best_accuracy
        metrics["validation_loss"] = result.best_loss
    metadata = {
        "task": "classification",
        "base_model": hps.base_model,
        "base_model_source": {"kind": source.kind, "location": source.location},
        "hyperparameters": hps.to_dict(),
        "labels": labels,
        "metrics": metrics,
        "initial_head_sha256": head_digest,
        "records": {"train": len(train), "validation": len(validation)},
        "environment": {
            "device": str(device),
            "fused_optimizer": result.fused_optimizer,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    env.model_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu").save_pretrained(str(env.model_dir))
    tokenizer.save_pretrained(str(env.model_dir))
    write_model_files(env.model_dir, labels, metadata)
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    history = [{"name": n, "value": v, "step": s} for n, v, s in logger.history]
    (env.output_data_dir / "metrics.json").write_text(
        json.dumps({"metrics": metrics, "history": history, "evaluations": result.evaluations}, indent=2) + "\n",
        encoding="utf-8",
    )
    echo(f"fmops-train: model saved to {env.model_dir} ({time.perf_counter() - started:.1f} s in all)", flush=True)
    return metadata
