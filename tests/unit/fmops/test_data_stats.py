"""fmops.data.stats: every statistic on small hand-made data sets with known answers, and the HTML page."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import pytest

from fmops.data.limits import MODEL_LIMITS, get_limits
from fmops.data.stats import (
    PII_KINDS,
    FileStats,
    StatsCollector,
    compare_splits,
    file_stats,
    find_pii,
    histogram,
    luhn_valid,
    nearest_rank,
    normalise_text,
)
from fmops.data.stats_html import render_html
from fmops.data.validate import Validator


def jsonl(*records: Any) -> bytes:
    """JSONL bytes; a str entry is written as the raw line."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def stats_of(*records: Any, **options: Any) -> FileStats:
    return file_stats([jsonl(*records)], **options)


def pc(prompt: str, completion: str = "ok") -> dict[str, str]:
    return {"prompt": prompt, "completion": completion}


# -- Luhn and personal data -----------------------------------------------------------------------------

VALID_CARDS = [
    "4111111111111111",  # Visa test number
    "4012888888881881",
    "4222222222222",  # 13-digit Visa
    "5555555555554444",  # Mastercard
    "5105105105105100",
    "378282246310005",  # Amex (15)
    "371449635398431",
    "6011111111111117",  # Discover
    "30569309025904",  # Diners (14)
    "3530111333300000",  # JCB
    "6304000000000000",  # Maestro
    "79927398713",  # the textbook example
    "0",
    "18",
]
INVALID_CARDS = [
    "4111111111111112",
    "1234567812345678",
    "79927398710",
    "79927398714",
    "5555555555554445",
    "378282246310006",
    "1",
    "",
    "4111 1111 1111 1111",  # separators: not digits only
    "4111-1111-1111-1111",
    "abcd",
    "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits are not ASCII digits
]


@pytest.mark.parametrize("number", VALID_CARDS)
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", INVALID_CARDS)
def test_luhn_refuses_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


def test_luhn_catches_every_single_digit_error() -> None:
    number = "4111111111111111"
    for position in range(len(number)):
        for digit in "0123456789":
            if digit != number[position]:
                wrong = number[:position] + digit + number[position + 1 :]
                assert not luhn_valid(wrong), wrong


@pytest.mark.parametrize(
    ("text", "email", "phone", "card"),
    [
        ("write to jane.doe@example.com today", 1, 0, 0),
        ("JANE@example.co.uk, bob+tag@mail.example.org.", 2, 0, 0),
        ("not an address: a@b, @example.com, user@localhost", 0, 0, 0),
        ("call +44 20 7946 0958 or +33612345678", 0, 2, 0),
        ("call +1 (555) 123-4567", 0, 1, 0),
        ("US: (555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-0199", 0, 4, 0),
        ("too short: +44 1234 56, 555-1234, 12-34-56", 0, 0, 0),
        ("nine digits is enough: +44 1234 567", 0, 1, 0),
        ("dates and versions: 2024-01-15 10:30:00, v1.2.3, 192.168.100.200, 3.14159", 0, 0, 0),
        ("card 4111 1111 1111 1111 and 5555-5555-5555-4444 and 378282246310005", 0, 0, 3),
        ("not Luhn: 4111 1111 1111 1112; one digit: 0000 0000 0000 0000", 0, 0, 0),
        ("12 digits 411111111111 or 20 digits 41111111111111111111", 0, 0, 0),
        ("an order id 1234567890123 is not a card (fails Luhn)", 0, 0, 0),
        ("digits inside an email: john4111111111111111@example.com", 1, 0, 0),
        ("all three: a@example.com, +49 30 123456789, 4012 8888 8888 1881", 1, 1, 1),
    ],
)
def test_find_pii(text: str, email: int, phone: int, card: int) -> None:
    assert find_pii(text) == {"email": email, "phone": phone, "payment_card": card}


def test_find_pii_is_linear_on_hostile_text() -> None:
    for text in ("1 " * 20000, "+1 " * 20000, "a@" * 20000, "+" + "1 2" * 10000, "x@a." + "b." * 20000):
        assert sum(find_pii(text).values()) == 0


# -- normalisation and percentiles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  hello \t\n  WORLD  ", "hello world"),
        ("don't_stop", "dontstop"),
        ("Straße", "strasse"),
        ("...", ""),
        ("Ünïcode — text", "ünïcode text"),
    ],
)
def test_normalise_text(text: str, expected: str) -> None:
    assert normalise_text(text) == expected


@pytest.mark.parametrize(
    ("counts", "percent", "expected"),
    [
        (dict.fromkeys(range(1, 21), 1), 50, 10),  # rank ceil(0.5 * 20) = 10
        (dict.fromkeys(range(1, 21), 1), 95, 19),  # rank ceil(0.95 * 20) = 19
        (dict.fromkeys(range(1, 11), 1), 50, 5),
        (dict.fromkeys(range(1, 11), 1), 95, 10),  # rank ceil(9.5) = 10
        (dict.fromkeys(range(1, 101), 1), 95, 95),
        ({1: 3, 100: 1}, 50, 1),
        ({1: 3, 100: 1}, 95, 100),  # rank ceil(3.8) = 4
        ({7: 1}, 50, 7),
        ({7: 1}, 95, 7),
        ({5: 2, 3: 2}, 50, 3),  # unsorted keys
        ({}, 50, None),
    ],
)
def test_nearest_rank(counts: dict[int, int], percent: float, expected: int | None) -> None:
    assert nearest_rank(counts, percent) == expected


def test_histogram_bins() -> None:
    bins = histogram({1: 1, 100: 1})
    assert len(bins) == 20
    assert (bins[0].low, bins[0].high, bins[0].count) == (1, 5, 1)
    assert (bins[-1].low, bins[-1].high, bins[-1].count) == (96, 100, 1)
    assert sum(b.count for b in bins) == 2
    assert histogram({5: 3})[0].as_dict() == {"low": 5, "high": 5, "count": 3}
    narrow = histogram({1: 1, 21: 1})  # width 2: 11 bins, the last one narrower
    assert len(narrow) == 11 and (narrow[-1].low, narrow[-1].high) == (21, 21)
    assert histogram({}) == []


# -- counts and tokens ----------------------------------------------------------------------------------


def test_counts_format_and_token_distribution() -> None:
    # prompt + completion of 4 * k characters: k tokens at 4 characters per token, k = 1..20
    records = [pc("p" * (4 * k - 2), "cc") for k in range(1, 21)]
    stats = stats_of(*records, "not json", {"prompt": "", "completion": "x"})
    assert stats.format == "prompt-completion"
    assert (stats.records, stats.valid_records, stats.invalid_records, stats.analysed_records) == (22, 20, 2, 21)
    assert stats.issues_by_code == {"empty_text": 1, "invalid_json": 1}
    tokens = stats.tokens
    assert (tokens.basis, tokens.chars_per_token, tokens.model, tokens.estimate) == (
        "default",
        4.0,
        None,
        "ceil(characters / 4)",
    )
    # the empty-prompt record is analysed: "x" is one token
    assert (tokens.records, tokens.min, tokens.p50, tokens.p95, tokens.max) == (21, 1, 10, 19, 20)
    assert tokens.total == sum(range(1, 21)) + 1
    assert tokens.mean == round(211 / 21, 2)
    assert len(tokens.histogram) == 20 and [b.count for b in tokens.histogram] == [2] + [1] * 19


def test_tokens_use_the_model_ratio_when_limits_are_given() -> None:
    limits = get_limits("meta.llama3-1-8b-instruct-v1:0:128k")
    stats = stats_of(pc("p" * 10, "c" * 2), pc("p" * 13, "c" * 5), limits=limits)
    assert (stats.tokens.basis, stats.tokens.chars_per_token, stats.tokens.model) == ("model", 6.0, limits.model_id)
    assert (stats.tokens.min, stats.tokens.max) == (2, 3)  # ceil(12 / 6), ceil(18 / 6)
    assert stats.model == limits.model_id


def test_token_text_is_what_the_validator_counts() -> None:
    conversation = {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "s" * 4}],
        "messages": [
            {"role": "user", "content": [{"text": "u" * 8}]},
            {"role": "assistant", "content": [{"text": "a" * 4}]},
        ],
    }
    assert stats_of(conversation).tokens.max == 4  # 16 characters; roles and keys not counted
    assert stats_of({"text": "t" * 8, "label": "long-label-not-counted"}).tokens.max == 2
    assert stats_of({"context": "c" * 4, "question": "q" * 4, "answers": ["a" * 4, "b" * 4]}).tokens.max == 4


def test_empty_file_and_no_format() -> None:
    stats = file_stats([b""])
    assert (stats.records, stats.format, stats.tokens.records, stats.tokens.p50, stats.tokens.histogram) == (
        0,
        None,
        0,
        None,
        [],
    )
    assert [issue.code for issue in stats.file_issues] == ["empty_file"]
    assert stats.over_token_limit == [] and stats.labels is None


def test_gzip_file_is_a_file_issue() -> None:
    stats = file_stats([gzip.compress(jsonl(pc("a")))])
    assert [issue.code for issue in stats.file_issues] == ["compressed_file"]
    assert stats.records == 0


def test_unsupported_format_for_the_model_is_a_file_issue() -> None:
    stats = stats_of(pc("a"), limits=get_limits("amazon.nova-micro-v1:0:128k"))
    assert "format_not_supported" in [issue.code for issue in stats.file_issues]


def test_file_issues_survive_many_line_errors() -> None:
    limits = get_limits("amazon.titan-text-lite-v1:0:4k")  # needs 10 training records
    stats = stats_of(*["bad"] * 150, pc("a"), limits=limits)
    assert stats.issues_by_code == {"invalid_json": 150}
    assert "too_few_records" in [issue.code for issue in stats.file_issues]


def test_collector_works_with_a_plain_validator() -> None:
    validator = Validator()
    collector = StatsCollector(validator)
    for checked in validator.check_chunks([jsonl(pc("a"), pc("a"), "bad")]):
        collector.add(checked)
    stats = collector.finish(source="x.jsonl")
    assert (stats.records, stats.valid_records, stats.exact_duplicates.records, stats.source) == (3, 2, 1, "x.jsonl")


# -- duplicates -----------------------------------------------------------------------------------------


def test_exact_and_normalised_duplicates() -> None:
    stats = stats_of(
        {"prompt": "Hello world", "completion": "A"},  # 1
        '{"completion": "A",   "prompt": "Hello world"}',  # 2: the same content (key order, spacing)
        {"prompt": "hello,  WORLD!", "completion": "a."},  # 3: normalised duplicate of 1 and 2
        {"prompt": "other", "completion": "B"},  # 4
        {"prompt": "other", "completion": "B"},  # 5: exact duplicate of 4
        {"prompt": "other", "completion": "C"},  # 6: different completion
        {"prompt": "Hello world", "completion": "B"},  # 7: same prompt, different completion
    )
    exact = stats.exact_duplicates
    assert (exact.records, exact.groups) == (2, 2)
    assert [(g.count, g.lines) for g in exact.first_groups] == [(2, [1, 2]), (2, [4, 5])]
    normalised = stats.normalised_duplicates
    assert (normalised.records, normalised.groups) == (3, 2)
    assert [(g.count, g.lines) for g in normalised.first_groups] == [(3, [1, 2, 3]), (2, [4, 5])]


def test_duplicates_keep_conversation_roles_and_labels_apart() -> None:
    stats = stats_of({"text": "same", "label": "a"}, {"text": "same", "label": "b"}, {"text": "Same!", "label": "A"})
    assert stats.exact_duplicates.records == 0
    assert stats.normalised_duplicates.records == 1  # label A / a normalised alike; b differs
    assert stats.normalised_duplicates.first_groups[0].lines == [1, 3]


def test_duplicate_groups_and_lines_are_capped() -> None:
    records = [pc(f"group {g}") for g in range(5) for _ in range(4)]  # 5 groups of 4 (lines 1-4, 5-8...)
    stats = stats_of(*records, max_groups=2, max_lines=3)
    exact = stats.exact_duplicates
    assert (exact.records, exact.groups) == (15, 5)
    assert [(g.count, g.lines) for g in exact.first_groups] == [(4, [1, 2, 3]), (4, [5, 6, 7])]


def test_invalid_lines_are_not_duplicates_of_each_other() -> None:
    stats = stats_of("bad", "bad", "", pc("a"))
    assert stats.exact_duplicates.records == 0 and stats.analysed_records == 1


# -- empty fields ---------------------------------------------------------------------------------------


def test_empty_fields_by_field() -> None:
    stats = stats_of(pc("a", "b"), pc("", "b"), pc("a", "  \n"), pc(" ", ""))
    assert stats.empty_records == 3
    assert {name: (f.count, f.lines) for name, f in stats.empty_fields.items()} == {
        "completion": (2, [3, 4]),
        "prompt": (2, [2, 4]),
    }
    assert stats.invalid_records == 3 and stats.analysed_records == 4


def test_empty_fields_drop_list_indexes_and_count_records_once() -> None:
    conversation = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": " "}, {"text": ""}]},
            {"role": "assistant", "content": [{"text": ""}]},
        ],
    }
    stats = stats_of(conversation)
    assert {name: (f.count, f.lines) for name, f in stats.empty_fields.items()} == {
        "messages[].content[].text": (1, [1])
    }
    assert stats.issues_by_code == {"empty_text": 3}


# -- labels ---------------------------------------------------------------------------------------------


def test_single_label_distribution_and_imbalance() -> None:
    stats = stats_of(
        *[{"text": f"t{i}", "label": "pos"} for i in range(6)],
        {"text": "x", "label": "neg"},
        {"text": "y", "label": "neg"},
        {"text": "z", "label": "neutral"},
    )
    labels = stats.labels
    assert labels is not None
    assert (labels.kind, labels.records, labels.classes) == ("single", 9, 3)
    assert labels.counts == {"pos": 6, "neg": 2, "neutral": 1}
    assert list(labels.counts) == ["pos", "neg", "neutral"]
    assert (labels.largest, labels.smallest, labels.imbalance_ratio) == ("pos", "neutral", 6.0)


def test_multi_label_distribution() -> None:
    stats = stats_of(
        {"text": "a", "labels": ["x", "y"]},
        {"text": "b", "labels": ["x"]},
        {"text": "c", "labels": ["x", "z"]},
        {"text": "d", "labels": ["y", "x"]},
    )
    labels = stats.labels
    assert labels is not None
    assert (labels.kind, labels.records, labels.classes) == ("multi", 4, 3)
    assert labels.counts == {"x": 4, "y": 2, "z": 1}
    assert labels.imbalance_ratio == 4.0


def test_mixed_labels_balanced_labels_and_truncation() -> None:
    stats = stats_of({"text": "a", "label": "x"}, {"text": "b", "labels": ["y"]})
    assert stats.labels is not None and stats.labels.kind == "mixed" and stats.labels.imbalance_ratio == 1.0
    many = stats_of(*[{"text": str(i), "label": f"l{i:03d}"} for i in range(120)], max_labels=100)
    assert many.labels is not None
    assert (many.labels.classes, len(many.labels.counts), many.labels.truncated) == (120, 100, True)
    assert stats_of(pc("a")).labels is None


# -- model token limits ---------------------------------------------------------------------------------


def test_records_over_each_model_limit() -> None:
    # Titan rows: 4,096 tokens at 6 chars/token (24,576 chars); Llama 3.1: 16,000 tokens at 6 (96,000 chars)
    stats = stats_of(pc("short"), pc("p" * 30_000), pc("p" * 100_000), pc("p" * 24_576, ""))
    expected_rows = [row.model_id for row in MODEL_LIMITS if "prompt-completion" in row.formats]
    assert [row.model for row in stats.over_token_limit] == expected_rows
    by_model = {row.model: (row.count, row.lines) for row in stats.over_token_limit}
    for model_id in expected_rows:
        if model_id.startswith("amazon.titan"):
            assert by_model[model_id] == (2, [2, 3])  # line 4 is exactly at the limit (and invalid: empty)
        else:
            assert by_model[model_id] == (1, [3])
    titan = next(row for row in stats.over_token_limit if row.model.startswith("amazon.titan-text-express"))
    assert (titan.max_tokens, titan.chars_per_token) == (4096, 6.0)


def test_over_limit_records_are_analysed_even_when_the_model_refuses_them() -> None:
    limits = get_limits("amazon.titan-text-express-v1:0:8k")
    stats = stats_of(pc("p" * 29_998), pc("ok"), limits=limits)
    assert stats.issues_by_code == {"too_many_tokens": 1}
    assert stats.analysed_records == 2
    assert stats.tokens.max == 5000  # 30,000 characters / 6
    assert next(r for r in stats.over_token_limit if r.model == limits.model_id).lines == [1]


def test_conversation_rows() -> None:
    conversation = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [{"role": "user", "content": [{"text": "hi"}]}, {"role": "assistant", "content": [{"text": "yo"}]}],
    }
    rows = [row.model for row in stats_of(conversation).over_token_limit]
    assert rows == [row.model_id for row in MODEL_LIMITS if "conversation" in row.formats]
    assert any(r.startswith("amazon.nova") for r in rows) and any(r.startswith("meta.llama3-2") for r in rows)


# -- personal data in files -----------------------------------------------------------------------------


def test_pii_counts_and_lines() -> None:
    stats = stats_of(
        pc("contact jane.doe@example.com or john@example.org"),  # 1: 2 emails
        pc("nothing here"),  # 2
        pc("call me", "at +44 20 7946 0958"),  # 3: phone in the completion
        pc("pay with 4111 1111 1111 1111"),  # 4
        pc("number 4111 1111 1111 1112 is not valid"),  # 5
        pc("mail x@example.net", "phone 555-123-4567"),  # 6: email and phone
    )
    assert stats.pii["email"].as_dict() == {"records": 2, "matches": 3, "lines": [1, 6]}
    assert stats.pii["phone"].as_dict() == {"records": 2, "matches": 2, "lines": [3, 6]}
    assert stats.pii["payment_card"].as_dict() == {"records": 1, "matches": 1, "lines": [4]}
    assert list(stats.pii) == list(PII_KINDS)
    assert stats.pii_records == 4  # lines 1, 3, 4 and 6


def test_pii_lines_are_capped_and_the_data_is_not_kept() -> None:
    stats = stats_of(*[pc(f"user{i}@example.com") for i in range(30)], max_lines=5)
    assert stats.pii["email"].records == 30 and stats.pii["email"].lines == [1, 2, 3, 4, 5]
    assert "example.com" not in json.dumps(stats.as_dict())


# -- leakage --------------------------------------------------------------------------------------------


def test_leakage_of_validation_and_test_into_train() -> None:
    train = jsonl(pc("What is AI?", "a"), pc("Tell me a joke", "b"), pc("Unrelated", "c"))
    validation = jsonl(pc("what is ai", "different answer"), pc("A new question", "d"))
    test = jsonl(pc("TELL me a joke!!", "x"), pc("Tell me a joke", "b"), pc("fresh", "y"), pc("", "z"))
    result = compare_splits({"train": [train], "validation": [validation], "test": [test]})
    assert set(result.splits) == {"train", "validation", "test"}
    assert set(result.leakage) == {"validation", "test"}
    leak = result.leakage["validation"]
    assert (leak.records, leak.leaked, leak.fraction) == (2, 1, 0.5)
    assert [(x.line, x.train_line) for x in leak.first] == [(1, 1)]
    leak = result.leakage["test"]
    assert (leak.records, leak.leaked) == (3, 2)  # the empty prompt is not compared
    assert [(x.line, x.train_line) for x in leak.first] == [(1, 2), (2, 2)]
    assert result.splits["validation"].name == "validation"


def test_leakage_inputs_by_format() -> None:
    def conv(user: str, assistant: str, system: str = "sys") -> dict[str, Any]:
        return {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": system}],
            "messages": [
                {"role": "user", "content": [{"text": user}]},
                {"role": "assistant", "content": [{"text": assistant}]},
            ],
        }

    train = jsonl(conv("Hello there", "hi"))
    other = jsonl(conv("hello there!", "a different reply", "another system"), conv("hi", "Hello there"))
    leak = compare_splits({"train": [train], "test": [other]}).leakage["test"]
    assert (leak.leaked, [x.line for x in leak.first]) == (1, [1])  # user turns only

    qa = {"context": "The sky", "question": "What colour?", "answers": ["blue"]}
    other_qa = [{**qa, "answers": ["azure"]}, {**qa, "question": "What size?"}]
    leak = compare_splits({"train": [jsonl(qa)], "validation": [jsonl(*other_qa)]}).leakage["validation"]
    assert leak.leaked == 1  # context + question, not answers

    legacy = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    other_legacy = {
        "system": "s",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "B"}],
    }
    assert compare_splits({"train": [jsonl(legacy)], "test": [jsonl(other_legacy)]}).leakage["test"].leaked == 1

    summary = [{"document": "Doc one.", "summary": "x"}, {"document": "doc two", "summary": "y"}]
    other_summary = [{"document": "DOC ONE", "summary": "z"}]
    assert compare_splits({"train": [jsonl(*summary)], "test": [jsonl(*other_summary)]}).leakage["test"].leaked == 1

    classification = [{"text": "Great product", "label": "pos"}]
    other_classification = [{"text": "great product.", "label": "neg"}]
    leak = compare_splits({"train": [jsonl(*classification)], "test": [jsonl(*other_classification)]})
    assert leak.leakage["test"].leaked == 1


def test_compare_splits_needs_the_train_split() -> None:
    with pytest.raises(ValueError, match="train"):
        compare_splits({"validation": [jsonl(pc("a"))]})


def test_split_roles_apply_the_right_limits() -> None:
    limits = get_limits("amazon.titan-text-lite-v1:0:4k")  # train needs 10 records
    result = compare_splits(
        {"train": [jsonl(*[pc(str(i)) for i in range(10)])], "validation": [jsonl(pc("v"))], "test": [jsonl(pc("t"))]},
        limits=limits,
    )
    for split in result.splits.values():
        assert split.file_issues == [] and split.tokens.chars_per_token == 6.0 and split.model == limits.model_id


# -- the JSON contract ----------------------------------------------------------------------------------

FILE_KEYS = {
    "name",
    "source",
    "format",
    "records",
    "valid_records",
    "invalid_records",
    "analysed_records",
    "bytes",
    "model",
    "issues_by_code",
    "file_issues",
    "tokens",
    "duplicates",
    "empty_fields",
    "labels",
    "over_token_limit",
    "pii",
    "pii_records",
}
TOKEN_KEYS = {"estimate", "chars_per_token", "basis", "model", "records", "total", "mean", "min", "p50", "p95", "max"}


def test_as_dict_keys_are_stable_and_json_ready() -> None:
    stats = stats_of({"text": "a@example.com", "label": "x"}, {"text": "a@example.com", "label": "x"}, {"text": ""})
    data = json.loads(json.dumps(stats.as_dict()))
    assert set(data) == FILE_KEYS
    assert set(data["tokens"]) == TOKEN_KEYS | {"histogram"}
    assert set(data["tokens"]["histogram"][0]) == {"low", "high", "count"}
    assert set(data["duplicates"]) == {"exact", "normalised"}
    assert set(data["duplicates"]["exact"]) == {"records", "groups", "first_groups"}
    assert set(data["duplicates"]["exact"]["first_groups"][0]) == {"count", "lines"}
    assert set(data["empty_fields"]) == {"records", "fields"}
    assert set(data["labels"]) == {
        "kind",
        "records",
        "classes",
        "counts",
        "truncated",
        "largest",
        "smallest",
        "imbalance_ratio",
    }
    assert set(data["over_token_limit"][0]) == {"model", "name", "max_tokens", "chars_per_token", "count", "lines"}
    assert set(data["pii"]) == {"email", "phone", "payment_card"}
    assert set(data["pii"]["email"]) == {"records", "matches", "lines"}
    assert set(file_stats([b""]).as_dict()["file_issues"][0]) == {"line", "field", "code", "message"}

    splits = compare_splits({"train": [jsonl(pc("a"))], "test": [jsonl(pc("a"))]}).as_dict()
    assert set(splits) == {"train_split", "splits", "leakage"}
    assert set(splits["splits"]["train"]) == FILE_KEYS
    assert splits["leakage"]["test"] == {
        "records": 1,
        "leaked": 1,
        "fraction": 1.0,
        "first": [{"line": 1, "train_line": 1}],
    }


def test_memory_per_line_is_three_hashes() -> None:
    stats = stats_of(*[pc(f"prompt {i}") for i in range(1000)])
    assert stats.input_hashes.itemsize == 8 and len(stats.input_hashes) == 1000
    assert sum(stats.tokens.histogram[i].count for i in range(len(stats.tokens.histogram))) == 1000


# -- the HTML page --------------------------------------------------------------------------------------


def test_html_is_self_contained_and_escapes_the_data() -> None:
    hostile = '<script>alert("x")</script>'
    stats = file_stats(
        [jsonl({"text": "mail jane@example.com", "label": hostile}, {"text": "b", "label": "ok"})],
        source=f"data/{hostile}.jsonl",
    )
    page = render_html(stats)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    for external in ("src=", "<link", "url(", "@import", "https://"):
        assert external not in page
    assert "jane@example.com" not in page
    assert page.count('class="bar"') == len(stats.tokens.histogram)
    assert page.count('class="label-bar"') == 2


def test_html_of_splits_shows_leakage() -> None:
    train = jsonl(pc("What is AI?"), pc("other"))
    result = compare_splits({"train": [train], "validation": [jsonl(pc("what is ai"))], "test": [jsonl(pc("new"))]})
    page = render_html(result, title="My splits")
    assert "<title>My splits</title>" in page
    assert "Leakage into train" in page
    assert re.search(r"<td>validation</td><td class='num'>1</td><td class='num'><span class=\"warn\">1</span>", page)
    assert "1 (train 1)" in page
    assert page.count('<section id="split-') == 3
