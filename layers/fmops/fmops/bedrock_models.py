"""InvokeModel request bodies and response texts, per Bedrock model family.

A custom model is invoked with its base model's body, so the family always comes from the base model id.
Families: Amazon Titan Text (``inputText``), Amazon Nova (``messages-v1``), Anthropic Claude (Messages API),
Meta Llama (``prompt`` with the Llama 3 chat template). A conversation (``messages`` of ``(role, content)`` and an
optional ``system`` prompt) goes as messages to Nova and Claude, through the chat template to Llama, and as one
text to Titan (:func:`transcript`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

Family = Literal["titan", "nova", "anthropic", "llama"]

LLAMA3_TEMPLATE = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_LLAMA3_TURN = "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"


def family(base_model: str) -> Family:
    """The family of a Bedrock base model id (or foundation-model ARN); Titan for anything else."""
    model = base_model.rsplit("foundation-model/", 1)[-1].lower()
    if model.startswith("amazon.nova"):
        return "nova"
    if model.startswith("anthropic."):
        return "anthropic"
    if model.startswith("meta.llama"):
        return "llama"
    return "titan"


def transcript(messages: Sequence[tuple[str, str]], system: str | None = None) -> str:
    """A conversation as one text for a text-completion model: the system prompt, then ``User:``/``Bot:`` turns
    (Titan's chat convention), ending with ``Bot:`` for the model to answer. One user turn alone is just its text
    (after the system prompt and a blank line), as a prompt/completion line writes it."""
    head = f"{system}\n\n" if system else ""
    if len(messages) == 1 and messages[0][0] == "user":
        return head + messages[0][1]
    turns = "\n".join(f"{'User' if role == 'user' else 'Bot'}: {content}" for role, content in messages)
    return f"{head}{turns}\nBot:"


def invocation_body(
    base_model: str,
    prompt: str,
    *,
    max_tokens: int = 16,
    messages: Sequence[tuple[str, str]] | None = None,
    system: str | None = None,
) -> dict[str, Any]:
    """A deterministic (temperature 0) generation request in the family's shape.

    ``prompt`` alone: one user turn. With ``messages`` (the conversation so far, ending with a user turn) and
    ``system``: Nova and Claude get them as messages, Llama through its chat template; Titan gets ``prompt``,
    which the caller builds (:func:`transcript`).
    """
    kind = family(base_model)
    turns = list(messages) if messages else [("user", prompt)]
    if kind == "nova":
        body: dict[str, Any] = {
            "schemaVersion": "messages-v1",
            "messages": [{"role": role, "content": [{"text": content}]} for role, content in turns],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0},
        }
        if system:
            body["system"] = [{"text": system}]
        return body
    if kind == "anthropic":
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [{"role": role, "content": content} for role, content in turns],
        }
        if system:
            body["system"] = system
        return body
    if kind == "llama":
        if not system and len(turns) == 1:
            text = LLAMA3_TEMPLATE.format(prompt=turns[0][1])
        else:
            parts = [_LLAMA3_TURN.format(role="system", content=system)] if system else []
            parts += [_LLAMA3_TURN.format(role=role, content=content) for role, content in turns]
            text = "<|begin_of_text|>" + "".join(parts) + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        return {"prompt": text, "max_gen_len": max_tokens, "temperature": 0}
    return {"inputText": prompt, "textGenerationConfig": {"maxTokenCount": max_tokens, "temperature": 0}}


def generated_text(response: dict[str, Any]) -> str:
    """The generated text of an InvokeModel response of any family ("" when there is none)."""
    results = response.get("results")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        return str(results[0].get("outputText", ""))  # Titan
    output = response.get("output")
    if isinstance(output, dict):  # Nova
        message = output.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and content and isinstance(content[0], dict):
            return str(content[0].get("text", ""))
    content = response.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):  # Anthropic
        return str(content[0].get("text", ""))
    for key in ("generation", "outputText", "completion", "label"):  # Llama, older shapes
        if isinstance(response.get(key), str):
            return str(response[key])
    return ""
