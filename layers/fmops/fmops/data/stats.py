"""Statistics of a fine-tuning data file (and of its train/validation/test splits), in one streaming pass.

What a person wants to know before paying for a training job: how many records are usable, how long they are
(in estimated tokens), which ones repeat, which have empty fields, how the labels are balanced, which records
are too long for which base model, which ones hold likely personal data, and whether validation or test
records share their input with a training record (leakage).

Streaming. Lines come from ``Validator.check_chunks`` and are dropped once counted. Content statistics cover
every *analysed* record: a line that decodes into its format's schema, valid or not (a record with an empty
field or over a model's token limit is invalid but still counted in lengths, duplicates, labels and personal
data). Memory per line is three 64-bit hashes in arrays (exact content, normalised content, normalised input:
24 bytes); everything else is bounded by the number of distinct token lengths, distinct labels and repeated
hashes, and by the caps on listed line numbers. Duplicate groups are found at the end by sorting the hashes in
runs of at most ``SORT_RUN`` values (a bounded transient list) merged lazily, plus 8 bytes per line of sorted
copy. Hashes are 64-bit BLAKE2b: two different records collide with probability about n**2 / 2**65.

Definitions.

* Tokens: ``estimate_tokens(text, chars_per_token)`` over the record's text fields (those the validator counts:
  no labels, roles or keys) with 4 characters per token (``DEFAULT_CHARS_PER_TOKEN``), or the model's ratio
  when ``limits`` is given; ``tokens.basis`` says which. Percentiles are nearest-rank: the p-th percentile of n
  sorted values is the value at rank ``ceil(p * n / 100)``. The histogram has about ``HISTOGRAM_BINS`` bins of
  equal integer width from min to max (the last one may be narrower).
* Duplicates: ``exact`` records have the same decoded content (key order and JSON spacing aside);
  ``normalised`` ones are equal once every string is case-folded, stripped of punctuation (every character that
  is neither a letter, digit nor whitespace, and ``_``) and whitespace-collapsed. ``records`` counts the records
  that repeat an earlier one (what deduplication would drop), ``groups`` the distinct repeated contents.
* Input (leakage): ``prompt``; ``text``; ``document``; ``context`` + ``question``; the user turns of a
  conversation; normalised as above. A record whose normalised input is empty is not compared.
* Personal data (likely, by shape): ``email`` addresses; ``phone`` numbers, international (``+`` and 9 to 15
  digits, with spaces, dots, dashes or parentheses) or US-shaped (``(555) 123-4567``, ``555-123-4567``, with an
  optional leading 1); ``payment_card`` numbers of 13 to 19 digits (spaces or dashes between them) that pass the
  Luhn check and are not one repeated digit. Only counts and line numbers are kept, never the matched text.
* Empty fields: the validator's ``empty_text`` issues, by field path with list indexes dropped
  (``messages[].content``), counted once per record.
* Over token limit: for every row of ``MODEL_LIMITS`` whose ``formats`` include the file's format, the records
  whose estimate with that row's ``chars_per_token`` is over its ``max_tokens_per_record``.

JSON (``FileStats.as_dict()``; ``fmops data stats FILE --format json``). Line numbers are 1-based physical lines;
lists of lines hold the first ``max_lines`` (default 20)::

    {
      "name": str | null,               # the split name, or null for a single file
      "source": str | null,             # the path or URI read
      "format": str | null,             # detected or given record format
      "records": int,                   # physical lines
      "valid_records": int,
      "invalid_records": int,
      "analysed_records": int,          # lines decoded into the format's schema (see above)
      "bytes": int,
      "model": str | null,              # model id of ``limits``
      "issues_by_code": {code: int},    # validation errors of lines, by code
      "file_issues": [{"line", "field", "code", "message"}],  # file-level errors and warnings (line 0, or BOM)
      "tokens": {"estimate": "ceil(characters / 4)", "chars_per_token": float, "basis": "default" | "model",
                 "model": str | null, "records": int, "total": int, "mean": float | null,
                 "min": int | null, "p50": int | null, "p95": int | null, "max": int | null,
                 "histogram": [{"low": int, "high": int, "count": int}]},
      "duplicates": {"exact":      {"records": int, "groups": int, "first_groups": [{"count": int, "lines": [int]}]},
                     "normalised": {same keys}},
      "empty_fields": {"records": int, "fields": {field: {"count": int, "lines": [int]}}},
      "labels": null | {"kind": "single" | "multi" | "mixed", "records": int, "classes": int,
                        "counts": {label: int},   # largest first; at most max_labels entries
                        "truncated": bool, "largest": str, "smallest": str, "imbalance_ratio": float},
      "over_token_limit": [{"model": str, "name": str, "max_tokens": int, "chars_per_token": float,
                            "count": int, "lines": [int]}],
      "pii": {"email" | "phone" | "payment_card": {"records": int, "matches": int, "lines": [int]}},
      "pii_records": int                # records with personal data of any kind
    }

``SplitStats.as_dict()`` (a folder of splits)::

    {"train_split": "train",
     "splits": {name: FileStats.as_dict()},
     "leakage": {name: {"records": int, "leaked": int, "fraction": float | null,
                        "first": [{"line": int, "train_line": int}]}}}   # every split but the train split

Standard library and msgspec only: this module runs in Lambda.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from fmops.data.limits import MODEL_LIMITS, ModelLimits
from fmops.data.schemas import (
    Classification,
    Conversation,
    LegacyConversation,
    PromptCompletion,
    QuestionAnswer,
    Record,
    Summarization,
    decoders,
)
from fmops.data.tokens import estimate_tokens
from fmops.data.validate import Checked, Issue, Role, Validator

DEFAULT_CHARS_PER_TOKEN = 4.0
HISTOGRAM_BINS = 20
MAX_LINES = 20
MAX_GROUPS = 10
MAX_LABELS = 100
SORT_RUN = 1 << 20
PII_KINDS = ("email", "phone", "payment_card")

_SEP = "\x1f"  # between the fields of a normalised key (normalised text never holds it)
_PUNCTUATION = re.compile(r"[^\w\s]|_")
# The same deletion for ASCII text, several times faster than the regular expression.
_ASCII_PUNCTUATION = str.maketrans("", "", "".join(c for c in map(chr, range(128)) if not (c.isalnum() or c.isspace())))
_THREE_DIGITS = re.compile(r"\d[ ().-]?\d[ ().-]?\d")  # every phone or card number holds such a run
_INDEX = re.compile(r"\[\d+\]")
_NON_DIGIT = re.compile(r"\D")
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,15}(?:[ .-]?\(\d{1,6}\)|[ .-]\d{1,12})*(?!\w)")
_PHONE_US = re.compile(r"(?<![\w+.-])(?:1[ .-]?)?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}(?!\w|[.-]\d)")
# 13 to 19 digits, not preceded by a word character, "+" or another digit group; the look-behinds come after the
# first digit (a pattern that starts with a digit is scanned for much faster).
_CARD = re.compile(r"\d(?<![\w+]\d)(?<!\d[ -]\d)(?:[ -]?\d){12,18}(?!\w|[ -]\d)")


# -- pure helpers ---------------------------------------------------------------------------------------


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (ASCII digits only) passes the Luhn mod-10 check; False when empty or not all digits."""
    if not number or not number.isascii() or not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    start, end = span
    return any(start < other_end and other_start < end for other_start, other_end in taken)


def find_pii(text: str) -> dict[str, int]:
    """How many likely email addresses, phone numbers and payment card numbers ``text`` holds (by kind).

    A stretch of text counts once: a card number is not also a phone number, digits inside an email address
    are neither.
    """
    found = dict.fromkeys(PII_KINDS, 0)
    taken: list[tuple[int, int]] = []
    if "@" in text:
        for match in _EMAIL.finditer(text):
            found["email"] += 1
            taken.append(match.span())
    if not _THREE_DIGITS.search(text):
        return found
    for match in _CARD.finditer(text):
        digits = _NON_DIGIT.sub("", match.group())
        if digits.count(digits[0]) != len(digits) and luhn_valid(digits) and not _overlaps(match.span(), taken):
            found["payment_card"] += 1
            taken.append(match.span())
    if "+" in text:
        for match in _PHONE_INTERNATIONAL.finditer(text):
            count = len(_NON_DIGIT.sub("", match.group()))
            if 9 <= count <= 15 and not _overlaps(match.span(), taken):
                found["phone"] += 1
                taken.append(match.span())
    for match in _PHONE_US.finditer(text):
        if not _overlaps(match.span(), taken):
            found["phone"] += 1
            taken.append(match.span())
    return found


def normalise_text(text: str) -> str:
    """Case-folded, punctuation stripped, whitespace collapsed: ``"Hello,  World!"`` -> ``"hello world"``."""
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_PUNCTUATION).split())
    return " ".join(_PUNCTUATION.sub("", text.casefold()).split())


def nearest_rank(counts: Mapping[int, int], percent: float) -> int | None:
    """The nearest-rank ``percent``-th percentile of values given as ``{value: how many}`` (None when empty)."""
    n = sum(counts.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(percent * n / 100))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)  # not reached: rank <= n


def _hash(data: bytes) -> int:
    """A 64-bit hash, never 0 (0 marks a line without one)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") or 1


def _text_hash(text: str) -> int:
    return _hash(text.encode("utf-8", "surrogatepass"))


_FIRST = [0]
_FIRST_TWO = [0, 1]


def _parts(record: Record) -> tuple[list[str], list[int], list[str], list[str] | None]:
    """``(text fields, indexes of the input fields among them, other strings (roles), labels or None)``."""
    if isinstance(record, PromptCompletion):
        return [record.prompt, record.completion], _FIRST, [], None
    if isinstance(record, Classification):
        if isinstance(record.labels, list):
            labels = record.labels
        elif isinstance(record.label, str):
            labels = [record.label]
        else:
            labels = []
        return [record.text], _FIRST, [], labels
    if isinstance(record, Summarization):
        return [record.document, record.summary], _FIRST, [], None
    if isinstance(record, QuestionAnswer):
        return [record.context, record.question, *record.answers], _FIRST_TWO, [], None
    if isinstance(record, Conversation):
        texts = [block.text for block in record.system] if isinstance(record.system, list) else []
        inputs: list[int] = []
        for message in record.messages:
            if message.role == "user":
                inputs.extend(range(len(texts), len(texts) + len(message.content)))
            texts.extend(block.text for block in message.content)
        return texts, inputs, [m.role for m in record.messages], None
    if isinstance(record, LegacyConversation):
        texts = [record.system] if isinstance(record.system, str) else []
        inputs = []
        for legacy in record.messages:
            if legacy.role == "user":
                inputs.append(len(texts))
            texts.append(legacy.content)
        return texts, inputs, [m.role for m in record.messages], None
    raise TypeError(f"not a record: {type(record).__name__}")


def _sorted_hashes(hashes: array[int]) -> Iterator[int]:
    """The non-zero values of ``hashes`` in ascending order (sorted in bounded runs, merged lazily)."""
    runs = [
        array("Q", sorted(h for h in hashes[start : start + SORT_RUN] if h))
        for start in range(0, len(hashes), SORT_RUN)
    ]
    return heapq.merge(*runs)


# -- results --------------------------------------------------------------------------------------------


@dataclass
class Lines:
    """How many records, and the first of their line numbers."""

    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int, cap: int) -> None:
        self.count += 1
        if len(self.lines) < cap:
            self.lines.append(line)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "lines": list(self.lines)}


@dataclass
class HistogramBin:
    low: int
    high: int
    count: int

    def as_dict(self) -> dict[str, int]:
        return {"low": self.low, "high": self.high, "count": self.count}


@dataclass
class TokenStats:
    chars_per_token: float
    basis: Literal["default", "model"]
    model: str | None
    records: int
    total: int
    min: int | None
    p50: int | None
    p95: int | None
    max: int | None
    histogram: list[HistogramBin]

    @property
    def estimate(self) -> str:
        return f"ceil(characters / {self.chars_per_token:g})"

    @property
    def mean(self) -> float | None:
        return round(self.total / self.records, 2) if self.records else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "chars_per_token": self.chars_per_token,
            "basis": self.basis,
            "model": self.model,
            "records": self.records,
            "total": self.total,
            "mean": self.mean,
            "min": self.min,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
            "histogram": [b.as_dict() for b in self.histogram],
        }


@dataclass
class DuplicateGroup:
    count: int
    lines: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "lines": list(self.lines)}


@dataclass
class DuplicateStats:
    records: int
    groups: int
    first_groups: list[DuplicateGroup]

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "groups": self.groups,
            "first_groups": [g.as_dict() for g in self.first_groups],
        }


@dataclass
class LabelStats:
    kind: Literal["single", "multi", "mixed"]
    records: int
    classes: int
    counts: dict[str, int]
    truncated: bool
    largest: str
    smallest: str
    imbalance_ratio: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "records": self.records,
            "classes": self.classes,
            "counts": dict(self.counts),
            "truncated": self.truncated,
            "largest": self.largest,
            "smallest": self.smallest,
            "imbalance_ratio": self.imbalance_ratio,
        }


@dataclass
class OverLimit:
    model: str
    name: str
    max_tokens: int
    chars_per_token: float
    count: int
    lines: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "name": self.name,
            "max_tokens": self.max_tokens,
            "chars_per_token": self.chars_per_token,
            "count": self.count,
            "lines": list(self.lines),
        }


@dataclass
class PiiFindings:
    records: int = 0
    matches: int = 0
    lines: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "matches": self.matches, "lines": list(self.lines)}


@dataclass
class FileStats:
    name: str | None
    source: str | None
    format: str | None
    records: int
    valid_records: int
    analysed_records: int
    bytes: int
    model: str | None
    issues_by_code: dict[str, int]
    file_issues: list[Issue]
    tokens: TokenStats
    exact_duplicates: DuplicateStats
    normalised_duplicates: DuplicateStats
    empty_records: int
    empty_fields: dict[str, Lines]
    labels: LabelStats | None
    over_token_limit: list[OverLimit]
    pii: dict[str, PiiFindings]
    pii_records: int
    input_hashes: array[int] = field(default_factory=lambda: array("Q"), repr=False, compare=False)
    """Normalised-input hash of every line (0: none), by line - 1; for leakage, not part of ``as_dict``."""

    @property
    def invalid_records(self) -> int:
        return self.records - self.valid_records

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "format": self.format,
            "records": self.records,
            "valid_records": self.valid_records,
            "invalid_records": self.invalid_records,
            "analysed_records": self.analysed_records,
            "bytes": self.bytes,
            "model": self.model,
            "issues_by_code": dict(self.issues_by_code),
            "file_issues": [issue.as_dict() for issue in self.file_issues],
            "tokens": self.tokens.as_dict(),
            "duplicates": {
                "exact": self.exact_duplicates.as_dict(),
                "normalised": self.normalised_duplicates.as_dict(),
            },
            "empty_fields": {
                "records": self.empty_records,
                "fields": {name: lines.as_dict() for name, lines in self.empty_fields.items()},
            },
            "labels": self.labels.as_dict() if self.labels else None,
            "over_token_limit": [row.as_dict() for row in self.over_token_limit],
            "pii": {kind: findings.as_dict() for kind, findings in self.pii.items()},
            "pii_records": self.pii_records,
        }


@dataclass
class Leak:
    line: int
    train_line: int

    def as_dict(self) -> dict[str, int]:
        return {"line": self.line, "train_line": self.train_line}


@dataclass
class LeakageStats:
    """Records of one split whose normalised input equals that of a train record."""

    records: int  # records of the split with an input to compare
    leaked: int
    first: list[Leak]

    @property
    def fraction(self) -> float | None:
        return round(self.leaked / self.records, 4) if self.records else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "leaked": self.leaked,
            "fraction": self.fraction,
            "first": [leak.as_dict() for leak in self.first],
        }


@dataclass
class SplitStats:
    splits: dict[str, FileStats]
    leakage: dict[str, LeakageStats]
    train_split: str = "train"

    def as_dict(self) -> dict[str, Any]:
        return {
            "train_split": self.train_split,
            "splits": {name: stats.as_dict() for name, stats in self.splits.items()},
            "leakage": {name: leak.as_dict() for name, leak in self.leakage.items()},
        }


# -- collecting -----------------------------------------------------------------------------------------


class StatsValidator(Validator):
    """A ``Validator`` that also keeps every file-level issue (line 0), whatever its ``max_errors``.

    ``StatsCollector`` counts line errors itself, so ``stats_validator`` keeps none of them in memory.
    """

    @property
    def file_issues(self) -> list[Issue]:
        return self.file_errors


def stats_validator(
    *, data_format: str | None = None, limits: ModelLimits | None = None, role: Role = "train"
) -> StatsValidator:
    """The validator ``file_stats`` streams through (no line error kept: the collector counts them)."""
    return StatsValidator(data_format=data_format, limits=limits, role=role, max_errors=0)


class StatsCollector:
    """Statistics of the lines of one file: ``add`` every ``Checked`` of ``validator``, then ``finish``.

    ``limits`` (default: the validator's) gives the characters per token of the estimate and the model shown.
    """

    def __init__(
        self,
        validator: Validator,
        *,
        limits: ModelLimits | None = None,
        max_lines: int = MAX_LINES,
        max_groups: int = MAX_GROUPS,
        max_labels: int = MAX_LABELS,
    ) -> None:
        self.validator = validator
        self.limits = limits if limits is not None else validator.limits
        self.chars_per_token = self.limits.chars_per_token if self.limits else DEFAULT_CHARS_PER_TOKEN
        self.max_lines = max_lines
        self.max_groups = max_groups
        self.max_labels = max_labels
        self._decoders = decoders()
        self._lines = 0
        self._analysed = 0
        self._exact: array[int] = array("Q")
        self._normalised: array[int] = array("Q")
        self._inputs: array[int] = array("Q")
        self._tokens: Counter[int] = Counter()
        self._total_tokens = 0
        self._codes: Counter[str] = Counter()
        self._empty_records = 0
        self._empty: dict[str, Lines] = {}
        self._labels: Counter[str] = Counter()
        self._label_records = 0
        self._label_kinds: set[str] = set()
        self._pii = {kind: PiiFindings() for kind in PII_KINDS}
        self._pii_records = 0
        self._rows: list[ModelLimits] | None = None
        self._over: dict[str, Lines] = {}

    def add(self, checked: Checked) -> None:
        number, data, record, issues = checked
        while self._lines < number - 1:  # lines always come one by one; keep the arrays aligned if not
            self._skip()
        self._lines = number
        if issues:
            self._count_issues(number, issues)
        if record is None and data is not None:
            record = self._decode(data)
        if record is None:
            self._exact.append(0)
            self._normalised.append(0)
            self._inputs.append(0)
            return
        self._analyse(number, record)

    def _skip(self) -> None:
        self._lines += 1
        self._exact.append(0)
        self._normalised.append(0)
        self._inputs.append(0)

    def _count_issues(self, number: int, issues: list[Issue]) -> None:
        empty: set[str] = set()
        for issue in issues:
            self._codes[issue.code] += 1
            if issue.code == "empty_text":
                empty.add(_INDEX.sub("[]", issue.field or ""))
        if empty:
            self._empty_records += 1
            for name in sorted(empty):
                self._empty.setdefault(name, Lines()).add(number, self.max_lines)

    def _decode(self, data: bytes) -> Record | None:
        """An invalid line that still decodes into the format's schema (empty field, bad role order...)."""
        data_format = self.validator.format
        if data_format is None:
            return None
        try:
            record: Record = self._decoders[data_format].decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        return record

    def _analyse(self, number: int, record: Record) -> None:
        self._analysed += 1
        texts, inputs, others, labels = _parts(record)
        text = "".join(texts)
        tokens = estimate_tokens(text, self.chars_per_token)
        self._tokens[tokens] += 1
        self._total_tokens += tokens
        self._exact.append(_hash(msgspec.json.encode(record)))
        normalised = [normalise_text(s) for s in texts]
        strings = [*normalised, *(normalise_text(s) for s in others), *(normalise_text(s) for s in labels or ())]
        self._normalised.append(_text_hash(_SEP.join(strings)))
        key = _SEP.join(normalised[index] for index in inputs)
        self._inputs.append(_text_hash(key) if key.strip(_SEP) else 0)
        if labels is not None:
            self._count_labels(record, labels)
        by_ratio = {self.chars_per_token: tokens}
        for row in self._model_rows():
            estimate = by_ratio.get(row.chars_per_token)
            if estimate is None:
                estimate = by_ratio[row.chars_per_token] = estimate_tokens(text, row.chars_per_token)
            if estimate > row.max_tokens_per_record:
                self._over.setdefault(row.model_id, Lines()).add(number, self.max_lines)
        found = find_pii("\n".join(texts))
        self._pii_records += any(found.values())
        for kind, matches in found.items():
            if matches:
                findings = self._pii[kind]
                findings.records += 1
                findings.matches += matches
                if len(findings.lines) < self.max_lines:
                    findings.lines.append(number)

    def _count_labels(self, record: Record, labels: list[str]) -> None:
        assert isinstance(record, Classification)
        if labels:
            self._label_kinds.add("multi" if isinstance(record.labels, list) else "single")
        counted = False
        for label in dict.fromkeys(labels):
            if label and not label.isspace():
                self._labels[label] += 1
                counted = True
        self._label_records += counted

    def _model_rows(self) -> list[ModelLimits]:
        if self._rows is None:
            data_format = self.validator.format
            if data_format is None:
                return []
            self._rows = [row for row in MODEL_LIMITS if data_format in row.formats]
        return self._rows

    # -- results ------------------------------------------------------------------------------------
    def finish(self, *, name: str | None = None, source: str | None = None) -> FileStats:
        """The statistics, once every line was added (and the validator's pass ended)."""
        report = self.validator.report()
        file_issues = getattr(self.validator, "file_issues", None)
        if file_issues is None:
            file_issues = [issue for issue in report.errors if issue.line == 0]
        stats = FileStats(
            name=name,
            source=source,
            format=report.format,
            records=report.records,
            valid_records=report.valid_records,
            analysed_records=self._analysed,
            bytes=report.bytes,
            model=self.limits.model_id if self.limits else None,
            issues_by_code=dict(sorted(self._codes.items(), key=lambda item: (-item[1], item[0]))),
            file_issues=[*file_issues, *report.warnings],
            tokens=self._token_stats(),
            exact_duplicates=_duplicates(self._exact, self.max_groups, self.max_lines),
            normalised_duplicates=_duplicates(self._normalised, self.max_groups, self.max_lines),
            empty_records=self._empty_records,
            empty_fields=dict(sorted(self._empty.items())),
            labels=self._label_stats() if report.format == "classification" else None,
            over_token_limit=self._over_limit(),
            pii=self._pii,
            pii_records=self._pii_records,
            input_hashes=self._inputs,
        )
        self._exact = array("Q")
        self._normalised = array("Q")
        return stats

    def _token_stats(self) -> TokenStats:
        counts = self._tokens
        return TokenStats(
            chars_per_token=self.chars_per_token,
            basis="model" if self.limits else "default",
            model=self.limits.model_id if self.limits else None,
            records=sum(counts.values()),
            total=self._total_tokens,
            min=min(counts) if counts else None,
            p50=nearest_rank(counts, 50),
            p95=nearest_rank(counts, 95),
            max=max(counts) if counts else None,
            histogram=histogram(counts, HISTOGRAM_BINS),
        )

    def _label_stats(self) -> LabelStats | None:
        if not self._labels:
            return None
        ordered = sorted(self._labels.items(), key=lambda item: (-item[1], item[0]))
        largest, smallest = ordered[0], ordered[-1]
        kinds = self._label_kinds
        kind: Literal["single", "multi", "mixed"] = (
            "mixed" if len(kinds) > 1 else "multi" if "multi" in kinds else "single"
        )
        return LabelStats(
            kind=kind,
            records=self._label_records,
            classes=len(ordered),
            counts=dict(ordered[: self.max_labels]),
            truncated=len(ordered) > self.max_labels,
            largest=largest[0],
            smallest=smallest[0],
            imbalance_ratio=largest[1] / smallest[1],
        )

    def _over_limit(self) -> list[OverLimit]:
        rows = []
        for row in self._model_rows():
            lines = self._over.get(row.model_id, Lines())
            rows.append(
                OverLimit(
                    model=row.model_id,
                    name=row.name,
                    max_tokens=row.max_tokens_per_record,
                    chars_per_token=row.chars_per_token,
                    count=lines.count,
                    lines=lines.lines,
                )
            )
        return rows


def histogram(counts: Mapping[int, int], bins: int = HISTOGRAM_BINS) -> list[HistogramBin]:
    """At most ``bins`` bins of equal integer width from the smallest to the largest value (the last may be
    narrower), over values given as ``{value: how many}``."""
    if not counts:
        return []
    low, high = min(counts), max(counts)
    width = max(1, math.ceil((high - low + 1) / bins))
    totals = [0] * math.ceil((high - low + 1) / width)
    for value, count in counts.items():
        totals[(value - low) // width] += count
    return [
        HistogramBin(low + i * width, min(high, low + (i + 1) * width - 1), total) for i, total in enumerate(totals)
    ]


def _duplicates(hashes: array[int], max_groups: int, max_lines: int) -> DuplicateStats:
    repeated: dict[int, int] = {}
    previous, run = 0, 0
    for value in _sorted_hashes(hashes):
        if value == previous:
            run += 1
            continue
        if run > 1:
            repeated[previous] = run
        previous, run = value, 1
    if run > 1:
        repeated[previous] = run
    groups: dict[int, DuplicateGroup] = {}
    if repeated:
        for index, value in enumerate(hashes):
            if value not in repeated:
                continue
            group = groups.get(value)
            if group is None:
                if len(groups) >= max_groups:
                    continue
                group = groups[value] = DuplicateGroup(repeated[value], [])
            if len(group.lines) < max_lines:
                group.lines.append(index + 1)
    return DuplicateStats(
        records=sum(count - 1 for count in repeated.values()), groups=len(repeated), first_groups=list(groups.values())
    )


def _leakage(train: FileStats, others: Mapping[str, FileStats], max_lines: int) -> dict[str, LeakageStats]:
    known = array("Q", _sorted_hashes(train.input_hashes))
    size = len(known)
    results: dict[str, LeakageStats] = {}
    shown: dict[str, list[tuple[int, int]]] = {}
    for name, stats in others.items():
        records = leaked = 0
        first: list[tuple[int, int]] = []
        for index, value in enumerate(stats.input_hashes):
            if not value:
                continue
            records += 1
            position = bisect_left(known, value)
            if position < size and known[position] == value:
                leaked += 1
                if len(first) < max_lines:
                    first.append((index + 1, value))
        results[name] = LeakageStats(records=records, leaked=leaked, first=[])
        shown[name] = first
    wanted = {value for first in shown.values() for _, value in first}
    train_line: dict[int, int] = {}
    if wanted:
        for index, value in enumerate(train.input_hashes):
            if value in wanted and value not in train_line:
                train_line[value] = index + 1
    for name, first in shown.items():
        results[name].first = [Leak(line, train_line[value]) for line, value in first]
    return results


# -- entry points ---------------------------------------------------------------------------------------


def file_stats(
    chunks: Iterable[bytes],
    *,
    data_format: str | None = None,
    limits: ModelLimits | None = None,
    role: Role | None = "train",
    name: str | None = None,
    source: str | None = None,
    max_lines: int = MAX_LINES,
    max_groups: int = MAX_GROUPS,
    max_labels: int = MAX_LABELS,
) -> FileStats:
    """The statistics of one file given as byte chunks, in one streaming pass.

    ``limits`` sets the characters per token and validates against the model (``role`` says which record-count
    and size limits apply; None: the model's token and format rules only, for a test split Bedrock never sees).

    Raises:
        ValueError: ``data_format`` is not a known format.
    """
    validator = stats_validator(data_format=data_format, limits=limits if role else None, role=role or "train")
    collector = StatsCollector(
        validator, limits=limits, max_lines=max_lines, max_groups=max_groups, max_labels=max_labels
    )
    for checked in validator.check_chunks(chunks, hash_file=False):
        collector.add(checked)
    return collector.finish(name=name, source=source)


def compare_splits(
    splits: Mapping[str, Iterable[bytes]],
    *,
    train_split: str = "train",
    sources: Mapping[str, str] | None = None,
    data_format: str | None = None,
    limits: ModelLimits | None = None,
    max_lines: int = MAX_LINES,
    max_groups: int = MAX_GROUPS,
    max_labels: int = MAX_LABELS,
) -> SplitStats:
    """The statistics of every split (name -> byte chunks), and the leakage of each other split into train.

    The train split is validated with the train limits of ``limits``, ``validation`` with the validation ones,
    any other split (``test``) with neither (Bedrock never reads it).

    Raises:
        ValueError: ``train_split`` is not one of ``splits``, or ``data_format`` is not a known format.
    """
    if train_split not in splits:
        raise ValueError(f"no {train_split!r} split among {', '.join(splits) or 'none'}")
    results: dict[str, FileStats] = {}
    for name, chunks in splits.items():
        role: Role | None = "train" if name == train_split else "validation" if name == "validation" else None
        results[name] = file_stats(
            chunks,
            data_format=data_format,
            limits=limits,
            role=role,
            name=name,
            source=(sources or {}).get(name),
            max_lines=max_lines,
            max_groups=max_groups,
            max_labels=max_labels,
        )
    others = {name: stats for name, stats in results.items() if name != train_split}
    return SplitStats(
        splits=results, leakage=_leakage(results[train_split], others, max_lines), train_split=train_split
    )
