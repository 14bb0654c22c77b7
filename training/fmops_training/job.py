"""A whole training job: channels → base model (+ head, + LoRA) → loop → SM_MODEL_DIR (rank 0).

Tasks: ``classification`` and ``multilabel`` fine-tune an encoder with a new head (seeded, so evaluation can
rebuild the starting point); ``summarization``, ``qa`` and ``chat`` instruction-tune a causal LM with the
loss on the completion tokens only. LoRA adapters are merged into the saved model, so serving and evaluation
load one plain ``save_pretrained`` folder whatever the training mode; the adapter alone is kept in
``adapter/`` beside it.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmops_training.artifacts import write_model_files
from fmops_training.contract import Hyperparameters, TrainingEnv
from fmops_training.data import label_set, read_channel, read_examples
from fmops_training.errors import ContractError, DataError, TrainingInterrupted
from fmops_training.metrics_log import MetricLogger
from fmops_training.runtime import prepare_torch, sigterm_flag, torch_threads


@dataclass
class Prepared:
    """A task ready for the loop: the model (on the CPU), its tokenizer, the loop's data and what to record."""

    model: Any
    tokenizer: Any
    data: Any
    labels: list[str]
    source: Any
    records: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


def _prepare_classifier(env: TrainingEnv, hps: Hyperparameters, scratch: Path) -> Prepared:
    import torch

    from fmops_training.loop import encode
    from fmops_training.modeling import build_classifier, load_tokenizer, resolve_base_model
    from fmops_training.tasks import ClassificationData

    multilabel = hps.task == "multilabel"
    train = read_channel(env.train_dir, "train", multilabel)
    validation = read_channel(env.validation_dir, "validation", multilabel) if env.validation_dir else []
    labels = label_set(train, validation)
    source = resolve_base_model(hps.base_model, env.model_channel_dir, scratch=scratch)
    tokenizer = load_tokenizer(source.location)
    model, head_digest = build_classifier(source, labels, hps.seed, tokenizer.pad_token_id, multilabel)
    index = {label: i for i, label in enumerate(labels)}

    def targets(records: list[Any]) -> torch.Tensor:
        if not multilabel:
            return torch.tensor([index[r.label] for r in records], dtype=torch.long)
        hot = torch.zeros((len(records), len(labels)), dtype=torch.float32)
        for row, record in enumerate(records):
            for label in record.labels:
                hot[row, index[label]] = 1.0
        return hot

    data = ClassificationData(
        encode(tokenizer, [r.text for r in train], hps.max_length),
        targets(train),
        encode(tokenizer, [r.text for r in validation], hps.max_length) if validation else [],
        targets(validation),
        tokenizer.pad_token_id,
        multilabel=multilabel,
    )
    return Prepared(
        model,
        tokenizer,
        data,
        labels,
        source,
        {"train": len(train), "validation": len(validation)},
        {"initial_head_sha256": head_digest},
    )


def _prepare_causal(env: TrainingEnv, hps: Hyperparameters, scratch: Path, echo: Any) -> Prepared:
    from fmops_training.modeling import build_causal_lm, load_tokenizer, resolve_generative_base
    from fmops_training.tasks import CausalLMData, encode_example

    train = read_examples(env.train_dir, "train")
    validation = read_examples(env.validation_dir, "validation") if env.validation_dir else []
    source = resolve_generative_base(hps.base_model, env.model_channel_dir, scratch)
    tokenizer = load_tokenizer(source.location)
    model = build_causal_lm(source, attn_implementation="sdpa")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    truncated = 0

    def encoded(examples: list[Any], channel: str) -> list[Any]:
        nonlocal truncated
        out = []
        for example in examples:
            item, cut = encode_example(tokenizer, example.messages, hps.max_length)
            truncated += cut
            if not any(item.learn):
                raise DataError(
                    f"{example.source} line {example.line}: no completion token fits in max_length "
                    f"{hps.max_length}: raise max_length"
                )
            out.append(item)
        return out

    train_enc, val_enc = encoded(train, "train"), encoded(validation, "validation")
    if truncated:
        echo(
            f"fmops-train: {truncated} examples were longer than max_length {hps.max_length} and truncated", flush=True
        )
    data = CausalLMData.build(train_enc, val_enc, hps.max_length, hps.packing, tokenizer.pad_token_id)
    completion_tokens = sum(sum(e.learn) for e in train_enc)
    all_tokens = sum(len(e.ids) for e in train_enc)
    return Prepared(
        model,
        tokenizer,
        data,
        [],
        source,
        {"train": len(train), "validation": len(validation)},
        {
            "packing": {
                "enabled": hps.packing,
                "train_rows": len(data.train_rows),
                "train_tokens": all_tokens,
                "completion_tokens": completion_tokens,
                "truncated_examples": truncated,
            }
        },
    )


def _save(model: Any, prepared: Prepared, hps: Hyperparameters, dist: Any, model_dir: Path) -> None:
    """Rank 0 writes one plain model folder (LoRA merged, FSDP shards gathered); every rank must call it."""
    from fmops_training.distributed import full_state_dict

    if dist.strategy == "fsdp":
        state = full_state_dict(model, dist)  # a collective: every rank takes part
        if not dist.main:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        auto = AutoModelForCausalLM if hps.generative else AutoModelForSequenceClassification
        with torch.device("cpu"):
            plain = auto.from_config(model.config)
        missing, unexpected = plain.load_state_dict(state, strict=False)
        tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
        if set(missing) - tied or unexpected:
            raise ContractError(
                f"gathered FSDP weights do not fit the model: missing {missing}, unexpected {unexpected}"
            )
        plain.save_pretrained(str(model_dir))
        return
    if not dist.main:
        return
    if hps.lora_r:
        model.save_pretrained(str(model_dir / "adapter"))  # the adapter alone, for lineage and re-use
        model = model.merge_and_unload()
    model.save_pretrained(str(model_dir))


def run_training(env: TrainingEnv, echo: Any = print) -> dict[str, Any]:
    """Train, save the model folder (rank 0) and return its ``fmops_model.json`` content."""
    started = time.perf_counter()
    hps = env.hyperparameters
    if hps.distributed == "fsdp" and hps.lora_r:
        raise ContractError("distributed=fsdp with lora_r > 0 is not supported: LoRA models fit one GPU, use ddp")
    prepare_torch()
    import torch

    from fmops_training.distributed import init_distributed
    from fmops_training.loop import train_model
    from fmops_training.modeling import apply_lora, decoder_layer_types

    dist, device = init_distributed(hps.distributed)
    say = echo if dist.main else (lambda *a, **k: None)
    try:
        # An archived base model channel is unpacked in a scratch folder for as long as loading takes.
        with tempfile.TemporaryDirectory(prefix="fmops-train-") as scratch:
            if hps.generative:
                prepared = _prepare_causal(env, hps, Path(scratch), say)
            else:
                prepared = _prepare_classifier(env, hps, Path(scratch))
        model = prepared.model
        if hps.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        layer_types = decoder_layer_types(model)
        if hps.lora_r:
            torch.manual_seed(hps.seed)  # the adapters' initialisation is part of the run's identity
            model = apply_lora(
                model, hps.lora_r, hps.lora_alpha, hps.lora_dropout, hps.lora_target_modules, hps.generative
            )
        model.to(device)
        if hps.compile:
            from fmops_training.acceleration import compile_layers

            compile_layers(model)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        every = f"every {hps.checkpoint_steps} steps and " if hps.checkpoint_steps else ""
        checkpoints = f"{env.checkpoint_dir} ({every}on SIGTERM)" if env.checkpoint_dir else "disabled (not writable)"
        labels_text = f", labels {prepared.labels}" if prepared.labels else ""
        mode = f"LoRA r={hps.lora_r}" if hps.lora_r else "full fine-tuning"
        say(
            f"fmops-train: task {hps.task}; {prepared.records['train']} train / {prepared.records['validation']} "
            f"validation records{labels_text}; base model {prepared.source.describe()}; {mode}, {trainable:,} of "
            f"{total:,} parameters trained; device {device}, torch threads {torch_threads()}, host {env.current_host}, "
            f"rank {dist.rank} of {dist.world} ({dist.strategy}); checkpoints {checkpoints}",
            flush=True,
        )
        if not prepared.records["validation"]:
            say("fmops-train: no validation channel: no evaluation, the final weights are kept", flush=True)

        logger = MetricLogger()
        # SIGTERM (spot interruption) from here on: checkpoint at the next step boundary, exit 143.
        with sigterm_flag() as stop_requested:
            try:
                result = train_model(
                    model,
                    prepared.data,
                    hps,
                    device,
                    logger,
                    say,
                    checkpoint_dir=env.checkpoint_dir,
                    stop_requested=stop_requested,
                    dist=dist,
                    layer_types=layer_types,
                )
            except TrainingInterrupted:
                dist.barrier()  # every rank stopped at the same step: leave together (gloo aborts a lone peer)
                raise

        metrics: dict[str, Any] = {
            "train_loss": result.train_loss,
            "tokens_per_second": result.tokens_per_second,
            "train_seconds": round(result.train_seconds, 3),
            "steps": result.steps,
            "best_step": result.best_step,
            "stopped_early": result.stopped_early,
            **result.best_metrics,
        }
        metadata = {
            "task": hps.task,
            "base_model": hps.base_model,
            "base_model_source": {"kind": prepared.source.kind, "location": prepared.source.location},
            "hyperparameters": hps.to_dict(),
            "labels": prepared.labels,
            "metrics": metrics,
            "records": prepared.records,
            "training": {
                "mode": "lora" if hps.lora_r else "full",
                "trainable_parameters": trainable,
                "parameters": total,
                "ranks": dist.world,
                "strategy": dist.strategy,
            },
            "environment": {
                "device": str(device),
                "fused_optimizer": result.fused_optimizer,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            **prepared.extra,
        }
        if dist.strategy != "fsdp":  # FSDP shards are gathered where they live
            model.to("cpu")
        if dist.main:
            env.model_dir.mkdir(parents=True, exist_ok=True)
        _save(model, prepared, hps, dist, env.model_dir)
        if dist.main:
            prepared.tokenizer.save_pretrained(str(env.model_dir))
            write_model_files(env.model_dir, prepared.labels, metadata)
            env.output_data_dir.mkdir(parents=True, exist_ok=True)
            history = [{"name": n, "value": v, "step": s} for n, v, s in logger.history]
            (env.output_data_dir / "metrics.json").write_text(
                json.dumps({"metrics": metrics, "history": history, "evaluations": result.evaluations}, indent=2)
                + "\n",
                encoding="utf-8",
            )
            say(
                f"fmops-train: model saved to {env.model_dir} ({time.perf_counter() - started:.1f} s in all)",
                flush=True,
            )
        dist.barrier()
        return metadata
    finally:
        dist.close()
