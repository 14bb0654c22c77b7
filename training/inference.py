"""SageMaker inference handlers for fine-tuned models: model_fn, input_fn, predict_fn, output_fn.

Request (``application/json``): ``{"inputs": "text"}`` or ``{"inputs": ["t1", "t2"]}``; a generative model
also takes conversations (``[{"role", "content"}, ...]``, or a list of them) and ``"parameters":
{"max_new_tokens": N}``.
Response: classification ``{"predictions": [{"label": str, "score": float}, ...]}``; multi-label
``[{"labels": [str, ...], "scores": {label: float}}]``; generative ``[{"generated_text": str}]``; in input
order, computed in batches. Malformed requests raise ``ValueError`` (``InvalidInputError``), which servers
map to HTTP 400.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmops_training.artifacts import METADATA_FILE
from fmops_training.errors import InvalidInputError
from fmops_training.prompts import request_messages

JSON = "application/json"
MAX_INPUTS = 256
MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_LENGTH = 128
BATCH_SIZE = 32
MAX_NEW_TOKENS = 1024


@dataclass
class LoadedModel:
    """What ``model_fn`` returns: the model, its tokenizer and how to run it."""

    model: Any
    tokenizer: Any
    labels: list[str]
    max_length: int
    device: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    task: str = "classification"
    max_new_tokens: int = 64

    @property
    def generative(self) -> bool:
        return self.task in ("summarization", "qa", "chat")


class Inputs(list):  # type: ignore[type-arg]
    """The request's inputs (a list) with its ``parameters``."""

    parameters: dict[str, Any]

    def __init__(self, items: list[Any], parameters: dict[str, Any]) -> None:
        super().__init__(items)
        self.parameters = parameters


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Load the fine-tuned model folder written by train.py."""
    from fmops_training.runtime import prepare_torch

    prepare_torch()
    from fmops_training.modeling import load_trained, model_labels, pick_device

    folder = Path(model_dir)
    meta: dict[str, Any] = {}
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    hps = meta.get("hyperparameters", {})
    max_length = int(hps.get("max_length", DEFAULT_MAX_LENGTH))
    task = str(meta.get("task", "classification"))
    device = pick_device()
    if task in ("summarization", "qa", "chat"):
        from fmops_training.modeling import load_trained_causal

        model, tokenizer = load_trained_causal(folder)
        model.to(device)
        return LoadedModel(
            model, tokenizer, [], max_length, device, task=task, max_new_tokens=int(hps.get("max_new_tokens", 64))
        )
    model, tokenizer = load_trained(folder)
    model.to(device)
    return LoadedModel(model, tokenizer, model_labels(model), max_length, device, task=task)


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
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInputError('"parameters" must be a JSON object')
    # One conversation ([{"role", "content"}, ...]) is one input, like one string.
    one = isinstance(inputs, str) or (isinstance(inputs, list) and bool(inputs) and isinstance(inputs[0], dict))
    texts = [inputs] if one else inputs
    if not isinstance(texts, list) or not texts:
        raise InvalidInputError('"inputs" must be a string or a non-empty list of strings')
    if len(texts) > MAX_INPUTS:
        raise InvalidInputError(f'"inputs" has {len(texts)} texts; at most {MAX_INPUTS} per request')
    for i, t in enumerate(texts):
        if isinstance(t, list):
            try:
                request_messages(t)
            except ValueError as exc:
                raise InvalidInputError(f'"inputs"[{i}]: {exc}') from None
            continue
        if not isinstance(t, str) or not t.strip():
            raise InvalidInputError(f'"inputs"[{i}] must be a non-empty string, got {t!r:.60}')
        if len(t) > MAX_TEXT_CHARS:
            raise InvalidInputError(f'"inputs"[{i}] has {len(t)} characters; at most {MAX_TEXT_CHARS}')
    return Inputs(texts, parameters)


def _max_new_tokens(data: Any, default: int) -> int:
    value = getattr(data, "parameters", {}).get("max_new_tokens", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NEW_TOKENS:
        raise InvalidInputError(
            f'"parameters.max_new_tokens" must be an integer from 1 to {MAX_NEW_TOKENS}, got {value!r}'
        )
    return value


def predict_fn(data: list[Any], model: LoadedModel) -> list[dict[str, Any]]:
    """Per input: ``{"label", "score"}`` (softmax probability of the predicted label); multi-label
    ``{"labels", "scores"}`` (sigmoid > 0.5); generative ``{"generated_text"}``."""
    import torch

    if model.generative:
        from fmops_training.generation import generate

        conversations = [request_messages(item) for item in data]
        new_tokens = _max_new_tokens(data, model.max_new_tokens)
        with model.lock:
            texts = generate(model.model, model.tokenizer, conversations, new_tokens, BATCH_SIZE, model.device)
        return [{"generated_text": t} for t in texts]
    if any(not isinstance(item, str) for item in data):
        raise InvalidInputError(f"this {model.task} model takes texts, not conversations")
    from fmops_training.loop import encode, predict_logits

    seqs = encode(model.tokenizer, data, model.max_length)
    with model.lock:
        logits = predict_logits(model.model, seqs, model.tokenizer.pad_token_id, BATCH_SIZE, model.device)
    if model.task == "multilabel":
        probs = torch.sigmoid(logits)
        return [
            {
                "labels": [model.labels[j] for j in range(len(model.labels)) if row[j] > 0.5],
                "scores": {model.labels[j]: round(float(row[j]), 6) for j in range(len(model.labels))},
            }
            for row in probs
        ]
    scores, indices = torch.softmax(logits, dim=-1).max(dim=-1)
    return [{"label": model.labels[int(i)], "score": round(float(s), 6)} for s, i in zip(scores, indices, strict=True)]


def output_fn(prediction: list[dict[str, Any]], accept: str | None = JSON) -> str:
    """The JSON response body; only JSON can be produced."""
    accepted = {_media_type(part) for part in (accept or "").split(",")}
    if not accepted & {"", JSON, "*/*", "application/*"}:
        raise InvalidInputError(f"unsupported accept type {accept!r}: this model answers {JSON}")
    return json.dumps({"predictions": prediction})
