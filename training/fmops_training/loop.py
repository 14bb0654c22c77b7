"""The training loop: plain torch, fused AdamW, linear warm-up then cosine decay, best weights by the task's
objective, early stopping, gradient accumulation, DDP/FSDP, checkpoints that resume exactly."""

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

from fmops_training.acceleration import clip_grad_norm_and_step
from fmops_training.checkpoint import DEFAULT_KEEP, load_latest, rng_state, save_checkpoint, set_rng_state
from fmops_training.contract import Hyperparameters
from fmops_training.distributed import Dist, full_state_dict, shard, wrap_model
from fmops_training.errors import TrainingError, TrainingInterrupted
from fmops_training.metrics_log import MetricLogger
from fmops_training.tasks import ClassificationData, LossModule, TaskData, collate, to_device

LOG_EVERY = 10


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (special tokens included), unpadded."""
    return list(tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"])


def autocast_for(device: torch.device, mode: str = "auto") -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast with fp32 master weights.

    ``auto``: on a GPU that supports bf16, else fp32. ``true``: required on a GPU; on a CPU, CPU autocast (about
    3× the fp32 matmul speed on CPUs with AVX512-BF16/AMX, e.g. this project's 2-core machines; not bit-equal
    to fp32, so ``auto`` leaves CPUs in fp32). ``false``: fp32 everywhere.
    """
    if mode == "false":
        return contextlib.nullcontext()
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if mode == "true":
            raise TrainingError(f"bf16=true but {device} has no bf16 support: use bf16=auto or false")
        return contextlib.nullcontext()
    if mode == "true":
        return torch.autocast(device.type, dtype=torch.bfloat16)
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
    best_metrics: dict[str, float]
    train_loss: float
    tokens_per_second: float
    train_seconds: float
    fused_optimizer: bool
    evaluations: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def best_accuracy(self) -> float | None:
        return self.best_metrics.get("validation_accuracy")

    @property
    def best_loss(self) -> float | None:
        return self.best_metrics.get("validation_loss")


def _batches(n: int, batch_size: int, generator: torch.Generator, skip: int = 0) -> Iterator[list[int]]:
    """One epoch's global batches in the generator's order; the first ``skip`` batches (consumed before a
    resume) are left out, the permutation being drawn all the same."""
    perm = torch.randperm(n, generator=generator).tolist()
    for start in range(skip * batch_size, n, batch_size):
        yield perm[start : start + batch_size]


def run_fingerprint(hps: Hyperparameters, task: TaskData) -> str:
    """sha256 of what a checkpoint must match to be resumed: hyperparameters (all but ``checkpoint_steps``) and data."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in hps.to_dict().items() if k != "checkpoint_steps"}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(task.fingerprint().encode())
    return digest.hexdigest()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _improved(metrics: dict[str, float], best: dict[str, float], objective: str, maximize: bool, delta: float) -> bool:
    """Better by more than ``delta`` on the objective; on an exact tie, a lower validation loss wins."""
    if not best:
        return True
    sign = 1.0 if maximize else -1.0
    gain = sign * (metrics[objective] - best[objective])
    if gain > delta:
        return True
    tie = gain == 0 and objective != "validation_loss"
    return tie and metrics.get("validation_loss", math.inf) < best.get("validation_loss", math.inf)


@contextlib.contextmanager
def _no_grad_sync(wrapped: Any, dist: Dist, skip: bool) -> Iterator[None]:
    """Gradient all-reduce off for the micro-batches before the last one of a step (accumulation)."""
    if not skip or not dist.active:
        yield
    elif dist.strategy == "fsdp":
        wrapped.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            wrapped.set_requires_gradient_sync(True)
    else:
        with wrapped.no_sync():
            yield


def _checkpoint_state(model: Any, optimizer: Any, dist: Dist) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full (unsharded) model and optimizer state on the CPU; every rank calls it under FSDP."""
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state, optim_state = get_state_dict(model, optimizer, options=options)
        return dict(model_state), dict(optim_state)
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}, optimizer.state_dict()


def _restore_state(model: Any, optimizer: Any, model_state: Any, optim_state: Any, dist: Dist) -> None:
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        options = StateDictOptions(full_state_dict=True)
        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state, options=options)
        return
    model.load_state_dict(model_state)
    if optim_state is not None:
        optimizer.load_state_dict(optim_state)


def _load_weights(model: Any, state: dict[str, Any], dist: Dist) -> None:
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
    else:
        model.load_state_dict(state)


SIGNAL_CHECK_EVERY = 5  # distributed runs agree on a SIGTERM every N steps (a collective each time)


def train_model(
    model: Any,
    task: TaskData,
    hps: Hyperparameters,
    device: torch.device,
    logger: MetricLogger,
    echo: Any = print,
    checkpoint_dir: Path | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
    keep_checkpoints: int = DEFAULT_KEEP,
    dist: Dist | None = None,
    layer_types: tuple[type, ...] = (),
) -> TrainResult:
    """Fine-tune ``model`` (already on ``device``) on ``task`` and leave the best weights in it.

    A step consumes one global batch of ``batch_size × ranks × gradient_accumulation_steps`` items: each rank
    takes its contiguous part of each micro-batch, losses are summed and divided by the step's global count,
    so the step is the same on any number of ranks. Evaluates every ``eval_steps`` steps (0: each epoch) and
    after the last one, keeps the best weights by ``task.objective`` and stops early after
    ``early_stopping_patience`` evaluations without an improvement of more than ``early_stopping_min_delta``.
    Without validation data the final weights are kept.

    With a ``checkpoint_dir``: starts from its newest complete checkpoint (model, optimizer, scheduler, RNG
    states, data position, best weights, metric history: the run continues exactly), saves one every
    ``hps.checkpoint_steps`` optimizer steps (0: never on schedule) and, once ``stop_requested()`` says so
    (SIGTERM), at the next step boundary, then raises ``TrainingInterrupted``. Rank 0 alone writes.
    """
    dist = dist or Dist()
    world, accum = dist.world, hps.gradient_accumulation_steps
    micro = hps.batch_size * world
    global_batch = micro * accum
    n = len(task)
    steps_per_epoch = math.ceil(n / global_batch)
    total = hps.epochs * steps_per_epoch
    warmup = min(total, hps.warmup_steps) if hps.warmup_steps else math.ceil(hps.warmup_ratio * total)
    loss_module = LossModule(model, task)
    wrapped = wrap_model(loss_module, dist, device, layer_types)
    optimizer, fused = make_optimizer(model, hps.learning_rate, hps.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total))
    generator = torch.Generator().manual_seed(hps.seed)
    eval_batch = max(hps.batch_size, 16 if hps.generative else 64)
    main_echo = echo if dist.main else (lambda *a, **k: None)

    best: dict[str, Any] = {"value": None, "state": None, "step": 0, "metrics": {}}
    evaluations: list[dict[str, float]] = []
    stale = 0  # evaluations since the last improvement

    def run_eval(step: int) -> bool:
        """Evaluate; True when early stopping says stop. Rank 0's numbers decide for every rank."""
        nonlocal stale
        metrics = task.evaluate(model, device, eval_batch)
        if not metrics:
            return False
        names = sorted(metrics, key=lambda k: (k == task.objective, k))  # the objective's line comes last
        shared = dist.all_sum([metrics[k] if dist.main else 0.0 for k in names], device)
        metrics = dict(zip(names, shared, strict=True))
        if dist.main:
            for name in names:
                logger.log(name, metrics[name], step)
        evaluations.append({"step": step, **metrics})
        value = metrics[task.objective]
        if _improved(metrics, best["metrics"], task.objective, task.maximize, hps.early_stopping_min_delta):
            best.update(value=value, state=full_state_dict(model, dist), step=step, metrics=metrics)
            stale = 0
        else:
            stale += 1
        return bool(hps.early_stopping_patience) and stale >= hps.early_stopping_patience

    model.train()
    step = 0
    tokens = 0
    train_seconds = 0.0
    window_loss = torch.zeros((), device=device)
    window_count = 0
    last_train_loss = float("nan")
    last_eval_step = -1
    first_epoch, skip = 1, 0
    stopped_early = False
    fingerprint = run_fingerprint(hps, task) if checkpoint_dir is not None else ""
    resumed = load_latest(checkpoint_dir, echo) if checkpoint_dir is not None else None
    if resumed is not None:
        saved_step, folder, state = resumed
        if state.get("fingerprint") != fingerprint:
            raise TrainingError(
                f"checkpoint {folder} belongs to another run (its hyperparameters or data differ from this job's); "
                "give this job its own checkpoint location or empty it"
            )
        _restore_state(model, optimizer, state["model"], state["optimizer"], dist)
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        data, saved = state["data"], state["loop"]
        first_epoch, skip = int(data["epoch"]), int(data["batch_index"])
        generator.set_state(data["epoch_generator_state"])
        step, tokens, train_seconds = int(saved["step"]), int(saved["tokens"]), float(saved["train_seconds"])
        window_loss = saved["window_loss"].to(device)
        window_count, last_eval_step = int(saved["window_count"]), int(saved["last_eval_step"])
        last_train_loss = float(saved["last_train_loss"])
        stale = int(saved["stale"])
        evaluations.extend(saved["evaluations"])
        best.update(saved["best"])
        logger.history.extend((str(n_), float(v), int(s)) for n_, v, s in saved["history"])
        main_echo(
            f"fmops-train: resumed from step {saved_step} (epoch {first_epoch}, batch {skip}) of {folder}", flush=True
        )
    elif checkpoint_dir is None and hps.checkpoint_steps:
        main_echo("fmops-train: checkpoint_steps is set but no checkpoint dir is writable: no checkpoints", flush=True)

    saved_steps: list[int] = [int(resumed[0])] if resumed is not None else []

    def save(epoch: int, batch_index: int, epoch_generator_state: torch.Tensor) -> None:
        model_state, optim_state = _checkpoint_state(model, optimizer, dist)
        if not dist.main or checkpoint_dir is None:
            return
        state = {
            "fingerprint": fingerprint,
            "model": model_state,
            "optimizer": optim_state,
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            # The order of an epoch is drawn from the generator's state at the epoch's start.
            "data": {"epoch": epoch, "batch_index": batch_index, "epoch_generator_state": epoch_generator_state},
            "loop": {
                "step": step,
                "tokens": tokens,
                "train_seconds": train_seconds,
                "window_loss": window_loss.detach().cpu(),
                "window_count": window_count,
                "last_train_loss": last_train_loss,
                "last_eval_step": last_eval_step,
                "stale": stale,
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

    def log_train(step: int, lr: float) -> None:
        nonlocal last_train_loss, window_count
        local_loss = float(window_loss.item())
        total_loss, total_count = dist.all_sum([local_loss, window_count], device)
        last_train_loss = total_loss / max(total_count, 1.0)
        if not math.isfinite(last_train_loss):
            raise TrainingError(
                f"train loss became {last_train_loss} at step {step}; "
                f"try a lower learning_rate (now {hps.learning_rate:g})"
            )
        if dist.active:
            logger.log("rank_train_loss", local_loss / max(window_count, 1), step, rank=dist.rank)
        if dist.main:
            logger.log("train_loss", last_train_loss, step)
            logger.log("learning_rate", lr, step)
        window_loss.zero_()
        window_count = 0

    for epoch in range(first_epoch, hps.epochs + 1):
        epoch_started = time.perf_counter()
        segment_started = time.perf_counter()
        epoch_generator_state = generator.get_state()
        batch_index = skip if epoch == first_epoch else 0
        for idx in _batches(n, global_batch, generator, batch_index):
            # Micro-batches of this step; a tail smaller than the ranks is left out (every rank needs data).
            parts = [idx[i : i + micro] for i in range(0, len(idx), micro)]
            batches = [task.batch(shard(p, dist)) for p in parts if len(p) >= world]
            lr = float(scheduler.get_last_lr()[0])
            if batches:
                local_count = sum(task.count(b) for b in batches)
                global_count = dist.all_sum([local_count], device)[0] if dist.active else float(local_count)
                # DDP/FSDP average gradients over ranks: scale so the result is sum(loss) / global count.
                scale = world / max(global_count, 1.0)
                for k, batch in enumerate(batches):
                    with _no_grad_sync(wrapped, dist, skip=k < len(batches) - 1), autocast_for(device, hps.bf16):
                        loss_sum = wrapped(to_device(batch, device))
                    (loss_sum * scale).backward()
                    window_loss += loss_sum.detach().float()
                    tokens += task.tokens(batch)
                window_count += local_count
                if dist.strategy == "fsdp":
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # handles sharded (DTensor) grads
                    optimizer.step()
                else:
                    # The clip coefficient goes into the fused AdamW kernel: no extra pass, no host sync.
                    clip_grad_norm_and_step(optimizer, 1.0)
                optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            if step % LOG_EVERY == 0 or step == total:
                log_train(step, lr)
            stop_early = False
            if hps.eval_steps and step % hps.eval_steps == 0:
                _sync(device)
                train_seconds += time.perf_counter() - segment_started
                stop_early = run_eval(step)
                last_eval_step = step
                segment_started = time.perf_counter()
            batch_index += 1
            check = not dist.active or step % SIGNAL_CHECK_EVERY == 0 or step == total
            stopping = dist.any(stop_requested(), device) if check else False
            if checkpoint_dir is not None and (stopping or (hps.checkpoint_steps and step % hps.checkpoint_steps == 0)):
                _sync(device)
                train_seconds += time.perf_counter() - segment_started
                save(epoch, batch_index, epoch_generator_state)
                segment_started = time.perf_counter()
            if stopping:
                main_echo(f"fmops-train: SIGTERM: stopped at step {step}/{total}", flush=True)
                raise TrainingInterrupted(step, saved_steps[-1] if saved_steps else None)
            if stop_early:
                stopped_early = True
                main_echo(
                    f"fmops-train: early stopping at step {step}: {task.objective} did not improve for "
                    f"{hps.early_stopping_patience} evaluations (best {best['value']:.6g} at step {best['step']})",
                    flush=True,
                )
                break
        _sync(device)
        train_seconds += time.perf_counter() - segment_started
        if stopped_early:
            break
        if (not hps.eval_steps or epoch == hps.epochs) and last_eval_step != step:
            stopped_early = run_eval(step) and epoch < hps.epochs
            last_eval_step = step
        objective = evaluations[-1].get(task.objective) if evaluations else None
        metric_text = f" {task.objective}={objective:.4f}" if objective is not None else ""
        main_echo(
            f"epoch {epoch}/{hps.epochs}: step {step}/{total} train_loss={last_train_loss:.4f}{metric_text} "
            f"({time.perf_counter() - epoch_started:.1f} s)",
            flush=True,
        )
        if stopped_early:
            main_echo(
                f"fmops-train: early stopping after epoch {epoch}: {task.objective} stopped improving", flush=True
            )
            break

    all_tokens = dist.all_sum([tokens], device)[0]
    tokens_per_second = all_tokens / max(train_seconds, 1e-9)
    if dist.active:
        logger.log("rank_tokens_per_second", tokens / max(train_seconds, 1e-9), step, rank=dist.rank)
    if dist.main:
        logger.log("tokens_per_second", tokens_per_second, step)
    if best["state"] is not None and best["step"] != step:
        _load_weights(model, best["state"], dist)
        # The last metric lines describe the weights that are kept.
        if dist.main:
            for name in sorted(best["metrics"], key=lambda k: (k == task.objective, k)):
                logger.log(name, best["metrics"][name], best["step"])
    return TrainResult(
        steps=step,
        best_step=best["step"] if best["state"] is not None else step,
        best_metrics=dict(best["metrics"]),
        train_loss=last_train_loss,
        tokens_per_second=tokens_per_second,
        train_seconds=train_seconds,
        fused_optimizer=fused,
        evaluations=evaluations,
        stopped_early=stopped_early,
    )


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
    """Single-label classification on one process (:func:`train_model` with a :class:`ClassificationData`)."""
    task = ClassificationData(
        [list(s) for s in train_seqs], train_labels, [list(s) for s in val_seqs], val_labels, pad_id
    )
    return train_model(model, task, hps, device, logger, echo, checkpoint_dir, stop_requested, keep_checkpoints)
