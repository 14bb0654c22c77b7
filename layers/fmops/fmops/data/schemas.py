"""The record formats fmops reads, as msgspec schemas (decoded and type-checked in one pass, in C).

msgspec rather than pydantic here because validation runs once per record over files of millions of
lines: decoding straight into these structs is several times faster than ``json.loads`` followed by a
pydantic model per line (``benchmarks/data_validate.py`` measures both). Field rules that a type cannot
say (non-empty text, alternating roles, last turn from the assistant) live in ``fmops.data.checks``.

Format names (the ``format`` of a validation report):

========================  =====================================================================
``prompt-completion``     ``{"prompt": str, "completion": str}``
``conversation``          Bedrock ``{"schemaVersion": "bedrock-conversation-2024", "system": [{"text"}],
                          "messages": [{"role", "content": [{"text"}]}]}``
``conversation-legacy``   ``{"system": str, "messages": [{"role": str, "content": str}]}``
``classification``        ``{"text": str, "label": str}`` or ``{"text": str, "labels": [str, ...]}``
``summarization``         ``{"document": str, "summary": str}``
``qa``                    ``{"context": str, "question": str, "answers": [str, ...]}``
========================  =====================================================================
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

CONVERSATION_SCHEMA_VERSION = "bedrock-conversation-2024"


class PromptCompletion(Struct, forbid_unknown_fields=True, gc=False):
    prompt: str
    completion: str


class TextBlock(Struct, forbid_unknown_fields=True, gc=False):
    text: str


class Message(Struct, forbid_unknown_fields=True, gc=False):
    role: str
    content: list[TextBlock]


class Conversation(Struct, forbid_unknown_fields=True, gc=False):
    schemaVersion: str  # noqa: N815 - the Bedrock field name
    messages: list[Message]
    system: list[TextBlock] | UnsetType = UNSET


class LegacyMessage(Struct, forbid_unknown_fields=True, gc=False):
    role: str
    content: str


class LegacyConversation(Struct, forbid_unknown_fields=True, gc=False):
    messages: list[LegacyMessage]
    system: str | UnsetType = UNSET


class Classification(Struct, forbid_unknown_fields=True, gc=False):
    text: str
    label: str | UnsetType = UNSET
    labels: list[str] | UnsetType = UNSET


class Summarization(Struct, forbid_unknown_fields=True, gc=False):
    document: str
    summary: str


class QuestionAnswer(Struct, forbid_unknown_fields=True, gc=False):
    context: str
    question: str
    answers: list[str]


Record = PromptCompletion | Conversation | LegacyConversation | Classification | Summarization | QuestionAnswer

SCHEMAS: dict[str, type[Any]] = {
    "prompt-completion": PromptCompletion,
    "conversation": Conversation,
    "conversation-legacy": LegacyConversation,
    "classification": Classification,
    "summarization": Summarization,
    "qa": QuestionAnswer,
}
FORMATS = tuple(SCHEMAS)


def detect_format(obj: Any) -> str | None:
    """The format a decoded JSON object looks like, from its keys; None when it matches none."""
    if not isinstance(obj, dict):
        return None
    keys = obj.keys()
    if "schemaVersion" in keys:
        return "conversation"
    if "messages" in keys:
        messages = obj["messages"]
        first = messages[0] if isinstance(messages, list) and messages else None
        if isinstance(obj.get("system"), list) or (isinstance(first, dict) and isinstance(first.get("content"), list)):
            return "conversation"
        return "conversation-legacy"
    for name, fields in (
        ("prompt-completion", ("prompt", "completion")),
        ("summarization", ("document", "summary")),
        ("qa", ("context", "question")),
    ):
        if any(f in keys for f in fields):
            return name
    if "text" in keys or "label" in keys or "labels" in keys:
        return "classification"
    return None


def string_count(record: Record) -> int:
    """How many JSON strings (keys and string values) the text of ``record`` holds.

    A duplicate key adds at least one string that the decoded record does not show (the decoder keeps the
    last of equal keys), so comparing this with the quotes in the line finds duplicates exactly.
    """
    if isinstance(record, Conversation):
        blocks = sum(len(m.content) for m in record.messages)
        n = 3 + 3 * len(record.messages) + 2 * blocks
        return n if record.system is UNSET else n + 1 + 2 * len(record.system)
    if isinstance(record, LegacyConversation):
        n = 1 + 4 * len(record.messages)
        return n if record.system is UNSET else n + 2
    if isinstance(record, Classification):
        n = 2 + (2 if record.label is not UNSET else 0)
        return n if record.labels is UNSET else n + 1 + len(record.labels)
    if isinstance(record, QuestionAnswer):
        return 5 + len(record.answers)
    return 4


def with_extra_fields(extra_fields: tuple[str, ...] = ()) -> dict[str, type[Any]]:
    """The schemas, each also accepting the named extra top-level fields (any JSON value, optional).

    Used to split by a field that is not part of the format (``--group-by user_id``): any other unknown
    field is still an error.
    """
    if not extra_fields:
        return SCHEMAS
    return {
        name: msgspec.defstruct(
            f"{schema.__name__}WithExtra",
            [(f, Any, UNSET) for f in extra_fields if f not in schema.__struct_fields__],
            bases=(schema,),
            forbid_unknown_fields=True,
            gc=False,
        )
        for name, schema in SCHEMAS.items()
    }


def decoders(extra_fields: tuple[str, ...] = ()) -> dict[str, msgspec.json.Decoder[Any]]:
    """One typed decoder per format."""
    return {name: msgspec.json.Decoder(schema) for name, schema in with_extra_fields(extra_fields).items()}


def to_builtins(record: Record) -> dict[str, Any]:
    """The record as plain JSON-ready Python objects (unset optional fields left out)."""
    out: dict[str, Any] = msgspec.to_builtins(record)
    return out
