"""Hyperparameter tuning: the run option ``tuning``, the CreateHyperParameterTuningJob request, the HPO steps.

``TuningConfig`` is what a person writes (in ``fmops.json`` or the run request); it is checked completely before
any AWS call and every problem names its field (``tuning.ranges.learning_rate.min: ...``). The ``Create*`` models
dump to the SageMaker API's PascalCase shape, like ``fmops.schemas.jobs``. The step models are the inputs and
outputs of the HPO state machine (``statemachines/hpo.asl.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from fmops.schemas.base import FmopsModel, StrictModel
from fmops.schemas.jobs import (
    Channel,
    CheckpointConfig,
    MetricDefinition,
    ResourceConfig,
    StoppingCondition,
    Tag,
    TrainingOutputDataConfig,
    VpcConfig,
)

# ------------------------------------------------------------------------------------ what train.py can tune


@dataclass(frozen=True)
class Tunable:
    """A hyperparameter of ``training/train.py`` that a tuning job may vary, with train.py's accepted range."""

    kind: Literal["int", "float"]
    low: float
    high: float | None


# The numeric hyperparameters of training/fmops_training/contract.py (Hyperparameters and _RANGES; the layer cannot
# import training/, so tests/unit/fmops/test_tuning.py checks that this table still matches). seed, base_model,
# eval_steps and checkpoint_steps are not tuned: they do not change what a good model is.
TUNABLE: dict[str, Tunable] = {
    "learning_rate": Tunable("float", 1e-12, 1.0),
    "epochs": Tunable("int", 1, 1000),
    "batch_size": Tunable("int", 1, 65536),
    "max_length": Tunable("int", 2, 8192),
    "warmup_ratio": Tunable("float", 0.0, 0.99),
    "warmup_steps": Tunable("int", 0, None),
    "weight_decay": Tunable("float", 0.0, 10.0),
}

# The objective metrics train.py prints (and MetricDefinitions parse) that a tuning job can optimise.
OBJECTIVES: dict[str, Literal["Maximize", "Minimize"]] = {
    "validation_accuracy": "Maximize",
    "validation_loss": "Minimize",
}

# SageMaker automatic model tuning limits (docs: "Resource Limits for Automatic Model Tuning").
MAX_TRAINING_JOBS = 750  # Bayesian and Random search
MAX_PARALLEL_JOBS = 100  # the default quota is 10; up to 100 after a quota increase
MAX_RANGES = 30  # hyperparameters searched
MAX_CATEGORICAL_VALUES = 30
MAX_TUNING_RUNTIME = 30 * 24 * 3600

RangeType = Literal["continuous", "integer", "categorical"]
Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]
ObjectiveType = Literal["Maximize", "Minimize"]


def _values_as_strings(value: Any) -> Any:
    """Categorical values may be written as JSON numbers; SageMaker takes strings."""
    if isinstance(value, list):
        return [
            ("true" if v else "false") if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v
            for v in value
        ]
    return value


class ParameterRange(StrictModel):
    """One hyperparameter's search space: ``continuous``/``integer`` from ``min`` to ``max`` with a ``scaling``
    (SageMaker's ScalingType), or ``categorical`` over ``values``."""

    type: RangeType
    min: float | None = None
    max: float | None = None
    scaling: Scaling = "Auto"
    values: Annotated[list[str] | None, BeforeValidator(_values_as_strings)] = None


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> Any:
    """One line error of a ValidationError raised at ``loc`` (relative to TuningConfig), shown as ``message``."""
    return {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": ValueError(message)}}


def _fmt(value: float | None) -> str:
    if value is None:
        return "no limit"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bounds(tunable: Tunable) -> str:
    return (
        f"between {_fmt(tunable.low)} and {_fmt(tunable.high)}"
        if tunable.high is not None
        else f">= {_fmt(tunable.low)}"
    )


def _parse_value(kind: str, text: str) -> float | None:
    """A categorical value as train.py would read it (None when it does not parse)."""
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or (kind == "int" and not number.is_integer()):
        return None
    return number


def is_log_scaled(spec: ParameterRange) -> bool:
    """Logarithmic, or Auto over a positive range that spans at least two decades (fmops' reading of "Auto")."""
    if spec.scaling == "Logarithmic":
        return True
    if spec.scaling != "Auto" or spec.min is None or spec.max is None:
        return False
    return spec.min > 0 and spec.max / spec.min >= 100


def _range_problems(name: str, spec: ParameterRange) -> list[Any]:
    """Everything wrong with one range (locations relative to TuningConfig)."""
    loc: tuple[str, ...] = ("ranges", name)
    tunable = TUNABLE.get(name)
    if tunable is None:
        known = ", ".join(sorted(TUNABLE))
        return [_error(loc, f"{name!r} is not a tunable hyperparameter of train.py (tunable: {known})", name)]
    problems: list[Any] = []
    if spec.type == "categorical":
        for field_name in ("min", "max"):
            if getattr(spec, field_name) is not None:
                problems.append(_error((*loc, field_name), "only continuous and integer ranges take min/max", None))
        if spec.scaling != "Auto":
            problems.append(_error((*loc, "scaling"), "a categorical range has no scaling", spec.scaling))
        if not spec.values:
            problems.append(_error((*loc, "values"), "a categorical range needs at least one value", spec.values))
            return problems
        if len(spec.values) > MAX_CATEGORICAL_VALUES:
            problems.append(
                _error((*loc, "values"), f"at most {MAX_CATEGORICAL_VALUES} values (got {len(spec.values)})", None)
            )
        if len(set(spec.values)) != len(spec.values):
            problems.append(_error((*loc, "values"), "values must be unique", spec.values))
        for i, text in enumerate(spec.values):
            number = _parse_value(tunable.kind, text)
            if number is None:
                kind = "an integer" if tunable.kind == "int" else "a number"
                problems.append(_error((*loc, "values", i), f"{text!r} is not {kind} ({name} is {kind})", text))
            elif number < tunable.low or (tunable.high is not None and number > tunable.high):
                problems.append(_error((*loc, "values", i), f"train.py accepts {name} {_bounds(tunable)}", text))
        return problems

    wanted = "continuous" if tunable.kind == "float" else "integer"
    if spec.type != wanted:
        problems.append(
            _error(
                (*loc, "type"),
                f"{name} is {'a float' if tunable.kind == 'float' else 'an integer'}: use {wanted} or categorical",
                spec.type,
            )
        )
    if spec.values is not None:
        problems.append(_error((*loc, "values"), "only categorical ranges take values", spec.values))
    for field_name in ("min", "max"):
        value = getattr(spec, field_name)
        if value is None:
            problems.append(_error((*loc, field_name), f"is required for a {spec.type} range", None))
        elif not math.isfinite(value):
            problems.append(_error((*loc, field_name), "must be a finite number", value))
        elif spec.type == "integer" and not float(value).is_integer():
            problems.append(_error((*loc, field_name), "must be an integer for an integer range", value))
        elif value < tunable.low or (tunable.high is not None and value > tunable.high):
            problems.append(_error((*loc, field_name), f"train.py accepts {name} {_bounds(tunable)}", value))
    if problems:
        return problems
    assert spec.min is not None and spec.max is not None
    if spec.min >= spec.max:
        problems.append(_error((*loc, "min"), f"must be < max ({_fmt(spec.max)})", spec.min))
    elif spec.scaling == "Logarithmic" and spec.min <= 0:
        problems.append(_error((*loc, "min"), "must be > 0 for Logarithmic scaling", spec.min))
    elif spec.scaling == "ReverseLogarithmic":
        if spec.type != "continuous":
            problems.append(_error((*loc, "scaling"), "ReverseLogarithmic is for continuous ranges only", spec.scaling))
        elif spec.min < 0 or spec.max >= 1:
            problems.append(_error((*loc, "max"), "ReverseLogarithmic needs 0 <= min < max < 1", spec.max))
    elif spec.type == "integer" and is_log_scaled(spec) and spec.min < 1:
        problems.append(_error((*loc, "min"), "must be >= 1 for a logarithmic integer range", spec.min))
    return problems


class TuningConfig(StrictModel):
    """Run option ``tuning``: a SageMaker hyperparameter tuning job instead of a single training job.

    ``ranges``: hyperparameter name -> its search space (names: ``TUNABLE``); a tuned hyperparameter overrides the
    same one in ``hyperparameters``, which stay fixed for every training job. ``objective_metric`` (default
    ``validation_accuracy``, maximised; ``validation_loss`` is minimised) picks the best job. ``max_jobs`` training
    jobs in all, at most ``max_parallel_jobs`` at once. ``early_stopping`` ``Auto`` lets SageMaker stop jobs that are
    unlikely to beat the others. ``seed``: the search's RandomSeed (default: the run's split seed).
    """

    objective_metric: Literal["validation_accuracy", "validation_loss"] = "validation_accuracy"
    objective_type: ObjectiveType | None = None
    strategy: Literal["Bayesian", "Random"] = "Bayesian"
    max_jobs: int = Field(default=10, ge=1, le=MAX_TRAINING_JOBS)
    max_parallel_jobs: int = Field(default=2, ge=1, le=MAX_PARALLEL_JOBS)
    early_stopping: Literal["Auto", "Off"] = "Auto"
    max_runtime_seconds: int | None = Field(default=None, ge=120, le=MAX_TUNING_RUNTIME)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    ranges: dict[str, ParameterRange]

    @model_validator(mode="after")
    def _check(self) -> TuningConfig:
        problems: list[Any] = []
        if not self.ranges:
            problems.append(_error(("ranges",), "give at least one hyperparameter range", self.ranges))
        elif len(self.ranges) > MAX_RANGES:
            problems.append(_error(("ranges",), f"at most {MAX_RANGES} hyperparameters (got {len(self.ranges)})", None))
        for name, spec in self.ranges.items():
            problems.extend(_range_problems(name, spec))
        if self.max_parallel_jobs > self.max_jobs:
            problems.append(
                _error(("max_parallel_jobs",), f"must be <= max_jobs ({self.max_jobs})", self.max_parallel_jobs)
            )
        natural = OBJECTIVES[self.objective_metric]
        if self.objective_type is not None and self.objective_type != natural:
            problems.append(
                _error(
                    ("objective_type",),
                    f"{self.objective_metric} is {natural.lower()}d (leave objective_type out)",
                    self.objective_type,
                )
            )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    @property
    def objective(self) -> ObjectiveType:
        return self.objective_type or OBJECTIVES[self.objective_metric]


def _sagemaker_only(value: TuningConfig | None, info: ValidationInfo) -> TuningConfig | None:
    if value is not None and info.data.get("backend") == "bedrock":
        raise ValueError(
            "hyperparameter tuning runs SageMaker training jobs: it is not available with backend 'bedrock' "
            "(remove 'tuning' or use backend 'sagemaker')"
        )
    return value


# The type of RunOptions.tuning / UseCaseConfig.tuning: declared after ``backend``, so a Bedrock run with tuning
# is refused at validation, before any AWS call.
TuningOption = Annotated[TuningConfig | None, AfterValidator(_sagemaker_only)]


# ----------------------------------------------------------------------- CreateHyperParameterTuningJob request


class _Pascal(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid", defer_build=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TuningObjective(_Pascal):
    type: ObjectiveType
    metric_name: str


class ResourceLimits(_Pascal):
    max_number_of_training_jobs: int = Field(ge=1, le=MAX_TRAINING_JOBS)
    max_parallel_training_jobs: int = Field(ge=1, le=MAX_PARALLEL_JOBS)
    max_runtime_in_seconds: int | None = Field(default=None, ge=120, le=MAX_TUNING_RUNTIME)


class NumericRange(_Pascal):
    name: str
    min_value: str
    max_value: str
    scaling_type: Scaling = "Auto"


class CategoricalRange(_Pascal):
    name: str
    values: list[str] = Field(min_length=1, max_length=MAX_CATEGORICAL_VALUES)


class ParameterRanges(_Pascal):
    integer_parameter_ranges: list[NumericRange] = Field(default_factory=list)
    continuous_parameter_ranges: list[NumericRange] = Field(default_factory=list)
    categorical_parameter_ranges: list[CategoricalRange] = Field(default_factory=list)


class HyperParameterTuningJobConfig(_Pascal):
    strategy: Literal["Bayesian", "Random"]
    hyper_parameter_tuning_job_objective: TuningObjective
    resource_limits: ResourceLimits
    parameter_ranges: ParameterRanges
    training_job_early_stopping_type: Literal["Auto", "Off"]
    random_seed: int | None = Field(default=None, ge=0)


class HyperParameterAlgorithmSpecification(_Pascal):
    training_image: str
    training_input_mode: Literal["File", "Pipe", "FastFile"] = "File"
    metric_definitions: list[MetricDefinition] = Field(max_length=40)


class HyperParameterTrainingJobDefinition(_Pascal):
    """SageMaker's HyperParameterTrainingJobDefinition (every field the HPO state machine maps is always present,
    except ``CheckpointConfig``, which fmops leaves out: see ``fmops.lifecycle.tuning``)."""

    static_hyper_parameters: dict[str, str] = Field(max_length=100)
    algorithm_specification: HyperParameterAlgorithmSpecification
    role_arn: str
    input_data_config: list[Channel] = Field(min_length=1, max_length=20)
    vpc_config: VpcConfig
    output_data_config: TrainingOutputDataConfig
    resource_config: ResourceConfig
    stopping_condition: StoppingCondition
    enable_network_isolation: bool = True
    enable_inter_container_traffic_encryption: bool = False
    enable_managed_spot_training: bool = False
    checkpoint_config: CheckpointConfig | None = None
    environment: dict[str, str] = Field(max_length=48)


class CreateHyperParameterTuningJobRequest(_Pascal):
    """sagemaker:CreateHyperParameterTuningJob (one training job definition)."""

    hyper_parameter_tuning_job_name: str = Field(max_length=32, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
    hyper_parameter_tuning_job_config: HyperParameterTuningJobConfig
    training_job_definition: HyperParameterTrainingJobDefinition
    tags: list[Tag] = Field(max_length=50)


# ------------------------------------------------------------------------------------------- HPO step models


class TuningSpec(FmopsModel):
    """Output of "Plan tuning" ($.tuning_spec): the CreateHyperParameterTuningJob request and what it optimises."""

    job_name: str
    objective_metric: str
    objective_type: ObjectiveType
    tuned_hyperparameters: list[str]
    sagemaker: dict[str, Any]


class TuningJobRef(FmopsModel):
    """$.tuning_job: selected by the ASL from DescribeHyperParameterTuningJob after ``.sync``."""

    job_name: str
    job_arn: str
    status: str


class TuningTrial(FmopsModel):
    """One training job of a tuning job, as ranked in ``tuning.json`` (``rank`` None: no objective value)."""

    rank: int | None = None
    training_job_name: str
    training_job_arn: str | None = None
    status: str
    objective_value: float | None = None
    objective_status: str | None = None
    hyperparameters: dict[str, str] = Field(default_factory=dict)
    failure_reason: str | None = None
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    best: bool = False


class TuningResult(FmopsModel):
    """Output of "Record tuning results" and of the HPO state machine.

    ``best_training_job``: DescribeTrainingJob of the best job, the shape ``createTrainingJob.sync`` gives the
    fine-tune workflow's training step. ``hyperparameters``: the run's hyperparameters with the best job's tuned
    values (what trained the model that is evaluated and registered).
    """

    job_name: str
    job_arn: str
    status: str
    strategy: str
    objective_metric: str
    objective_type: ObjectiveType
    results_uri: str
    training_job_count: int
    best: TuningTrial
    best_training_job: dict[str, Any]
    hyperparameters: dict[str, str]


def _run_request(value: Any) -> Any:
    from fmops.schemas.run import RunRequest  # imported here: run.py imports this module

    return value if isinstance(value, RunRequest) else RunRequest.model_validate(value)


def _training_spec(value: Any) -> Any:
    from fmops.schemas.steps import TrainingSpec  # imported here: steps.py imports run.py, which imports this module

    return value if isinstance(value, TrainingSpec) else TrainingSpec.model_validate(value)


if TYPE_CHECKING:
    from fmops.schemas.run import RunRequest
    from fmops.schemas.steps import TrainingSpec

    RunField = RunRequest
    TrainingSpecField = TrainingSpec
else:
    RunField = Annotated[Any, AfterValidator(_run_request)]
    TrainingSpecField = Annotated[Any, AfterValidator(_training_spec)]


class PlanTuningEvent(FmopsModel):
    """Input of "Plan tuning" (``training_spec``: the fine-tune workflow's planned SageMaker training job)."""

    run: RunField
    training_spec: TrainingSpecField


class RecordTuningEvent(FmopsModel):
    """Input of "Record tuning results"."""

    run: RunField
    tuning_spec: TuningSpec
    tuning_job: TuningJobRef
