"""SageMaker hyperparameter tuning jobs that really tune.

moto 5.2.5 stores a tuning job as Completed at once with a made-up best training job, and has no
``ListTrainingJobsForHyperParameterTuningJob`` or ``StopHyperParameterTuningJob``. Here a tuning job is a thread
(the "tuner") that runs real training jobs:

- **Search**: each configuration comes from Optuna (``TPESampler`` for ``Bayesian``, ``RandomSampler`` for
  ``Random``), seeded with the request's ``RandomSeed`` (``DEFAULT_SEED`` without one). The first
  ``startup_trials(MaxNumberOfTrainingJobs)`` configurations are random (TPE's start-up phase), the rest are
  proposed from the objective values seen so far. Scaling: ``Linear``; ``Logarithmic``; ``ReverseLogarithmic``
  (log scale of ``1 - x``); ``Auto`` = logarithmic when the range is positive and spans two decades or more,
  else linear (SageMaker chooses by itself on AWS).
- **Training jobs**: created through the backend's ``create_training_job`` (so the local executor runs them and
  they appear in ListTrainingJobs), named ``<tuning job>-<NNN>-<8 hex>`` with ``TuningJobArn`` set, the static
  hyperparameters plus the tuned ones, and the tuning job's tags. At most ``MaxParallelTrainingJobs`` run at
  once, capped locally at ``cpu_count // executor torch threads`` (each job already uses that many threads).
- **Objective**: the training job's final value of the objective metric (its ``FinalMetricDataList``, parsed by
  the job's own MetricDefinitions), told to Optuna when the job ends; a failed job is a failed trial.
- **Early stopping** (``TrainingJobEarlyStoppingType: Auto``): SageMaker's median rule. Every objective line a
  running job prints (``fmops-metric name=<objective> value=V step=S``) is its k-th intermediate value; the
  running average of its first k values is reported to Optuna's ``MedianPruner``, which stops the job when that
  average is worse than the median of the completed jobs' running averages at the same k (once 2 jobs have
  completed). The job is stopped as StopTrainingJob stops any training job (``LocalExecutor.stop``): it ends
  ``Stopped``, without a FailureReason, its metrics so far kept; it counts as a pruned trial.
- **End**: ``Completed`` with ``BestTrainingJob`` (the best Completed job by the objective), or ``Failed`` with a
  ``FailureReason`` when no job completed with an objective value; ``StopHyperParameterTuningJob`` stops every
  running job and ends ``Stopped``. ``TuningJobCompletionCriteria.TargetObjectiveMetricValue`` stops launching
  once reached; ``ResourceLimits.MaxRuntimeInSeconds`` stops the running jobs when it runs out.

Describe/List answers have AWS's shapes (TrainingJobStatusCounters, ObjectiveStatusCounters, BestTrainingJob,
HyperParameterTrainingJobSummary with TunedHyperParameters and FinalHyperParameterTuningJobObjectiveMetric, sorted
by SortBy/SortOrder, paginated). Not emulated (refused with a ValidationException naming them): Hyperband and Grid
strategies, several training job definitions, warm start, Autotune, AutoParameters.
"""

from __future__ import annotations

import copy
import math
import os
import re
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from fmops_local import runtime

DEFAULT_SEED = 42
POLL_SECONDS = 0.2
MAX_TRAINING_JOBS = 750
MAX_PARALLEL_JOBS = 100
MAX_RANGES = 30
MAX_CATEGORICAL_VALUES = 30
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


# ------------------------------------------------------------------------------------------- search space


@dataclass(frozen=True)
class SearchParam:
    """One tuned hyperparameter: its Optuna distribution and how a sampled value becomes the string passed on."""

    name: str
    kind: str  # continuous | integer | categorical
    distribution: Any
    reverse: bool = False  # ReverseLogarithmic: Optuna samples 1 - x on a log scale

    def value(self, sampled: Any) -> str:
        if self.kind == "categorical":
            return str(sampled)
        if self.kind == "integer":
            return str(int(sampled))
        number = 1.0 - float(sampled) if self.reverse else float(sampled)
        return repr(number)


def _auto_log(low: float, high: float) -> bool:
    return low > 0 and high / low >= 100


def search_space(ranges: dict[str, Any]) -> list[SearchParam]:
    """The Optuna distributions of a (validated) ``ParameterRanges``, in a fixed order."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    params: list[SearchParam] = []
    for spec in ranges.get("ContinuousParameterRanges") or []:
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        scaling = spec.get("ScalingType", "Auto")
        if scaling == "ReverseLogarithmic":
            params.append(SearchParam(spec["Name"], "continuous", FloatDistribution(1 - high, 1 - low, log=True), True))
            continue
        log = scaling == "Logarithmic" or (scaling == "Auto" and _auto_log(low, high))
        params.append(SearchParam(spec["Name"], "continuous", FloatDistribution(low, high, log=log)))
    for spec in ranges.get("IntegerParameterRanges") or []:
        low_i, high_i = int(float(spec["MinValue"])), int(float(spec["MaxValue"]))
        scaling = spec.get("ScalingType", "Auto")
        log = scaling == "Logarithmic" or (scaling == "Auto" and _auto_log(low_i, high_i))
        params.append(SearchParam(spec["Name"], "integer", IntDistribution(low_i, high_i, log=log)))
    for spec in ranges.get("CategoricalParameterRanges") or []:
        params.append(SearchParam(spec["Name"], "categorical", CategoricalDistribution(list(spec["Values"]))))
    return sorted(params, key=lambda p: p.name)


def startup_trials(max_jobs: int) -> int:
    """TPE's random start-up configurations: a third of the budget, between 1 and 10."""
    return max(1, min(10, max_jobs // 3))


def make_sampler(strategy: str, seed: int, max_jobs: int) -> Any:
    """The Optuna sampler of a strategy: TPE (Bayesian optimisation) or random search, seeded."""
    import optuna

    if strategy == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: configurations asked while others still run avoid the running ones (parallel jobs).
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(max_jobs), constant_liar=True)


def make_pruner(early_stopping: str) -> Any:
    """SageMaker's ``Auto`` early stopping: the median rule (Optuna's MedianPruner), after 2 completed jobs."""
    import optuna

    if early_stopping != "Auto":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0, interval_steps=1, n_min_trials=1)


def local_parallelism(requested: int) -> int:
    """``MaxParallelTrainingJobs``, capped by what this machine runs at once (cores / torch threads per job)."""
    threads = max(1, int(runtime.current().executor.settings.torch_threads))
    return max(1, min(requested, (os.cpu_count() or 1) // threads))


# ------------------------------------------------------------------------------------------- validation


def _number(text: Any, where: str, integer: bool) -> float:
    from moto.sagemaker.exceptions import ValidationError

    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValidationError(message=f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or (integer and not value.is_integer()):
        raise ValidationError(message=f"{where}: {text!r} is not {'an integer' if integer else 'a finite number'}")
    return value


def validate_request(
    name: str, config: dict[str, Any], definition: dict[str, Any] | None, extra: dict[str, Any]
) -> None:
    """What SageMaker checks before it accepts a tuning job (and what the local AWS cannot emulate).

    Raises:
        ValidationError (moto's ValidationException).
    """
    from moto.sagemaker.exceptions import ValidationError

    def refuse(message: str) -> NoReturn:
        raise ValidationError(message=message)

    if not _NAME.match(name or ""):
        refuse(
            f"HyperParameterTuningJobName {name!r} must match [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,31}} "
            "(at most 32 characters)"
        )
    for key in ("TrainingJobDefinitions", "WarmStartConfig", "Autotune"):
        if extra.get(key):
            refuse(f"{key} is not supported by the local AWS (fmops_local): give one TrainingJobDefinition")
    if not definition:
        refuse("TrainingJobDefinition is required")
    strategy = config.get("Strategy")
    if strategy not in ("Bayesian", "Random"):
        refuse(f"Strategy {strategy!r} is not supported by the local AWS (fmops_local): use Bayesian or Random")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    if objective.get("Type") not in ("Maximize", "Minimize") or not objective.get("MetricName"):
        refuse("HyperParameterTuningJobObjective with Type (Maximize|Minimize) and MetricName is required")
    metrics = [m.get("Name") for m in (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []]
    if objective["MetricName"] not in metrics:
        refuse(
            f"objective metric {objective['MetricName']!r} is not one of the MetricDefinitions ({', '.join(metrics)})"
        )
    limits = config.get("ResourceLimits") or {}
    max_jobs, parallel = limits.get("MaxNumberOfTrainingJobs"), limits.get("MaxParallelTrainingJobs")
    if not isinstance(max_jobs, int) or not 1 <= max_jobs <= MAX_TRAINING_JOBS:
        refuse(f"ResourceLimits.MaxNumberOfTrainingJobs must be between 1 and {MAX_TRAINING_JOBS}")
    if not isinstance(parallel, int) or not 1 <= parallel <= MAX_PARALLEL_JOBS:
        refuse(f"ResourceLimits.MaxParallelTrainingJobs must be between 1 and {MAX_PARALLEL_JOBS}")
    if parallel > max_jobs:
        refuse(f"MaxParallelTrainingJobs ({parallel}) cannot exceed MaxNumberOfTrainingJobs ({max_jobs})")
    if config.get("TrainingJobEarlyStoppingType", "Off") not in ("Off", "Auto"):
        refuse("TrainingJobEarlyStoppingType must be Off or Auto")
    ranges = config.get("ParameterRanges") or {}
    if ranges.get("AutoParameters"):
        refuse("AutoParameters are not supported by the local AWS (fmops_local)")
    static = definition.get("StaticHyperParameters") or {}
    seen: set[str] = set()
    for kind in ("ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges"):
        for spec in ranges.get(kind) or []:
            pname = spec.get("Name") or ""
            where = f"{kind} {pname!r}"
            if not pname or pname in seen:
                refuse(f"{where}: every tuned hyperparameter needs a unique Name")
            if pname in static:
                refuse(f"{where}: {pname} is both static and tuned")
            seen.add(pname)
            if kind == "CategoricalParameterRanges":
                values = spec.get("Values") or []
                if not 1 <= len(values) <= MAX_CATEGORICAL_VALUES:
                    refuse(f"{where}: between 1 and {MAX_CATEGORICAL_VALUES} Values")
                continue
            integer = kind == "IntegerParameterRanges"
            low = _number(spec.get("MinValue"), f"{where} MinValue", integer)
            high = _number(spec.get("MaxValue"), f"{where} MaxValue", integer)
            if low >= high:
                refuse(
                    f"{where}: MinValue ({spec.get('MinValue')}) must be less than MaxValue ({spec.get('MaxValue')})"
                )
            scaling = spec.get("ScalingType", "Auto")
            if scaling not in ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"):
                refuse(f"{where}: unknown ScalingType {scaling!r}")
            if scaling == "Logarithmic" and low <= 0:
                refuse(f"{where}: Logarithmic scaling needs MinValue > 0")
            if scaling == "ReverseLogarithmic" and (integer or low < 0 or high >= 1):
                refuse(
                    f"{where}: ReverseLogarithmic scaling is for continuous ranges with 0 <= MinValue < MaxValue < 1"
                )
    if not seen:
        refuse("ParameterRanges must hold at least one range")
    if len(seen) > MAX_RANGES:
        refuse(f"at most {MAX_RANGES} hyperparameters can be tuned (got {len(seen)})")


# ----------------------------------------------------------------------------------------------- the tuner


@dataclass
class _Child:
    """One training job of a tuning job and its Optuna trial."""

    name: str
    number: int
    trial: Any
    tuned: dict[str, str]
    job: Any = None
    reports: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    done: bool = False
    told: str | None = None  # complete | pruned | fail


def _utc() -> Any:
    from moto.core.utils import utcnow

    return utcnow()


class _Tuner:
    """Runs one tuning job: asks Optuna, launches training jobs, tells Optuna their objective, stops, ends."""

    def __init__(self, backend: Any, job: Any) -> None:
        self.backend = backend
        self.job = job
        config = job.hyper_parameter_tuning_job_config
        self.definition: dict[str, Any] = job.training_job_definition
        objective = config["HyperParameterTuningJobObjective"]
        self.metric: str = objective["MetricName"]
        self.maximize = objective["Type"] == "Maximize"
        limits = config["ResourceLimits"]
        self.max_jobs: int = limits["MaxNumberOfTrainingJobs"]
        self.parallel = local_parallelism(limits["MaxParallelTrainingJobs"])
        self.max_runtime: int | None = limits.get("MaxRuntimeInSeconds")
        self.target: float | None = (config.get("TuningJobCompletionCriteria") or {}).get("TargetObjectiveMetricValue")
        self.strategy: str = config["Strategy"]
        self.seed: int = int(config.get("RandomSeed", DEFAULT_SEED))
        self.early_stopping: str = config.get("TrainingJobEarlyStoppingType", "Off")
        self.space = search_space(config.get("ParameterRanges") or {})
        regex = next(
            d["Regex"]
            for d in self.definition["AlgorithmSpecification"]["MetricDefinitions"]
            if d["Name"] == self.metric
        )
        self.regex = re.compile(regex)
        self.children: dict[str, _Child] = {}
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.stop_requested = threading.Event()
        self.runtime = runtime.current()
        self.study: Any = None

    # -- life cycle ----------------------------------------------------------------------------------------
    def run(self) -> None:
        self.runtime.executor.listeners.append(self._on_line)
        try:
            self._run()
        except Exception as exc:  # the tuning job's failure, never the caller's
            self._stop_running(f"tuning job failed: {type(exc).__name__}")
            self._finish("Failed", f"fmops local tuner: {type(exc).__name__}: {exc}")
        finally:
            if self._on_line in self.runtime.executor.listeners:
                self.runtime.executor.listeners.remove(self._on_line)

    def _alive(self) -> bool:
        """False once the local AWS that started this tuning job is gone (its runtime replaced)."""
        return getattr(runtime, "_CURRENT", None) is self.runtime

    def _run(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(
                direction="maximize" if self.maximize else "minimize",
                sampler=make_sampler(self.strategy, self.seed, self.max_jobs),
                pruner=make_pruner(self.early_stopping),
            )
        started = time.monotonic()
        launched = 0
        while self._alive():
            with self.lock:
                self._settle()
                running = [c for c in self.children.values() if not c.done]
                out_of_time = self.max_runtime is not None and time.monotonic() - started > self.max_runtime
                if self.stop_requested.is_set() or out_of_time:
                    why = "the tuning job was stopped" if self.stop_requested.is_set() else "MaxRuntimeInSeconds"
                    self._stop_running(why)
                    if not running:
                        break
                elif launched < self.max_jobs and not self._target_reached():
                    while len(running) < self.parallel and launched < self.max_jobs:
                        launched += 1
                        running.append(self._launch(launched))
                elif not running:
                    break
            self.wake.wait(POLL_SECONDS)
            self.wake.clear()
        if not self._alive():
            return
        with self.lock:
            best = self._best()
            if self.stop_requested.is_set():
                self._finish("Stopped", None)
            elif best is not None:
                self._finish("Completed", None)
            else:
                first = next((c for c in self.children.values() if c.job is not None and c.job.failure_reason), None)
                detail = f"; first failure: {first.name}: {first.job.failure_reason}" if first else ""
                self._finish(
                    "Failed",
                    f"No training job completed with a value of {self.metric} ({len(self.children)} launched){detail}",
                )

    def _finish(self, status: str, reason: str | None) -> None:
        job = self.job
        now = _utc()
        job.failure_reason = (reason or "")[:1024] if reason else None
        job.hyper_parameter_tuning_end_time = now
        job.last_modified_time = now
        job.hyper_parameter_tuning_job_status = status

    # -- training jobs -------------------------------------------------------------------------------------
    def _launch(self, number: int) -> _Child:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask({p.name: p.distribution for p in self.space})
        tuned = {p.name: p.value(trial.params[p.name]) for p in self.space}
        name = f"{self.job.hyper_parameter_tuning_job_name}-{number:03d}-{secrets.token_hex(4)}"
        child = _Child(name=name, number=number, trial=trial, tuned=tuned)
        self.children[name] = child  # before the job exists: its first log lines may come at once
        definition = copy.deepcopy(self.definition)
        try:
            job = self.backend.create_training_job(
                training_job_name=name,
                hyper_parameters={**(definition.get("StaticHyperParameters") or {}), **tuned},
                algorithm_specification=definition["AlgorithmSpecification"],
                role_arn=definition["RoleArn"],
                input_data_config=definition.get("InputDataConfig") or [],
                output_data_config=definition["OutputDataConfig"],
                resource_config=definition.get("ResourceConfig") or {},
                vpc_config=definition.get("VpcConfig"),
                stopping_condition=definition["StoppingCondition"],
                tags=copy.deepcopy(self.job.tags or []),
                enable_network_isolation=definition.get("EnableNetworkIsolation", False),
                enable_inter_container_traffic_encryption=definition.get(
                    "EnableInterContainerTrafficEncryption", False
                ),
                enable_managed_spot_training=definition.get("EnableManagedSpotTraining", False),
                checkpoint_config=definition.get("CheckpointConfig"),
                debug_hook_config=None,
                debug_rule_configurations=None,
                tensor_board_output_config=None,
                experiment_config=None,
            )
        except Exception as exc:  # a job SageMaker refuses is a failed trial, as on AWS
            child.done, child.told = True, "fail"
            self.study.tell(trial, state=_trial_state("FAIL"))
            child.job = _RefusedJob(name, f"{type(exc).__name__}: {exc}")
            return child
        job.tuning_job_arn = self.job.arn
        child.job = job
        return child

    def _on_line(self, job_name: str, line: str) -> None:
        """Executor log listener: intermediate objective values of this tuning job's running jobs."""
        child = self.children.get(job_name)
        if child is None or child.done:
            return
        match = self.regex.search(line)
        if not match:
            return
        try:
            value = float(match.group(1))
        except (IndexError, ValueError):
            return
        if not math.isfinite(value):
            return
        with self.lock:
            if child.done or child.stop_reason:
                return
            child.reports.append(value)
            if self.early_stopping != "Auto":
                return
            # The k-th running average, compared by the median rule with the completed jobs' k-th ones.
            child.trial.report(sum(child.reports) / len(child.reports), step=len(child.reports))
            if child.trial.should_prune():
                self._stop(child, "early stopping")
        self.wake.set()

    def _stop(self, child: _Child, reason: str) -> None:
        """StopTrainingJob for one training job: it ends Stopped (``LocalExecutor.stop``)."""
        child.stop_reason = child.stop_reason or reason
        if child.job is None or isinstance(child.job, _RefusedJob):
            return
        if child.job.training_job_status not in TERMINAL and child.job.training_job_status != "Stopping":
            # False until the executor runs the job (its thread just started): asked again at the next poll.
            self.runtime.executor.stop(child.name, f"Stopped by the tuning job ({child.stop_reason})")

    def _stop_running(self, reason: str) -> None:
        for child in self.children.values():
            if not child.done:
                self._stop(child, reason)

    def _settle(self) -> None:
        """Record the end of every training job that ended; ask again to stop those still starting."""
        for child in self.children.values():
            if child.done or child.job is None:
                continue
            status = child.job.training_job_status
            if status not in TERMINAL:
                if child.stop_reason and status != "Stopping":
                    self._stop(child, child.stop_reason)
                continue
            child.done = True
            value = self._final_value(child)
            if status == "Completed" and value is not None:
                self.study.tell(child.trial, value)
                child.told = "complete"
            elif status == "Stopped" and child.stop_reason == "early stopping":
                self.study.tell(child.trial, state=_trial_state("PRUNED"))
                child.told = "pruned"
            else:
                self.study.tell(child.trial, state=_trial_state("FAIL"))
                child.told = "fail"

    def _final_value(self, child: _Child) -> float | None:
        for metric in child.job.final_metric_data_list or []:
            if metric.get("MetricName") == self.metric:
                value = float(metric["Value"])
                return value if math.isfinite(value) else None
        return None

    def _best(self) -> _Child | None:
        done = [c for c in self.children.values() if c.told == "complete"]
        if not done:
            return None
        sign = 1.0 if self.maximize else -1.0
        return max(done, key=lambda c: (sign * (self._final_value(c) or 0.0), -c.number))

    def _target_reached(self) -> bool:
        if self.target is None:
            return False
        best = self._best()
        if best is None:
            return False
        value = self._final_value(best) or 0.0
        return value >= self.target if self.maximize else value <= self.target

    # -- answers -------------------------------------------------------------------------------------------
    def summary_of(self, child: _Child) -> dict[str, Any]:
        """HyperParameterTrainingJobSummary."""
        job = child.job
        status = job.training_job_status if job is not None else "InProgress"
        value = self._final_value(child) if job is not None and status in TERMINAL else None
        summary: dict[str, Any] = {
            "TrainingJobName": child.name,
            "TrainingJobArn": getattr(job, "arn", None),
            "TuningJobName": self.job.hyper_parameter_tuning_job_name,
            "CreationTime": getattr(job, "creation_time", None),
            "TrainingStartTime": getattr(job, "training_start_time", None),
            "TrainingEndTime": getattr(job, "training_end_time", None) if status in TERMINAL else None,
            "TrainingJobStatus": status,
            "TunedHyperParameters": dict(child.tuned),
            "FailureReason": getattr(job, "failure_reason", None) if status == "Failed" else None,
            "ObjectiveStatus": "Pending"
            if status not in TERMINAL
            else ("Succeeded" if value is not None else "Failed"),
        }
        if value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": "Maximize" if self.maximize else "Minimize",
                "MetricName": self.metric,
                "Value": value,
            }
        return {k: v for k, v in summary.items() if v is not None}

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
        objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        for summary in self.summaries():
            status = summary["TrainingJobStatus"]
            jobs["NonRetryableError" if status == "Failed" else status if status in jobs else "InProgress"] += 1
            objective[summary["ObjectiveStatus"]] += 1
        return jobs, objective

    def summaries(self) -> list[dict[str, Any]]:
        with self.lock:  # the tuner adds training jobs while API threads answer
            return [self.summary_of(c) for c in list(self.children.values())]

    def best_summary(self) -> dict[str, Any] | None:
        with self.lock:
            best = self._best()
            return self.summary_of(best) if best is not None else None


class _RefusedJob:
    """Stands in for a training job SageMaker refused to create (the trial failed before it ran)."""

    def __init__(self, name: str, reason: str) -> None:
        self.training_job_name = name
        self.arn = None
        self.training_job_status = "Failed"
        self.failure_reason = reason[:1024]
        self.final_metric_data_list: list[dict[str, Any]] = []
        self.creation_time = _utc()
        self.training_start_time = None
        self.training_end_time = self.creation_time
        self.secondary_status_transitions: list[dict[str, Any]] = []


def _trial_state(name: str) -> Any:
    from optuna.trial import TrialState

    return getattr(TrialState, name)


# ------------------------------------------------------------------------------------------------- patching


def apply() -> None:
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker import models as sm
    from moto.sagemaker import responses as smr
    from moto.sagemaker.exceptions import ResourceNotFound, ValidationError

    backend_cls = sm.SageMakerModelBackend
    if getattr(backend_cls, "_fmops_tuning_patched", False):
        return
    backend_cls._fmops_tuning_patched = True

    class LocalTuningJob(sm.HyperParameterTuningJob):
        """moto's tuning job record, answering from its tuner instead of moto's constants."""

        tuner: _Tuner

        def describe(self) -> dict[str, Any]:
            jobs, objective = self.tuner.counters()
            now = _utc()
            end = self.hyper_parameter_tuning_end_time
            described = {
                "HyperParameterTuningJobName": self.hyper_parameter_tuning_job_name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobConfig": self.hyper_parameter_tuning_job_config,
                "TrainingJobDefinition": self.training_job_definition,
                "HyperParameterTuningJobStatus": self.hyper_parameter_tuning_job_status,
                "CreationTime": self.creation_time,
                "HyperParameterTuningEndTime": end,
                "LastModifiedTime": self.last_modified_time,
                "TrainingJobStatusCounters": jobs,
                "ObjectiveStatusCounters": objective,
                "BestTrainingJob": self.tuner.best_summary(),
                "FailureReason": self.failure_reason,
                "ConsumedResources": {"RuntimeInSeconds": int(((end or now) - self.creation_time).total_seconds())},
            }
            return {k: v for k, v in described.items() if v is not None}

        def summary(self) -> dict[str, Any]:
            jobs, objective = self.tuner.counters()
            summary = {
                "HyperParameterTuningJobName": self.hyper_parameter_tuning_job_name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobStatus": self.hyper_parameter_tuning_job_status,
                "Strategy": self.hyper_parameter_tuning_job_config["Strategy"],
                "CreationTime": self.creation_time,
                "HyperParameterTuningEndTime": self.hyper_parameter_tuning_end_time,
                "LastModifiedTime": self.last_modified_time,
                "TrainingJobStatusCounters": jobs,
                "ObjectiveStatusCounters": objective,
                "ResourceLimits": self.hyper_parameter_tuning_job_config["ResourceLimits"],
            }
            return {k: v for k, v in summary.items() if v is not None}

    def create_hyper_parameter_tuning_job(
        self: Any,
        hyper_parameter_tuning_job_name: str,
        hyper_parameter_tuning_job_config: dict[str, Any],
        training_job_definition: dict[str, Any] | None,
        training_job_definitions: list[dict[str, Any]] | None,
        warm_start_config: dict[str, Any] | None,
        tags: list[dict[str, str]] | None,
        autotune: dict[str, Any] | None,
    ) -> str:
        validate_request(
            hyper_parameter_tuning_job_name,
            hyper_parameter_tuning_job_config or {},
            training_job_definition,
            {
                "TrainingJobDefinitions": training_job_definitions,
                "WarmStartConfig": warm_start_config,
                "Autotune": autotune,
            },
        )
        job = LocalTuningJob(
            hyper_parameter_tuning_job_name=hyper_parameter_tuning_job_name,
            hyper_parameter_tuning_job_config=hyper_parameter_tuning_job_config,
            region_name=self.region_name,
            account_id=self.account_id,
            training_job_definition=training_job_definition,
            training_job_definitions=None,
            warm_start_config=None,
            tags=tags,
            autotune=None,
        )
        job.hyper_parameter_tuning_job_status = "InProgress"
        job.hyper_parameter_tuning_end_time = None
        job.failure_reason = None
        job.tuner = _Tuner(self, job)
        self.hyper_parameter_tuning_jobs[hyper_parameter_tuning_job_name] = job
        executor = runtime.current().executor
        executor.submit(job.tuner.run, hyper_parameter_tuning_job_name)
        return str(job.arn)

    backend_cls.create_hyper_parameter_tuning_job = create_hyper_parameter_tuning_job

    def _tuning_job(self: Any, name: str) -> Any:
        job = self.hyper_parameter_tuning_jobs.get(name)
        if job is None:
            raise ResourceNotFound(message=f"Amazon SageMaker can't find a tuning job with name {name}")
        return job

    def list_training_jobs_for_hyper_parameter_tuning_job(
        self: Any,
        hyper_parameter_tuning_job_name: str,
        next_token: str | None = None,
        max_results: int | None = None,
        status_equals: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> dict[str, Any]:
        job = _tuning_job(self, hyper_parameter_tuning_job_name)
        rows: list[dict[str, Any]] = job.tuner.summaries() if hasattr(job, "tuner") else []
        if status_equals:
            rows = [r for r in rows if r["TrainingJobStatus"] == status_equals]
        sort_by = sort_by or "Name"
        key: Callable[[dict[str, Any]], Any]
        if sort_by == "FinalObjectiveMetricValue":
            # As on AWS: jobs without an objective value are not listed when sorting by it.
            rows = [r for r in rows if "FinalHyperParameterTuningJobObjectiveMetric" in r]
            key = lambda r: r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]  # noqa: E731
        elif sort_by == "CreationTime":
            key = lambda r: (r["CreationTime"], r["TrainingJobName"])  # noqa: E731
        elif sort_by == "Status":
            key = lambda r: (r["TrainingJobStatus"], r["TrainingJobName"])  # noqa: E731
        elif sort_by == "Name":
            key = lambda r: r["TrainingJobName"]  # noqa: E731
        else:
            raise ValidationError(
                message=f"SortBy {sort_by!r} must be Name, CreationTime, Status or FinalObjectiveMetricValue"
            )
        rows = sorted(rows, key=key, reverse=(sort_order == "Descending"))
        size = int(max_results or 10)
        if not 1 <= size <= 100:
            raise ValidationError(message="MaxResults must be between 1 and 100")
        try:
            start = int(next_token) if next_token else 0
        except ValueError:
            raise ValidationError(message=f"Invalid pagination token {next_token!r}") from None
        page = rows[start : start + size]
        result: dict[str, Any] = {"TrainingJobSummaries": page}
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        return result

    backend_cls.list_training_jobs_for_hyper_parameter_tuning_job = list_training_jobs_for_hyper_parameter_tuning_job

    def stop_hyper_parameter_tuning_job(self: Any, hyper_parameter_tuning_job_name: str) -> None:
        job = _tuning_job(self, hyper_parameter_tuning_job_name)
        if job.hyper_parameter_tuning_job_status != "InProgress":
            raise ValidationError(
                message=f"The hyperparameter tuning job {hyper_parameter_tuning_job_name} is "
                f"{job.hyper_parameter_tuning_job_status}: only an InProgress job can be stopped"
            )
        job.hyper_parameter_tuning_job_status = "Stopping"
        job.last_modified_time = _utc()
        job.tuner.stop_requested.set()
        job.tuner.wake.set()

    backend_cls.stop_hyper_parameter_tuning_job = stop_hyper_parameter_tuning_job

    def _list_response(self: Any) -> Any:
        return ActionResult(
            self.sagemaker_backend.list_training_jobs_for_hyper_parameter_tuning_job(
                hyper_parameter_tuning_job_name=self._get_param("HyperParameterTuningJobName"),
                next_token=self._get_param("NextToken"),
                max_results=self._get_param("MaxResults"),
                status_equals=self._get_param("StatusEquals"),
                sort_by=self._get_param("SortBy"),
                sort_order=self._get_param("SortOrder"),
            )
        )

    def _stop_response(self: Any) -> Any:
        self.sagemaker_backend.stop_hyper_parameter_tuning_job(self._get_param("HyperParameterTuningJobName"))
        return EmptyResult()

    smr.SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = _list_response
    smr.SageMakerResponse.stop_hyper_parameter_tuning_job = _stop_response
