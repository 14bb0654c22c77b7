"""The run request's task: default metric and threshold per task, metrics that belong to the task, thresholds on
the metric's scale, and combinations refused at request time with the field named."""

from __future__ import annotations

import pytest

from fmops.errors import RequestValidationError
from fmops.schemas import RunRequest, UseCaseConfig, parse
from fmops.schemas.run import (
    DEFAULT_BASE_MODEL,
    DEFAULT_GENERATIVE_BASE_MODEL,
    TASK_METRICS,
    RunOptions,
    default_threshold,
)


def request(**overrides: object) -> dict[str, object]:
    return {
        "run_id": "notes-3f2a9c1d0b7e",
        "use_case": "notes",
        "dataset": {"bucket": "fmops-datasets", "key": "datasets/notes/data.jsonl"},
        **overrides,
    }


@pytest.mark.parametrize(
    ("task", "metric", "threshold"),
    [
        ("classification", "accuracy", 0.8),
        ("multilabel", "f1_micro", 0.5),
        ("summarization", "rougeL", 0.2),
        ("qa", "f1", 50.0),
        ("chat", "rougeL", 0.2),
    ],
)
def test_each_task_has_a_default_metric_and_threshold(task: str, metric: str, threshold: float) -> None:
    run = parse(RunRequest, request(task=task))
    assert (run.task, run.metric, run.threshold) == (task, metric, threshold)
    assert TASK_METRICS[task][0] == metric


def test_a_metric_without_a_threshold_gets_the_default_on_its_own_scale() -> None:
    assert parse(RunRequest, request(task="chat", metric="exact_match")).threshold == 20.0
    assert parse(RunRequest, request(task="qa", metric="exact_match")).threshold == 50.0
    assert parse(RunRequest, request(task="classification", metric="f1_macro")).threshold == 0.8
    assert default_threshold("summarization", "rouge2") == 0.2


def test_given_values_win_over_the_defaults() -> None:
    run = parse(RunRequest, request(task="qa", metric="exact_match", threshold=70))
    assert (run.metric, run.threshold) == ("exact_match", 70.0)
    run = parse(RunRequest, request(task="summarization", threshold=0.0))
    assert (run.metric, run.threshold) == ("rougeL", 0.0)


def test_generative_sagemaker_runs_default_to_the_causal_lm() -> None:
    assert parse(RunRequest, request(task="chat")).base_model == DEFAULT_GENERATIVE_BASE_MODEL
    assert parse(RunRequest, request(task="multilabel")).base_model == DEFAULT_BASE_MODEL
    own = parse(RunRequest, request(task="qa", base_model="s3://models/tiny/"))
    assert own.base_model == "s3://models/tiny/"
    # Bedrock names its own foundation model: no SageMaker default is put in its place
    bedrock = parse(RunRequest, request(task="summarization", backend="bedrock", base_model="amazon.nova-micro-v1:0"))
    assert bedrock.base_model == "amazon.nova-micro-v1:0"


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        (
            {"task": "summarization", "metric": "accuracy"},
            "metric",
            "'accuracy' is not a metric of task summarization; use one of rougeL, rouge1, rouge2, rougeLsum",
        ),
        (
            {"task": "qa", "metric": "rougeL"},
            "metric",
            "'rougeL' is not a metric of task qa; use one of f1, exact_match",
        ),
        ({"task": "classification", "metric": "f1"}, "metric", "is not a metric of task classification"),
        ({"task": "multilabel", "metric": "accuracy"}, "metric", "use one of f1_micro, f1_macro, f1_samples"),
        ({"metric": "hamming_loss"}, "metric", "Input should be"),
        ({"task": "summarization", "threshold": 1.5}, "threshold", "less than or equal to 1 for metric rougeL"),
        ({"task": "qa", "threshold": 100.5}, "threshold", "less than or equal to 100"),
        ({"task": "translation"}, "task", "'classification', 'multilabel', 'summarization', 'qa' or 'chat'"),
        ({"task": "multilabel", "backend": "bedrock"}, "task", "not available with backend 'bedrock'"),
        ({"task": "chat", "base_model": DEFAULT_BASE_MODEL}, "base_model", "is an encoder: task chat"),
        ({"hyperparameters": {"task": "qa"}}, "hyperparameters", "set from the run's 'task' option"),
    ],
)
def test_a_combination_that_does_not_fit_names_the_field(overrides: dict[str, object], field: str, text: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse(RunRequest, request(**overrides), "run request")
    assert caught.value.field == field
    assert f"run request: field '{field}'" in str(caught.value)
    assert text in str(caught.value)


def test_the_use_case_file_is_checked_when_it_names_both() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse(UseCaseConfig, {"task": "qa", "metric": "rouge1"}, "fmops.json")
    assert caught.value.field == "metric" and "not a metric of task qa" in str(caught.value)
    with pytest.raises(RequestValidationError, match="field 'threshold': Input should be less than or equal to 1"):
        parse(UseCaseConfig, {"threshold": 2}, "fmops.json")
    # a QA file may give its threshold on SQuAD's 0-100 scale
    assert parse(UseCaseConfig, {"task": "qa", "threshold": 60}, "fmops.json").options() == {
        "task": "qa",
        "threshold": 60.0,
    }
    # only what the file sets is an option: the defaults of the task are filled in by the run request
    assert parse(UseCaseConfig, {"task": "chat"}).options() == {"task": "chat"}


def test_the_file_task_and_request_defaults_combine_into_one_valid_run() -> None:
    options = parse(UseCaseConfig, {"task": "summarization", "hyperparameters": {"max_length": 256}}).options()
    run = parse(RunRequest, request(**options))
    assert (run.task, run.metric, run.threshold, run.base_model) == (
        "summarization",
        "rougeL",
        0.2,
        DEFAULT_GENERATIVE_BASE_MODEL,
    )
    # the dump carries the filled-in values, so every later step parses the same request
    assert parse(RunRequest, run.model_dump(mode="json")) == run


def test_run_options_alone_take_the_same_defaults() -> None:
    options = parse(RunOptions, {"task": "qa"})
    assert (options.metric, options.threshold) == ("f1", 50.0)
