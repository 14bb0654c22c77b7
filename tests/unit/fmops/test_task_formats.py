"""Generative records as the layer reads them: the same prompts as training, the Bedrock lines of each base-model
format, and the InvokeModel bodies that ask a Bedrock model the same prompt."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fmops.bedrock_models import invocation_body, transcript
from fmops.data.formats import (
    ANSWER,
    SUMMARIZE,
    RecordFormatError,
    bedrock_generative_line,
    generative_example,
)
from fmops.data.validate import validate_chunks
from fmops.lifecycle.evaluation import bedrock_request
from fmops_training import prompts as training_prompts

RECORDS: list[dict[str, Any]] = [
    {"prompt": "Say hi", "completion": "hi"},
    {"document": "The cat sat on the mat all day.", "summary": "A cat sat."},
    {"context": "Paris is in France.", "question": "Where is Paris?", "answers": ["France", "in France"]},
    {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Name a colour"},
            {"role": "assistant", "content": "Blue."},
        ],
    },
    {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Be "}, {"text": "kind."}],
        "messages": [
            {"role": "user", "content": [{"text": "Thanks"}]},
            {"role": "assistant", "content": [{"text": "You are welcome."}]},
        ],
    },
]


def test_the_prompt_strings_are_trainings() -> None:
    # SageMaker training (training/fmops_training/prompts.py) and Bedrock must ask the same prompts.
    assert SUMMARIZE == training_prompts.SUMMARIZE
    assert ANSWER == training_prompts.ANSWER


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: next(iter(r)))
def test_every_generative_shape_reads_as_training_reads_it(record: dict[str, Any]) -> None:
    mine = generative_example(record)
    theirs = training_prompts.to_example(record)
    expected = [(m["role"], m["content"]) for m in theirs.messages]
    system = [content for role, content in expected if role == "system"]
    assert (mine.system, list(mine.messages)) == (
        system[0] if system else None,
        [m for m in expected if m[0] != "system"],
    )
    assert mine.references == theirs.references
    assert [(m["role"], m["content"]) for m in theirs.prompt_messages if m["role"] != "system"] == mine.prompt_messages


def test_summarization_and_qa_prompts_are_built_from_the_templates() -> None:
    summary = generative_example(RECORDS[1])
    assert summary.prompt_messages == [("user", "Summarize the following text.\n\nThe cat sat on the mat all day.")]
    qa = generative_example(RECORDS[2])
    assert qa.prompt_messages == [
        ("user", "Answer the question using the context.\n\nContext: Paris is in France.\n\nQuestion: Where is Paris?")
    ]
    assert (qa.target, qa.references) == ("France", ("France", "in France"))


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"prompt": "x"}, "completion"),
        ({"document": " ", "summary": "s"}, "document"),
        ({"context": "c", "question": "q", "answers": []}, "answers"),
        ({"context": "c", "question": "q", "answers": ["a", 3]}, "answers[1]"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role"),
        ({"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": "x"}]}, None),
    ],
)
def test_a_record_that_is_not_generative_names_the_field(record: dict[str, Any], field: str | None) -> None:
    with pytest.raises(RecordFormatError) as caught:
        generative_example(record)
    if field is not None:
        assert caught.value.field == field
        assert str(caught.value).startswith(f"field '{field}': ")


def test_prompt_completion_lines() -> None:
    line = json.loads(bedrock_generative_line(generative_example(RECORDS[1])))
    assert line == {
        "prompt": "Summarize the following text.\n\nThe cat sat on the mat all day.",
        "completion": "A cat sat.",
    }
    # a system prompt goes in front of the user's turn
    one_turn = {
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
    }
    assert json.loads(bedrock_generative_line(generative_example(one_turn))) == {
        "prompt": "Be brief.\n\nHi",
        "completion": "Yo",
    }


def test_a_multi_turn_conversation_cannot_be_one_prompt() -> None:
    with pytest.raises(RecordFormatError) as caught:
        bedrock_generative_line(generative_example(RECORDS[3]), "prompt-completion")
    assert caught.value.field == "messages" and "3 turns" in str(caught.value)


def test_conversation_lines_keep_every_turn_and_validate() -> None:
    example = generative_example(RECORDS[3])
    bedrock = json.loads(bedrock_generative_line(example, "conversation"))
    assert bedrock["schemaVersion"] == "bedrock-conversation-2024"
    assert bedrock["system"] == [{"text": "Be brief."}]
    assert [m["role"] for m in bedrock["messages"]] == ["user", "assistant", "user", "assistant"]
    assert bedrock["messages"][-1]["content"] == [{"text": "Blue."}]
    legacy = json.loads(bedrock_generative_line(example, "conversation-legacy"))
    assert legacy == {"system": "Be brief.", "messages": RECORDS[3]["messages"]}
    # what fmops data validate accepts in each format
    for data_format in ("conversation", "conversation-legacy"):
        lines = b"".join(bedrock_generative_line(generative_example(r), data_format) for r in RECORDS)
        report = validate_chunks([lines], data_format=data_format)
        assert report.valid, report.errors


def test_invocations_ask_the_same_prompt_as_the_training_line() -> None:
    summary = generative_example(RECORDS[1])
    prompt = json.loads(bedrock_generative_line(summary))["prompt"]
    titan = bedrock_request("amazon.titan-text-lite-v1", summary, 200)
    assert titan == {"inputText": prompt, "textGenerationConfig": {"maxTokenCount": 200, "temperature": 0}}
    llama = bedrock_request("meta.llama3-1-8b-instruct-v1:0", summary, 8)
    assert llama["prompt"] == invocation_body("meta.llama3-1-8b-instruct-v1:0", prompt)["prompt"]
    chat = generative_example(RECORDS[3])
    nova = bedrock_request("amazon.nova-micro-v1:0", chat, 32)
    assert nova["system"] == [{"text": "Be brief."}]
    assert [m["content"][0]["text"] for m in nova["messages"]] == ["Hello", "Hi.", "Name a colour"]
    claude = bedrock_request("anthropic.claude-3-haiku-20240307-v1:0", chat, 32)
    assert claude["system"] == "Be brief." and claude["messages"][-1] == {"role": "user", "content": "Name a colour"}
    llama_chat = bedrock_request("meta.llama3-1-8b-instruct-v1:0", chat, 32)["prompt"]
    assert llama_chat.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>")
    assert llama_chat.endswith("Name a colour<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_transcript_for_text_models() -> None:
    assert transcript([("user", "Hi")]) == "Hi"
    assert transcript([("user", "Hi")], "Sys") == "Sys\n\nHi"
    assert transcript([("user", "Hi"), ("assistant", "Yo"), ("user", "Bye")]) == "User: Hi\nBot: Yo\nUser: Bye\nBot:"
