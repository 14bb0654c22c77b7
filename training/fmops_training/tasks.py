"""What the training loop trains, per task: batches, the summed loss, the validation metrics.

Each task turns its data into items (encoded examples, or packed rows for causal LMs) and reports losses as
*sums* with the count they are summed over (samples, or completion tokens), so the loop can normalise by the
global count of a step: the same step whether it runs in one process or is split over ranks and micro-batches.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

IGNORE = -100


def collate(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` for one batch."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _digest(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True).encode())
    return digest.hexdigest()


class TaskData:
    """Interface of a task's data for the loop (see the module docstring)."""

    objective: str = "validation_loss"  # the metric that picks the best weights and drives early stopping
    maximize: bool = False

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def count(self, batch: dict[str, torch.Tensor]) -> int:
        """How many units the batch's loss sums over."""
        raise NotImplementedError

    def tokens(self, batch: dict[str, torch.Tensor]) -> int:
        """Real (non-padding) tokens in the batch, for throughput."""
        return int(batch["token_count"])

    def loss_sum(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, model: Any, device: torch.device, batch_size: int) -> dict[str, float]:
        """Validation metrics (``validation_loss`` and the task's metric) of ``model``; {} without validation."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "token_count"}


# ---------------------------------------------------------------------------------------------- classification
@dataclass
class ClassificationData(TaskData):
    """Single-label (cross-entropy over classes) or multi-label (one sigmoid per label) classification."""

    train_seqs: list[list[int]]
    train_targets: torch.Tensor  # long [n] single-label; float [n, labels] multi-label
    val_seqs: list[list[int]]
    val_targets: torch.Tensor
    pad_id: int
    multilabel: bool = False

    def __post_init__(self) -> None:
        self.objective = "validation_f1_micro" if self.multilabel else "validation_accuracy"
        self.maximize = True

    def __len__(self) -> int:
        return len(self.train_seqs)

    def _batch(self, seqs: list[list[int]], targets: torch.Tensor, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        ids, mask = collate([seqs[i] for i in idx], self.pad_id)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "targets": targets[torch.as_tensor(list(idx), dtype=torch.long)],
            "token_count": mask.sum(),
        }

    def batch(self, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        return self._batch(self.train_seqs, self.train_targets, idx)

    def count(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["targets"].shape[0])

    def _losses(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            # mean over labels per sample, summed over samples: the count is in samples
            return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").mean(-1).sum()
        return F.cross_entropy(logits.float(), targets, reduction="sum")

    def loss_sum(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return self._losses(logits, batch["targets"])

    @torch.no_grad()
    def evaluate(self, model: Any, device: torch.device, batch_size: int) -> dict[str, float]:
        if not self.val_seqs:
            return {}
        from fmops_training.loop import autocast_for, predict_logits

        with autocast_for(device):
            logits = predict_logits(model, self.val_seqs, self.pad_id, batch_size, device)
        loss = self._losses(logits, self.val_targets).item() / len(self.val_seqs)
        if not self.multilabel:
            accuracy = (logits.argmax(dim=-1) == self.val_targets).float().mean().item()
            return {"validation_loss": loss, "validation_accuracy": accuracy}
        predicted = logits > 0  # sigmoid > 0.5
        gold = self.val_targets > 0.5
        tp = (predicted & gold).sum().item()
        fp = (predicted & ~gold).sum().item()
        fn = (~predicted & gold).sum().item()
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        return {"validation_loss": loss, "validation_f1_micro": f1}

    def fingerprint(self) -> str:
        return _digest(self.train_seqs, self.train_targets.tolist(), self.val_seqs, self.multilabel)


# -------------------------------------------------------------------------------------------------- causal LM
@dataclass
class Encoded:
    """One tokenised example: ids and, per id, whether it is a learned (completion) token."""

    ids: list[int]
    learn: list[bool]


def encode_example(tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int) -> tuple[Encoded, bool]:
    """Token ids of a conversation with the completion tokens marked; returns (encoded, truncated).

    Too long: the context is cut from the left (the start of the prompt goes first), then, if the learned
    tokens alone do not fit, they are cut at the end.
    """
    from fmops_training.prompts import segments

    ids: list[int] = list(bos_ids(tokenizer))
    learn = [False] * len(ids)
    for text, learned in segments(tokenizer, messages):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        learn.extend([learned] * len(piece))
    if len(ids) <= max_length:
        return Encoded(ids, learn), False
    first = learn.index(True) if True in learn else len(ids)
    overflow = len(ids) - max_length
    keep_start = len(bos_ids(tokenizer))
    removable = max(0, first - keep_start)
    cut = min(overflow, removable)
    ids = ids[:keep_start] + ids[keep_start + cut :]
    learn = learn[:keep_start] + learn[keep_start + cut :]
    return Encoded(ids[:max_length], learn[:max_length]), True


def bos_ids(tokenizer: Any) -> list[int]:
    """The BOS token when the tokenizer puts one in front of a text (Llama), else nothing (SmolLM2)."""
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    return [bos] if bos is not None and probe and probe[0] == bos else []


def pack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of examples grouped into rows of at most ``capacity`` tokens (best-fit decreasing; no example
    is split). Deterministic: ties go to the lower index."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row number), sorted
    for i in order:
        need = lengths[i]
        at = bisect.bisect_left(free, (need, -1))
        if at < len(free):
            room, row = free.pop(at)
            rows[row].append(i)
            bisect.insort(free, (room - need, row))
        else:
            rows.append([i])
            bisect.insort(free, (capacity - need, len(rows) - 1))
    for row in rows:
        row.sort()
    return rows


def block_causal_mask(segment_ids: torch.Tensor, boolean: bool) -> torch.Tensor:
    """[B, 1, L, L] attention mask: each token sees the earlier tokens of its own example only; padding
    (segment -1) sees itself, so no row is fully masked. Boolean (True = attend) or additive float."""
    length = segment_ids.shape[1]
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    allowed = (same & causal) & (segment_ids[:, :, None] >= 0)
    allowed |= torch.eye(length, dtype=torch.bool)
    allowed = allowed[:, None]
    if boolean:
        return allowed
    mask = torch.zeros(allowed.shape, dtype=torch.float32)
    return mask.masked_fill_(~allowed, torch.finfo(torch.float32).min)


@dataclass
class CausalLMData(TaskData):
    """Instruction tuning: next-token loss on the completion tokens only; rows are packed examples."""

    train_rows: list[list[Encoded]]
    val_rows: list[list[Encoded]]
    pad_id: int
    boolean_mask: bool = True  # SDPA takes boolean masks; eager attention needs the additive form
    objective: str = field(default="validation_loss")
    maximize: bool = False

    @classmethod
    def build(
        cls,
        train: Sequence[Encoded],
        validation: Sequence[Encoded],
        max_length: int,
        packing: bool,
        pad_id: int,
        boolean_mask: bool = True,
    ) -> CausalLMData:
        def rows(items: Sequence[Encoded]) -> list[list[Encoded]]:
            if not packing:
                return [[e] for e in items]
            return [[items[i] for i in row] for row in pack([len(e.ids) for e in items], max_length)]

        return cls(rows(train), rows(validation), pad_id, boolean_mask)

    def __len__(self) -> int:
        return len(self.train_rows)

    def _collate(self, rows: Sequence[Sequence[Encoded]]) -> dict[str, torch.Tensor]:
        width = max(sum(len(e.ids) for e in row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        segments = torch.full((len(rows), width), -1, dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for s, example in enumerate(row):
                n = len(example.ids)
                ids[r, at : at + n] = torch.as_tensor(example.ids)
                # label of position t is token t+1 when token t+1 is learned (shifted inside the example)
                target = torch.as_tensor(example.ids[1:] + [IGNORE])
                learned = torch.as_tensor(example.learn[1:] + [False])
                labels[r, at : at + n] = torch.where(learned, target, torch.full_like(target, IGNORE))
                positions[r, at : at + n] = torch.arange(n)
                segments[r, at : at + n] = s
                at += n
        return {
            "input_ids": ids,
            "labels": labels,
            "position_ids": positions,
            "attention_mask": block_causal_mask(segments, self.boolean_mask),
            "token_count": (segments >= 0).sum(),
        }

    def batch(self, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        return self._collate([self.train_rows[i] for i in idx])

    def count(self, batch: dict[str, torch.Tensor]) -> int:
        return int((batch["labels"] != IGNORE).sum())

    def loss_sum(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return causal_loss_sum(model, batch)

    @torch.no_grad()
    def evaluate(self, model: Any, device: torch.device, batch_size: int) -> dict[str, float]:
        if not self.val_rows:
            return {}
        from fmops_training.loop import autocast_for

        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        try:
            for start in range(0, len(self.val_rows), batch_size):
                batch = self._collate(self.val_rows[start : start + batch_size])
                count += self.count(batch)
                with autocast_for(device):
                    total += causal_loss_sum(model, to_device(batch, device)).item()
        finally:
            model.train(was_training)
        loss = total / max(count, 1)
        return {"validation_loss": loss, "validation_perplexity": math.exp(min(loss, 50.0))}

    def fingerprint(self) -> str:
        return _digest(
            [[e.ids for e in row] for row in self.train_rows], [[e.ids for e in row] for row in self.val_rows]
        )


def _decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(inner, "model", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if decoder is None or head is None or getattr(inner.config, "final_logit_softcapping", None):
        return None
    return decoder, head


def causal_loss_sum(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed next-token cross-entropy over the labelled positions.

    The LM head runs on the labelled positions only (the completion tokens), not on every position: with
    short completions after long prompts this saves most of the [tokens, vocab] logits and their memory.
    """
    labels = batch["labels"]
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    parts = _decoder_and_head(model)
    if parts is None:
        logits = model(**inputs).logits
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, reduction="sum")
    decoder, head = parts
    hidden = decoder(**inputs).last_hidden_state
    chosen = labels != IGNORE
    logits = head(hidden[chosen])
    return F.cross_entropy(logits.float(), labels[chosen], reduction="sum")


class LossModule(torch.nn.Module):
    """The model and its task's loss in one module, so DDP/FSDP see the whole computation in ``forward``."""

    def __init__(self, model: Any, task: TaskData) -> None:
        super().__init__()
        self.model = model
        self._task = task

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._task.loss_sum(self.model, batch)
