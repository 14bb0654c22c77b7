"""The training loop: plain torch, AdamW, linear warm-up then cosine decay, best-by-accuracy weights."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from fmops_training.contract import Hyperparameters
from fmops_training.errors import TrainingError
from fmops_training.metrics_log import MetricLogger

LOG_EVERY = 10


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (special tokens included), unpadded."""
    return list(tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"])


def collate(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` for one batch."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on a GPU that supports it; nothing (fp32) elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_logits(
    model: Any, seqs: Sequence[Sequence[int]], pad_id: int, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Float32 logits (on the CPU) for every sequence, in input order; batches are length-sorted."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out: torch.Tensor | None = None
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = collate([seqs[i] for i in idx], pad_id)
            with autocast_for(device):
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logits = logits.float().cpu()
            if out is None:
                out = torch.empty((len(seqs), logits.shape[1]), dtype=torch.float32)
            out[torch.as_tensor(idx)] = logits
    finally:
        model.train(was_training)
    if out is None:
        raise ValueError("predict_logits needs at least one sequence")
    return out


def evaluate(
    model: Any, seqs: Sequence[Sequence[int]], labels: torch.Tensor, pad_id: int, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) over a labelled set."""
    logits = predict_logits(model, seqs, pad_id, batch_size, device)
    loss = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(dim=-1) == labels).float().mean().item()
    return loss, accuracy


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak learning rate for 0-based ``step``: linear warm-up, then cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> tuple[torch.optim.AdamW, bool]:
    """AdamW without decay on biases and norms; fused when the device supports it. Returns (optimizer, fused)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True), True
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr), False


@dataclass
class TrainResult:
    """What the loop reports; ``best_*`` refer to the weights left in the model."""

    steps: int
    best_step: int
    best_accuracy: float | None
    best_loss: float | None
    train_loss: float
    tokens_per_second: float
    train_seconds: float
    fused_optimizer: bool
    evaluations: list[dict[str, float]] = field(default_factory=list)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    perm = torch.randperm(n, generator=generator).tolist()
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_classifier(
    model: Any,
    train_seqs: Sequence[Sequence[int]],
    train_labels: torch.Tensor,
    val_seqs: Sequence[Sequence[int]],
    val_labels: torch.Tensor,
    hps: Hyperparameters,
    pad_id: int,
    device: torch.device,
    logger: MetricLogger,
    echo: Any = print,
) -> TrainResult:
    """Fine-tune ``model`` (already on ``device``) and leave the best weights in it (by validation accuracy).

    Evaluates every ``eval_steps`` steps (0: at the end of each epoch) and after the last step. Without a
    validation set the final weights are kept.
    """
    n = len(train_seqs)
    steps_per_epoch = math.ceil(n / hps.batch_size)
    total = hps.epochs * steps_per_epoch
    warmup = min(total, hps.warmup_steps) if hps.warmup_steps else math.ceil(hps.warmup_ratio * total)
    optimizer, fused = make_optimizer(model, hps.learning_rate, hps.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total))
    generator = torch.Generator().manual_seed(hps.seed)
    eval_batch = max(hps.batch_size, 64)

    best: dict[str, Any] = {"key": None, "state": None, "step": 0, "acc": None, "loss": None}
    evaluations: list[dict[str, float]] = []

    def run_eval(step: int) -> None:
        if not val_seqs:
            return
        loss, acc = evaluate(model, val_seqs, val_labels, pad_id, eval_batch, device)
        logger.log("validation_loss", loss, step)
        logger.log("validation_accuracy", acc, step)
        evaluations.append({"step": step, "validation_loss": loss, "validation_accuracy": acc})
        key = (acc, -loss)
        if best["key"] is None or key > best["key"]:
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            best.update(key=key, state=state, step=step, acc=acc, loss=loss)

    model.train()
    step = 0
    tokens = 0
    train_seconds = 0.0
    window_loss = torch.zeros((), device=device)
    window_steps = 0
    last_train_loss = float("nan")
    last_eval_step = -1
    for epoch in range(1, hps.epochs + 1):
        epoch_started = time.perf_counter()
        segment_started = time.perf_counter()
        for idx in _batches(n, hps.batch_size, generator):
            ids, mask = collate([train_seqs[i] for i in idx], pad_id)
            labels = train_labels[torch.as_tensor(idx)]
            lr = float(scheduler.get_last_lr()[0])
            with autocast_for(device):
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            loss = F.cross_entropy(logits.float(), labels.to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += int(mask.sum())
            window_loss += loss.detach()
            window_steps += 1
            if step % LOG_EVERY == 0 or step == total:
                last_train_loss = (window_loss / window_steps).item()
                if not math.isfinite(last_train_loss):
                    raise TrainingError(
                        f"train loss became {last_train_loss} at step {step}; "
                        f"try a lower learning_rate (now {hps.learning_rate:g})"
                    )
                logger.log("train_loss", last_train_loss, step)
                logger.log("learning_rate", lr, step)
                window_loss.zero_()
                window_steps = 0
            if hps.eval_steps and step % hps.eval_steps == 0:
                _sync(device)
                train_seconds += time.perf_counter() - segment_started
                run_eval(step)
                last_eval_step = step
                segment_started = time.perf_counter()
        _sync(device)
        train_seconds += time.perf_counter() - segment_started
        if (not hps.eval_steps or epoch == hps.epochs) and last_eval_step != step:
            run_eval(step)
            last_eval_step = step
        acc_text = f" validation_accuracy={evaluations[-1]['validation_accuracy']:.4f}" if evaluations else ""
        echo(
            f"epoch {epoch}/{hps.epochs}: step {step}/{total} train_loss={last_train_loss:.4f}{acc_text} "
            f"({time.perf_counter() - epoch_started:.1f} s)",
            flush=True,
        )

    tokens_per_second = tokens / max(train_seconds, 1e-9)
    logger.log("tokens_per_second", tokens_per_second, step)
    if best["state"] is not None and best["step"] != step:
        model.load_state_dict(best["state"])
        # The last metric lines describe the weights that are kept.
        logger.log("validation_loss", best["loss"], best["step"])
        logger.log("validation_accuracy", best["acc"], best["step"])
    return TrainResult(
        steps=step,
        best_step=best["step"] if best["state"] is not None else step,
        best_accuracy=best["acc"],
        best_loss=best["loss"],
        train_loss=last_train_loss,
        tokens_per_second=tokens_per_second,
        train_seconds=train_seconds,
        fused_optimizer=fused,
        evaluations=evaluations,
    )
