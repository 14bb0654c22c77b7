"""Streaming validation of a fine-tuning data file: every line checked, every problem located.

One pass, constant memory (lines are read from a chunk stream and dropped once checked). Each line is
first decoded straight into its format's schema by msgspec (the fast path); only a line that fails is
parsed again with ``json`` to name the exact problem (duplicate key, NaN, wrong type at a JSON path...).

The report is the contract of ``fmops data validate --format json`` (docs/DATA.md):
``{"valid", "records", "valid_records", "errors": [{"line", "field", "code", "message"}], "warnings",
"format", ...}``. Line numbers are 1-based physical lines; line 0 means the file as a whole.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import msgspec

from fmops.data.checks import FAST_CHECKS, check_record, diagnose, has_duplicate_keys
from fmops.data.lines import BOM, GZIP_MAGIC, MAX_LINE_BYTES, HashingChunks, LineBatch, iter_line_batches
from fmops.data.schemas import (
    FORMATS,
    SCHEMAS,
    Record,
    decoders,
    detect_format,
    string_count,
    with_extra_fields,
)

if TYPE_CHECKING:
    from fmops.data.limits import ModelLimits

Role = Literal["train", "validation"]


class Issue(NamedTuple):
    line: int
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


_new = tuple.__new__


class Checked(NamedTuple):
    """One line after validation: ``data`` is its bytes (None when over the size limit; BOM and CR removed),
    ``record`` is None when ``issues`` holds its errors."""

    number: int
    data: bytes | None
    record: Record | None
    issues: list[Issue]


@dataclass
class ValidationReport:
    valid: bool
    records: int
    valid_records: int
    errors: list[Issue]
    warnings: list[Issue]
    format: str | None
    error_count: int
    warning_count: int
    model: str | None = None
    bytes: int = 0
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "records": self.records,
            "valid_records": self.valid_records,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
            "format": self.format,
            "error_count": self.error_count,
            "warning_count": self.warning_count,
            "model": self.model,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """The report ``as_dict()`` wrote (a shard's result read back from S3 or a worker process)."""
        return cls(
            valid=data["valid"],
            records=data["records"],
            valid_records=data["valid_records"],
            errors=[Issue(**e) for e in data["errors"]],
            warnings=[Issue(**w) for w in data["warnings"]],
            format=data["format"],
            error_count=data["error_count"],
            warning_count=data["warning_count"],
            model=data.get("model"),
            bytes=data.get("bytes", 0),
            sha256=data.get("sha256"),
        )

    def summary(self) -> str:
        verdict = "valid" if self.valid else "INVALID"
        return (
            f"{verdict}: {self.valid_records} of {self.records} records valid ({self.format or 'unknown format'}), "
            f"{self.error_count} error(s), {self.warning_count} warning(s)"
        )


@dataclass
class _Collector:
    max_items: int | None
    items: list[Issue] = field(default_factory=list)
    count: int = 0

    def add(self, issue: Issue) -> None:
        self.count += 1
        if self.max_items is None or len(self.items) < self.max_items:
            self.items.append(issue)


class Validator:
    """Validates lines of one file; iterate ``check(...)``, then read ``report()``.

    ``data_format`` None detects the format from the first line that is a JSON object. ``limits`` adds
    the model's token, record-count and file-size limits (``role`` says which split's limits apply).
    """

    def __init__(
        self,
        *,
        data_format: str | None = None,
        limits: ModelLimits | None = None,
        role: Role = "train",
        max_errors: int | None = None,
        max_warnings: int | None = 100,
        max_line_bytes: int = MAX_LINE_BYTES,
        extra_fields: Iterable[str] = (),
    ) -> None:
        if data_format is not None and data_format not in SCHEMAS:
            raise ValueError(f"unknown data format {data_format!r}; one of {', '.join(FORMATS)}")
        self.format = data_format
        self.limits = limits
        self.role = role
        self.max_line_bytes = max_line_bytes
        self.extra_fields = tuple(extra_fields)
        self._schemas = with_extra_fields(self.extra_fields)
        self._decoders = decoders(self.extra_fields)
        self._errors = _Collector(max_errors)
        self.file_errors: list[Issue] = []  # whole-file problems: always reported, whatever max_errors says
        self._warnings = _Collector(max_warnings)
        self.records = 0
        self.valid_records = 0
        self.bytes = 0
        self.sha256: str | None = None
        self._crlf_lines = 0  # lines that ended with CRLF (one warning at the end)
        # A record over max_tokens * chars_per_token characters is over the (estimated) token limit.
        self._token_budget = limits.max_tokens_per_record * limits.chars_per_token if limits else math.inf
        if limits and data_format and data_format not in limits.formats:
            self._file_error("format_not_supported", self._format_message(data_format))

    # -- reporting ----------------------------------------------------------------------------------
    @property
    def crlf_lines(self) -> int:
        """Lines seen so far that ended with CRLF (reported as one warning by ``finish()``)."""
        return self._crlf_lines

    def reject(self, issue: Issue) -> None:
        """Record a problem found by the caller (a line already counted valid, when ``issue.line``)."""
        if issue.line:
            self._errors.add(issue)
            self.valid_records -= 1
        else:
            self._file_error(issue.code, issue.message, issue.field)

    def absorb(self, part: ValidationReport, *, line_offset: int, crlf_lines: int = 0) -> None:
        """Add the result of a shard validated elsewhere (its lines numbered from 1) to this file's counts.

        Shards must be absorbed in file order; ``finish()`` then applies the whole-file rules.
        """
        # Whole-file issues of a shard (line 0) are this validator's own business: they are left out.
        for mine, issues, total in (
            (self._errors, part.errors, part.error_count),
            (self._warnings, part.warnings, part.warning_count),
        ):
            file_level = listed = 0
            for issue in issues:
                if issue.line:
                    mine.add(issue._replace(line=issue.line + line_offset))
                    listed += 1
                else:
                    file_level += 1
            mine.count += total - file_level - listed  # the shard's issues beyond its own list
        self.records += part.records
        self.valid_records += part.valid_records
        self._crlf_lines += crlf_lines
        if self.format is None:
            self.format = part.format

    def _file_error(self, code: str, message: str, field: str | None = None) -> None:
        issue = Issue(0, field, code, message)
        self.file_errors.append(issue)
        self._errors.add(issue)

    def _format_message(self, data_format: str) -> str:
        assert self.limits
        return (
            f"{data_format} data is not accepted by {self.limits.model_id}; it takes {', '.join(self.limits.formats)}"
        )

    def report(self) -> ValidationReport:
        listed = self._errors.items
        return ValidationReport(
            valid=self._errors.count == 0,
            records=self.records,
            valid_records=self.valid_records,
            errors=[*listed, *(e for e in self.file_errors if e not in listed)],
            warnings=self._warnings.items,
            format=self.format,
            error_count=self._errors.count,
            warning_count=self._warnings.count,
            model=self.limits.model_id if self.limits else None,
            bytes=self.bytes,
            sha256=self.sha256,
        )

    # -- checking -----------------------------------------------------------------------------------
    def check_chunks(
        self, chunks: Iterable[bytes], *, hash_file: bool = True, emit_valid: bool = True
    ) -> Iterator[Checked]:
        """Check a whole file given as byte chunks (file-level rules included).

        With ``emit_valid`` False only the lines with problems are yielded (plain validation: faster).
        """
        hashing = HashingChunks(chunks)
        stream = iter(hashing)
        first = next(stream, b"")
        if first.startswith(GZIP_MAGIC):
            self._file_error("compressed_file", "the file is gzip-compressed; decompress it (gunzip) and upload JSONL")
            self.bytes = len(first)
            return

        def _all() -> Iterator[bytes]:
            yield first
            yield from stream

        batches = iter_line_batches(_all(), max_line_bytes=self.max_line_bytes)
        yield from self.check_lines(batches, emit_valid=emit_valid)
        self.bytes = hashing.size
        self.sha256 = hashing.sha256 if hash_file else None
        self.finish()

    def finish(self) -> None:
        """File-level rules, once every line has been checked."""
        if self.bytes == 0 and self.records == 0:
            self._file_error("empty_file", "the file is empty")
        if self._crlf_lines:
            self._warnings.add(
                Issue(0, None, "crlf", f"{self._crlf_lines} line(s) end with CRLF; the carriage returns are ignored")
            )
        limits = self.limits
        if limits is None or self.records == 0:
            return
        if self.role == "train":
            low, high, size = limits.min_train_records, limits.max_train_records, limits.max_train_file_bytes
        else:
            low, high, size = 0, limits.max_validation_records, limits.max_validation_file_bytes
        if self.valid_records < low:
            self._file_error(
                "too_few_records", f"{self.valid_records:,} valid record(s); {limits.model_id} needs at least {low:,}"
            )
        if self.records > high:
            self._file_error(
                "too_many_records", f"{self.records:,} records; {limits.model_id} takes at most {high:,} ({self.role})"
            )
        if self.bytes > size:
            self._file_error(
                "file_too_large", f"{self.bytes:,} bytes; {limits.model_id} takes at most {size:,} ({self.role})"
            )

    def check_lines(
        self, batches: Iterable[LineBatch], *, line_offset: int = 0, emit_valid: bool = True
    ) -> Iterator[Checked]:
        """Check lines (of a whole file or of a shard; ``line_offset`` makes shard line numbers global)."""
        # The hot loop of the whole data path: locals only, no per-line allocation on the valid path.
        decode = self._decoders[self.format].decode if self.format else None
        fast_check: Any = FAST_CHECKS[SCHEMAS[self.format]] if self.format else None
        budget = self._token_budget
        add_error = self._errors.add
        no_issues: list[Issue] = []
        decode_errors = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)
        records = valid = crlf_lines = 0
        try:
            for first, lines, unterminated in batches:
                number = first + line_offset - 1
                records += len(lines)
                line: Any
                for line in lines:
                    number += 1
                    data: bytes = line
                    if line.__class__ is int:
                        issue = Issue(
                            number, None, "line_too_long", f"is {line:,} bytes, over the {self.max_line_bytes:,} limit"
                        )
                        add_error(issue)
                        yield _new(Checked, (number, None, None, [issue]))
                        continue
                    if data.endswith(b"\r"):
                        crlf_lines += 1
                        data = data[:-1]
                    if number == 1 and data.startswith(BOM):
                        data = data[len(BOM) :]
                        self._warnings.add(
                            Issue(1, None, "bom", "the file starts with a UTF-8 byte-order mark; it is ignored")
                        )
                    record: Any = None
                    if decode is not None:
                        try:
                            record = decode(data)
                        except decode_errors:
                            record = None
                        else:
                            strings, chars = fast_check(record)
                            rules_ok = strings >= 0
                            if not rules_ok:
                                strings = string_count(record)
                            # The decoder keeps the last of equal keys. A duplicate key adds strings the
                            # record does not show, so the quotes in the line tell: two per string, plus
                            # one per escaped quote; only an escaped backslash before a quote is ambiguous.
                            quotes = data.count(b'"')
                            if quotes != 2 * strings and (
                                quotes - data.count(b'\\"') != 2 * strings or b'\\\\"' in data
                            ):
                                if has_duplicate_keys(data):
                                    record = None  # the diagnosis names the key
                            if record is not None and rules_ok and chars <= budget:
                                valid += 1
                                if emit_valid:
                                    yield _new(Checked, (number, data, record, no_issues))
                                continue
                    if record is not None:
                        problems, chars = check_record(record)
                        issues = [Issue(number, f, c, m) for f, c, m in problems]
                        if chars > budget:
                            issues.append(self._token_issue(number, chars))
                    else:
                        issues, record = self._diagnose(data, number, unterminated and line is lines[-1])
                        decode = self._decoders[self.format].decode if self.format else None
                        fast_check = FAST_CHECKS[SCHEMAS[self.format]] if self.format else None
                        budget = self._token_budget
                    if issues:
                        for issue in issues:
                            add_error(issue)
                        yield _new(Checked, (number, data, None, issues))
                    else:
                        valid += 1
                        if emit_valid:
                            yield _new(Checked, (number, data, record, no_issues))
        finally:
            self.records += records
            self.valid_records += valid
            self._crlf_lines += crlf_lines

    def _diagnose(self, data: bytes, number: int, last: bool) -> tuple[list[Issue], Record | None]:
        """The slow path: exact problems of one line (and the format, if it was not known yet)."""
        schema = self._schemas[self.format] if self.format else None
        problems, decoded = diagnose(data, schema)
        if schema is None and decoded is not None and not problems:
            detected = detect_format(decoded)
            if detected is None:
                problems = [(None, "unknown_format", self._unknown_format(decoded))]
            else:
                self._set_format(detected)
                problems, decoded = diagnose(data, self._schemas[detected])
        if last and problems and problems[0][1] == "invalid_json":
            problems = [(None, "truncated_line", "the last line is incomplete JSON (was the file cut off?)")]
        issues = [Issue(number, f, c, m) for f, c, m in problems]
        record = decoded if not problems else None
        if record is not None:
            _, chars = check_record(record)
            if chars > self._token_budget:
                issues.append(self._token_issue(number, chars))
                record = None
        return issues, record

    def _set_format(self, detected: str) -> None:
        self.format = detected
        if self.limits and detected not in self.limits.formats:
            self._file_error("format_not_supported", self._format_message(detected))

    @staticmethod
    def _unknown_format(obj: dict[str, Any]) -> str:
        keys = ", ".join(sorted(obj)[:8]) or "no keys"
        return f"matches no known format (keys: {keys}); formats: {', '.join(FORMATS)}"

    def _token_issue(self, number: int, chars: int) -> Issue:
        limits = self.limits
        assert limits is not None
        tokens = math.ceil(chars / limits.chars_per_token)
        return Issue(
            number,
            None,
            "too_many_tokens",
            f"about {tokens:,} tokens, over the {limits.max_tokens_per_record:,} limit of {limits.model_id}",
        )


def validate_chunks(chunks: Iterable[bytes], *, hash_file: bool = True, **options: Any) -> ValidationReport:
    """Validate a whole file given as byte chunks and return its report (see ``Validator`` for options).

    ``hash_file`` False leaves the report's ``sha256`` out (about a tenth faster).
    """
    validator = Validator(**options)
    # The decoded records hold no reference cycles and die at once; the cycle collector would only walk
    # them (about 5% of the time). It is off for this loop alone, which runs no caller code.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in validator.check_chunks(chunks, hash_file=hash_file, emit_valid=False):
            pass
    finally:
        if collecting:
            gc.enable()
    return validator.report()
