"""Each Bedrock family gets its own InvokeModel body, and every response shape yields its text."""

from __future__ import annotations

import pytest

from fmops.bedrock_models import family, generated_text, invocation_body
from fmops.lifecycle.evaluation import parse_generated_label


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("amazon.titan-text-express-v1", "titan"),
        ("amazon.nova-micro-v1:0", "nova"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", "nova"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("meta.llama3-1-8b-instruct-v1:0", "llama"),
    ],
)
def test_family(model: str, expected: str) -> None:
    assert family(model) == expected


def test_bodies_follow_each_family_api() -> None:
    assert invocation_body("amazon.titan-text-lite-v1", "Q") == {
        "inputText": "Q",
        "textGenerationConfig": {"maxTokenCount": 16, "temperature": 0},
    }
    nova = invocation_body("amazon.nova-micro-v1:0", "Q")
    assert nova["messages"] == [{"role": "user", "content": [{"text": "Q"}]}]
    assert nova["inferenceConfig"] == {"maxTokens": 16, "temperature": 0}
    claude = invocation_body("anthropic.claude-3-haiku-20240307-v1:0", "Q")
    assert claude["anthropic_version"] == "bedrock-2023-05-31" and claude["messages"][0]["content"] == "Q"
    llama = invocation_body("meta.llama3-1-8b-instruct-v1:0", "Q", max_tokens=4)
    assert llama["max_gen_len"] == 4
    assert (
        llama["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
        and "\n\nQ<|eot_id|>" in llama["prompt"]
    )


@pytest.mark.parametrize(
    "response",
    [
        {"results": [{"outputText": " billing\n"}]},
        {"output": {"message": {"role": "assistant", "content": [{"text": "billing"}]}}},
        {"content": [{"type": "text", "text": "Billing"}]},
        {"generation": "billing, I think"},
    ],
)
def test_every_response_shape_gives_the_label(response: dict[str, object]) -> None:
    assert generated_text(response).strip().lower().startswith("billing")
    assert parse_generated_label(response, ["billing", "tech"]) == "billing"


def test_an_empty_response_is_no_text() -> None:
    assert generated_text({}) == ""
