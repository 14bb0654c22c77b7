"""Other on-disk formats derived from the classification records."""

from __future__ import annotations

import json
from collections.abc import Sequence

from fmops.data.jsonl import ClassificationRecord
from fmops.data.schemas import CONVERSATION_SCHEMA_VERSION


def classification_prompt(text: str, labels: Sequence[str]) -> str:
    """The prompt used for Bedrock fine-tuning and Bedrock evaluation (one place, so both agree)."""
    return f"Classify the text into one of: {', '.join(labels)}.\nText: {text}\nLabel:"


def bedrock_line(record: ClassificationRecord, labels: Sequence[str], data_format: str = "prompt-completion") -> bytes:
    """A Bedrock fine-tuning line in the format the base model takes.

    ``prompt-completion`` (Titan, Llama 3.1), ``conversation`` (``bedrock-conversation-2024``: Nova, Llama
    3.2) or ``conversation-legacy`` (Claude 3 Haiku); the prompt is ``classification_prompt``.
    """
    prompt = classification_prompt(record.text, labels)
    line: dict[str, object]
    if data_format == "conversation":
        line = {
            "schemaVersion": CONVERSATION_SCHEMA_VERSION,
            "messages": [
                {"role": "user", "content": [{"text": prompt}]},
                {"role": "assistant", "content": [{"text": record.label}]},
            ],
        }
    elif data_format == "conversation-legacy":
        line = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": record.label}]}
    else:
        line = {"prompt": prompt, "completion": " " + record.label}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"
