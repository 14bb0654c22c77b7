"""Turning validated records of any format into prompt-completion or Bedrock conversation records.

Sources are read as streams of ``Row``s, one per record of the input (a JSONL line, a CSV row, a table
row), each either a validated ``Record`` or the issues that make it unusable, with the text it came from.
``convert_rows`` writes every usable record in the target format and every other one to a quarantine
stream, so that records in = records written + records quarantined.

Standard library and msgspec only (this runs in Lambda); the Parquet source is the CLI's (``fmops_local``).

Conversions (the prompts are part of the data contract: training and evaluation must agree):

================================  =================================================================
classification                    prompt ``classification_prompt(text, sorted label set)``, completion
                                  the label (multi-label: the record's labels, sorted, joined by ", ")
summarization                     ``"Summarize the following document.\\n\\n" + document`` -> summary
qa                                ``"Answer the question using the context.\\n\\nContext: ...\\n\\n
                                  Question: ..."`` -> the first answer
conversation(-legacy) -> p-c      one user turn and one assistant turn only; a system prompt is put
                                  before the user's text (``system + "\\n\\n" + prompt``)
anything -> conversation          ``{"schemaVersion", "system" (when there is one), "messages"}``
================================  =================================================================
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from fmops.data.formats import classification_prompt
from fmops.data.lines import GZIP_MAGIC, MAX_LINE_BYTES, LineBatch
from fmops.data.schemas import (
    CONVERSATION_SCHEMA_VERSION,
    FORMATS,
    UNSET,
    Classification,
    Conversation,
    LegacyConversation,
    PromptCompletion,
    QuestionAnswer,
    Record,
    Summarization,
)
from fmops.data.validate import Issue, Validator

TARGETS = ("prompt-completion", "conversation")
TABULAR_SOURCES = ("csv", "parquet")
SOURCES = (*TABULAR_SOURCES, "jsonl", *FORMATS)

SUMMARIZE_INSTRUCTION = "Summarize the following document."
QA_INSTRUCTION = "Answer the question using the context."
MULTI_LABEL_SEPARATOR = ", "
TURN_SEPARATOR = "\n"  # between the text blocks of one turn
SYSTEM_SEPARATOR = "\n\n"  # between a system prompt and the user's text in a prompt-completion record

# The fields a tabular source (CSV header, Parquet schema) can fill, per format: one entry per record field,
# each a choice of column names (a single value, or the list form: a JSON array of strings in a CSV cell).
TABULAR_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "prompt-completion": (("prompt",), ("completion",)),
    "classification": (("text",), ("label", "labels")),
    "summarization": (("document",), ("summary",)),
    "qa": (("context",), ("question",), ("answer", "answers")),
}
_LIST_FIELDS = {"labels", "answers"}
_SINGLE_TO_LIST = {"answer": "answers"}  # a single-answer column fills the record's list field


class ConvertUsageError(ValueError):
    """The conversion cannot start: bad options, unknown columns, an input that is not data at all."""


class NotConvertible(Exception):
    """A valid record that has no equivalent in the target format (or a label outside the label set)."""

    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


class Row(NamedTuple):
    """One record of the input: ``record`` (validated) or the ``issues`` that make it unusable.

    ``line`` is the 1-based physical line where it starts (the row number for Parquet); ``raw`` is the
    text it came from (None only for a JSONL line too long to be kept in memory)."""

    line: int
    raw: str | None
    record: Record | None
    issues: list[Issue]


# -- record conversions ---------------------------------------------------------------------------------
def record_labels(record: Classification) -> list[str]:
    """The label(s) of a classification record, as a list."""
    if record.label is not UNSET:
        return [record.label]
    return list(record.labels) if record.labels is not UNSET else []


def label_set(labels: Iterable[str]) -> list[str]:
    """The label set as used in prompts: distinct and sorted (as ``prepare`` and evaluation order it)."""
    return sorted(set(labels))


def classification_pair(
    record: Classification, labels: Sequence[str], known: frozenset[str] | set[str] | None = None
) -> tuple[str, str]:
    """``(prompt, completion)`` of a classification record; ``labels`` is the sorted label set.

    Raises:
        NotConvertible: a label of the record is not in ``labels``.
    """
    names = record_labels(record)
    known = frozenset(labels) if known is None else known
    for index, name in enumerate(names):
        if name not in known:
            field = "label" if record.label is not UNSET else f"labels[{index}]"
            shown = ", ".join(labels) if len(labels) <= 20 else f"{len(labels)} labels"
            raise NotConvertible(field, "unknown_label", f"{name!r} is not in the label set ({shown})")
    completion = names[0] if len(names) == 1 else MULTI_LABEL_SEPARATOR.join(sorted(names))
    return classification_prompt(record.text, labels), completion


def summarization_pair(record: Summarization) -> tuple[str, str]:
    return f"{SUMMARIZE_INSTRUCTION}\n\n{record.document}", record.summary


def qa_pair(record: QuestionAnswer) -> tuple[str, str]:
    prompt = f"{QA_INSTRUCTION}\n\nContext: {record.context}\n\nQuestion: {record.question}"
    return prompt, record.answers[0]


def conversation_turns(record: Conversation | LegacyConversation) -> tuple[str | None, list[tuple[str, str]]]:
    """The system prompt (None when absent) and ``(role, text)`` of every turn of a conversation."""
    if isinstance(record, LegacyConversation):
        system = None if record.system is UNSET else record.system
        return system, [(m.role, m.content) for m in record.messages]
    system = None if record.system is UNSET else TURN_SEPARATOR.join(b.text for b in record.system)
    return system, [(m.role, TURN_SEPARATOR.join(b.text for b in m.content)) for m in record.messages]


def conversation_pair(record: Conversation | LegacyConversation) -> tuple[str, str]:
    """``(prompt, completion)`` of a single-turn conversation (its system prompt before the user's text).

    Raises:
        NotConvertible: more than one user turn and one assistant turn.
    """
    system, turns = conversation_turns(record)
    if len(turns) != 2:
        raise NotConvertible(
            "messages",
            "not_single_turn",
            f"has {len(turns)} turns; a prompt-completion record holds one user turn and one assistant turn",
        )
    prompt = turns[0][1] if system is None else f"{system}{SYSTEM_SEPARATOR}{turns[0][1]}"
    return prompt, turns[1][1]


def prompt_completion_pair(record: Record, labels: Sequence[str] | None = None) -> tuple[str, str]:
    """``(prompt, completion)`` of a record of any format (``labels``: the sorted label set, classification only).

    Raises:
        NotConvertible: see ``classification_pair`` and ``conversation_pair``.
        ValueError: a classification record without ``labels``.
    """
    if isinstance(record, PromptCompletion):
        return record.prompt, record.completion
    if isinstance(record, Classification):
        if labels is None:
            raise ValueError("classification records need the label set")
        return classification_pair(record, labels)
    if isinstance(record, Summarization):
        return summarization_pair(record)
    if isinstance(record, QuestionAnswer):
        return qa_pair(record)
    if isinstance(record, Conversation | LegacyConversation):
        return conversation_pair(record)
    raise TypeError(f"not a record: {type(record).__name__}")


def prompt_completion_record(prompt: str, completion: str) -> dict[str, Any]:
    return {"prompt": prompt, "completion": completion}


def conversation_record(turns: Iterable[tuple[str, str]], system: str | None = None) -> dict[str, Any]:
    """A Bedrock ``bedrock-conversation-2024`` record from ``(role, text)`` turns."""
    out: dict[str, Any] = {"schemaVersion": CONVERSATION_SCHEMA_VERSION}
    if system is not None:
        out["system"] = [{"text": system}]
    out["messages"] = [{"role": role, "content": [{"text": text}]} for role, text in turns]
    return out


def to_conversation(
    record: Record, *, labels: Sequence[str] | None = None, system: str | None = None
) -> dict[str, Any]:
    """A record of any format as a Bedrock conversation; ``system`` is used when the record has none."""
    if isinstance(record, Conversation):
        own = None if record.system is UNSET else [{"text": b.text} for b in record.system]
        out: dict[str, Any] = {"schemaVersion": CONVERSATION_SCHEMA_VERSION}
        if own is not None or system is not None:
            out["system"] = own if own is not None else [{"text": system}]
        out["messages"] = [{"role": m.role, "content": [{"text": b.text} for b in m.content]} for m in record.messages]
        return out
    if isinstance(record, LegacyConversation):
        own_system, turns = conversation_turns(record)
        return conversation_record(turns, own_system if own_system is not None else system)
    prompt, completion = prompt_completion_pair(record, labels)
    return conversation_record((("user", prompt), ("assistant", completion)), system)


def to_prompt_completion(record: Record, *, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """A record of any format as ``{"prompt", "completion"}``."""
    return prompt_completion_record(*prompt_completion_pair(record, labels))


def convert_record(
    record: Record, to: str, *, labels: Sequence[str] | None = None, system: str | None = None
) -> dict[str, Any]:
    """``record`` in the ``to`` format (one of ``TARGETS``), ready for ``json.dumps``."""
    if to == "conversation":
        return to_conversation(record, labels=labels, system=system)
    if to == "prompt-completion":
        return to_prompt_completion(record, labels=labels)
    raise ValueError(f"unknown target format {to!r}; one of {', '.join(TARGETS)}")


def encode_line(obj: Any) -> bytes:
    """One output line: ``json.dumps(obj, ensure_ascii=False)`` + newline, UTF-8 (raises UnicodeEncodeError
    for text holding a lone surrogate, which no UTF-8 file can hold)."""
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def quarantine_line(line: int, issues: Iterable[Issue], raw: str | None) -> bytes:
    """A quarantine line ``{"line", "errors": [{"line", "field", "code", "message"}], "raw"}``."""
    obj = {"line": line, "errors": [issue.as_dict() for issue in issues], "raw": raw}
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


# -- the conversion loop --------------------------------------------------------------------------------
@dataclass
class ConvertStats:
    records: int = 0
    written: int = 0
    quarantined: int = 0
    first_issue: Issue | None = None


def collect_labels(rows: Iterable[Row]) -> list[str]:
    """The sorted label set of the valid classification records of ``rows`` (the first pass of two).

    Stops at the first valid record that is not a classification record (the data is of another format).
    """
    seen: set[str] = set()
    for row in rows:
        record = row.record
        if record is None:
            continue
        if not isinstance(record, Classification):
            break
        if record.label is not UNSET:
            seen.add(record.label)
        elif record.labels is not UNSET:
            seen.update(record.labels)
    return sorted(seen)


def convert_rows(
    rows: Iterable[Row],
    to: str,
    write: Callable[[bytes], Any],
    quarantine: Callable[[bytes], Any] | None,
    *,
    labels: Sequence[str] | None = None,
    system: str | None = None,
) -> ConvertStats:
    """Write each usable row converted to ``to``, and each other one to ``quarantine`` (None: only count it).

    ``labels`` is the sorted label set (needed for classification records).
    """
    if to not in TARGETS:
        raise ValueError(f"unknown target format {to!r}; one of {', '.join(TARGETS)}")
    stats = ConvertStats()
    known = frozenset(labels) if labels is not None else frozenset()
    label_list = list(labels) if labels is not None else None
    for row in rows:
        stats.records += 1
        record, issues = row.record, row.issues
        if record is not None:
            try:
                if isinstance(record, Classification):
                    if label_list is None:
                        raise ValueError("classification records need the label set")
                    pair = classification_pair(record, label_list, known)
                    obj = (
                        conversation_record((("user", pair[0]), ("assistant", pair[1])), system)
                        if to == "conversation"
                        else prompt_completion_record(*pair)
                    )
                else:
                    obj = convert_record(record, to, labels=label_list, system=system)
                write(encode_line(obj))
                stats.written += 1
                continue
            except NotConvertible as exc:
                issues = [Issue(row.line, exc.field, exc.code, exc.message)]
            except UnicodeEncodeError:
                issues = [Issue(row.line, None, "invalid_text", "holds a lone surrogate (\\ud800-\\udfff), not text")]
        stats.quarantined += 1
        if stats.first_issue is None and issues:
            stats.first_issue = issues[0]
        if quarantine is not None:
            quarantine(quarantine_line(row.line, issues, row.raw))
    return stats


# -- sources --------------------------------------------------------------------------------------------
ChunkOpener = Callable[[], Iterable[bytes]]


class JsonlSource:
    """JSONL lines, validated by ``Validator`` (``data_format`` None: detected from the data)."""

    def __init__(self, open_chunks: ChunkOpener, data_format: str | None = None) -> None:
        if data_format is not None and data_format not in FORMATS:
            raise ConvertUsageError(f"unknown data format {data_format!r}; one of {', '.join(FORMATS)}")
        self._open = open_chunks
        self.format = data_format
        self.detected: str | None = data_format

    def check(self) -> None:
        """Refuse input that is not JSONL at all (gzip-compressed) before anything is written."""
        stream = iter(self._open())
        try:
            first = next((chunk for chunk in stream if chunk), b"")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if first.startswith(GZIP_MAGIC):
            raise ConvertUsageError("the file is gzip-compressed; decompress it (gunzip) first")

    def rows(self) -> Iterator[Row]:
        validator = Validator(data_format=self.format, max_errors=0, max_warnings=0)
        for checked in validator.check_chunks(self._open(), hash_file=False):
            self.detected = validator.format
            data = checked.data
            raw = data.decode("utf-8", "replace") if data is not None else None
            yield Row(checked.number, raw, checked.record, checked.issues)


def parse_column_map(text: str | None) -> dict[str, str]:
    """``"prompt=question,completion=answer"`` as ``{"prompt": "question", "completion": "answer"}``."""
    if not text:
        return {}
    known = {name for fields in TABULAR_FIELDS.values() for choice in fields for name in choice}
    mapping: dict[str, str] = {}
    for item in text.split(","):
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ConvertUsageError(f"--columns: {item.strip()!r} is not FIELD=COLUMN")
        if field not in known:
            raise ConvertUsageError(f"--columns: unknown field {field!r}; fields: {', '.join(sorted(known))}")
        if field in mapping:
            raise ConvertUsageError(f"--columns: {field!r} is mapped twice")
        mapping[field] = column
    return mapping


def resolve_columns(header: Sequence[str], mapping: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """The record format a table's columns hold and ``{field: column}``.

    A field is read from the column ``mapping`` names for it, else from the column of its own name.

    Raises:
        ConvertUsageError: unknown or duplicate columns, no format or more than one format matched.
    """
    mapping = dict(mapping or {})
    names = list(header)
    present = set(names)
    shown = ", ".join(names) if names else "no columns"
    for field, column in mapping.items():
        if column not in present:
            raise ConvertUsageError(f"unknown column {column!r} (for {field}); the columns are: {shown}")

    def resolve(data_format: str) -> dict[str, str] | None:
        chosen: dict[str, str] = {}
        for choices in TABULAR_FIELDS[data_format]:
            mapped = [f for f in choices if f in mapping]
            if len(mapped) > 1:
                raise ConvertUsageError(f"--columns maps both {' and '.join(mapped)}; map one of them")
            if mapped:
                chosen[mapped[0]] = mapping[mapped[0]]
                continue
            found = [f for f in choices if f in present]
            if len(found) > 1:
                raise ConvertUsageError(
                    f"columns {' and '.join(found)} are both present; pick one with --columns {found[0]}={found[0]}"
                )
            if not found:
                return None
            chosen[found[0]] = found[0]
        return chosen

    if mapping:
        formats = [f for f, fields in TABULAR_FIELDS.items() if set(mapping) <= {n for c in fields for n in c}]
        if not formats:
            raise ConvertUsageError(f"--columns maps fields of different formats: {', '.join(mapping)}")
        data_format = formats[0]
        chosen = resolve(data_format)
        if chosen is None:
            needed = " and ".join("/".join(c) for c in TABULAR_FIELDS[data_format])
            raise ConvertUsageError(f"{data_format} needs columns {needed}; the columns are: {shown}")
    else:
        matches = [(f, c) for f in TABULAR_FIELDS if (c := resolve(f)) is not None]
        if not matches:
            expected = "; ".join(
                f"{f}: {', '.join('/'.join(c) for c in fields)}" for f, fields in TABULAR_FIELDS.items()
            )
            raise ConvertUsageError(
                f"the columns ({shown}) match no format ({expected}); name them with --columns FIELD=COLUMN"
            )
        if len(matches) > 1:
            raise ConvertUsageError(
                f"the columns match {' and '.join(f for f, _ in matches)}; choose with --columns FIELD=COLUMN"
            )
        data_format, chosen = matches[0]
    for column in chosen.values():
        if names.count(column) > 1:
            raise ConvertUsageError(f"column {column!r} appears more than once")
    return data_format, chosen


def _as_list(value: Any) -> Any:
    """A list field's value: a list as is; a string holding a JSON array of strings, parsed; else ``[value]``."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                parsed = json.loads(value)
            except ValueError:
                return [value]
            if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
                return parsed
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    return value


def build_object(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of a table row, from ``{field: cell value}`` (see ``TABULAR_FIELDS``)."""
    obj: dict[str, Any] = {}
    for field, value in fields.items():
        if field in _SINGLE_TO_LIST:
            obj[_SINGLE_TO_LIST[field]] = [value]
        elif field in _LIST_FIELDS:
            obj[field] = _as_list(value)
        else:
            obj[field] = value
    return obj


class TableChecker:
    """Validates table rows (``{field: cell value}``, see ``build_object``) as records of one format, with the
    rules of ``Validator``; a value JSON cannot hold (bytes, dates...) is an ``unsupported_type`` issue."""

    def __init__(self, data_format: str) -> None:
        self._validator = Validator(data_format=data_format, max_errors=0, max_warnings=0)

    def row(self, line: int, raw: str, fields: Mapping[str, Any]) -> Row:
        try:
            data = json.dumps(build_object(fields), ensure_ascii=False).encode("utf-8")
        except TypeError as exc:
            return Row(line, raw, None, [Issue(line, None, "unsupported_type", f"holds a value JSON cannot: {exc}")])
        except UnicodeEncodeError:
            return Row(line, raw, None, [Issue(line, None, "invalid_text", "holds a lone surrogate, not text")])
        checked = list(self._validator.check_lines([LineBatch(line, [data], False)]))[0]
        return Row(line, raw, checked.record, checked.issues)


class _ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterable of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._view = memoryview(chunk)
        size = min(len(buffer), len(self._view))
        buffer[:size] = self._view[:size]
        self._view = self._view[size:]
        return size

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text


class CsvSource:
    """CSV with a header row; ``columns`` maps record fields to other column names (see ``resolve_columns``).

    Read as UTF-8 (a byte-order mark is ignored); a row with bytes that are not UTF-8 is quarantined. Blank
    lines between rows are not records and are skipped. ``Row.line`` is the physical line a row starts on.
    """

    def __init__(self, open_chunks: ChunkOpener, columns: Mapping[str, str] | None = None) -> None:
        self._open = open_chunks
        self._mapping = dict(columns or {})
        self.format: str | None = None
        self.columns: dict[str, str] = {}

    @property
    def detected(self) -> str | None:
        return self.format

    def _text(self) -> io.TextIOWrapper:
        raw = io.BufferedReader(_ChunkReader(self._open()), buffer_size=1 << 16)
        return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")

    def _header(self, reader: Any) -> list[str]:
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ConvertUsageError(f"the header row is not CSV: {exc}") from exc
        if not header:
            raise ConvertUsageError("the file is empty (no header row)")
        if any(_has_surrogate(name) for name in header):
            raise ConvertUsageError("the header row is not valid UTF-8")
        return [name.strip() for name in header]

    def check(self) -> None:
        """Read the header and resolve the columns (before anything is written)."""
        with self._text() as text:
            header = self._header(csv.reader(text))
        self.format, self.columns = resolve_columns(header, self._mapping)

    def rows(self) -> Iterator[Row]:
        consumed: list[str] = []

        def tracked(text: Iterable[str]) -> Iterator[str]:
            for line in text:
                consumed.append(line)
                yield line

        previous_limit = csv.field_size_limit()
        csv.field_size_limit(max(previous_limit, MAX_LINE_BYTES))
        try:
            with self._text() as text:
                reader = csv.reader(tracked(text))
                header = self._header(reader)
                data_format, columns = resolve_columns(header, self._mapping)
                self.format, self.columns = data_format, columns
                width = len(header)
                index = {field: header.index(column) for field, column in columns.items()}
                checker = TableChecker(data_format)
                consumed.clear()
                while True:
                    start = reader.line_num + 1
                    try:
                        cells = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        raw = _raw_text("".join(consumed))
                        consumed.clear()
                        yield Row(start, raw, None, [Issue(start, None, "invalid_csv", f"is not CSV: {exc}")])
                        continue
                    raw_text = "".join(consumed)
                    consumed.clear()
                    if not cells:
                        continue  # a blank line
                    raw = _raw_text(raw_text)
                    if _has_surrogate(raw_text):
                        issue = Issue(start, None, "invalid_utf8", "is not valid UTF-8")
                        yield Row(start, raw, None, [issue])
                    elif len(cells) != width:
                        issue = Issue(start, None, "field_count", f"has {len(cells)} field(s); the header has {width}")
                        yield Row(start, raw, None, [issue])
                    else:
                        yield checker.row(start, raw, {field: cells[i] for field, i in index.items()})
        finally:
            csv.field_size_limit(previous_limit)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _raw_text(text: str) -> str:
    """A row's original text without its final line ending (bytes that were not UTF-8 shown as U+FFFD)."""
    text = _strip_newline(text)
    if _has_surrogate(text):
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text
