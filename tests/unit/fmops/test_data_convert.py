"""Record conversions to prompt-completion and Bedrock conversation records (fmops.data.convert)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from fmops.data.convert import (
    ConvertUsageError,
    CsvSource,
    JsonlSource,
    NotConvertible,
    collect_labels,
    convert_record,
    convert_rows,
    parse_column_map,
    resolve_columns,
)
from fmops.data.formats import classification_prompt
from fmops.data.schemas import SCHEMAS, Record
from fmops.data.validate import Validator


def rec(data_format: str, obj: dict[str, Any]) -> Record:
    record: Record = msgspec.convert(obj, SCHEMAS[data_format])
    return record


def assert_valid(lines: list[bytes], data_format: str) -> None:
    """Every line is a valid record of ``data_format`` (checked by the validator of `fmops data validate`)."""
    validator = Validator(data_format=data_format)
    checked = list(validator.check_chunks([b"".join(lines)]))
    assert [c.issues for c in checked] == [[]] * len(lines)
    assert validator.report().valid


def chunks(data: bytes, size: int = 5) -> Any:
    return lambda: (data[i : i + size] for i in range(0, len(data), size))


PC = {"prompt": "2+2?", "completion": "4"}


# -- single records ----------------------------------------------------------------------------------------
def test_classification_uses_the_shared_prompt_with_the_sorted_label_set() -> None:
    record = rec("classification", {"text": "great film", "label": "pos"})
    out = convert_record(record, "prompt-completion", labels=["neg", "neutral", "pos"])
    assert out == {"prompt": classification_prompt("great film", ["neg", "neutral", "pos"]), "completion": "pos"}
    assert out["prompt"].startswith("Classify the text into one of: neg, neutral, pos.")


def test_multi_label_completion_joins_the_labels_sorted() -> None:
    record = rec("classification", {"text": "t", "labels": ["sports", "politics"]})
    out = convert_record(record, "prompt-completion", labels=["politics", "sports", "tech"])
    assert out["completion"] == "politics, sports"


def test_a_label_outside_the_label_set_is_not_convertible() -> None:
    record = rec("classification", {"text": "t", "labels": ["a", "zzz"]})
    with pytest.raises(NotConvertible) as info:
        convert_record(record, "prompt-completion", labels=["a", "b"])
    assert (info.value.field, info.value.code) == ("labels[1]", "unknown_label")


def test_classification_needs_the_label_set() -> None:
    with pytest.raises(ValueError, match="label set"):
        convert_record(rec("classification", {"text": "t", "label": "a"}), "prompt-completion")


def test_summarization() -> None:
    out = convert_record(rec("summarization", {"document": "Long text.", "summary": "Short."}), "prompt-completion")
    assert out == {"prompt": "Summarize the following document.\n\nLong text.", "completion": "Short."}


def test_qa_takes_the_first_answer() -> None:
    record = rec("qa", {"context": "Paris is in France.", "question": "Where is Paris?", "answers": ["France", "FR"]})
    out = convert_record(record, "prompt-completion")
    assert out == {
        "prompt": "Answer the question using the context.\n\nContext: Paris is in France.\n\nQuestion: Where is Paris?",
        "completion": "France",
    }


def test_prompt_completion_to_conversation_with_and_without_system() -> None:
    record = rec("prompt-completion", PC)
    assert convert_record(record, "conversation") == {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": "2+2?"}]},
            {"role": "assistant", "content": [{"text": "4"}]},
        ],
    }
    with_system = convert_record(record, "conversation", system="Be brief.")
    assert list(with_system) == ["schemaVersion", "system", "messages"]
    assert with_system["system"] == [{"text": "Be brief."}]


def test_conversation_round_trip() -> None:
    conversation = convert_record(rec("prompt-completion", PC), "conversation")
    back = convert_record(rec("conversation", conversation), "prompt-completion")
    assert back == PC
    again = convert_record(rec("conversation", conversation), "conversation")
    assert again == conversation


def test_a_conversations_own_system_prompt_wins_and_goes_before_the_prompt() -> None:
    conversation = convert_record(rec("prompt-completion", PC), "conversation", system="Own.")
    assert convert_record(rec("conversation", conversation), "conversation", system="Other.")["system"] == [
        {"text": "Own."}
    ]
    assert convert_record(rec("conversation", conversation), "prompt-completion") == {
        "prompt": "Own.\n\n2+2?",
        "completion": "4",
    }


def test_multi_turn_conversation_is_not_a_prompt_completion_record() -> None:
    messages = [{"role": r, "content": [{"text": t}]} for r, t in [("user", "a"), ("assistant", "b")] * 2]
    record = rec("conversation", {"schemaVersion": "bedrock-conversation-2024", "messages": messages})
    with pytest.raises(NotConvertible) as info:
        convert_record(record, "prompt-completion")
    assert info.value.code == "not_single_turn"
    assert len(convert_record(record, "conversation")["messages"]) == 4


def test_legacy_conversation_to_conversation() -> None:
    legacy = {"system": "S", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert convert_record(rec("conversation-legacy", legacy), "conversation") == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "S"}],
        "messages": [
            {"role": "user", "content": [{"text": "hi"}]},
            {"role": "assistant", "content": [{"text": "yo"}]},
        ],
    }


# -- whole streams ---------------------------------------------------------------------------------------
MIXED_SOURCES = {
    "classification": [{"text": "a", "label": "y"}, {"text": "b", "labels": ["x", "y"]}],
    "summarization": [{"document": "d", "summary": "s"}],
    "qa": [{"context": "c", "question": "q", "answers": ["a"]}],
    "prompt-completion": [PC],
    "conversation-legacy": [{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}],
}


@pytest.mark.parametrize("target", ["prompt-completion", "conversation"])
@pytest.mark.parametrize("source_format", sorted(MIXED_SOURCES))
def test_every_output_line_validates_as_the_target_format(source_format: str, target: str) -> None:
    data = b"".join(json.dumps(o).encode() + b"\n" for o in MIXED_SOURCES[source_format])
    source = JsonlSource(chunks(data), source_format)
    labels = collect_labels(source.rows())
    written: list[bytes] = []
    stats = convert_rows(
        source.rows(), target, written.append, None, labels=labels, system="Sys" if target == "conversation" else None
    )
    assert (stats.records, stats.written, stats.quarantined) == (len(MIXED_SOURCES[source_format]), len(written), 0)
    assert_valid(written, target)


def test_the_label_set_comes_from_a_first_pass_in_sorted_order() -> None:
    data = b'{"text": "1", "label": "zebra"}\n{"text": "2", "label": "ant"}\n{"text": "3", "labels": ["mole", "ant"]}\n'
    source = JsonlSource(chunks(data))
    assert collect_labels(source.rows()) == ["ant", "mole", "zebra"]
    written: list[bytes] = []
    convert_rows(source.rows(), "prompt-completion", written.append, None, labels=["ant", "mole", "zebra"])
    records = [json.loads(line) for line in written]
    assert {r["prompt"].splitlines()[0] for r in records} == {"Classify the text into one of: ant, mole, zebra."}
    assert [r["completion"] for r in records] == ["zebra", "ant", "ant, mole"]


def test_label_pass_stops_at_data_of_another_format() -> None:
    opened = []

    def lines() -> Any:
        for i in range(1000):
            opened.append(i)
            yield json.dumps(PC).encode() + b"\n"

    assert collect_labels(JsonlSource(lines).rows()) == []
    assert len(opened) < 1000


def test_bad_records_are_quarantined_with_their_line_and_text() -> None:
    data = b'{"prompt": "p", "completion": "c"}\nnot json\n{"prompt": "", "completion": "c"}\n'
    written: list[bytes] = []
    quarantined: list[bytes] = []
    stats = convert_rows(JsonlSource(chunks(data)).rows(), "conversation", written.append, quarantined.append)
    assert (stats.records, stats.written, stats.quarantined) == (3, 1, 2)
    bad = [json.loads(line) for line in quarantined]
    assert [(b["line"], b["raw"]) for b in bad] == [(2, "not json"), (3, '{"prompt": "", "completion": "c"}')]
    assert bad[1]["errors"] == [
        {"line": 3, "field": "prompt", "code": "empty_text", "message": "must not be empty or whitespace only"}
    ]
    assert stats.first_issue is not None and stats.first_issue.line == 2


def test_unknown_labels_against_a_given_label_set_are_quarantined() -> None:
    data = b'{"text": "a", "label": "x"}\n{"text": "b", "label": "nope"}\n'
    quarantined: list[bytes] = []
    stats = convert_rows(
        JsonlSource(chunks(data), "classification").rows(), "conversation", [].append, quarantined.append, labels=["x"]
    )
    assert (stats.written, stats.quarantined) == (1, 1)
    assert json.loads(quarantined[0])["errors"][0]["code"] == "unknown_label"


def test_text_no_utf8_file_can_hold_is_quarantined_not_written() -> None:
    data = b'{"prompt": "\\ud800", "completion": "c"}\n'
    quarantined: list[bytes] = []
    stats = convert_rows(JsonlSource(chunks(data)).rows(), "prompt-completion", [].append, quarantined.append)
    assert (stats.written, stats.quarantined) == (0, 1)
    assert json.loads(quarantined[0])["errors"][0]["code"] == "invalid_text"


# -- tables ----------------------------------------------------------------------------------------------
def test_columns_are_matched_by_name_or_mapped() -> None:
    assert resolve_columns(["id", "prompt", "completion"]) == (
        "prompt-completion",
        {"prompt": "prompt", "completion": "completion"},
    )
    assert resolve_columns(["context", "question", "answer"])[0] == "qa"
    mapping = parse_column_map("prompt=question, completion=answer")
    assert resolve_columns(["question", "answer"], mapping) == (
        "prompt-completion",
        {"prompt": "question", "completion": "answer"},
    )


@pytest.mark.parametrize(
    ("header", "columns", "message"),
    [
        (["a", "b"], None, "match no format"),
        (["prompt", "completion", "text", "label"], None, "match prompt-completion and classification"),
        (["q", "a"], "prompt=q,completion=nope", "unknown column 'nope'"),
        (["q", "a"], "prompt=q,summary=a", "different formats"),
        (["q", "a"], "prompt=q", "needs columns prompt and completion"),
        (["text", "label", "labels"], None, "both present"),
    ],
)
def test_column_problems_are_usage_errors(header: list[str], columns: str | None, message: str) -> None:
    with pytest.raises(ConvertUsageError, match=message):
        resolve_columns(header, parse_column_map(columns))


@pytest.mark.parametrize("text", ["prompt", "prompt=", "nofield=x", "prompt=a,prompt=b"])
def test_bad_column_maps_are_usage_errors(text: str) -> None:
    with pytest.raises(ConvertUsageError, match="--columns"):
        parse_column_map(text)


def test_csv_rows_spanning_lines_keep_their_starting_line_number() -> None:
    data = (
        b'text,labels\n"line one\nline two\nline three","[""a"", ""b""]"\n\nshort,a\n'
        b'"also\r\nmulti",\n"\xff bad bytes",a\ntoo,many,fields\n'
    )
    source = CsvSource(chunks(data, 3))
    source.check()
    assert source.format == "classification"
    rows = list(source.rows())
    assert [(r.line, r.record is not None) for r in rows] == [
        (2, True),
        (6, True),
        (7, False),
        (9, False),
        (10, False),
    ]
    assert rows[0].raw == '"line one\nline two\nline three","[""a"", ""b""]"'
    assert rows[0].record is not None and rows[0].record.labels == ["a", "b"]  # type: ignore[union-attr]
    assert rows[2].raw == '"also\r\nmulti",' and rows[2].issues[0].field == "labels[0]"
    assert rows[3].issues[0].code == "invalid_utf8" and rows[3].raw == '"\ufffd bad bytes",a'
    assert rows[4].issues[0].code == "field_count"
