"""Hyperparameter tuning: the ``tuning`` option, the planned CreateHyperParameterTuningJob request, the ranking and
record of its training jobs, and the two handlers."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import botocore.validate
import pytest
from fmops_testkit import FIXED_NOW, FakeAws, fixed_clock, load_event

from fmops.config import PlanTrainingSettings
from fmops.errors import RequestValidationError, TuningFailedError
from fmops.lifecycle.training import CHECKPOINT_LOCAL_PATH, plan_sagemaker
from fmops.lifecycle.tuning import (
    plan_tuning,
    rank_trials,
    record_tuning,
    tuning_job_name,
)
from fmops.schemas.base import parse
from fmops.schemas.jobs import CreateTrainingJobRequest
from fmops.schemas.run import RunRequest, UseCaseConfig
from fmops.schemas.steps import PlanTrainingEvent
from fmops.schemas.tuning import TUNABLE, RecordTuningEvent, TuningConfig, TuningResult, TuningSpec

ROOT = Path(__file__).resolve().parents[3]
LR = {"type": "continuous", "min": 1e-5, "max": 1e-3}
RUN_BASE = {"run_id": "churn-3f2a9c1d0b7e", "use_case": "churn", "dataset": {"bucket": "fmops-datasets", "key": "k"}}


def run_with(tuning: dict[str, Any] | None, **options: Any) -> RunRequest:
    return parse(RunRequest, {**RUN_BASE, **options, "tuning": tuning}, "run request")


def problem(tuning: dict[str, Any], **options: Any) -> RequestValidationError:
    with pytest.raises(RequestValidationError) as caught:
        run_with(tuning, **options)
    return caught.value


# --------------------------------------------------------------------------------------------- TuningConfig


def test_defaults_maximise_validation_accuracy_with_bayesian_search_and_early_stopping() -> None:
    config = run_with({"ranges": {"learning_rate": LR}}).tuning
    assert config is not None
    assert (config.objective_metric, config.objective, config.strategy) == (
        "validation_accuracy",
        "Maximize",
        "Bayesian",
    )
    assert (config.max_jobs, config.max_parallel_jobs, config.early_stopping) == (10, 2, "Auto")
    assert run_with(None).tuning is None
    loss = TuningConfig.model_validate({"objective_metric": "validation_loss", "ranges": {"learning_rate": LR}})
    assert loss.objective == "Minimize"


def test_categorical_values_may_be_numbers() -> None:
    config = TuningConfig.model_validate({"ranges": {"batch_size": {"type": "categorical", "values": [16, 32]}}})
    assert config.ranges["batch_size"].values == ["16", "32"]


@pytest.mark.parametrize(
    ("tuning", "field", "message"),
    [
        (
            {"ranges": {"learning_rate": {**LR, "min": 1e-3, "max": 1e-5}}},
            "tuning.ranges.learning_rate.min",
            "must be < max",
        ),
        (
            {"ranges": {"learning_rate": {**LR, "min": 0.0, "max": 0.5, "scaling": "Logarithmic"}}},
            "tuning.ranges.learning_rate.min",
            "train.py accepts learning_rate between 1e-12 and 1",
        ),
        (
            {"ranges": {"warmup_ratio": {"type": "continuous", "min": 0, "max": 0.5, "scaling": "Logarithmic"}}},
            "tuning.ranges.warmup_ratio.min",
            "must be > 0 for Logarithmic scaling",
        ),
        (
            {"ranges": {"learning_rate": {"type": "continuous", "min": 1e-5}}},
            "tuning.ranges.learning_rate.max",
            "is required",
        ),
        ({"ranges": {"dropout": LR}}, "tuning.ranges.dropout", "not a tunable hyperparameter of train.py"),
        ({"ranges": {"seed": {"type": "integer", "min": 1, "max": 9}}}, "tuning.ranges.seed", "not a tunable"),
        (
            {"ranges": {"epochs": {"type": "continuous", "min": 1, "max": 3}}},
            "tuning.ranges.epochs.type",
            "use integer",
        ),
        ({"ranges": {"epochs": {"type": "integer", "min": 1.5, "max": 3}}}, "tuning.ranges.epochs.min", "an integer"),
        (
            {"ranges": {"epochs": {"type": "integer", "min": 1, "max": 2000}}},
            "tuning.ranges.epochs.max",
            "between 1 and 1000",
        ),
        (
            {"ranges": {"batch_size": {"type": "categorical", "values": ["16", "big"]}}},
            "tuning.ranges.batch_size.values[1]",
            "'big' is not an integer",
        ),
        (
            {"ranges": {"batch_size": {"type": "categorical", "values": []}}},
            "tuning.ranges.batch_size.values",
            "at least one",
        ),
        (
            {"ranges": {"batch_size": {"type": "categorical", "values": ["8"], "min": 1}}},
            "tuning.ranges.batch_size.min",
            "only continuous and integer",
        ),
        (
            {
                "ranges": {
                    "warmup_ratio": {"type": "continuous", "min": 0.1, "max": 0.5, "scaling": "ReverseLogarithmic"}
                }
            },
            None,
            None,
        ),
        (
            {"ranges": {"epochs": {"type": "integer", "min": 1, "max": 5, "scaling": "ReverseLogarithmic"}}},
            "tuning.ranges.epochs.scaling",
            "continuous ranges only",
        ),
        ({"ranges": {}}, "tuning.ranges", "at least one hyperparameter range"),
        (
            {"ranges": {"learning_rate": LR}, "max_jobs": 3, "max_parallel_jobs": 4},
            "tuning.max_parallel_jobs",
            "<= max_jobs (3)",
        ),
        ({"ranges": {"learning_rate": LR}, "max_jobs": 751}, "tuning.max_jobs", "less than or equal to 750"),
        (
            {"ranges": {"learning_rate": LR}, "max_parallel_jobs": 0},
            "tuning.max_parallel_jobs",
            "greater than or equal to 1",
        ),
        ({"ranges": {"learning_rate": LR}, "early_stopping": "Sometimes"}, "tuning.early_stopping", "'Auto' or 'Off'"),
        ({"ranges": {"learning_rate": LR}, "strategy": "Hyperband"}, "tuning.strategy", "'Bayesian' or 'Random'"),
        ({"ranges": {"learning_rate": LR}, "objective_metric": "f1"}, "tuning.objective_metric", "validation_accuracy"),
        (
            {"ranges": {"learning_rate": LR}, "objective_metric": "validation_loss", "objective_type": "Maximize"},
            "tuning.objective_type",
            "validation_loss is minimized",
        ),
        ({"ranges": {"learning_rate": {**LR, "step": 2}}}, "tuning.ranges.learning_rate.step", "not a known field"),
    ],
)
def test_invalid_tuning_is_refused_naming_the_field(
    tuning: dict[str, Any], field: str | None, message: str | None
) -> None:
    if field is None:  # the valid control case of the table
        assert run_with(tuning).tuning is not None
        return
    error = problem(tuning)
    assert error.field == field
    assert message is not None and message in error.message
    assert f"field '{field}'" in error.message


def test_every_problem_of_a_config_is_reported() -> None:
    error = problem(
        {"ranges": {"learning_rate": {**LR, "min": 2.0}, "epochs": {"type": "continuous", "min": 1, "max": 2}}}
    )
    assert "(and 1 more error(s))" in error.message


def test_tuning_is_for_the_sagemaker_backend_only() -> None:
    error = problem({"ranges": {"learning_rate": LR}}, backend="bedrock", base_model="amazon.titan-text-lite-v1")
    assert error.field == "tuning"
    assert "not available with backend 'bedrock'" in error.message
    with pytest.raises(RequestValidationError, match="backend 'bedrock'"):
        parse(UseCaseConfig, {"backend": "bedrock", "tuning": {"ranges": {"learning_rate": LR}}})
    # A use-case file without a backend may hold tuning: the run's backend decides.
    assert parse(UseCaseConfig, {"tuning": {"ranges": {"learning_rate": LR}}}).options()["tuning"]["max_jobs"] == 10


def test_the_tunable_table_matches_train_py() -> None:
    sys.path.insert(0, str(ROOT / "training"))
    try:
        from fmops_training import contract
    finally:
        sys.path.remove(str(ROOT / "training"))
    types = {
        name: ("int" if t is int else "float" if t is float else "other") for name, t in contract._FIELD_TYPES.items()
    }
    for name, tunable in TUNABLE.items():
        assert types[name] == tunable.kind, name
        low, high, _ = contract._RANGES[name]
        assert (tunable.low, tunable.high) == (low, high), name


# --------------------------------------------------------------------------------------------- planning


def test_tuning_job_names_are_short_stable_and_distinct() -> None:
    long_a, long_b = "a" * 30 + "-one", "a" * 30 + "-two"
    for run_id in ("churn-3f2a9c1d0b7e", long_a, "x"):
        name = tuning_job_name(run_id)
        assert len(name) <= 32 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", name), name
        assert tuning_job_name(run_id) == name
    assert tuning_job_name(long_a) != tuning_job_name(long_b)
    assert tuning_job_name("churn-3f2a9c1d0b7e").startswith("churn-3f2a9c1d0b7e-")


def _planned(
    env: dict[str, str], tuning: dict[str, Any], **run: Any
) -> tuple[RunRequest, CreateTrainingJobRequest, TuningSpec]:
    raw = load_event("plan_training")
    raw["run"].update(run, tuning=tuning)
    event = parse(PlanTrainingEvent, raw)
    training = plan_sagemaker(event.run, event.dataset, PlanTrainingSettings.from_env())
    return event.run, training, plan_tuning(event.run, training, stack_name="fmops-test")


def _validate_against_botocore(request: dict[str, Any]) -> None:
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateHyperParameterTuningJob")
        .input_shape
    )
    report = botocore.validate.ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def test_the_request_is_the_planned_training_job_with_the_search(env: dict[str, str]) -> None:
    tuning = {
        "max_jobs": 6,
        "max_parallel_jobs": 3,
        "ranges": {
            "learning_rate": {**LR, "scaling": "Logarithmic"},
            "epochs": {"type": "integer", "min": 1, "max": 3, "scaling": "Linear"},
            "batch_size": {"type": "categorical", "values": [16, 32]},
        },
    }
    run, training, spec = _planned(env, tuning)
    request = spec.sagemaker
    _validate_against_botocore(request)
    assert spec.job_name == request["HyperParameterTuningJobName"] == tuning_job_name(run.run_id)
    assert spec.tuned_hyperparameters == ["batch_size", "epochs", "learning_rate"]
    assert (spec.objective_metric, spec.objective_type) == ("validation_accuracy", "Maximize")

    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation_accuracy"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["RandomSeed"] == run.split.seed
    assert config["ParameterRanges"] == {
        "ContinuousParameterRanges": [
            {"Name": "learning_rate", "MinValue": "1e-05", "MaxValue": "0.001", "ScalingType": "Logarithmic"}
        ],
        "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "3", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "batch_size", "Values": ["16", "32"]}],
    }

    definition = request["TrainingJobDefinition"]
    planned = training.dump()
    static = definition["StaticHyperParameters"]
    assert static == {k: v for k, v in planned["HyperParameters"].items() if k not in spec.tuned_hyperparameters}
    assert {"sagemaker_program", "sagemaker_submit_directory", "base_model", "seed", "max_length"} <= set(static)
    for key in (
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "VpcConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
        "Environment",
    ):
        assert definition[key] == planned[key], key
    algorithm = planned["AlgorithmSpecification"]
    assert definition["AlgorithmSpecification"] == {
        "TrainingImage": algorithm["TrainingImage"],
        "TrainingInputMode": "File",
        "MetricDefinitions": algorithm["MetricDefinitions"],
    }
    assert "CheckpointConfig" not in definition  # one shared location would mix the jobs' checkpoints
    assert request["Tags"] == planned["Tags"]


def test_spot_kms_and_a_seed_carry_over(env: dict[str, str]) -> None:
    tuning = {
        "seed": 99,
        "objective_metric": "validation_loss",
        "strategy": "Random",
        "early_stopping": "Off",
        "max_runtime_seconds": 7200,
        "ranges": {"weight_decay": {"type": "continuous", "min": 0.0, "max": 0.1}},
    }
    _, training, spec = _planned(env, tuning, spot=True, instance_type="ml.m5.xlarge")
    _validate_against_botocore(spec.sagemaker)
    config = spec.sagemaker["HyperParameterTuningJobConfig"]
    assert (config["RandomSeed"], config["Strategy"], config["TrainingJobEarlyStoppingType"]) == (99, "Random", "Off")
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "validation_loss"}
    assert config["ResourceLimits"]["MaxRuntimeInSeconds"] == 7200
    definition = spec.sagemaker["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True
    assert (
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"]
        >= definition["StoppingCondition"]["MaxRuntimeInSeconds"]
    )
    assert definition["ResourceConfig"]["VolumeKmsKeyId"] == env["KMS_KEY_ARN"]
    assert definition["OutputDataConfig"]["KmsKeyId"] == env["KMS_KEY_ARN"]
    assert training.checkpoint_config is not None and training.checkpoint_config.local_path == CHECKPOINT_LOCAL_PATH
    assert "CheckpointConfig" not in definition


def test_planning_refuses_a_run_without_tuning(env: dict[str, str]) -> None:
    run, training, _ = _planned(env, {"ranges": {"learning_rate": LR}})
    with pytest.raises(RequestValidationError) as caught:
        plan_tuning(run.model_copy(update={"tuning": None}), training, stack_name="s")
    assert caught.value.field == "tuning"
    assert str(caught.value) == "field 'tuning': the run has no tuning configuration"
    with pytest.raises(RequestValidationError, match="field 'tuning': .* not 'bedrock'") as caught:
        plan_tuning(run.model_copy(update={"backend": "bedrock"}), training, stack_name="s")
    assert caught.value.field == "tuning"
    no_metric = training.model_copy(deep=True)
    no_metric.algorithm_specification.metric_definitions = []
    with pytest.raises(RequestValidationError) as caught:
        plan_tuning(run, no_metric, stack_name="s")
    assert caught.value.field == "tuning.objective_metric"
    assert str(caught.value).startswith("field 'tuning.objective_metric': 'validation_accuracy' is not a metric")


def test_planning_notes_the_tuning_job_on_the_run_record(aws: FakeAws) -> None:
    run, training, _ = _planned(aws.env, {"ranges": {"learning_rate": LR}})
    spec = plan_tuning(run, training, stack_name="fmops-test", runs=aws.runs, clock=fixed_clock)
    record = aws.runs.get(run.run_id)
    assert record is not None
    assert record["tuning"]["job_name"] == spec.job_name
    assert record["tuning"]["status"] == "Planned"
    assert record["updated_at"] == "2025-01-01T12:00:00Z"


# --------------------------------------------------------------------------------------------- ranking


def _summary(name: str, status: str, value: float | None, minute: int, lr: str = "0.001") -> dict[str, Any]:
    summary: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CreationTime": FIXED_NOW + dt.timedelta(minutes=minute),
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"learning_rate": lr},
        "ObjectiveStatus": "Succeeded" if value is not None else "Failed",
    }
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "validation_accuracy", "Value": value}
    if status == "Failed":
        summary["FailureReason"] = "AlgorithmError: boom"
    return summary


SUMMARIES = [
    _summary("t-001", "Completed", 0.8, 1, "0.0001"),
    _summary("t-002", "Failed", None, 2),
    _summary("t-003", "Completed", 0.9, 3, "0.0003"),
    _summary("t-004", "Stopped", 0.95, 4),
    _summary("t-005", "Completed", 0.9, 5),
]


def test_trials_are_ranked_by_the_objective_and_the_best_is_a_completed_job() -> None:
    trials = rank_trials(SUMMARIES, "Maximize")
    assert [(t.training_job_name, t.rank) for t in trials] == [
        ("t-004", 1),
        ("t-003", 2),  # a tie goes to the earlier job
        ("t-005", 3),
        ("t-001", 4),
        ("t-002", None),
    ]
    assert [t.training_job_name for t in trials if t.best] == ["t-003"]  # the Stopped one has no final model
    assert trials[-1].failure_reason == "AlgorithmError: boom"
    assert trials[1].hyperparameters == {"learning_rate": "0.0003"}
    assert trials[1].created == "2025-01-01T12:03:00Z"
    minimized = rank_trials(SUMMARIES, "Minimize", best_name="t-001")
    assert [t.training_job_name for t in minimized][:2] == ["t-001", "t-003"]
    assert [t.training_job_name for t in minimized if t.best] == ["t-001"]


# --------------------------------------------------------------------------------------------- recording


@dataclass
class FakeTuningApi:
    """SageMaker's answers for one finished tuning job (moto has no ListTrainingJobsForHyperParameterTuningJob)."""

    status: str = "Completed"
    summaries: list[dict[str, Any]] | None = None

    def describe_tuning_job(self, name: str) -> dict[str, Any]:
        described: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}",
            "HyperParameterTuningJobStatus": self.status,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation_accuracy"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 2},
                "TrainingJobEarlyStoppingType": "Auto",
            },
            "CreationTime": FIXED_NOW,
            "TrainingJobStatusCounters": {
                "Completed": 3,
                "InProgress": 0,
                "RetryableError": 0,
                "NonRetryableError": 1,
                "Stopped": 1,
            },
            "ObjectiveStatusCounters": {"Succeeded": 4, "Pending": 0, "Failed": 1},
        }
        if self.status == "Completed":
            described["BestTrainingJob"] = SUMMARIES[2]
        return described

    def list_training_jobs(self, name: str) -> list[dict[str, Any]]:
        return copy.deepcopy(SUMMARIES if self.summaries is None else self.summaries)

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://fmops-artifacts/training/x/{name}/output/model.tar.gz"},
            "HyperParameters": {"learning_rate": "0.0003", "epochs": "1"},
            "FinalMetricDataList": [{"MetricName": "validation_accuracy", "Value": 0.9, "Timestamp": FIXED_NOW}],
            "CreationTime": FIXED_NOW,
        }


def _record_event() -> RecordTuningEvent:
    return parse(RecordTuningEvent, load_event("record_tuning"))


def test_recording_writes_the_ranking_updates_the_run_and_returns_the_best_job(aws: FakeAws) -> None:
    event = _record_event()
    result = record_tuning(
        event,
        sagemaker=FakeTuningApi(),
        s3=aws.s3,
        runs=aws.runs,
        reports_bucket=aws.env["REPORTS_BUCKET"],
        clock=fixed_clock,
    )  # type: ignore[arg-type]

    run_id = event.run.run_id
    assert result.results_uri == f"s3://{aws.env['REPORTS_BUCKET']}/runs/{run_id}/tuning.json"
    assert result.best.training_job_name == "t-003" and result.training_job_count == 5
    # The createTrainingJob.sync shape: what "Use best training job" and the evaluation path read.
    job = result.best_training_job
    assert job["TrainingJobName"] == "t-003"
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/t-003/output/model.tar.gz")
    assert job["FinalMetricDataList"][0]["Timestamp"] == FIXED_NOW.isoformat()  # JSON, not datetimes
    assert {"TrainingJobArn", "HyperParameters", "TrainingJobStatus"} <= set(job)
    assert result.hyperparameters == {**event.run.hyperparameters, "learning_rate": "0.0003"}
    parse(RunRequest, {**event.run.model_dump(mode="json"), "hyperparameters": result.hyperparameters})

    report = json.loads(aws.read(result.results_uri))
    assert [t["training_job_name"] for t in report["trials"]] == ["t-004", "t-003", "t-005", "t-001", "t-002"]
    assert report["best"]["training_job_name"] == "t-003"
    assert (report["strategy"], report["objective"], report["early_stopping"]) == (
        "Bayesian",
        {"metric": "validation_accuracy", "type": "Maximize"},
        "Auto",
    )
    assert report["training_job_status_counters"]["Stopped"] == 1
    record = aws.runs.get(run_id)
    assert record is not None
    tuning = record["tuning"]
    assert (tuning["best_training_job"], tuning["best_objective_value"], tuning["results_uri"]) == (
        "t-003",
        0.9,
        result.results_uri,
    )
    assert (tuning["training_jobs"], tuning["completed"], tuning["failed"], tuning["stopped"]) == (5, 3, 1, 1)


def test_a_tuning_job_without_a_completed_job_is_recorded_then_fails(aws: FakeAws) -> None:
    event = _record_event()
    api = FakeTuningApi(
        status="Failed", summaries=[_summary("t-001", "Failed", None, 1), _summary("t-002", "Stopped", 0.3, 2)]
    )
    with pytest.raises(TuningFailedError, match="no completed training job"):
        record_tuning(event, sagemaker=api, s3=aws.s3, runs=aws.runs, reports_bucket=aws.env["REPORTS_BUCKET"])  # type: ignore[arg-type]
    record = aws.runs.get(event.run.run_id)
    assert record is not None and record["tuning"]["status"] == "Failed"
    assert "best_training_job" not in record["tuning"]  # None values are not stored
    assert aws.keys(aws.env["REPORTS_BUCKET"], f"runs/{event.run.run_id}/") == [f"runs/{event.run.run_id}/tuning.json"]


# --------------------------------------------------------------------------------------------- handlers


@dataclass
class _Context:
    function_name: str = "fmops-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fmops-test-function"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _handler(folder: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"fmops_function_{folder}", ROOT / "functions" / folder / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


def test_the_plan_handler_returns_every_field_the_state_selects(aws: FakeAws) -> None:
    result = _handler("plan_tuning")(load_event("plan_tuning"), _Context())
    assert set(result) == set(TuningSpec.model_fields)
    _validate_against_botocore(result["sagemaker"])
    bad = load_event("plan_tuning")
    bad["training_spec"]["sagemaker"] = None
    with pytest.raises(RequestValidationError, match="not a SageMaker one"):
        _handler("plan_tuning")(bad, _Context())


def test_the_tuning_wrapper_and_error_moved_out_of_the_use_case_module() -> None:
    import fmops.lifecycle.tuning as tuning
    from fmops.aws.sagemaker import SageMakerTuning
    from fmops.errors import FmopsError

    # Re-exported for the callers that import them from fmops.lifecycle.tuning (hpo_cmd, record_tuning's handler).
    assert tuning.SageMakerTuning is SageMakerTuning and tuning.TuningFailedError is TuningFailedError
    assert SageMakerTuning.__module__ == "fmops.aws.sagemaker" and TuningFailedError.__module__ == "fmops.errors"
    assert issubclass(TuningFailedError, FmopsError) and TuningFailedError.__name__ == "TuningFailedError"


def test_the_record_handler_refuses_a_malformed_event(aws: FakeAws) -> None:
    event = load_event("record_tuning")
    del event["tuning_job"]["job_name"]
    with pytest.raises(RequestValidationError, match="tuning_job.job_name"):
        _handler("record_tuning")(event, _Context())
    assert set(TuningResult.model_fields) >= {"best_training_job", "hyperparameters"}
