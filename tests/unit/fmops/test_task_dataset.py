"""Validate and split per task: each task's own formats, multilabel's label lists, stratification only for
single-label classification, and Bedrock files in the base model's format with training's prompts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fmops_testkit import FakeAws, jsonl

from fmops.config import CommonSettings
from fmops.data.formats import ANSWER, SUMMARIZE
from fmops.errors import DatasetValidationError
from fmops.lifecycle.dataset import TASK_FORMATS, merge_shards, validate_dataset, validate_shard
from fmops.schemas.run import RunRequest
from fmops.schemas.steps import DatasetInfo, Shard


def run_for(aws: FakeAws, body: bytes, task: str, **options: Any) -> RunRequest:
    version = aws.put_dataset(body)
    return RunRequest.model_validate(
        {
            "run_id": "notes-abc",
            "use_case": "notes",
            "dataset": {"bucket": "fmops-datasets", "key": "datasets/churn/data.jsonl", "version_id": version},
            "task": task,
            **options,
        }
    )


def prepare(aws: FakeAws, run: RunRequest) -> DatasetInfo:
    return validate_dataset(run, s3=aws.s3, settings=CommonSettings.from_env(aws.env))


def lines(aws: FakeAws, uri: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in aws.read(uri).splitlines()]


def multilabel(n: int) -> list[dict[str, Any]]:
    sets = (["billing"], ["billing", "urgent"], ["shipping"], ["shipping", "urgent"], [])
    return [{"text": f"ticket {i}", "labels": list(sets[i % 4])} for i in range(n)]


def summaries(n: int) -> list[dict[str, Any]]:
    return [{"document": f"Document number {i} says many things.", "summary": f"Doc {i}."} for i in range(n)]


def answers(n: int) -> list[dict[str, Any]]:
    return [
        {
            "context": f"Item {i} costs {i} dollars.",
            "question": f"What does item {i} cost?",
            "answers": [f"{i} dollars"],
        }
        for i in range(n)
    ]


def chats(n: int) -> list[dict[str, Any]]:
    return [{"prompt": f"Say {i}", "completion": f"{i}"} for i in range(n)]


def test_the_formats_of_each_task() -> None:
    assert TASK_FORMATS["classification"] == TASK_FORMATS["multilabel"] == ("classification",)
    assert TASK_FORMATS["summarization"][0] == "summarization" and TASK_FORMATS["qa"][0] == "qa"
    assert set(TASK_FORMATS["chat"]) == {"prompt-completion", "conversation", "conversation-legacy"}


def test_multilabel_records_are_split_unstratified_with_every_label(aws: FakeAws) -> None:
    info = prepare(aws, run_for(aws, jsonl(*multilabel(40)), "multilabel"))
    assert info.labels == ["billing", "shipping", "urgent"]
    assert info.counts.model_dump() == {"train": 32, "validation": 4, "test": 4}
    manifest = json.loads(aws.read(info.manifest_uri))
    assert manifest["stratify_by"] is None and manifest["data_format"] == "classification"
    assert all(isinstance(r["labels"], list) for r in lines(aws, info.train_uri))


def test_multilabel_needs_labels_on_every_record(aws: FakeAws) -> None:
    records = multilabel(20)
    records[4] = {"text": "one label only", "label": "billing"}
    with pytest.raises(DatasetValidationError) as caught:
        prepare(aws, run_for(aws, jsonl(*records), "multilabel"))
    assert caught.value.line == 5 and caught.value.field == "labels"
    assert str(caught.value).startswith("line 5: field 'labels': is missing: task multilabel needs a list of labels")


def test_multilabel_needs_two_labels_in_all(aws: FakeAws) -> None:
    records = [{"text": f"t{i}", "labels": ["only"]} for i in range(12)]
    with pytest.raises(DatasetValidationError, match="only 1 distinct label \\('only'\\); multilabel needs at least 2"):
        prepare(aws, run_for(aws, jsonl(*records), "multilabel"))


@pytest.mark.parametrize(
    ("task", "records", "data_format"),
    [
        ("summarization", summaries(30), "summarization"),
        ("qa", answers(30), "qa"),
        ("chat", chats(30), "prompt-completion"),
        ("summarization", chats(30), "prompt-completion"),
        ("qa", chats(30), "prompt-completion"),
    ],
)
def test_generative_tasks_take_their_formats_unstratified(
    aws: FakeAws, task: str, records: list[dict[str, Any]], data_format: str
) -> None:
    info = prepare(aws, run_for(aws, jsonl(*records), task))
    assert info.labels == []
    assert sum(info.counts.model_dump().values()) == 30
    manifest = json.loads(aws.read(info.manifest_uri))
    assert (manifest["data_format"], manifest["stratify_by"]) == (data_format, None)
    assert lines(aws, info.test_uri)[0].keys() == records[0].keys()


def test_conversations_train_chat(aws: FakeAws) -> None:
    records = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(20)
    ]
    info = prepare(aws, run_for(aws, jsonl(*records), "chat"))
    assert json.loads(aws.read(info.manifest_uri))["data_format"] == "conversation-legacy"


@pytest.mark.parametrize(
    ("task", "records", "message"),
    [
        ("chat", summaries(20), "summarization records cannot train task chat; it takes prompt-completion"),
        ("qa", summaries(20), "summarization records cannot train task qa; it takes qa, prompt-completion"),
        ("summarization", multilabel(20), "classification records cannot train task summarization"),
        ("classification", chats(20), "line 1: "),
    ],
)
def test_a_format_the_task_does_not_train_on_is_refused(
    aws: FakeAws, task: str, records: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(DatasetValidationError) as caught:
        prepare(aws, run_for(aws, jsonl(*records), task))
    assert message in str(caught.value)
    assert "report: s3://fmops-reports/runs/notes-abc/data-validation.json" in str(caught.value)


def test_a_bad_generative_line_is_named(aws: FakeAws) -> None:
    records: list[Any] = summaries(20)
    records[6] = {"document": "x", "summary": ""}
    with pytest.raises(DatasetValidationError) as caught:
        prepare(aws, run_for(aws, jsonl(*records), "summarization"))
    assert (caught.value.line, caught.value.field) == (7, "summary")


def test_bedrock_summarization_is_prompt_completion_with_trainings_prompt(aws: FakeAws) -> None:
    run = run_for(
        aws, jsonl(*summaries(40)), "summarization", backend="bedrock", base_model="amazon.titan-text-lite-v1"
    )
    info = prepare(aws, run)
    assert info.bedrock_train_uri and info.bedrock_validation_uri
    train = lines(aws, info.train_uri)
    bedrock = lines(aws, info.bedrock_train_uri)
    assert len(bedrock) == len(train) == info.counts.train
    assert bedrock[0] == {"prompt": SUMMARIZE + train[0]["document"], "completion": train[0]["summary"]}


def test_bedrock_qa_for_a_conversation_model(aws: FakeAws) -> None:
    run = run_for(aws, jsonl(*answers(40)), "qa", backend="bedrock", base_model="amazon.nova-micro-v1:0")
    info = prepare(aws, run)
    assert info.bedrock_train_uri is not None
    first, source = lines(aws, info.bedrock_train_uri)[0], lines(aws, info.train_uri)[0]
    assert first["schemaVersion"] == "bedrock-conversation-2024"
    asked = ANSWER.format(context=source["context"], question=source["question"])
    assert first["messages"] == [
        {"role": "user", "content": [{"text": asked}]},
        {"role": "assistant", "content": [{"text": source["answers"][0]}]},
    ]


def test_bedrock_multi_turn_chat_for_a_prompt_completion_model_is_refused(aws: FakeAws) -> None:
    turns = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    records = [{"messages": turns} for _ in range(40)]
    run = run_for(aws, jsonl(*records), "chat", backend="bedrock", base_model="amazon.titan-text-lite-v1")
    with pytest.raises(DatasetValidationError) as caught:
        prepare(aws, run)
    assert caught.value.field == "messages"
    assert "cannot be written as one prompt" in str(caught.value) and "prompt-completion" in str(caught.value)


def test_sharded_generative_files_detect_their_format_per_shard(aws: FakeAws) -> None:
    body = jsonl(*summaries(20)) + jsonl(*chats(20))
    run = run_for(aws, body, "summarization")
    half = len(jsonl(*summaries(20)))
    settings = CommonSettings.from_env(aws.env)
    shards = [
        validate_shard(run, Shard(index=0, start=0, end=half), s3=aws.s3, settings=settings),
        validate_shard(run, Shard(index=1, start=half, end=len(body)), s3=aws.s3, settings=settings),
    ]
    report = merge_shards(shards, aws.s3, "summarization")
    assert not report.valid
    assert [e.code for e in report.errors] == ["mixed_formats"]
    assert "summarization records, then prompt-completion records (from around line 21)" in report.errors[0].message
    with pytest.raises(DatasetValidationError, match="the file mixes formats"):
        validate_dataset(run, s3=aws.s3, settings=settings, shards=shards)
