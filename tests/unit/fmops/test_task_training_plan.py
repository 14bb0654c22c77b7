"""The training and evaluation plans of every task: the task hyperparameter, multi-instance jobs, the metric
definitions (the same names as training's metric lines) and an S3 base model for evaluation."""

from __future__ import annotations

import re

from fmops_testkit import load_event

from fmops.config import PlanEvaluationSettings, PlanTrainingSettings
from fmops.lifecycle._common import METRIC_NAMES
from fmops.lifecycle.evaluation import plan_evaluation
from fmops.lifecycle.training import metric_regex, plan_training
from fmops.schemas import parse
from fmops.schemas.steps import PlanEvaluationEvent, PlanTrainingEvent
from fmops_training.metrics_log import METRIC_NAMES as TRAINING_METRIC_NAMES
from fmops_training.metrics_log import format_metric

TINY_LM = "s3://fmops-artifacts/models/tiny-llama/"


def training_event(**run_overrides: object) -> PlanTrainingEvent:
    raw = load_event("plan_training")
    raw["run"].update(run_overrides)
    return parse(PlanTrainingEvent, raw)


def generative(task: str, **overrides: object) -> dict[str, object]:
    # the sample event names the classification metric and encoder: a generative run names neither
    return {"task": task, "metric": None, "threshold": None, "base_model": None, **overrides}


def test_the_layer_knows_every_metric_line_training_prints() -> None:
    assert METRIC_NAMES == TRAINING_METRIC_NAMES


def test_every_metric_line_is_read_by_its_own_definition_only(env: dict[str, str]) -> None:
    event = training_event()
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    definitions = {m["Name"]: m["Regex"] for m in job["AlgorithmSpecification"]["MetricDefinitions"]}
    assert list(definitions) == list(TRAINING_METRIC_NAMES)
    for name in TRAINING_METRIC_NAMES:
        rank = 1 if name.startswith("rank_") else None
        line = format_metric(name, -0.25 if name == "train_loss" else 1.5e-3, 7, rank)
        matched = [n for n, regex in definitions.items() if re.search(regex, line)]
        assert matched == [name], line
        found = re.search(metric_regex(name), line)
        assert found is not None and float(found.group(1)) == float(line.split("value=")[1].split()[0])


def test_the_task_is_a_hyperparameter(env: dict[str, str]) -> None:
    for task in ("classification", "multilabel"):
        event = training_event(task=task, metric=None, threshold=None)
        job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
        assert job is not None and job["HyperParameters"]["task"] == task
    event = training_event(**generative("chat"))
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    assert job["HyperParameters"]["task"] == "chat"
    assert job["HyperParameters"]["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == {"train", "validation"}


def test_an_s3_causal_lm_is_the_base_model_channel(env: dict[str, str]) -> None:
    event = training_event(**generative("qa", base_model=TINY_LM))
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels["base_model"] == TINY_LM
    assert job["HyperParameters"]["base_model"] == TINY_LM


def test_several_instances_need_no_launcher_hyperparameter(env: dict[str, str]) -> None:
    event = training_event(instance_count=2)
    job = plan_training(event.run, event.dataset, settings=PlanTrainingSettings.from_env()).sagemaker
    assert job is not None
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["EnableInterContainerTrafficEncryption"] is True
    # train.py launches torchrun itself: SageMaker's own launchers stay off
    assert sorted(k for k in job["HyperParameters"] if k.startswith("sagemaker_")) == [
        "sagemaker_program",
        "sagemaker_submit_directory",
    ]
    # every instance reads the whole of each channel; each rank takes its slice of every batch
    assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in job["InputDataConfig"]} == {
        "FullyReplicated"
    }


def test_evaluation_of_an_s3_base_model_gets_its_files(env: dict[str, str]) -> None:
    raw = load_event("plan_evaluation")
    raw["run"].update(generative("chat", base_model=TINY_LM))
    event = parse(PlanEvaluationEvent, raw)
    spec = plan_evaluation(event.run, event.dataset, event.training, settings=PlanEvaluationSettings.from_env())
    inputs = {i["InputName"]: i["S3Input"] for i in spec.sagemaker["ProcessingInputs"]}
    assert inputs["base_model"] == {
        **inputs["base_model"],
        "S3Uri": TINY_LM,
        "LocalPath": "/opt/ml/processing/base_model",
    }
    # evaluate.py finds it beside --model-dir (/opt/ml/processing/model)
    arguments = spec.sagemaker["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--model-dir") + 1] == "/opt/ml/processing/model"
    hub = parse(PlanEvaluationEvent, load_event("plan_evaluation"))
    plan = plan_evaluation(hub.run, hub.dataset, hub.training, settings=PlanEvaluationSettings.from_env())
    assert "base_model" not in {i["InputName"] for i in plan.sagemaker["ProcessingInputs"]}
