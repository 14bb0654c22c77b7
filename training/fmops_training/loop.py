"""The training loop: plain torch, AdamW, linear warm-up then cosine decay, best-by-accuracy weights."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from fmops_training.checkpoint import DEFAULT_KEEP, load_latest, rng_state, save_checkpoint, set_rng_state
from fmops_training.contract import Hyperparameters
from fmops_training.errors import TrainingError, TrainingInterrupted
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


def _batches(n: int, batch_size: int, generator: torch.Generator, skip: int = 0) -> Iterator[list[int]]:
    """One epoch's batches in the generator's order; the first ``skip`` batches (consumed before a resume) are
    left out, the permutation being drawn all the same."""
    perm = torch.randperm(n, generator=generator).tolist()
    for start in range(skip * batch_size, n, batch_size):
        yield perm[start : start + batch_size]


def run_fingerprint(
    hps: Hyperparameters,
    train_seqs: Sequence[Sequence[int]],
    train_labels: torch.Tensor,
    val_seqs: Sequence[Sequence[int]],
) -> str:
    """sha256 of what a checkpoint must match to be resumed: hyperparameters (all but ``checkpoint_steps``) and data."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in hps.to_dict().items() if k != "checkpoint_steps"}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(json.dumps([list(map(int, s)) for s in train_seqs]).encode())
    digest.update(json.dumps([int(x) for x in train_labels.tolist()]).encode())
    digest.update(json.dumps([list(map(int, s)) for s in val_seqs]).encode())
    return digest.hexdigest()


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
    checkpoint_dir: Path | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
    keep_checkpoints: int = DEFAULT_KEEP,
) -> TrainResult:
    """Fine-tune ``model`` (already on ``device``) and leave the best weights in it (by validation accuracy).

    Evaluates every ``eval_steps`` steps (0: at the end of each epoch) and after the last step. Without a
    validation set the final weights are kept.

    With a ``checkpoint_dir``: starts from its newest complete checkpoint when there is one (model, optimizer,
    scheduler, RNG states, data position, best weights, metric history: the run continues exactly), saves
    one every ``hps.checkpoint_steps`` optimizer steps (0: never on schedule), and, once ``stop_requested()``
    says so (SIGTERM), saves one at the next step boundary and raises ``TrainingInterrupted``.
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
    first_epoch, skip = 1, 0
    fingerprint = run_fingerprint(hps, train_seqs, train_labels, val_seqs) if checkpoint_dir is not None else ""
    resumed = load_latest(checkpoint_dir, echo) if checkpoint_dir is not None else None
    if resumed is not None:
        saved_step, folder, state = resumed
        if state.get("fingerprint") != fingerprint:
            raise TrainingError(
                f"checkpoint {folder} belongs to another run (its hyperparameters or data differ from this job's); "
                "give this job its own checkpoint location or empty it"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        data, saved = state["data"], state["loop"]
        first_epoch, skip = int(data["epoch"]), int(data["batch_index"])
        generator.set_state(data["epoch_generator_state"])
        step, tokens, train_seconds = int(saved["step"]), int(saved["tokens"]), float(saved["train_seconds"])
        window_loss = saved["window_loss"].to(device)
        window_steps, last_eval_step = int(saved["window_steps"]), int(saved["last_eval_step"])
        last_train_loss = float(saved["last_train_loss"])
        evaluations.extend(saved["evaluations"])
        best.update(saved["best"])
        logger.history.extend((str(n_), float(v), int(s)) for n_, v, s in saved["history"])
        echo(f"fmops-train: resumed from step {saved_step} (epoch {first_epoch}, batch {skip}) of {folder}", flush=True)
    elif checkpoint_dir is None and hps.checkpoint_steps:
        echo("fmops-train: checkpoint_steps is set but no checkpoint dir is writable: no checkpoints", flush=True)

    saved_steps: list[int] = [int(resumed[0])] if resumed is not None else []

    def save(epoch: int, batch_index: int, epoch_generator_state: torch.Tensor) -> None:
        assert checkpoint_dir is not None
        state = {
            "fingerprint": fingerprint,
            "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            # The order of an epoch is drawn from the generator's state at the epoch's start.
            "data": {"epoch": epoch, "batch_index": batch_index, "epoch_generator_state": epoch_generator_state},
            "loop": {
                "step": step,
                "tokens": tokens,
                "train_seconds": train_seconds,
                "window_loss": window_loss.detach().cpu(),
                "window_steps": window_steps,
                "last_train_loss": last_train_loss,
                "last_eval_step": last_eval_step,
                "evaluations": list(evaluations),
                "best": dict(best),
                "history": list(logger.history),
            },
        }
        try:
            folder = save_checkpoint(checkpoint_dir, step, state, keep_checkpoints)
        except OSError as exc:  # a full or vanished disk: training goes on, the previous checkpoint stays
            echo(f"fmops-train: checkpoint step {step} could not be saved ({exc}); training goes on", flush=True)
            return
        saved_steps.append(step)
        echo(f"fmops-train: checkpoint step {step} saved to {folder}", flush=True)

    for epoch in range(first_epoch, hps.epochs + 1):
        epoch_started = time.perf_counter()
        segment_started = time.perf_counter()
        epoch_generator_state = generator.get_state()
        batch_index = skip if epoch == first_epoch else 0
        for idx in _batches(n, hps.batch_size, generator, batch_index):
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
            batch_index += 1
            stopping = stop_requested()
            if checkpoint_dir is not None and (stopping or (hps.checkpoint_steps and step % hps.checkpoint_steps == 0)):
                _sync(device)
                train_seconds += time.perf_counter() - segment_started
                save(epoch, batch_index, epoch_generator_state)
                segment_started = time.perf_counter()
            if stopping:
                echo(f"fmops-train: SIGTERM: stopped at step {step}/{total}", flush=True)
                raise TrainingInterrupted(step, saved_steps[-1] if saved_steps else None)
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
