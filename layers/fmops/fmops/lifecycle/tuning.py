"""Hyperparameter tuning: plan the CreateHyperParameterTuningJob request, then rank and record its training jobs.

``plan_tuning`` turns the training job that ``fmops.lifecycle.training.plan_sagemaker`` planned for the run into
a tuning job's ``TrainingJobDefinition`` (same image, role, channels, output, resources, VPC, stopping condition,
spot, KMS, network isolation, traffic encryption, metric definitions, environment; the static hyperparameters
minus the tuned ones) with the run's ``tuning`` search. ``record_tuning`` lists every training job of the tuning
job, ranks them by the objective, writes ``s3://<reports>/runs/<run_id>/tuning.json``, stores a summary on the run
record and returns the best training job in the shape ``createTrainingJob.sync`` gives (DescribeTrainingJob), so
evaluation, registration, the gate, approval and deployment work on it unchanged. See docs/TUNING.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fmops.aws.sagemaker import SageMakerTuning
from fmops.errors import RequestValidationError, TuningFailedError
from fmops.lifecycle._common import Clock, iso, run_tags, utcnow
from fmops.observability import logger
from fmops.schemas.jobs import CreateTrainingJobRequest, Tag
from fmops.schemas.run import RunRequest
from fmops.schemas.tuning import (
    CategoricalRange,
    CreateHyperParameterTuningJobRequest,
    HyperParameterAlgorithmSpecification,
    HyperParameterTrainingJobDefinition,
    HyperParameterTuningJobConfig,
    NumericRange,
    ParameterRange,
    ParameterRanges,
    RecordTuningEvent,
    ResourceLimits,
    TuningObjective,
    TuningResult,
    TuningSpec,
    TuningTrial,
)

if TYPE_CHECKING:
    from fmops.aws.dynamodb import Table
    from fmops.aws.s3 import S3Storage

TUNING_NAME_MAX = 32
RESULTS_NAME = "tuning.json"
# Statuses of a training job that will not change any more.
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


# ------------------------------------------------------------------------------------------------ planning


def tuning_job_name(run_id: str) -> str:
    """``<run id, cut>-<8 hex of its sha256>`` (<= 32 characters, SageMaker's limit): the same run always gets the
    same name, so a retried state never starts a second tuning job, and two run ids cut alike stay apart."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    prefix = run_id[: TUNING_NAME_MAX - len(digest) - 1].rstrip("-")
    return f"{prefix}-{digest}"


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def parameter_ranges(ranges: dict[str, ParameterRange]) -> ParameterRanges:
    """``tuning.ranges`` as SageMaker's ParameterRanges (numbers as strings, ScalingType as given)."""
    out = ParameterRanges()
    for name, spec in sorted(ranges.items()):
        if spec.type == "categorical":
            out.categorical_parameter_ranges.append(CategoricalRange(name=name, values=list(spec.values or [])))
            continue
        assert spec.min is not None and spec.max is not None  # TuningConfig checked it
        integer = spec.type == "integer"
        numeric = NumericRange(
            name=name,
            min_value=_number(spec.min, integer),
            max_value=_number(spec.max, integer),
            scaling_type=spec.scaling,
        )
        (out.integer_parameter_ranges if integer else out.continuous_parameter_ranges).append(numeric)
    return out


def plan_tuning(
    run: RunRequest,
    training: CreateTrainingJobRequest,
    *,
    stack_name: str,
    runs: Table | None = None,
    clock: Clock = utcnow,
) -> TuningSpec:
    """The CreateHyperParameterTuningJob request of a run whose ``training`` job ``plan_sagemaker`` planned.

    Differences from the single training job: the tuned hyperparameters leave the static ones; no
    ``CheckpointConfig`` (every training job of the tuning job would share the one location, and train.py refuses
    a checkpoint written with other hyperparameters; a spot job interrupted in a tuning job starts over); the tags
    go on the tuning job (SageMaker puts them on the training jobs it launches). With ``runs``, the tuning job's
    name is stored on the run record (``tuning``) so ``fmops hpo results`` can follow it while it runs.

    Raises:
        RequestValidationError: the run has no ``tuning``, is not a SageMaker run, or its objective metric is not one
            of the training job's metric definitions (field named).
        TransientAwsError.
    """
    config = run.tuning
    if config is None:
        raise RequestValidationError("field 'tuning': the run has no tuning configuration", field="tuning")
    if run.backend != "sagemaker":
        raise RequestValidationError(
            f"field 'tuning': hyperparameter tuning needs the sagemaker backend, not {run.backend!r}", field="tuning"
        )
    algorithm = training.algorithm_specification
    metric_names = [m.name for m in algorithm.metric_definitions]
    if config.objective_metric not in metric_names:
        raise RequestValidationError(
            f"field 'tuning.objective_metric': {config.objective_metric!r} is not a metric of the training job "
            f"({', '.join(metric_names) or 'it has none'})",
            field="tuning.objective_metric",
        )
    tuned = sorted(config.ranges)
    static = {k: v for k, v in training.hyper_parameters.items() if k not in config.ranges}
    name = tuning_job_name(run.run_id)
    request = CreateHyperParameterTuningJobRequest(
        hyper_parameter_tuning_job_name=name,
        hyper_parameter_tuning_job_config=HyperParameterTuningJobConfig(
            strategy=config.strategy,
            hyper_parameter_tuning_job_objective=TuningObjective(
                type=config.objective, metric_name=config.objective_metric
            ),
            resource_limits=ResourceLimits(
                max_number_of_training_jobs=config.max_jobs,
                max_parallel_training_jobs=config.max_parallel_jobs,
                max_runtime_in_seconds=config.max_runtime_seconds,
            ),
            parameter_ranges=parameter_ranges(config.ranges),
            training_job_early_stopping_type=config.early_stopping,
            random_seed=config.seed if config.seed is not None else run.split.seed,
        ),
        training_job_definition=HyperParameterTrainingJobDefinition(
            static_hyper_parameters=static,
            algorithm_specification=HyperParameterAlgorithmSpecification(
                training_image=algorithm.training_image,
                training_input_mode=algorithm.training_input_mode,
                metric_definitions=algorithm.metric_definitions,
            ),
            role_arn=training.role_arn,
            input_data_config=training.input_data_config,
            vpc_config=training.vpc_config,
            output_data_config=training.output_data_config,
            resource_config=training.resource_config,
            stopping_condition=training.stopping_condition,
            enable_network_isolation=training.enable_network_isolation,
            enable_inter_container_traffic_encryption=training.enable_inter_container_traffic_encryption,
            enable_managed_spot_training=training.enable_managed_spot_training,
            environment=training.environment,
        ),
        tags=training.tags or [Tag.model_validate(t) for t in run_tags(run, stack_name)],
    )
    spec = TuningSpec(
        job_name=name,
        objective_metric=config.objective_metric,
        objective_type=config.objective,
        tuned_hyperparameters=tuned,
        sagemaker=request.dump(),
    )
    logger.info(
        "tuning planned",
        extra={"run_id": run.run_id, "tuning_job": name, "max_jobs": config.max_jobs, "tuned": tuned},
    )
    if runs is not None:
        runs.update(
            run.run_id,
            {
                "tuning": {
                    "job_name": name,
                    "status": "Planned",
                    "strategy": config.strategy,
                    "objective_metric": config.objective_metric,
                    "objective_type": config.objective,
                    "max_jobs": config.max_jobs,
                    "max_parallel_jobs": config.max_parallel_jobs,
                    "early_stopping": config.early_stopping,
                    "tuned_hyperparameters": tuned,
                },
                "updated_at": iso(clock()),
            },
        )
    return spec


# -------------------------------------------------------------------------------------------------- ranking


def jsonable(value: Any) -> Any:
    """An AWS response as JSON data (datetimes as ISO 8601 strings)."""
    return json.loads(
        json.dumps(value, default=lambda o: o.isoformat() if isinstance(o, dt.datetime | dt.date) else str(o))
    )


def _when(value: Any) -> str | None:
    if value is None:
        return None
    return iso(value) if isinstance(value, dt.datetime) else str(value)


def objective_value(summary: dict[str, Any]) -> float | None:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = metric.get("Value")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def rank_trials(
    summaries: Iterable[dict[str, Any]], objective_type: str, best_name: str | None = None
) -> list[TuningTrial]:
    """Every training job, ranked by its final objective value (best first; ties: the earlier job).

    Jobs without a value (failed before reporting, still running) come last, oldest first, with no rank. The best
    job is ``best_name`` (SageMaker's BestTrainingJob) when given, else the top-ranked Completed job.
    """
    rows = list(summaries)
    sign = -1.0 if objective_type == "Maximize" else 1.0

    def key(summary: dict[str, Any]) -> tuple[int, float, str, str]:
        value = objective_value(summary)
        created = _when(summary.get("CreationTime")) or ""
        return (
            0 if value is not None else 1,
            sign * value if value is not None else 0.0,
            created,
            summary["TrainingJobName"],
        )

    ordered = sorted(rows, key=key)
    if best_name is None:
        best_name = next(
            (
                s["TrainingJobName"]
                for s in ordered
                if s.get("TrainingJobStatus") == "Completed" and objective_value(s) is not None
            ),
            None,
        )
    trials: list[TuningTrial] = []
    rank = 0
    for summary in ordered:
        value = objective_value(summary)
        if value is not None:
            rank += 1
        trials.append(
            TuningTrial(
                rank=rank if value is not None else None,
                training_job_name=summary["TrainingJobName"],
                training_job_arn=summary.get("TrainingJobArn"),
                status=str(summary.get("TrainingJobStatus", "Unknown")),
                objective_value=value,
                objective_status=summary.get("ObjectiveStatus"),
                hyperparameters={k: str(v) for k, v in (summary.get("TunedHyperParameters") or {}).items()},
                failure_reason=summary.get("FailureReason"),
                created=_when(summary.get("CreationTime")),
                started=_when(summary.get("TrainingStartTime")),
                ended=_when(summary.get("TrainingEndTime")),
                best=summary["TrainingJobName"] == best_name,
            )
        )
    return trials


def tuning_report(
    description: dict[str, Any], trials: list[TuningTrial], *, run_id: str | None, recorded_at: str
) -> dict[str, Any]:
    """The ``tuning.json`` document: the tuning job, its search, its counters, every trial ranked, the best."""
    config = description.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    limits = config.get("ResourceLimits") or {}
    best = next((t for t in trials if t.best), None)
    return jsonable(
        {
            "run_id": run_id,
            "tuning_job_name": description.get("HyperParameterTuningJobName"),
            "tuning_job_arn": description.get("HyperParameterTuningJobArn"),
            "status": description.get("HyperParameterTuningJobStatus"),
            "failure_reason": description.get("FailureReason"),
            "strategy": config.get("Strategy"),
            "objective": {"metric": objective.get("MetricName"), "type": objective.get("Type")},
            "early_stopping": config.get("TrainingJobEarlyStoppingType", "Off"),
            "max_jobs": limits.get("MaxNumberOfTrainingJobs"),
            "max_parallel_jobs": limits.get("MaxParallelTrainingJobs"),
            "parameter_ranges": config.get("ParameterRanges") or {},
            "training_job_status_counters": description.get("TrainingJobStatusCounters") or {},
            "objective_status_counters": description.get("ObjectiveStatusCounters") or {},
            "created": _when(description.get("CreationTime")),
            "ended": _when(description.get("HyperParameterTuningEndTime")),
            "recorded_at": recorded_at,
            "best": best.model_dump(mode="json") if best else None,
            "trials": [t.model_dump(mode="json") for t in trials],
        }
    )


def results_uri(reports_bucket: str, run_id: str) -> str:
    return f"s3://{reports_bucket}/runs/{run_id}/{RESULTS_NAME}"


def record_tuning(
    event: RecordTuningEvent,
    *,
    sagemaker: SageMakerTuning,
    s3: S3Storage,
    runs: Table,
    reports_bucket: str,
    clock: Clock = utcnow,
) -> TuningResult:
    """Rank every training job of the finished tuning job, write ``tuning.json``, update the run record and return
    the best training job (DescribeTrainingJob) with the run's hyperparameters as the best job ran them.

    Raises:
        TuningFailedError: no training job completed with an objective value.
        TransientAwsError, AwsRequestError.
    """
    run, spec = event.run, event.tuning_spec
    name = event.tuning_job.job_name
    description = sagemaker.describe_tuning_job(name)
    summaries = sagemaker.list_training_jobs(name)
    best_name = (description.get("BestTrainingJob") or {}).get("TrainingJobName")
    trials = rank_trials(summaries, spec.objective_type, best_name)
    now = iso(clock())
    report = tuning_report(description, trials, run_id=run.run_id, recorded_at=now)
    uri = s3.put_json(reports_bucket, f"runs/{run.run_id}/{RESULTS_NAME}", report)
    best = next((t for t in trials if t.best), None)
    counters = description.get("TrainingJobStatusCounters") or {}
    status = str(description.get("HyperParameterTuningJobStatus", event.tuning_job.status))
    runs.update(
        run.run_id,
        {
            "tuning": {
                "job_name": name,
                "job_arn": description.get("HyperParameterTuningJobArn", event.tuning_job.job_arn),
                "status": status,
                "strategy": report["strategy"],
                "objective_metric": spec.objective_metric,
                "objective_type": spec.objective_type,
                "tuned_hyperparameters": spec.tuned_hyperparameters,
                "training_jobs": len(trials),
                "completed": int(counters.get("Completed", 0)),
                "stopped": int(counters.get("Stopped", 0)),
                "failed": int(counters.get("NonRetryableError", 0)) + int(counters.get("RetryableError", 0)),
                "results_uri": uri,
                "best_training_job": best.training_job_name if best else None,
                "best_objective_value": best.objective_value if best else None,
                "best_hyperparameters": best.hyperparameters if best else None,
            },
            "updated_at": now,
        },
    )
    if best is None or best.status != "Completed":
        raise TuningFailedError(
            f"tuning job {name} ({status}) has no completed training job with a {spec.objective_metric} value "
            f"among its {len(trials)} training jobs; see {uri}"
        )
    job = jsonable(sagemaker.describe_training_job(best.training_job_name))
    hyperparameters = {**run.hyperparameters, **best.hyperparameters}
    logger.info(
        "tuning recorded",
        extra={
            "run_id": run.run_id,
            "tuning_job": name,
            "best_training_job": best.training_job_name,
            "objective": best.objective_value,
            "training_jobs": len(trials),
        },
    )
    return TuningResult(
        job_name=name,
        job_arn=str(description.get("HyperParameterTuningJobArn", event.tuning_job.job_arn)),
        status=status,
        strategy=str(report["strategy"]),
        objective_metric=spec.objective_metric,
        objective_type=spec.objective_type,
        results_uri=uri,
        training_job_count=len(trials),
        best=best,
        best_training_job=job,
        hyperparameters=hyperparameters,
    )


__all__ = [
    "jsonable",
    "parameter_ranges",
    "plan_tuning",
    "rank_trials",
    "record_tuning",
    "results_uri",
    "tuning_job_name",
    "tuning_report",
]
