"""Per-model data limits: the table's invariants, model id resolution, hyperparameter checks, the docs table."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from fmops.data.limits import (
    ASSUMED_MARK,
    DATA_FORMATS,
    MODEL_LIMITS,
    NO_LIMIT,
    HyperparameterProblem,
    ModelLimits,
    check_hyperparameters,
    get_limits,
    known_model_ids,
    limits_table_markdown,
)
from fmops.data.validate import validate_chunks
from fmops.errors import FmopsError, UnknownModelError

NOVA_MICRO = "amazon.nova-micro-v1:0:128k"
CLAUDE_HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"
ROW_IDS = [row.model_id for row in MODEL_LIMITS]
FIELD_NAMES = {f.name for f in dataclasses.fields(ModelLimits)}

EXPECTED_IDS = {
    "amazon.nova-micro-v1:0:128k",
    "amazon.nova-lite-v1:0:300k",
    "amazon.nova-pro-v1:0:300k",
    "anthropic.claude-3-haiku-20240307-v1:0:200k",
    "meta.llama3-1-8b-instruct-v1:0:128k",
    "meta.llama3-1-70b-instruct-v1:0:128k",
    "meta.llama3-2-1b-instruct-v1:0:128k",
    "meta.llama3-2-3b-instruct-v1:0:128k",
    "meta.llama3-2-11b-instruct-v1:0:128k",
    "meta.llama3-2-90b-instruct-v1:0:128k",
    "amazon.titan-text-express-v1:0:8k",
    "amazon.titan-text-lite-v1:0:4k",
    "amazon.titan-text-premier-v1:0:32k",
    "sagemaker",
}


def row(model_id: str) -> ModelLimits:
    return next(r for r in MODEL_LIMITS if r.model_id == model_id)


# --- the table ------------------------------------------------------------------------------------------------


def test_the_table_has_the_expected_models_once_each() -> None:
    assert set(ROW_IDS) == EXPECTED_IDS
    assert len(ROW_IDS) == len(set(ROW_IDS))
    assert known_model_ids() == tuple(ROW_IDS)
    assert [r.model_id for r in MODEL_LIMITS if r.backend == "sagemaker"] == ["sagemaker"]


@pytest.mark.parametrize("limits", MODEL_LIMITS, ids=ROW_IDS)
def test_every_row_cites_https_sources(limits: ModelLimits) -> None:
    assert limits.source.startswith("https://"), limits.source
    assert limits.hyperparameter_source.startswith("https://"), limits.hyperparameter_source
    if limits.backend == "bedrock":
        assert limits.source.startswith("https://docs.aws.amazon.com/")
        assert limits.hyperparameter_source.startswith("https://docs.aws.amazon.com/bedrock/")


@pytest.mark.parametrize("limits", MODEL_LIMITS, ids=ROW_IDS)
def test_every_row_is_consistent(limits: ModelLimits) -> None:
    assert limits.name.strip()
    assert limits.backend in ("bedrock", "sagemaker")
    assert limits.formats and set(limits.formats) <= set(DATA_FORMATS)
    assert 1 <= limits.min_train_records <= limits.max_train_records <= limits.max_total_records
    assert 1 <= limits.max_validation_records <= limits.max_total_records
    assert limits.max_tokens_per_record > 0
    assert 0 < limits.max_validation_file_bytes <= limits.max_train_file_bytes
    assert math.isfinite(limits.chars_per_token) and limits.chars_per_token > 0
    assert limits.hyperparameters


@pytest.mark.parametrize("limits", MODEL_LIMITS, ids=ROW_IDS)
def test_assumptions_are_named_fields_and_explained_in_the_note(limits: ModelLimits) -> None:
    assert set(limits.assumed) <= FIELD_NAMES
    assert len(limits.assumed) == len(set(limits.assumed))
    if limits.assumed:
        assert "assum" in limits.note.lower()


@pytest.mark.parametrize("limits", MODEL_LIMITS, ids=ROW_IDS)
def test_batch_size_token_steps_shrink_and_start_at_the_row_limit(limits: ModelLimits) -> None:
    steps = limits.tokens_by_batch_size
    if not steps:
        return
    assert steps[0][1] == limits.max_tokens_per_record
    batches = [b for b, _ in steps]
    tokens = [t for _, t in steps]
    assert batches == sorted(batches) and len(set(batches)) == len(batches)
    assert tokens == sorted(tokens, reverse=True)


@pytest.mark.parametrize("limits", MODEL_LIMITS, ids=ROW_IDS)
def test_every_hyperparameter_range_is_sane(limits: ModelLimits) -> None:
    names = [hp.name for hp in limits.hyperparameters]
    assert len(names) == len(set(names))
    for hp in limits.hyperparameters:
        assert hp.kind in ("int", "float")
        assert hp.minimum <= hp.maximum, hp
        if hp.default is not None:
            assert hp.minimum <= hp.default <= hp.maximum, hp
        if hp.kind == "int":
            for value in (hp.minimum, hp.maximum, hp.default):
                assert value is None or math.isinf(value) or float(value).is_integer(), hp
        assert limits.hyperparameter(hp.name) is hp
    assert limits.hyperparameter("noSuchThing") is None


@pytest.mark.parametrize("limits", MODEL_LIMITS, ids=ROW_IDS)
def test_the_documented_defaults_pass_the_check(limits: ModelLimits) -> None:
    defaults: dict[str, Any] = {}
    for hp in limits.hyperparameters:
        if hp.default is not None:
            defaults[hp.name] = str(int(hp.default)) if hp.kind == "int" else repr(float(hp.default))
    assert defaults
    assert check_hyperparameters(limits, defaults) == []


def test_documented_values_are_the_ones_in_the_table() -> None:
    """Spot checks against the AWS pages cited in the rows (a guard against accidental edits)."""
    nova = row(NOVA_MICRO)
    assert (nova.min_train_records, nova.max_train_records, nova.max_tokens_per_record) == (8, 20_000, 32_000)
    epochs = nova.hyperparameter("epochCount")
    assert epochs is not None and (epochs.minimum, epochs.maximum, epochs.default) == (1, 5, 2)
    rate = nova.hyperparameter("learningRate")
    assert rate is not None and (rate.minimum, rate.maximum, rate.default) == (1e-6, 1e-4, 1e-5)

    claude = row(CLAUDE_HAIKU)
    assert claude.formats == ("conversation-legacy",)
    assert (claude.min_train_records, claude.max_train_records, claude.max_validation_records) == (32, 10_000, 1_000)
    assert (claude.max_tokens_per_record, claude.max_train_file_bytes) == (32_000, 10 * 10**9)
    batch = claude.hyperparameter("batchSize")
    assert batch is not None and (batch.minimum, batch.maximum, batch.default) == (4, 256, 32)

    assert row("meta.llama3-2-90b-instruct-v1:0:128k").max_tokens_per_record == 10_000
    assert row("meta.llama3-2-1b-instruct-v1:0:128k").max_tokens_per_record == 16_000
    assert row("meta.llama3-1-8b-instruct-v1:0:128k").formats == ("prompt-completion",)
    assert row("meta.llama3-2-3b-instruct-v1:0:128k").formats == ("conversation",)

    premier = row("amazon.titan-text-premier-v1:0:32k").hyperparameter("learningRate")
    assert premier is not None and (premier.minimum, premier.maximum) == (1e-7, 1e-5)

    sagemaker = row("sagemaker")
    assert sagemaker.max_tokens_per_record == 8_192
    assert sagemaker.max_train_records == sagemaker.max_train_file_bytes == NO_LIMIT


def test_the_sagemaker_row_takes_what_the_training_container_trains() -> None:
    # training/README.md "Data": classification and multilabel records, and the generative tasks' five shapes.
    sagemaker = row("sagemaker")
    assert set(sagemaker.formats) == set(DATA_FORMATS)
    assert sagemaker.formats[0] == "classification"
    assert "classification records only" not in sagemaker.note
    for words in ("multilabel", "causal LM", "prompt/completion", "{document, summary}", "{context, question"):
        assert words in sagemaker.note
    for shape in (
        b'{"text": "t", "labels": ["a", "b"]}',
        b'{"prompt": "p", "completion": "c"}',
        b'{"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": [{"text": "q"}]}, '
        b'{"role": "assistant", "content": [{"text": "a"}]}]}',
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
        b'{"document": "d", "summary": "s"}',
        b'{"context": "c", "question": "q", "answers": ["a"]}',
    ):
        report = validate_chunks([b"\n".join([shape] * 12) + b"\n"], limits=sagemaker)
        assert "format_not_supported" not in {e.code for e in report.errors}, shape


def test_titan_token_limit_depends_on_the_batch_size() -> None:
    express = row("amazon.titan-text-express-v1:0:8k")
    assert express.max_tokens_for_batch_size() == 4_096
    assert express.max_tokens_for_batch_size(1) == 4_096
    assert express.max_tokens_for_batch_size(2) == 2_048
    assert express.max_tokens_for_batch_size(4) == 2_048
    assert express.max_tokens_for_batch_size(64) == 2_048  # above the documented steps: the smallest limit
    lite = row("amazon.titan-text-lite-v1:0:4k")
    assert [lite.max_tokens_for_batch_size(b) for b in (1, 2, 3, 6)] == [4_096, 4_096, 2_048, 2_048]
    assert row(NOVA_MICRO).max_tokens_for_batch_size(8) == 32_000  # no steps: the row's limit


# --- get_limits -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ROW_IDS)
def test_every_row_resolves_by_its_own_id(model_id: str) -> None:
    assert get_limits(model_id).model_id == model_id


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0:200k", CLAUDE_HAIKU),
        ("anthropic.claude-3-haiku-20240307-v1:0", CLAUDE_HAIKU),
        ("anthropic.claude-3-haiku-20240307-v1", CLAUDE_HAIKU),
        ("anthropic.claude-3-haiku", CLAUDE_HAIKU),
        ("ANTHROPIC.Claude-3-Haiku-20240307-v1:0", CLAUDE_HAIKU),
        ("  amazon.nova-micro-v1:0  ", NOVA_MICRO),
        ("amazon.nova-micro-v1:0:24k", NOVA_MICRO),
        ("amazon.nova-micro-v1", NOVA_MICRO),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k", NOVA_MICRO),
        ("amazon.titan-text-premier-v1:0:32K", "amazon.titan-text-premier-v1:0:32k"),
        ("amazon.titan-text-express-v1", "amazon.titan-text-express-v1:0:8k"),
        ("meta.llama3-2-90b-instruct-v1:0", "meta.llama3-2-90b-instruct-v1:0:128k"),
        ("meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-8b-instruct-v1:0:128k"),
    ],
)
def test_get_limits_resolves_variants(given: str, expected: str) -> None:
    assert get_limits(given).model_id == expected


@pytest.mark.parametrize(
    "model_id",
    [
        "anthropic.claude-3-5-haiku-20241022-v1:0",  # another model, not a version of Claude 3 Haiku
        "amazon.nova-2-lite-v1:0:256k",
        "meta.llama3-3-70b-instruct-v1:0:128k",
        "amazon.titan-embed-text-v2:0",
        "sentence-transformers/all-MiniLM-L6-v2",
        "",
    ],
)
def test_unknown_models_raise_with_the_known_ids(model_id: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_limits(model_id)
    error = caught.value
    assert isinstance(error, FmopsError)
    assert error.model_id == model_id
    assert repr(model_id) in str(error)
    for known in ROW_IDS:
        assert known in str(error)
    assert error.known == tuple(ROW_IDS)


def test_backend_selects_the_row_set() -> None:
    assert get_limits("sentence-transformers/all-MiniLM-L6-v2", backend="sagemaker").model_id == "sagemaker"
    assert get_limits("s3://bucket/models/base/", backend="sagemaker").backend == "sagemaker"
    assert get_limits(NOVA_MICRO, backend="bedrock").model_id == NOVA_MICRO
    with pytest.raises(UnknownModelError):
        get_limits("sagemaker", backend="bedrock")


# --- check_hyperparameters -------------------------------------------------------------------------------------


def codes(problems: list[HyperparameterProblem]) -> list[tuple[str, str]]:
    return [(p.name, p.code) for p in problems]


def test_string_and_number_values_in_range_pass() -> None:
    nova = get_limits(NOVA_MICRO)
    assert check_hyperparameters(nova, {"epochCount": "2", "learningRate": "0.00001"}) == []
    assert check_hyperparameters(nova, {"epochCount": 2, "learningRate": 1e-5, "learningRateWarmupSteps": 0}) == []
    assert check_hyperparameters(nova, {"epochCount": " 5 ", "learningRate": "1e-4"}) == []  # inclusive maximum
    assert check_hyperparameters(nova, {"epochCount": "1", "learningRate": "1E-6"}) == []  # inclusive minimum
    assert check_hyperparameters(nova, {}) == []


def test_out_of_range_names_the_model_and_the_range() -> None:
    problems = check_hyperparameters(get_limits(NOVA_MICRO), {"learningRate": "0.5"})
    assert problems == [
        HyperparameterProblem(
            "learningRate",
            "out_of_range",
            "learningRate 0.5 is outside 1e-06..0.0001 allowed for amazon.nova-micro-v1:0:128k",
        )
    ]
    problems = check_hyperparameters(get_limits(CLAUDE_HAIKU), {"batchSize": 2, "epochCount": "11"})
    assert codes(problems) == [("batchSize", "out_of_range"), ("epochCount", "out_of_range")]
    assert problems[0].message == f"batchSize 2 is outside 4..256 allowed for {CLAUDE_HAIKU}"
    assert problems[1].message == f"epochCount 11 is outside 1..10 allowed for {CLAUDE_HAIKU}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("epochCount", "abc"),
        ("epochCount", "2.5"),
        ("epochCount", "2.0"),  # Bedrock reads integers as integers
        ("epochCount", 2.0),
        ("epochCount", ""),
        ("epochCount", True),
        ("epochCount", None),
        ("epochCount", [2]),
        ("learningRate", "abc"),
        ("learningRate", "nan"),
        ("learningRate", "inf"),
        ("learningRate", False),
        ("learningRate", float("nan")),
    ],
)
def test_wrong_types_are_reported(name: str, value: Any) -> None:
    problems = check_hyperparameters(get_limits(NOVA_MICRO), {name: value})
    assert codes(problems) == [(name, "wrong_type")]
    assert NOVA_MICRO in problems[0].message
    assert "1..5" in problems[0].message or "1e-06..0.0001" in problems[0].message


def test_wrong_type_message_says_what_was_expected() -> None:
    [problem] = check_hyperparameters(get_limits(NOVA_MICRO), {"epochCount": "abc"})
    assert problem.message == f"epochCount 'abc' is not an integer; {NOVA_MICRO} expects an integer in 1..5"
    [problem] = check_hyperparameters(get_limits(NOVA_MICRO), {"learningRate": "fast"})
    assert problem.message == f"learningRate 'fast' is not a number; {NOVA_MICRO} expects a number in 1e-06..0.0001"


def test_unknown_hyperparameters_list_the_known_ones() -> None:
    problems = check_hyperparameters(get_limits(NOVA_MICRO), {"batchSize": "8"})
    assert codes(problems) == [("batchSize", "unknown_hyperparameter")]
    assert problems[0].message == (
        f"unknown hyperparameter 'batchSize' for {NOVA_MICRO} "
        "(known: epochCount, learningRate, learningRateWarmupSteps)"
    )
    # fmops' snake_case names are not Bedrock's: they must be translated before the check.
    assert codes(check_hyperparameters(get_limits(NOVA_MICRO), {"epochs": "2"})) == [
        ("epochs", "unknown_hyperparameter")
    ]


def test_every_problem_is_reported_in_order() -> None:
    params = {"epochCount": "9", "foo": "1", "learningRate": "x", "learningRateWarmupSteps": "10"}
    assert codes(check_hyperparameters(get_limits(NOVA_MICRO), params)) == [
        ("epochCount", "out_of_range"),
        ("foo", "unknown_hyperparameter"),
        ("learningRate", "wrong_type"),
    ]


def test_sagemaker_ranges_follow_the_training_container() -> None:
    limits = get_limits("sagemaker")
    ok = {"epochs": "3", "learning_rate": "5e-5", "batch_size": "16", "max_length": "8192", "warmup_steps": "100000"}
    assert check_hyperparameters(limits, ok) == []
    problems = check_hyperparameters(limits, {"max_length": "8193", "warmup_steps": "-1", "epochCount": "2"})
    assert codes(problems) == [
        ("max_length", "out_of_range"),
        ("warmup_steps", "out_of_range"),
        ("epochCount", "unknown_hyperparameter"),
    ]
    assert problems[1].message == "warmup_steps -1 is outside >=0 allowed for sagemaker"


# --- limits_table_markdown -------------------------------------------------------------------------------------


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_markdown_table_has_one_row_per_model() -> None:
    markdown = limits_table_markdown()
    header, separator, *rows = table_rows(markdown)
    assert "Model" in header and "Sources" in header
    assert set(separator) <= set("|-")
    assert len(rows) == len(MODEL_LIMITS)
    columns = header.count(" | ") + 1
    assert separator.count("---") == columns
    for limits, line in zip(MODEL_LIMITS, rows, strict=True):
        assert f"`{limits.model_id}`" in line
        assert f"]({limits.source})" in line
        assert f"]({limits.hyperparameter_source})" in line
        assert line.replace("\\|", "").count(" | ") + 1 == columns
        for hp in limits.hyperparameters:
            assert hp.name in line


def test_markdown_marks_assumptions_and_shows_limits() -> None:
    rows = dict(zip(ROW_IDS, table_rows(limits_table_markdown())[2:], strict=True))
    assert ASSUMED_MARK in rows[NOVA_MICRO]
    assert "8–20,000" in rows[NOVA_MICRO]
    assert "epochCount 1..5 (default 2)" in rows[NOVA_MICRO]
    assert "learningRate 1e-06..0.0001 (default 1e-05)" in rows[NOVA_MICRO]
    assert "| 32,000 |" in rows[CLAUDE_HAIKU]  # documented: no mark
    assert "| 10 GB | 1 GB |" in rows[CLAUDE_HAIKU]
    assert "4,096 (batch ≤1), 2,048 (batch ≤4)" in rows["amazon.titan-text-express-v1:0:8k"]
    assert "no limit" in rows["sagemaker"]
    assert "warmup_steps >=0 (default 0)" in rows["sagemaker"]
    legend = limits_table_markdown().splitlines()[0]
    assert ASSUMED_MARK in legend and "assumption" in legend
