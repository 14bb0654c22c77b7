"""Other on-disk formats derived from the classification records."""

from __future__ import annotations

import json
from collections.abc import Sequence

from fmops.data.jsonl import ClassificationRecord


def classification_prompt(text: str, labels: Sequence[str]) -> str:
    """The prompt used for Bedrock fine-tuning and Bedrock evaluation (one place, so both agree)."""
    return f"Classify the text into one of: {', '.join(labels)}.\nText: {text}\nLabel:"


def bedrock_line(record: ClassificationRecord, labels: Sequence[str]) -> bytes:
    """A Bedrock fine-tuning line ``{"prompt", "completion"}``."""
    line = {"prompt": classification_prompt(record.text, labels), "completion": " " + record.label}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"
