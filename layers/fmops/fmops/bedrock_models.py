"""InvokeModel request bodies and response texts, per Bedrock model family.

A custom model is invoked with its base model's body, so the family always comes from the base model id.
Families: Amazon Titan Text (``inputText``), Amazon Nova (``messages-v1``), Anthropic Claude (Messages API),
Meta Llama (``prompt`` with the Llama 3 chat template).
"""

from __future__ import annotations

from typing import Any, Literal

Family = Literal["titan", "nova", "anthropic", "llama"]

LLAMA3_TEMPLATE = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


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


def invocation_body(base_model: str, prompt: str, *, max_tokens: int = 16) -> dict[str, Any]:
    """A deterministic (temperature 0) generation request for ``prompt`` in the family's shape."""
    kind = family(base_model)
    if kind == "nova":
        return {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0},
        }
    if kind == "anthropic":
        return {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": prompt}],
        }
    if kind == "llama":
        return {"prompt": LLAMA3_TEMPLATE.format(prompt=prompt), "max_gen_len": max_tokens, "temperature": 0}
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
