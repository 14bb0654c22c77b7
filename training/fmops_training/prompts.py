"""Generative records as chat messages: one shape for training, evaluation and serving of causal LMs.

Every generative data format fmops writes becomes a list of ``{"role", "content"}`` messages whose assistant
turns are what the model learns (the loss is on them only) and whose last assistant turn is the reference:

==========================  =========================================================================
``{"prompt", "completion"}``      user: prompt → assistant: completion
``{"system"?, "messages"}``       the messages as they are (``content`` a string; the older Bedrock shape)
``{"schemaVersion", "messages"}`` Bedrock conversation: ``content``/``system`` are lists of ``{"text"}``
``{"document", "summary"}``       user: :data:`SUMMARIZE` + document → assistant: summary
``{"context", "question",         user: :data:`ANSWER` + context + question → assistant: the first answer
``"answers"}``                    (every answer is a reference)
==========================  =========================================================================

No torch here: the layer's evaluation can build the same prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fmops_training.errors import DataError

SUMMARIZE = "Summarize the following text.\n\n"
ANSWER = "Answer the question using the context.\n\nContext: {context}\n\nQuestion: {question}"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Example:
    """One generative example: the conversation, the gold answers, and where it came from."""

    messages: tuple[dict[str, str], ...]
    references: tuple[str, ...]
    source: str = ""
    line: int = 0

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """The conversation up to (without) its last assistant turn: what a model is asked at evaluation."""
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return list(self.messages[:last])


def _text(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field '{field}' must be a non-empty string, got {value!r}")
    return value


def _blocks(value: Any, where: str, field: str) -> str:
    """Bedrock conversation content: a list of ``{"text": str}`` blocks, joined."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{field}' must be a non-empty list of {{\"text\": ...}} blocks")
    parts = []
    for i, block in enumerate(value):
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            raise DataError(f"{where}: field '{field}[{i}]' must be an object with a string 'text'")
        parts.append(block["text"])
    return _text("".join(parts), where, field)


def _conversation(obj: Mapping[str, Any], where: str) -> list[dict[str, str]]:
    bedrock = "schemaVersion" in obj
    messages: list[dict[str, str]] = []
    system = obj.get("system")
    if system is not None:
        messages.append(
            {
                "role": "system",
                "content": _blocks(system, where, "system") if bedrock else _text(system, where, "system"),
            }
        )
    raw = obj.get("messages")
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{where}: field 'messages' must be a non-empty list")
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise DataError(f"{where}: field 'messages[{i}]' must be an object")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise DataError(f"{where}: field 'messages[{i}].role' must be 'user' or 'assistant', got {role!r}")
        field = f"messages[{i}].content"
        content = (
            _blocks(message.get("content"), where, field) if bedrock else _text(message.get("content"), where, field)
        )
        messages.append({"role": role, "content": content})
    return messages


def to_example(obj: Any, source: str = "", line: int = 0) -> Example:
    """The :class:`Example` of one decoded JSON line; ``DataError`` names the file, line and field."""
    where = f"{source} line {line}" if source else f"line {line}"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "prompt" in obj or "completion" in obj:
        prompt, completion = (
            _text(obj.get("prompt"), where, "prompt"),
            _text(obj.get("completion"), where, "completion"),
        )
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        references: tuple[str, ...] = (completion,)
    elif "messages" in obj:
        messages = _conversation(obj, where)
        assistants = [m["content"] for m in messages if m["role"] == "assistant"]
        if not assistants:
            raise DataError(f"{where}: field 'messages' has no assistant turn to learn")
        if messages[-1]["role"] != "assistant":
            raise DataError(f"{where}: field 'messages' must end with an assistant turn")
        references = (assistants[-1],)
    elif "document" in obj or "summary" in obj:
        document, summary = _text(obj.get("document"), where, "document"), _text(obj.get("summary"), where, "summary")
        messages = [{"role": "user", "content": SUMMARIZE + document}, {"role": "assistant", "content": summary}]
        references = (summary,)
    elif "question" in obj or "context" in obj:
        context, question = _text(obj.get("context"), where, "context"), _text(obj.get("question"), where, "question")
        answers = obj.get("answers")
        if not isinstance(answers, list) or not answers:
            raise DataError(f"{where}: field 'answers' must be a non-empty list of strings")
        references = tuple(_text(a, where, f"answers[{i}]") for i, a in enumerate(answers))
        messages = [
            {"role": "user", "content": ANSWER.format(context=context, question=question)},
            {"role": "assistant", "content": references[0]},
        ]
    else:
        raise DataError(
            f"{where}: not a generative record: expected prompt/completion, messages, document/summary "
            "or context/question/answers"
        )
    return Example(tuple(messages), references, source, line)


def request_messages(inputs: Any) -> list[dict[str, str]]:
    """The messages of one serving request input: a prompt string, or a list of ``{"role", "content"}``."""
    if isinstance(inputs, str):
        if not inputs.strip():
            raise ValueError("an input prompt must be a non-empty string")
        return [{"role": "user", "content": inputs}]
    if isinstance(inputs, Sequence) and inputs and all(isinstance(m, Mapping) for m in inputs):
        out = []
        for i, m in enumerate(inputs):
            role, content = m.get("role"), m.get("content")
            if role not in ROLES or not isinstance(content, str):
                raise ValueError(f"message {i} must have a role in {ROLES} and a string content")
            out.append({"role": str(role), "content": content})
        if out[-1]["role"] == "assistant":
            raise ValueError("the last message must not be the assistant's: the model writes that turn")
        return out
    raise ValueError('each input must be a prompt string or a list of {"role", "content"} messages')


# Used when a tokenizer has no chat template (e.g. a bare base model): simple, prefix-stable markers.
FALLBACK_TEMPLATE = {"system": "### System:\n", "user": "### User:\n", "assistant": "### Assistant:\n"}


def render(tokenizer: Any, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool) -> str:
    """The conversation as the model's text: its chat template when it has one, else :data:`FALLBACK_TEMPLATE`
    (each assistant turn ends with the EOS token, so a trained model learns to stop)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(text)
    eos = tokenizer.eos_token or ""
    parts = []
    for m in messages:
        end = eos if m["role"] == "assistant" else ""
        parts.append(f"{FALLBACK_TEMPLATE[m['role']]}{m['content']}{end}\n\n")
    if add_generation_prompt:
        parts.append(FALLBACK_TEMPLATE["assistant"])
    return "".join(parts)


def segments(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[tuple[str, bool]]:
    """The rendered conversation cut into ``(text, learn)`` pieces: assistant turns (with their end-of-turn
    marker) are learned, everything else (system, user turns, the assistant header) is context.

    Raises ``DataError`` when the tokenizer's chat template does not render a conversation's prefix as a
    prefix of the whole (the pieces could not be told apart).
    """
    pieces: list[tuple[str, bool]] = []
    cursor = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        through = render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not before.startswith(cursor) or not through.startswith(before):
            raise DataError("the tokenizer's chat template is not prefix-stable: cannot find the assistant turns")
        if before[len(cursor) :]:
            pieces.append((before[len(cursor) :], False))
        pieces.append((through[len(before) :], True))
        cursor = through
    return pieces
