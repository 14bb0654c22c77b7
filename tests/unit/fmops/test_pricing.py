"""fmops.pricing: the price tables and the estimate's arithmetic, on hand-computed cases."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fmops.data.limits import MODEL_LIMITS, get_limits
from fmops.data.tokens import estimate_tokens
from fmops.errors import UnknownModelError
from fmops.pricing import (
    ASSUMED_CHARS_PER_RECORD,
    BEDROCK_CUSTOMIZATION_PRICES,
    CAUSAL_LM_TOKENS_PER_SECOND,
    DEFAULT_CAUSAL_LM_TOKENS_PER_SECOND,
    GENERATIVE_TASKS,
    OVERHEAD_SECONDS,
    PRICE_REGION,
    PRICES_AS_OF,
    RECORDS_PER_SECOND,
    SAGEMAKER_TRAINING_PRICES,
    SPOT_DISCOUNT,
    DataVolume,
    estimate_cost,
    price_table_markdown,
    tokens_from_characters,
)
from fmops.schemas.run import GENERATIVE_TASKS as SCHEMA_GENERATIVE_TASKS
from fmops.schemas.run import RunOptions
from fmops.schemas.steps import DatasetInfo, SplitCounts

INSTANCE_TYPES = (
    "ml.m5.xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g5.12xlarge",
    "ml.g5.48xlarge",
    "ml.p4d.24xlarge",
    "ml.p5.48xlarge",
    "ml.g6.xlarge",
    "ml.trn1.32xlarge",
)


def options(**overrides: Any) -> RunOptions:
    hyperparameters = {"epochs": "1", "max_length": "32", **overrides.pop("hyperparameters", {})}
    return RunOptions.model_validate({"hyperparameters": hyperparameters, **overrides})


# ------------------------------------------------------------------------------------------------ tables


def test_every_instance_type_fmops_uses_has_a_price() -> None:
    assert set(SAGEMAKER_TRAINING_PRICES) == set(INSTANCE_TYPES)
    for price in SAGEMAKER_TRAINING_PRICES.values():
        assert 0 < price.usd_per_hour < 200 and price.note


def test_every_bedrock_model_of_the_limits_has_a_price() -> None:
    bedrock = {row.model_id for row in MODEL_LIMITS if row.backend == "bedrock"}
    assert set(BEDROCK_CUSTOMIZATION_PRICES) == bedrock
    for price in BEDROCK_CUSTOMIZATION_PRICES.values():
        assert 0 < price.usd_per_1k_tokens < 0.1 and price.storage_usd_per_month == 1.95 and price.note


def test_the_tables_say_what_is_assumed() -> None:
    assert (PRICE_REGION, PRICES_AS_OF) == ("us-east-1", "2026-11-27")
    assert 0 < SPOT_DISCOUNT < 1
    text = price_table_markdown()
    assert "us-east-1" in text and "https://aws.amazon.com/bedrock/pricing/" in text
    assert "| ml.p5.48xlarge | 113.07 † |" in text  # not found: an assumption
    assert "| ml.g5.xlarge | 1.408 |" in text
    assert "| amazon.titan-text-lite-v1:0:4k | 0.0004 | 1.95 |" in text


@pytest.mark.parametrize("chars_per_token", [1.0, 3.5, 4.0, 6.0, 0.6])
def test_tokens_from_characters_is_estimate_tokens(chars_per_token: float) -> None:
    for n in (*range(0, 40), 999, 1000, 1001, 123_457):
        assert tokens_from_characters(n, chars_per_token) == estimate_tokens("x" * n, chars_per_token)


# ----------------------------------------------------------------------------------------------- SageMaker


def test_sagemaker_on_demand_by_hand() -> None:
    estimate = estimate_cost(options(instance_type="ml.g5.xlarge"), DataVolume(records=1600))
    # 300 s overhead + 1,600 records / 1,500 records/s = 301.0667 s; x 1.408 USD/h
    seconds = 300 + 1600 / 1500
    assert estimate.estimated_seconds == pytest.approx(seconds, abs=1e-3)
    assert estimate.billable_seconds == pytest.approx(seconds, abs=1e-3)
    assert estimate.total_usd == pytest.approx(seconds / 3600 * 1.408, abs=1e-4)
    assert (estimate.capped, estimate.spot, estimate.spot_discount) == (False, False, None)
    assert estimate.usd_per_hour == 1.408


def test_sagemaker_spot_with_more_epochs_longer_records_and_two_instances_by_hand() -> None:
    run = options(
        instance_type="ml.m5.xlarge",
        instance_count=2,
        spot=True,
        hyperparameters={"epochs": "2", "max_length": "64"},
    )
    estimate = estimate_cost(run, DataVolume(records=6000))
    # 6,000 x 2 epochs x (64 / 32) / 60 records/s = 400 s, + 300 s = 700 s; 2 instances; 30% of 0.23 USD/h
    assert estimate.estimated_seconds == pytest.approx(700)
    assert estimate.instance_hours == pytest.approx(700 / 3600 * 2, abs=1e-6)
    assert estimate.usd_per_hour == pytest.approx(0.23 * 0.3)
    assert estimate.total_usd == pytest.approx(700 / 3600 * 2 * 0.23 * 0.3, abs=1e-4)
    assert any("spot" in a for a in estimate.assumptions)


def test_sagemaker_time_is_capped_at_the_max_runtime() -> None:
    run = options(instance_type="ml.m5.xlarge", max_runtime_seconds=3600)
    estimate = estimate_cost(run, DataVolume(records=10_000_000))
    assert estimate.capped is True and estimate.billable_seconds == 3600
    assert estimate.total_usd == pytest.approx(0.23)
    shorter = estimate_cost(run, DataVolume(records=10_000_000), max_runtime_seconds=1800)
    assert shorter.total_usd == pytest.approx(0.115)


def test_an_unknown_instance_type_has_no_total_but_still_a_time() -> None:
    estimate = estimate_cost(options(instance_type="ml.c7i.large"), DataVolume(records=600))
    assert estimate.total_usd is None and estimate.estimated_seconds == pytest.approx(310)
    assert any("no price for ml.c7i.large" in a for a in estimate.assumptions)
    assert any("no figure for c7i" in a for a in estimate.assumptions)


def test_an_assumed_price_is_listed_among_the_assumptions() -> None:
    estimate = estimate_cost(options(instance_type="ml.p5.48xlarge"), DataVolume(records=10))
    assert any("ml.p5.48xlarge" in a and "not found" in a for a in estimate.assumptions)


def test_a_bad_epochs_value_falls_back_to_one_and_says_so() -> None:
    estimate = estimate_cost(options(hyperparameters={"epochs": "many"}), DataVolume(records=1500))
    assert estimate.epochs == 1 and any("epochs 'many'" in a for a in estimate.assumptions)


def test_the_dataset_info_gives_the_training_split() -> None:
    dataset = DatasetInfo(
        source_uri="s3://b/k",
        sha256="0" * 64,
        prepared_prefix="s3://b/p/",
        manifest_uri="s3://b/p/manifest.json",
        train_uri="s3://b/p/train.jsonl",
        validation_uri="s3://b/p/validation.jsonl",
        test_uri="s3://b/p/test.jsonl",
        counts=SplitCounts(train=3000, validation=400, test=400),
        labels=["a", "b"],
    )
    estimate = estimate_cost(options(instance_type="ml.g5.xlarge"), dataset)
    assert estimate.records == 3000 and estimate.basis == "training split record count"
    assert estimate.estimated_seconds == pytest.approx(OVERHEAD_SECONDS + 2)


# ------------------------------------------------------------------------------------- SageMaker, causal LM


def test_the_causal_lm_throughputs_cover_the_encoder_families_and_the_generative_tasks() -> None:
    assert GENERATIVE_TASKS == SCHEMA_GENERATIVE_TASKS
    assert set(CAUSAL_LM_TOKENS_PER_SECOND) == set(RECORDS_PER_SECOND)
    # A GPU is faster than the CPU fallbacks; a bigger GPU is faster than a smaller one.
    gpus = [CAUSAL_LM_TOKENS_PER_SECOND[f] for f in ("g6", "g5", "p4d", "p5")]
    assert gpus == sorted(gpus) and min(gpus) > CAUSAL_LM_TOKENS_PER_SECOND["trn1"] > CAUSAL_LM_TOKENS_PER_SECOND["m5"]


@pytest.mark.parametrize("task", ["summarization", "qa", "chat"])
def test_a_generative_run_is_priced_as_a_causal_lm_by_hand(task: str) -> None:
    run = options(task=task, instance_type="ml.g5.xlarge", hyperparameters={"epochs": "2", "max_length": "256"})
    assert run.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    estimate = estimate_cost(run, DataVolume(records=5000))
    # 5,000 records x 2 epochs x 256 tokens (max_length: the data's tokens are unknown) / 10,000 tokens/s = 256 s
    seconds = 300 + 5000 * 2 * 256 / 10_000
    assert (estimate.task, estimate.tokens_per_second, estimate.tokens_per_record) == (task, 10_000, 256)
    assert estimate.records_per_second is None
    assert estimate.estimated_seconds == pytest.approx(seconds)
    assert estimate.total_usd == pytest.approx(seconds / 3600 * 1.408, abs=1e-4)
    assert any("tokens/s" in a and "causal LM" in a for a in estimate.assumptions)
    assert any("fills max_length (256 tokens)" in a for a in estimate.assumptions)
    stored = estimate.as_dict()
    assert stored["task"] == task and "records_per_second" not in stored


def test_the_datas_tokens_per_record_are_used_up_to_max_length() -> None:
    run = options(task="chat", instance_type="ml.m5.xlarge", hyperparameters={"max_length": "128"})
    measured = estimate_cost(run, DataVolume(records=100, tokens=5_000))
    # 50 tokens per record < 128: 100 x 50 / 50 tokens/s = 100 s
    assert measured.tokens_per_record == 50 and measured.estimated_seconds == pytest.approx(400)
    long = estimate_cost(run, DataVolume(records=100, tokens=100_000))
    assert long.tokens_per_record == 128  # cut at max_length
    from_characters = estimate_cost(run, DataVolume(records=100, characters=8_000))
    # 8,000 characters / 4 per token = 2,000 tokens: 20 per record
    assert from_characters.tokens_per_record == 20
    assert any("ceil(characters / 4)" in a for a in from_characters.assumptions)


def test_an_unknown_family_gets_the_default_causal_lm_throughput() -> None:
    estimate = estimate_cost(options(task="qa", instance_type="ml.c7i.large"), DataVolume(records=10))
    assert estimate.tokens_per_second == DEFAULT_CAUSAL_LM_TOKENS_PER_SECOND
    assert any("no figure for c7i" in a for a in estimate.assumptions)


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_encoder_tasks_keep_the_records_per_second_assumption(task: str) -> None:
    estimate = estimate_cost(options(task=task, instance_type="ml.g5.xlarge"), DataVolume(records=1600))
    assert (estimate.task, estimate.records_per_second, estimate.tokens_per_second) == (task, 1500, None)
    assert estimate.estimated_seconds == pytest.approx(300 + 1600 / 1500, abs=1e-3)


# -------------------------------------------------------------------------------------------------- Bedrock


def bedrock(model: str, **hyperparameters: str) -> RunOptions:
    return RunOptions.model_validate({"backend": "bedrock", "base_model": model, "hyperparameters": hyperparameters})


def test_bedrock_by_hand() -> None:
    run = bedrock("amazon.titan-text-lite-v1", epochCount="2")
    estimate = estimate_cost(run, DataVolume(records=1000, characters=600_000))
    # 600,000 characters / 6 per token = 100,000 tokens x 2 epochs x 0.0004 USD per 1,000 tokens
    assert (estimate.tokens, estimate.training_tokens) == (100_000, 200_000)
    assert estimate.total_usd == pytest.approx(0.08)
    assert estimate.storage_usd_per_month == 1.95 and estimate.instance_type is None


def test_bedrock_epochs_default_to_the_models() -> None:
    estimate = estimate_cost(bedrock("amazon.nova-micro-v1:0"), DataVolume(records=10, characters=4000))
    # Nova's default epochCount is 2; 4,000 characters / 4 = 1,000 tokens; 0.001 USD per 1,000 (assumed)
    assert (estimate.epochs, estimate.tokens) == (2, 1000)
    assert estimate.total_usd == pytest.approx(0.002)
    assert any("amazon.nova-micro-v1:0:128k" in a and "not found" in a for a in estimate.assumptions)
    fmops_name = estimate_cost(bedrock("amazon.nova-micro-v1:0", epochs="3"), DataVolume(records=10, characters=4000))
    assert fmops_name.epochs == 3


def test_measured_tokens_win_and_an_unknown_size_is_an_assumption() -> None:
    run = bedrock("anthropic.claude-3-haiku-20240307-v1:0", epochCount="1")
    measured = estimate_cost(run, DataVolume(records=5, characters=10, tokens=2500))
    assert measured.tokens == 2500 and measured.total_usd == pytest.approx(0.01)
    unknown = estimate_cost(run, DataVolume(records=5))
    assert unknown.characters == 5 * ASSUMED_CHARS_PER_RECORD
    assert unknown.tokens == math.ceil(5 * ASSUMED_CHARS_PER_RECORD / get_limits(run.base_model).chars_per_token)
    assert any("characters per record" in a for a in unknown.assumptions)


def test_an_unknown_bedrock_model_is_refused() -> None:
    with pytest.raises(UnknownModelError):
        estimate_cost(bedrock("mistral.mistral-7b"), DataVolume(records=1))


def test_as_dict_leaves_out_what_does_not_apply() -> None:
    stored = estimate_cost(bedrock("amazon.titan-text-lite-v1"), DataVolume(records=1, characters=6)).as_dict()
    assert "instance_type" not in stored and "spot" not in stored
    assert stored["backend"] == "bedrock" and stored["currency"] == "USD"


def test_a_negative_volume_is_refused() -> None:
    with pytest.raises(ValueError, match="records"):
        DataVolume(records=-1)
