"""Rules a schema type cannot state, and the exact diagnosis of a line the fast decoder refused.

A problem is ``(field, code, message)``; ``field`` is a JSON path like ``messages[2].content`` or None.
Codes are stable (they are part of the validation report contract, see docs/DATA.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from fmops.data.schemas import (
    CONVERSATION_SCHEMA_VERSION,
    UNSET,
    Classification,
    Conversation,
    LegacyConversation,
    PromptCompletion,
    QuestionAnswer,
    Record,
    Summarization,
)

Problem = tuple[str | None, str, str]

EMPTY = "must not be empty or whitespace only"
_ROLES = ("user", "assistant")


def _blank(value: str) -> bool:
    return not value or value.isspace()


def _check_turns(roles: list[str], field: str = "messages") -> list[Problem]:
    problems: list[Problem] = []
    if not roles:
        return [(field, "empty_conversation", "must hold at least one user turn and one assistant turn")]
    for index, role in enumerate(roles):
        if role not in _ROLES:
            problems.append((f"{field}[{index}].role", "invalid_role", f"is {role!r}; must be 'user' or 'assistant'"))
            continue
        expected = _ROLES[index % 2]
        if role != expected:
            problems.append(
                (
                    f"{field}[{index}].role",
                    "role_order",
                    f"is {role!r} but turns must alternate user/assistant starting with user (expected {expected!r})",
                )
            )
    if roles[-1] != "assistant":
        problems.append(
            (f"{field}[{len(roles) - 1}].role", "last_turn_not_assistant", "the last turn must be the assistant's")
        )
    return problems


def check_record(record: Record) -> tuple[list[Problem], int]:
    """The rule violations of a decoded record, and how many characters of text it holds."""
    problems: list[Problem] = []
    if isinstance(record, PromptCompletion):
        if _blank(record.prompt):
            problems.append(("prompt", "empty_text", EMPTY))
        if _blank(record.completion):
            problems.append(("completion", "empty_text", EMPTY))
        return problems, len(record.prompt) + len(record.completion)
    if isinstance(record, Conversation):
        chars = 0
        if record.schemaVersion != CONVERSATION_SCHEMA_VERSION:
            problems.append(
                (
                    "schemaVersion",
                    "schema_version",
                    f"is {record.schemaVersion!r}; must be {CONVERSATION_SCHEMA_VERSION!r}",
                )
            )
        if record.system is not UNSET:
            for index, block in enumerate(record.system):
                chars += len(block.text)
                if _blank(block.text):
                    problems.append((f"system[{index}].text", "empty_text", EMPTY))
        for index, message in enumerate(record.messages):
            if not message.content:
                problems.append((f"messages[{index}].content", "empty_content", "must hold at least one text block"))
            for block_index, block in enumerate(message.content):
                chars += len(block.text)
                if _blank(block.text):
                    problems.append((f"messages[{index}].content[{block_index}].text", "empty_text", EMPTY))
        problems.extend(_check_turns([m.role for m in record.messages]))
        return problems, chars
    if isinstance(record, LegacyConversation):
        chars = 0
        if record.system is not UNSET:
            chars += len(record.system)
            if _blank(record.system):
                problems.append(("system", "empty_text", EMPTY))
        for index, legacy in enumerate(record.messages):
            chars += len(legacy.content)
            if _blank(legacy.content):
                problems.append((f"messages[{index}].content", "empty_text", EMPTY))
        problems.extend(_check_turns([m.role for m in record.messages]))
        return problems, chars
    if isinstance(record, Classification):
        if _blank(record.text):
            problems.append(("text", "empty_text", EMPTY))
        if record.label is UNSET and record.labels is UNSET:
            problems.append(("label", "missing_field", "is missing (give 'label', or 'labels' for multi-label data)"))
        elif record.label is not UNSET and record.labels is not UNSET:
            problems.append(("labels", "conflicting_fields", "give either 'label' or 'labels', not both"))
        elif record.label is not UNSET:
            if _blank(record.label):
                problems.append(("label", "empty_text", EMPTY))
        elif isinstance(record.labels, list):
            if not record.labels:
                problems.append(("labels", "empty_list", "must hold at least one label"))
            for index, label in enumerate(record.labels):
                if _blank(label):
                    problems.append((f"labels[{index}]", "empty_text", EMPTY))
            if len(set(record.labels)) != len(record.labels):
                problems.append(("labels", "duplicate_label", "lists the same label twice"))
        return problems, len(record.text)
    if isinstance(record, Summarization):
        if _blank(record.document):
            problems.append(("document", "empty_text", EMPTY))
        if _blank(record.summary):
            problems.append(("summary", "empty_text", EMPTY))
        return problems, len(record.document) + len(record.summary)
    if isinstance(record, QuestionAnswer):
        if _blank(record.context):
            problems.append(("context", "empty_text", EMPTY))
        if _blank(record.question):
            problems.append(("question", "empty_text", EMPTY))
        if not record.answers:
            problems.append(("answers", "empty_list", "must hold at least one answer"))
        for index, answer in enumerate(record.answers):
            if _blank(answer):
                problems.append((f"answers[{index}]", "empty_text", EMPTY))
        return problems, len(record.context) + len(record.question) + sum(len(a) for a in record.answers)
    raise TypeError(f"not a record: {type(record).__name__}")


class _JsonProblem(Exception):
    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.problem: Problem = (field, code, message)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _JsonProblem(key, "duplicate_key", f"key {key!r} appears more than once in the same object")
        seen[key] = value
    return seen


def _constant(name: str) -> Any:
    raise _JsonProblem(None, "invalid_number", f"{name} is not valid JSON (numbers must be finite)")


_MSGSPEC_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MSGSPEC_NAME = re.compile(r"field `(?P<name>[^`]+)`")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _from_msgspec(message: str) -> Problem:
    """Turn a msgspec ValidationError message into a problem with a JSON path."""
    match = _MSGSPEC_PATH.search(message)
    path = match.group("path") if match else ""
    text = message[: match.start()] if match else message
    name = _MSGSPEC_NAME.search(text)
    if "missing required field" in text and name:
        return _join(path, name.group("name")), "missing_field", "is missing"
    if "unknown field" in text and name:
        return _join(path, name.group("name")), "unknown_field", "is not a field of this format"
    if text.startswith("Expected"):
        expected = text.split("`")[1] if "`" in text else "another type"
        got = text.rsplit("got `", 1)[-1].rstrip("`") if "got `" in text else "something else"
        names = {"str": "a string", "array": "an array", "object": "an object", "int": "an integer", "null": "null"}
        return path or None, "wrong_type", f"must be {names.get(expected, expected)}, got {names.get(got, got)}"
    return path or None, "invalid_value", text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def diagnose(data: bytes, schema: type[Any] | None) -> tuple[list[Problem], Any]:
    """Exact problems of a line the fast decoder refused (or of any line when ``schema`` is None).

    Returns the problems and, when there are none and ``schema`` is given, the decoded record (else None).
    With ``schema`` None the second value is the decoded JSON object, if the line is one.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [(None, "invalid_utf8", f"is not valid UTF-8 (byte {exc.start + 1} of the line)")], None
    if not text.strip():
        return [(None, "blank_line", "is blank; every line must hold one JSON object")], None
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except _JsonProblem as exc:
        return [exc.problem], None
    except json.JSONDecodeError as exc:
        return [(None, "invalid_json", f"is not valid JSON: {exc.msg} (column {exc.colno})")], None
    except RecursionError:
        return [(None, "invalid_json", "is nested too deeply")], None
    if not isinstance(obj, dict):
        return [(None, "not_object", f"must be a JSON object, got {_json_type(obj)}")], None
    if schema is None:
        return [], obj
    try:
        record = msgspec.convert(obj, schema, strict=True)
    except msgspec.ValidationError as exc:
        return [_from_msgspec(str(exc))], None
    problems, _ = check_record(record)
    return problems, None if problems else record


# -- the fast path -----------------------------------------------------------------------------------
# One function per format that accepts a fully valid record and returns (JSON strings in its text, text
# characters), or (-1, 0) at the first rule broken; ``check_record`` then lists every problem. Kept apart
# from ``check_record`` because this runs for every line of every file and must not allocate.


def _fast_prompt_completion(r: PromptCompletion) -> tuple[int, int]:
    p, c = r.prompt, r.completion
    if not p or p.isspace() or not c or c.isspace():
        return -1, 0
    return 4, len(p) + len(c)


def _fast_conversation(r: Conversation) -> tuple[int, int]:
    if r.schemaVersion != CONVERSATION_SCHEMA_VERSION:
        return -1, 0
    strings, chars = 3, 0
    system = r.system
    if system is not UNSET:
        for block in system:
            text = block.text
            if not text or text.isspace():
                return -1, 0
            chars += len(text)
        strings += 1 + 2 * len(system)
    messages = r.messages
    if not messages or len(messages) & 1:
        return -1, 0
    expected, other = "user", "assistant"
    for message in messages:
        content = message.content
        if message.role != expected or not content:
            return -1, 0
        expected, other = other, expected
        for block in content:
            text = block.text
            if not text or text.isspace():
                return -1, 0
            chars += len(text)
        strings += 3 + 2 * len(content)
    return strings, chars


def _fast_legacy(r: LegacyConversation) -> tuple[int, int]:
    strings, chars = 1, 0
    system = r.system
    if system is not UNSET:
        if not system or system.isspace():
            return -1, 0
        strings, chars = 3, len(system)
    messages = r.messages
    if not messages or len(messages) & 1:
        return -1, 0
    expected, other = "user", "assistant"
    for message in messages:
        content = message.content
        if message.role != expected or not content or content.isspace():
            return -1, 0
        expected, other = other, expected
        chars += len(content)
        strings += 4
    return strings, chars


def _fast_classification(r: Classification) -> tuple[int, int]:
    text, label, labels = r.text, r.label, r.labels
    if not text or text.isspace():
        return -1, 0
    if labels is UNSET:
        if label is UNSET or not label or label.isspace():
            return -1, 0
        return 4, len(text)
    if label is not UNSET or not labels or len(set(labels)) != len(labels):
        return -1, 0
    if any(not x or x.isspace() for x in labels):
        return -1, 0
    return 3 + len(labels), len(text)


def _fast_summarization(r: Summarization) -> tuple[int, int]:
    d, s = r.document, r.summary
    if not d or d.isspace() or not s or s.isspace():
        return -1, 0
    return 4, len(d) + len(s)


def _fast_qa(r: QuestionAnswer) -> tuple[int, int]:
    c, q, answers = r.context, r.question, r.answers
    if not c or c.isspace() or not q or q.isspace() or not answers:
        return -1, 0
    chars = len(c) + len(q)
    for answer in answers:
        if not answer or answer.isspace():
            return -1, 0
        chars += len(answer)
    return 5 + len(answers), chars


FAST_CHECKS: dict[type[Any], Any] = {
    PromptCompletion: _fast_prompt_completion,
    Conversation: _fast_conversation,
    LegacyConversation: _fast_legacy,
    Classification: _fast_classification,
    Summarization: _fast_summarization,
    QuestionAnswer: _fast_qa,
}


def has_duplicate_keys(data: bytes) -> bool:
    """Exact, slow: does any object in this JSON line repeat a key?"""
    try:
        json.loads(data, object_pairs_hook=_pairs)
    except _JsonProblem:
        return True
    except ValueError:
        return False
    return False
