"""The streaming validator: every kind of bad input gets a located, typed error; good data passes fast."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from fmops.data.limits import get_limits
from fmops.data.lines import iter_line_batches, iter_lines
from fmops.data.validate import Validator, validate_chunks

PC = b'{"prompt": "What is 2+2?", "completion": "4"}'
CONV = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You route tickets."}],
    "messages": [
        {"role": "user", "content": [{"text": "My invoice is wrong"}]},
        {"role": "assistant", "content": [{"text": "billing"}]},
    ],
}


def lines(*rows: bytes, end: bytes = b"\n") -> bytes:
    return b"".join(r + end for r in rows)


def report(data: bytes, **options):
    return validate_chunks([data], **options)


def only_error(data: bytes, **options):
    rep = report(data, **options)
    assert rep.error_count == 1, rep.as_dict()
    return rep.errors[0]


def conv(**changes) -> bytes:
    return json.dumps({**CONV, **changes}).encode()


# -- good data -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        (PC, "prompt-completion"),
        (json.dumps(CONV).encode(), "conversation"),
        (
            b'{"system": "be brief", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
            b'"content": "hello"}]}',
            "conversation-legacy",
        ),
        (b'{"text": "great film", "label": "pos"}', "classification"),
        (b'{"text": "great film", "labels": ["pos", "film"]}', "classification"),
        (b'{"document": "A long text.", "summary": "Short."}', "summarization"),
        (b'{"context": "Paris is in France.", "question": "Where is Paris?", "answers": ["France"]}', "qa"),
    ],
)
def test_each_format_is_detected_and_valid(row: bytes, fmt: str) -> None:
    rep = report(lines(row, row))
    assert rep.as_dict()["valid"] is True
    assert (rep.format, rep.records, rep.valid_records, rep.error_count) == (fmt, 2, 2, 0)


def test_report_matches_the_json_contract() -> None:
    out = report(lines(PC, b"[1]")).as_dict()
    assert {"valid", "records", "valid_records", "errors", "warnings", "format"} <= out.keys()
    assert out["errors"] == [{"line": 2, "field": None, "code": "not_object", "message": out["errors"][0]["message"]}]
    assert json.loads(json.dumps(out)) == out


def test_escaped_quotes_and_backslashes_in_text_are_not_mistaken_for_duplicate_keys() -> None:
    rows = [
        json.dumps({"prompt": 'say "prompt": now', "completion": "ok"}).encode(),
        json.dumps({"prompt": "a path C:\\dir\\", "completion": 'he said "\\"'}).encode(),
        b'{"prompt" : "spaced" , "completion"\t:\t"tabs"}',
    ]
    rep = report(lines(*rows))
    assert rep.valid, rep.as_dict()


# -- bad input, one case each ----------------------------------------------------------------------------
def test_invalid_utf8_names_the_byte() -> None:
    err = only_error(lines(PC, b'{"prompt": "caf\xe9", "completion": "x"}'))
    assert (err.line, err.code) == (2, "invalid_utf8")
    assert "byte 16" in err.message


def test_byte_order_mark_is_a_warning_and_the_record_stays_valid() -> None:
    rep = report(b"\xef\xbb\xbf" + lines(PC, PC))
    assert rep.valid and rep.valid_records == 2
    assert [(w.line, w.code) for w in rep.warnings] == [(1, "bom")]


def test_crlf_line_ends_are_one_warning_with_a_count() -> None:
    rep = report(lines(PC, PC, PC, end=b"\r\n"))
    assert rep.valid and rep.valid_records == 3
    assert [(w.code, w.message.split()[0]) for w in rep.warnings] == [("crlf", "3")]


def test_blank_lines_are_errors_at_their_physical_line() -> None:
    rep = report(lines(PC, b"", b"   ", PC))
    assert [(e.line, e.code) for e in rep.errors] == [(2, "blank_line"), (3, "blank_line")]
    assert (rep.records, rep.valid_records) == (4, 2)


def test_truncated_last_line() -> None:
    err = only_error(
        lines(PC) + b'{"prompt": "cut',
    )
    assert (err.line, err.code) == (2, "truncated_line")


def test_a_last_line_without_newline_is_fine_when_complete() -> None:
    assert report(lines(PC) + PC).valid


def test_line_that_is_not_a_json_object() -> None:
    for row, kind in ((b"[1, 2]", "an array"), (b'"text"', "a string"), (b"42", "a number"), (b"null", "null")):
        err = only_error(lines(PC, row))
        assert (err.line, err.code) == (2, "not_object")
        assert kind in err.message


def test_invalid_json_names_the_column() -> None:
    err = only_error(lines(PC, b'{"prompt": "a", "completion": "b",}'))
    assert (err.line, err.code) == (2, "invalid_json")
    assert "column" in err.message


@pytest.mark.parametrize(
    "row",
    [
        b'{"prompt": "a", "completion": "b", "prompt": "c"}',
        b'{"prompt": "a", "completion": "b", "prompt": 1}',
        b'{"prompt" : "a", "completion": "b", "prompt" : "c"}',
        b'{"prompt": "a \\\\", "completion": "b", "completion": "c"}',
        b'{"prompt": "a \\"q\\"", "completion": "b", "\\u0070rompt": "c"}',
    ],
)
def test_duplicate_keys_are_found_however_written(row: bytes) -> None:
    err = only_error(lines(PC, row))
    assert (err.line, err.code) == (2, "duplicate_key")


def test_duplicate_keys_inside_nested_objects() -> None:
    row = conv().replace(b'"role": "user"', b'"role": "user", "role": "user"')
    err = only_error(lines(conv(), row))
    assert (err.line, err.code, err.field) == (2, "duplicate_key", "role")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity(constant: bytes) -> None:
    err = only_error(lines(b'{"text": "a", "label": "x"}', b'{"text": "b", "label": ' + constant + b"}"))
    assert (err.line, err.code) == (2, "invalid_number")
    assert constant.lstrip(b"-").decode() in err.message


def test_wrong_types_give_the_json_path() -> None:
    bad = conv(messages=[{"role": "user", "content": [{"text": 7}]}, CONV["messages"][1]])
    err = only_error(lines(conv(), bad))
    assert (err.line, err.field, err.code) == (2, "messages[0].content[0].text", "wrong_type")
    assert "must be a string, got an integer" in err.message


def test_missing_and_extra_fields() -> None:
    rep = report(lines(PC, b'{"prompt": "a"}', b'{"prompt": "a", "completion": "b", "source": "web"}'))
    assert [(e.line, e.field, e.code) for e in rep.errors] == [
        (2, "completion", "missing_field"),
        (3, "source", "unknown_field"),
    ]


def test_empty_and_whitespace_only_text() -> None:
    rep = report(lines(PC, b'{"prompt": "", "completion": "b"}', b'{"prompt": "a", "completion": " \\t\\n"}'))
    assert [(e.line, e.field, e.code) for e in rep.errors] == [
        (2, "prompt", "empty_text"),
        (3, "completion", "empty_text"),
    ]


def test_roles_out_of_order() -> None:
    user, assistant = CONV["messages"]
    rep = report(lines(conv(), conv(messages=[user, user, assistant, assistant])))
    assert {(e.line, e.field, e.code) for e in rep.errors} == {
        (2, "messages[1].role", "role_order"),
        (2, "messages[2].role", "role_order"),
    }


def test_conversation_ending_on_the_user() -> None:
    user, assistant = CONV["messages"]
    err = only_error(lines(conv(), conv(messages=[user, assistant, user])))
    assert (err.line, err.field, err.code) == (2, "messages[2].role", "last_turn_not_assistant")


def test_wrong_schema_version() -> None:
    err = only_error(lines(conv(), conv(schemaVersion="2023")))
    assert (err.line, err.field, err.code) == (2, "schemaVersion", "schema_version")


def test_a_line_of_tens_of_megabytes_is_reported_without_holding_it() -> None:
    huge = b'{"prompt": "' + b"x" * (30 * 1024 * 1024) + b'", "completion": "y"}'
    data = lines(PC, huge, PC)
    chunks = [data[i : i + 1024 * 1024] for i in range(0, len(data), 1024 * 1024)]
    rep = validate_chunks(chunks)
    assert [(e.line, e.code) for e in rep.errors] == [(2, "line_too_long")]
    assert f"{len(huge):,} bytes" in rep.errors[0].message
    assert (rep.records, rep.valid_records) == (3, 2)


def test_gzip_file() -> None:
    err = only_error(gzip.compress(lines(PC, PC)))
    assert (err.line, err.code) == (0, "compressed_file")
    assert "gunzip" in err.message


def test_empty_file() -> None:
    err = only_error(b"")
    assert (err.line, err.code) == (0, "empty_file")


def test_line_matching_no_format() -> None:
    err = only_error(b'{"question_text": "a", "answer_text": "b"}\n')
    assert err.code == "unknown_format"
    assert "question_text" in err.message


def test_every_line_after_a_bad_first_line_is_still_checked() -> None:
    rep = report(lines(b"{oops", PC, b'{"prompt": 1, "completion": "b"}'))
    assert rep.format == "prompt-completion"
    assert [(e.line, e.code) for e in rep.errors] == [(1, "invalid_json"), (3, "wrong_type")]


# -- limits ----------------------------------------------------------------------------------------------
def test_token_limit_names_the_model_and_the_limit() -> None:
    limits = get_limits("anthropic.claude-3-haiku-20240307-v1:0:200k")
    long = json.dumps(
        {
            "system": "s",
            "messages": [{"role": "user", "content": "w " * 80_000}, {"role": "assistant", "content": "ok"}],
        }
    ).encode()
    short = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'
    rep = report(lines(*[short] * 40, long), limits=limits)
    errors = [e for e in rep.errors if e.line]
    assert [(e.line, e.code) for e in errors] == [(41, "too_many_tokens")]
    assert f"over the {limits.max_tokens_per_record:,} limit of {limits.model_id}" in errors[0].message
    assert errors[0].message.startswith("about ")


def test_record_count_and_format_limits() -> None:
    limits = get_limits("anthropic.claude-3-haiku-20240307-v1:0:200k")
    rep = report(lines(PC, PC), limits=limits)
    codes = {e.code for e in rep.errors}
    assert {"format_not_supported", "too_few_records"} <= codes
    assert all(e.line == 0 for e in rep.errors)


def test_max_errors_caps_the_list_but_not_the_counts() -> None:
    rep = report(lines(*[b"[]"] * 50, PC), max_errors=5)
    assert (len(rep.errors), rep.error_count, rep.records, rep.valid_records) == (5, 50, 51, 1)


# -- streaming and shards --------------------------------------------------------------------------------
def _random_file(seed: int) -> bytes:
    rng = random.Random(seed)
    rows = []
    for i in range(300):
        text = "".join(rng.choice('ab "\\é\n') for _ in range(rng.randint(0, 40)))
        rows.append(json.dumps({"prompt": f"{i} {text}", "completion": "c"}, ensure_ascii=rng.random() < 0.5).encode())
    return b"\n".join(rows) + (b"\n" if seed % 2 else b"")


@pytest.mark.parametrize("seed", range(6))
def test_chunk_boundaries_never_change_lines(seed: int) -> None:
    data = _random_file(seed)
    expected = list(enumerate(data.split(b"\n") if not data.endswith(b"\n") else data.split(b"\n")[:-1], 1))
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert list(iter_lines(chunks)) == expected
    assert report(data).valid


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 50])
def test_byte_range_shards_cover_every_line_exactly_once(shards: int) -> None:
    data = _random_file(3)
    size = len(data)
    bounds = [size * i // shards for i in range(shards + 1)]
    seen = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        read_from = max(start - 1, 0)
        chunk = data[read_from:]
        pieces = [chunk[i : i + 97] for i in range(0, len(chunk), 97)]
        for batch in iter_line_batches(pieces, skip_partial_first=start > 0, stop_at=end - read_from):
            seen.extend(batch.lines)
    assert seen == data.split(b"\n")[: len(seen)]
    assert len(seen) == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def test_validator_requires_a_known_format() -> None:
    with pytest.raises(ValueError, match="unknown data format"):
        Validator(data_format="csv")
