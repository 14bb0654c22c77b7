"""SageMaker inference handlers for the fine-tuned classifier: model_fn, input_fn, predict_fn, output_fn.

Request (``application/json``): ``{"inputs": "text"}`` or ``{"inputs": ["t1", "t2"]}``.
Response: ``{"predictions": [{"label": str, "score": float}, ...]}`` in input order.
Malformed requests raise ``ValueError`` (``InvalidInputError``), which servers map to HTTP 400.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmops_training.artifacts import METADATA_FILE
from fmops_training.errors import InvalidInputError

JSON = "application/json"
MAX_INPUTS = 256
MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_LENGTH = 128
BATCH_SIZE = 32


@dataclass
class LoadedModel:
    """What ``model_fn`` returns: the model, its tokenizer and how to run it."""

    model: Any
    tokenizer: Any
    labels: list[str]
    max_length: int
    device: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Load the fine-tuned model folder written by train.py."""
    from fmops_training.runtime import prepare_torch

    prepare_torch()
    from fmops_training.modeling import load_trained, model_labels, pick_device

    folder = Path(model_dir)
    model, tokenizer = load_trained(folder)
    max_length = DEFAULT_MAX_LENGTH
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        max_length = int(meta.get("hyperparameters", {}).get("max_length", max_length))
    device = pick_device()
    model.to(device)
    return LoadedModel(model, tokenizer, model_labels(model), max_length, device)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def input_fn(body: bytes | str, content_type: str | None = JSON) -> list[str]:
    """The list of texts in a JSON request; a bad request raises ``InvalidInputError`` (a ValueError)."""
    media = _media_type(content_type) or JSON
    if media != JSON:
        raise InvalidInputError(f"unsupported content type {content_type!r}: send {JSON}")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise InvalidInputError('request must be a JSON object with "inputs": a string or a list of strings')
    inputs = payload["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts:
        raise InvalidInputError('"inputs" must be a string or a non-empty list of strings')
    if len(texts) > MAX_INPUTS:
        raise InvalidInputError(f'"inputs" has {len(texts)} texts; at most {MAX_INPUTS} per request')
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise InvalidInputError(f'"inputs"[{i}] must be a non-empty string, got {t!r:.60}')
        if len(t) > MAX_TEXT_CHARS:
            raise InvalidInputError(f'"inputs"[{i}] has {len(t)} characters; at most {MAX_TEXT_CHARS}')
    return texts


def predict_fn(data: list[str], model: LoadedModel) -> list[dict[str, Any]]:
    """``[{"label", "score"}]`` per text (score = softmax probability of the predicted label)."""
    import torch

    from fmops_training.loop import encode, predict_logits

    seqs = encode(model.tokenizer, data, model.max_length)
    with model.lock:
        logits = predict_logits(model.model, seqs, model.tokenizer.pad_token_id, BATCH_SIZE, model.device)
    scores, indices = torch.softmax(logits, dim=-1).max(dim=-1)
    return [{"label": model.labels[int(i)], "score": round(float(s), 6)} for s, i in zip(scores, indices, strict=True)]


def output_fn(prediction: list[dict[str, Any]], accept: str | None = JSON) -> str:
    """The JSON response body; only JSON can be produced."""
    accepted = {_media_type(part) for part in (accept or "").split(",")}
    if not accepted & {"", JSON, "*/*", "application/*"}:
        raise InvalidInputError(f"unsupported accept type {accept!r}: this model answers {JSON}")
    return json.dumps({"predictions": prediction})
