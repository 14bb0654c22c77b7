"""Batched greedy generation for instruction-tuned causal LMs (evaluation and serving)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from fmops_training.prompts import render
from fmops_training.tasks import bos_ids


def prompt_ids(tokenizer: Any, messages: Sequence[Mapping[str, str]], max_prompt: int) -> list[int]:
    """Token ids of a conversation followed by the assistant header, exactly as training tokenised prompts;
    the start is cut (after BOS) when it is longer than ``max_prompt``."""
    bos = bos_ids(tokenizer)
    ids = tokenizer(render(tokenizer, messages, add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    keep = max(1, max_prompt - len(bos))
    return bos + list(ids[-keep:])


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[Mapping[str, str]]],
    max_new_tokens: int,
    batch_size: int,
    device: torch.device,
    max_prompt: int = 2048,
) -> list[str]:
    """The model's answer to each conversation (greedy, stops at EOS), in input order.

    Prompts are length-sorted and left-padded per batch, so short prompts do not wait on long ones.
    """
    encoded = [prompt_ids(tokenizer, c, max_prompt) for c in conversations]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = {tokenizer.eos_token_id} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
    eos.discard(None)
    out: list[str] = [""] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq = encoded[i]
                ids[row, width - len(seq) :] = torch.as_tensor(seq)
                mask[row, width - len(seq) :] = 1
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=sorted(eos),
            )
            for row, i in enumerate(idx):
                out[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
    finally:
        model.train(was_training)
    return out


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]
