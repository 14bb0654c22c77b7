"""Other on-disk formats derived from the prepared records: Bedrock fine-tuning lines and the prompts that the
generative tasks ask a model (the same for Bedrock training, Bedrock evaluation and SageMaker training)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fmops.data.jsonl import ClassificationRecord
from fmops.data.schemas import CONVERSATION_SCHEMA_VERSION

# The prompts of the generative tasks, character for character those of training/fmops_training/prompts.py (what
# SageMaker training and evaluation ask the model), so that Bedrock and SageMaker see the same prompts. The layer
# cannot import training/: tests/unit/fmops/test_task_formats.py asserts that the strings are equal.
SUMMARIZE = "Summarize the following text.\n\n"
ANSWER = "Answer the question using the context.\n\nContext: {context}\n\nQuestion: {question}"
ROLES = ("user", "assistant")


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


# ------------------------------------------------------------------------------------------------ generative


class RecordFormatError(ValueError):
    """A record that is not a generative example; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"field '{field}': {message}" if field else message)
        self.field = field


@dataclass(frozen=True)
class GenerativeExample:
    """One generative record as a conversation: ``messages`` (``(role, content)``, ending with the assistant turn
    that is learned) and its ``references`` (QA: every gold answer; otherwise the last assistant turn)."""

    system: str | None
    messages: tuple[tuple[str, str], ...]
    references: tuple[str, ...]

    @property
    def prompt_messages(self) -> list[tuple[str, str]]:
        """The conversation up to (without) its last assistant turn: what a model is asked at evaluation."""
        return list(self.messages[:-1])

    @property
    def target(self) -> str:
        """The assistant turn learned (QA: the first answer)."""
        return self.messages[-1][1]

    def flat_prompt(self) -> str:
        """The prompt as one text (the ``prompt`` of a prompt-completion line; what a text-completion model such as
        Titan is asked): the system prompt, a blank line, then the single user turn.

        Raises:
            RecordFormatError: a conversation of more than one exchange (field ``messages``).
        """
        asked = self.prompt_messages
        if len(asked) != 1:
            raise RecordFormatError(
                f"a conversation of {len(asked)} turns before the last answer cannot be written as one prompt "
                "(prompt-completion): use a base model that takes conversations",
                "messages",
            )
        return f"{self.system}\n\n{asked[0][1]}" if self.system else asked[0][1]


def _text(obj: Mapping[str, Any], field: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RecordFormatError("must be a non-empty string", field)
    return value


def _blocks(value: Any, field: str) -> str:
    """Bedrock conversation content: a list of ``{"text"}`` blocks, joined (as training joins them)."""
    if not isinstance(value, list) or not value:
        raise RecordFormatError('must be a non-empty list of {"text": ...} blocks', field)
    parts = []
    for index, block in enumerate(value):
        if not isinstance(block, Mapping) or not isinstance(block.get("text"), str):
            raise RecordFormatError("must be an object with a string 'text'", f"{field}[{index}]")
        parts.append(str(block["text"]))
    text = "".join(parts)
    if not text.strip():
        raise RecordFormatError("must not be blank", field)
    return text


def _conversation(obj: Mapping[str, Any]) -> GenerativeExample:
    bedrock = "schemaVersion" in obj
    system: str | None = None
    if obj.get("system") is not None:
        system = _blocks(obj["system"], "system") if bedrock else _text(obj, "system")
    raw = obj.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RecordFormatError("must be a non-empty list", "messages")
    messages: list[tuple[str, str]] = []
    for index, message in enumerate(raw):
        field = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise RecordFormatError("must be an object", field)
        role = message.get("role")
        if role not in ROLES:
            raise RecordFormatError(f"is {role!r}; must be 'user' or 'assistant'", f"{field}.role")
        content = _blocks(message.get("content"), f"{field}.content") if bedrock else _text(message, "content")
        messages.append((str(role), content))
    if messages[-1][0] != "assistant":
        raise RecordFormatError("the last turn must be the assistant's", f"messages[{len(messages) - 1}].role")
    if not any(role == "user" for role, _ in messages[:-1]):
        raise RecordFormatError("needs a user turn before the last assistant turn", "messages")
    return GenerativeExample(system, tuple(messages), (messages[-1][1],))


def generative_example(obj: Any) -> GenerativeExample:
    """The :class:`GenerativeExample` of one decoded record, as training/fmops_training/prompts.py reads it:

    - ``{"prompt", "completion"}``: user prompt → assistant completion;
    - conversations (``{"system"?, "messages"}`` and Bedrock's ``{"schemaVersion", "system"?, "messages"}``);
    - ``{"document", "summary"}``: user :data:`SUMMARIZE` + document → assistant summary;
    - ``{"context", "question", "answers"}``: user :data:`ANSWER` → assistant: the first answer; every answer is
      a reference.

    Raises:
        RecordFormatError: naming the field.
    """
    if not isinstance(obj, Mapping):
        raise RecordFormatError(f"expected a JSON object, got {type(obj).__name__}")
    if "prompt" in obj or "completion" in obj:
        prompt, completion = _text(obj, "prompt"), _text(obj, "completion")
        return GenerativeExample(None, (("user", prompt), ("assistant", completion)), (completion,))
    if "messages" in obj:
        return _conversation(obj)
    if "document" in obj or "summary" in obj:
        document, summary = _text(obj, "document"), _text(obj, "summary")
        return GenerativeExample(None, (("user", SUMMARIZE + document), ("assistant", summary)), (summary,))
    if "question" in obj or "context" in obj:
        context, question = _text(obj, "context"), _text(obj, "question")
        answers = obj.get("answers")
        if not isinstance(answers, list) or not answers:
            raise RecordFormatError("must be a non-empty list of strings", "answers")
        references = []
        for index, answer in enumerate(answers):
            if not isinstance(answer, str) or not answer.strip():
                raise RecordFormatError("must be a non-empty string", f"answers[{index}]")
            references.append(answer)
        asked = ANSWER.format(context=context, question=question)
        return GenerativeExample(None, (("user", asked), ("assistant", references[0])), tuple(references))
    raise RecordFormatError(
        "not a generative record: expected prompt/completion, messages, document/summary or context/question/answers"
    )


def bedrock_generative_line(example: GenerativeExample, data_format: str = "prompt-completion") -> bytes:
    """A Bedrock fine-tuning line of a generative example in the format the base model takes (see
    :func:`bedrock_line`): the whole conversation, its last assistant turn being what the model learns.

    Raises:
        RecordFormatError: a multi-turn conversation for a prompt-completion model (field ``messages``).
    """
    line: dict[str, object]
    if data_format == "conversation":
        line = {"schemaVersion": CONVERSATION_SCHEMA_VERSION}
        if example.system:
            line["system"] = [{"text": example.system}]
        line["messages"] = [{"role": role, "content": [{"text": content}]} for role, content in example.messages]
    elif data_format == "conversation-legacy":
        line = {}
        if example.system:
            line["system"] = example.system
        line["messages"] = [{"role": role, "content": content} for role, content in example.messages]
    else:
        line = {"prompt": example.flat_prompt(), "completion": example.target}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"
