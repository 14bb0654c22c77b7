"""Per-model data and hyperparameter limits for fine-tuning, as data.

One row per base model that Amazon Bedrock can fine-tune on text (plus one generic row for our own SageMaker
training container). Every number comes from the AWS page in the row's ``source`` (data limits) or
``hyperparameter_source`` (hyperparameter ranges). Where the documentation gives no value, the row carries a
conservative choice, lists the field in ``assumed`` and says so in ``note``.

File sizes use decimal units (1 GB = 10**9 bytes), the smaller reading of the documentation's "1 GB".

Hyperparameter names are Bedrock's (``epochCount``, ``learningRate``...); fmops' own snake_case names are translated
by ``fmops.lifecycle.training.bedrock_hyperparameters`` before they are checked against a Bedrock row.

Standard library only: this module runs in Lambda.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from fmops.errors import UnknownModelError

Backend = Literal["bedrock", "sagemaker"]
HyperparameterKind = Literal["int", "float"]
DataFormat = Literal[
    "prompt-completion", "conversation", "conversation-legacy", "classification", "summarization", "qa"
]
ProblemCode = Literal["unknown_hyperparameter", "wrong_type", "out_of_range"]

DATA_FORMATS: tuple[str, ...] = get_args(DataFormat)
"""Data formats: ``prompt-completion`` (``{"prompt", "completion"}``), ``conversation`` (``bedrock-conversation-2024``,
the Converse API shape), ``conversation-legacy`` (``{"system": str, "messages": [{"role", "content": str}]}``),
and fmops' own task formats (``classification``, ``summarization``, ``qa``)."""

NO_LIMIT = sys.maxsize
"""The value of a maximum that does not exist (records and file sizes of the SageMaker row)."""

KB = 1000
MB = 1000 * KB
GB = 1000 * MB

_BEDROCK_PREPARE = "https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html"
_NOVA_PREPARE = "https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html"
_HP_NOVA = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html"
_HP_CLAUDE3 = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-anth-claude-3.html"
_HP_LLAMA31 = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama31.html"
_HP_ALL = "https://docs.aws.amazon.com/bedrock/latest/userguide/custom-models-hp.html"
_HP_TITAN_TEXT = "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-titan-text.html"
_SAGEMAKER_CONTAINER = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html"
)


@dataclass(frozen=True)
class HyperparameterRange:
    """The allowed values of one hyperparameter (inclusive bounds; ``maximum`` may be ``math.inf``)."""

    name: str
    kind: HyperparameterKind
    minimum: float
    maximum: float
    default: float | None = None

    def bounds(self) -> str:
        """``1..5``, ``1e-06..0.0001`` or ``>=0`` (no upper bound)."""
        if math.isinf(self.maximum):
            return f">={_number(self.minimum, self.kind)}"
        return f"{_number(self.minimum, self.kind)}..{_number(self.maximum, self.kind)}"

    def describe(self) -> str:
        """``epochCount 1..5 (default 2)``."""
        default = "" if self.default is None else f" (default {_number(self.default, self.kind)})"
        return f"{self.name} {self.bounds()}{default}"


@dataclass(frozen=True)
class ModelLimits:
    """What a base model accepts for fine-tuning: data formats, record counts, sizes, hyperparameters.

    Maxima are plain ints; ``NO_LIMIT`` (``sys.maxsize``) means none (the SageMaker row). ``max_total_records``
    bounds training plus validation records together. ``tokens_by_batch_size`` lists ``(largest batch size, max
    tokens per record)`` steps where the documented token limit depends on the batch size; then
    ``max_tokens_per_record`` is the limit at the smallest batch size. ``assumed`` names the fields whose values
    are assumptions (``note`` says why).
    """

    model_id: str
    name: str
    backend: Backend
    formats: tuple[DataFormat, ...]
    min_train_records: int
    max_train_records: int
    max_validation_records: int
    max_tokens_per_record: int
    max_train_file_bytes: int
    max_validation_file_bytes: int
    chars_per_token: float
    hyperparameters: tuple[HyperparameterRange, ...]
    source: str
    note: str = ""
    hyperparameter_source: str = ""
    max_total_records: int = NO_LIMIT
    tokens_by_batch_size: tuple[tuple[int, int], ...] = ()
    assumed: tuple[str, ...] = ()

    def hyperparameter(self, name: str) -> HyperparameterRange | None:
        for item in self.hyperparameters:
            if item.name == name:
                return item
        return None

    def max_tokens_for_batch_size(self, batch_size: int | None = None) -> int:
        """The per-record token limit at ``batch_size`` (``max_tokens_per_record`` when ``None``).

        A batch size above the last documented step gets the last (smallest) limit: conservative.
        """
        if not self.tokens_by_batch_size or batch_size is None:
            return self.max_tokens_per_record
        for largest_batch, tokens in self.tokens_by_batch_size:
            if batch_size <= largest_batch:
                return tokens
        return self.tokens_by_batch_size[-1][1]


@dataclass(frozen=True)
class HyperparameterProblem:
    """One hyperparameter that the model would refuse."""

    name: str
    code: ProblemCode
    message: str


def _hp(
    name: str, kind: HyperparameterKind, minimum: float, maximum: float, default: float | None
) -> HyperparameterRange:
    return HyperparameterRange(name=name, kind=kind, minimum=minimum, maximum=maximum, default=default)


# Amazon Nova Micro, Lite and Pro share their hyperparameters (cm-hp-nova-mm).
_NOVA_HP = (
    _hp("epochCount", "int", 1, 5, 2),
    _hp("learningRate", "float", 1e-6, 1e-4, 1e-5),
    _hp("learningRateWarmupSteps", "int", 0, 100, 10),
)
# Anthropic Claude 3 models (cm-hp-anth-claude-3); the page gives no types: counts are integers.
_CLAUDE3_HP = (
    _hp("epochCount", "int", 1, 10, 2),
    _hp("batchSize", "int", 4, 256, 32),
    _hp("learningRateMultiplier", "float", 0.1, 2, 1),
    _hp("earlyStoppingThreshold", "float", 0, 0.1, 0.001),
    _hp("earlyStoppingPatience", "int", 1, 10, 2),
)
# Meta Llama 3.1 8B/70B (cm-hp-meta-llama31) and Llama 3.2 1B/3B/11B/90B (cm-hp-meta-llama32): the same table.
_LLAMA_HP = (
    _hp("epochCount", "int", 1, 10, 5),
    _hp("batchSize", "int", 1, 1, 1),
    _hp("learningRate", "float", 5e-6, 0.1, 1e-4),
)
# Amazon Titan Text G1 - Express and Lite (cm-hp-titan-text, second table).
_TITAN_TEXT_HP = (
    _hp("epochCount", "int", 1, 10, 5),
    _hp("batchSize", "int", 1, 64, 1),
    _hp("learningRate", "float", 0.0, 1, 1e-5),
    _hp("learningRateWarmupSteps", "int", 0, 250, 5),
)
# Amazon Titan Text Premier (cm-hp-titan-text, first table).
_TITAN_PREMIER_HP = (
    _hp("epochCount", "int", 1, 5, 2),
    _hp("batchSize", "int", 1, 1, 1),
    _hp("learningRate", "float", 1e-7, 1e-5, 1e-6),
    _hp("learningRateWarmupSteps", "int", 0, 20, 5),
)
# fmops' training container (training/fmops_training/contract.py, ``_RANGES``); snake_case names.
_SAGEMAKER_HP = (
    _hp("epochs", "int", 1, 1000, 1),
    _hp("learning_rate", "float", 1e-12, 1.0, 5e-5),
    _hp("batch_size", "int", 1, 65536, 32),
    _hp("max_length", "int", 2, 8192, 32),
    _hp("seed", "int", 0, 2**32 - 1, 42),
    _hp("warmup_ratio", "float", 0.0, 0.99, 0.1),
    _hp("warmup_steps", "int", 0, math.inf, 0),
    _hp("weight_decay", "float", 0.0, 10.0, 0.01),
    _hp("eval_steps", "int", 0, math.inf, 0),
    _hp("checkpoint_steps", "int", 0, math.inf, 0),
)

_NOVA_NOTE = (
    "Minimum/maximum samples and the 32k context length are documented; the validation record cap, the file "
    "sizes and the 4 characters per token are assumptions (not in the Nova data constraints)."
)
_LLAMA31_NOTE = (
    "Documented: 100 to 10,000 training plus validation records, the token limit, about 6 characters per token "
    "(Bedrock's 'token quota x 6' character quota). Assumptions: the validation cap (1,000) and the file sizes "
    "(1 GB / 100 MB, as for Titan). The 100-record minimum applies to training plus validation; it is applied to "
    "training alone here."
)
_LLAMA32_NOTE = (
    "Documented: 100 to 10,000 training plus validation records and the token limit (16,000; 10,000 for 90B). "
    "Assumptions: the validation cap (1,000), the file sizes (1 GB / 100 MB, as for Titan) and about 6 characters "
    "per token (documented for the prompt-completion models, not for Llama 3.2). The 100-record minimum applies to "
    "training plus validation; it is applied to training alone here. Text-only data: image records are not "
    "counted."
)
_TITAN_NOTE = (
    "Documented: the token limits by batch size, about 6 characters per token and the file sizes. Assumptions: the "
    "record counts (training plus validation at most 10,000 and validation at most 1,000, the Bedrock default "
    "quota for other text models; minimum 10 records, as fmops requires), and for batch sizes above the "
    "documented ones the smallest documented token limit."
)
_RECORD_ASSUMPTIONS = ("min_train_records", "max_train_records", "max_validation_records", "max_total_records")


def _nova(model_id: str, name: str) -> ModelLimits:
    return ModelLimits(
        model_id=model_id,
        name=name,
        backend="bedrock",
        formats=("conversation",),
        min_train_records=8,
        max_train_records=20_000,
        max_validation_records=1_000,
        max_total_records=NO_LIMIT,
        max_tokens_per_record=32_000,
        max_train_file_bytes=1 * GB,
        max_validation_file_bytes=100 * MB,
        chars_per_token=4.0,
        hyperparameters=_NOVA_HP,
        source=_NOVA_PREPARE,
        hyperparameter_source=_HP_NOVA,
        assumed=("max_validation_records", "max_train_file_bytes", "max_validation_file_bytes", "chars_per_token"),
        note=_NOVA_NOTE,
    )


def _llama(
    model_id: str, name: str, formats: tuple[DataFormat, ...], tokens: int, version: Literal["3.1", "3.2"]
) -> ModelLimits:
    assumed = ("max_validation_records", "max_train_file_bytes", "max_validation_file_bytes")
    return ModelLimits(
        model_id=model_id,
        name=name,
        backend="bedrock",
        formats=formats,
        min_train_records=100,
        max_train_records=10_000,
        max_validation_records=1_000,
        max_total_records=10_000,
        max_tokens_per_record=tokens,
        max_train_file_bytes=1 * GB,
        max_validation_file_bytes=100 * MB,
        chars_per_token=6.0,
        hyperparameters=_LLAMA_HP,
        source=_BEDROCK_PREPARE,
        hyperparameter_source=_HP_LLAMA31 if version == "3.1" else _HP_ALL,
        assumed=assumed if version == "3.1" else (*assumed, "chars_per_token"),
        note=_LLAMA31_NOTE if version == "3.1" else _LLAMA32_NOTE,
    )


def _titan(
    model_id: str,
    name: str,
    tokens_by_batch_size: tuple[tuple[int, int], ...],
    hyperparameters: tuple[HyperparameterRange, ...],
) -> ModelLimits:
    return ModelLimits(
        model_id=model_id,
        name=name,
        backend="bedrock",
        formats=("prompt-completion",),
        min_train_records=10,
        max_train_records=10_000,
        max_validation_records=1_000,
        max_total_records=10_000,
        max_tokens_per_record=tokens_by_batch_size[0][1],
        max_train_file_bytes=1 * GB,
        max_validation_file_bytes=100 * MB,
        chars_per_token=6.0,
        hyperparameters=hyperparameters,
        source=_BEDROCK_PREPARE,
        hyperparameter_source=_HP_TITAN_TEXT,
        tokens_by_batch_size=tokens_by_batch_size,
        assumed=_RECORD_ASSUMPTIONS,
        note=_TITAN_NOTE,
    )


MODEL_LIMITS: tuple[ModelLimits, ...] = (
    _nova("amazon.nova-micro-v1:0:128k", "Amazon Nova Micro"),
    _nova("amazon.nova-lite-v1:0:300k", "Amazon Nova Lite"),
    _nova("amazon.nova-pro-v1:0:300k", "Amazon Nova Pro"),
    ModelLimits(
        model_id="anthropic.claude-3-haiku-20240307-v1:0:200k",
        name="Anthropic Claude 3 Haiku",
        backend="bedrock",
        formats=("conversation-legacy",),
        min_train_records=32,
        max_train_records=10_000,
        max_validation_records=1_000,
        max_total_records=10_000,
        max_tokens_per_record=32_000,
        max_train_file_bytes=10 * GB,
        max_validation_file_bytes=1 * GB,
        chars_per_token=4.0,
        hyperparameters=_CLAUDE3_HP,
        source=_BEDROCK_PREPARE,
        hyperparameter_source=_HP_CLAUDE3,
        assumed=("chars_per_token",),
        note=(
            "All record, token and size limits are documented. The 4 characters per token is an assumption "
            "(Bedrock documents no character quota for Claude 3 Haiku)."
        ),
    ),
    _llama("meta.llama3-1-8b-instruct-v1:0:128k", "Meta Llama 3.1 8B Instruct", ("prompt-completion",), 16_000, "3.1"),
    _llama(
        "meta.llama3-1-70b-instruct-v1:0:128k", "Meta Llama 3.1 70B Instruct", ("prompt-completion",), 16_000, "3.1"
    ),
    _llama("meta.llama3-2-1b-instruct-v1:0:128k", "Meta Llama 3.2 1B Instruct", ("conversation",), 16_000, "3.2"),
    _llama("meta.llama3-2-3b-instruct-v1:0:128k", "Meta Llama 3.2 3B Instruct", ("conversation",), 16_000, "3.2"),
    _llama("meta.llama3-2-11b-instruct-v1:0:128k", "Meta Llama 3.2 11B Instruct", ("conversation",), 16_000, "3.2"),
    _llama("meta.llama3-2-90b-instruct-v1:0:128k", "Meta Llama 3.2 90B Instruct", ("conversation",), 10_000, "3.2"),
    _titan(
        "amazon.titan-text-express-v1:0:8k", "Amazon Titan Text G1 - Express", ((1, 4_096), (4, 2_048)), _TITAN_TEXT_HP
    ),
    _titan("amazon.titan-text-lite-v1:0:4k", "Amazon Titan Text G1 - Lite", ((2, 4_096), (6, 2_048)), _TITAN_TEXT_HP),
    _titan("amazon.titan-text-premier-v1:0:32k", "Amazon Titan Text Premier", ((1, 4_096),), _TITAN_PREMIER_HP),
    ModelLimits(
        model_id="sagemaker",
        name="SageMaker (fmops training container)",
        backend="sagemaker",
        formats=("classification", "prompt-completion", "conversation", "conversation-legacy", "summarization", "qa"),
        min_train_records=10,
        max_train_records=NO_LIMIT,
        max_validation_records=NO_LIMIT,
        max_total_records=NO_LIMIT,
        max_tokens_per_record=8_192,
        max_train_file_bytes=NO_LIMIT,
        max_validation_file_bytes=NO_LIMIT,
        chars_per_token=4.0,
        hyperparameters=_SAGEMAKER_HP,
        source=_SAGEMAKER_CONTAINER,
        hyperparameter_source=_SAGEMAKER_CONTAINER,
        assumed=("chars_per_token",),
        note=(
            "Our own container (training/fmops_training/contract.py): no Bedrock record or file limits (NO_LIMIT); "
            "the minimum of 10 records is fmops' own (fmops.data.prepare.MIN_RECORDS). The container trains every "
            "task (docs/TASKS.md, training/README.md 'Data'): classification {text, label} and multilabel {text, "
            "labels} records train an encoder; prompt/completion, both conversation shapes (Bedrock's "
            "bedrock-conversation-2024 and {system?, messages}), {document, summary} and {context, question, "
            "answers} train a causal LM (the run's task decides which formats a data set may use). Records are "
            "truncated to max_length tokens (default 32, configurable up to 8,192; a causal LM's prompt is cut from "
            "the left). Exact counts come from the base model's tokenizer (fmops.data.tokens."
            "HuggingFaceTokenizerCounter); the 4 characters per token estimate is an assumption."
        ),
    ),
)
"""Every row, Bedrock models first, then the generic SageMaker entry."""

SAGEMAKER_MODEL_ID = "sagemaker"
_BY_ID = {row.model_id: row for row in MODEL_LIMITS}
_ARN_MODEL = re.compile(r"^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:foundation-model/(?P<id>.+)$")
_DATE_OR_VERSION = re.compile(r"-(?:\d{8}|v\d+)$")


def known_model_ids() -> tuple[str, ...]:
    return tuple(row.model_id for row in MODEL_LIMITS)


def _base(model_id: str) -> str:
    """The id without its ``:version`` and ``:context`` suffixes: ``amazon.nova-micro-v1``."""
    return model_id.split(":", 1)[0]


def _family(model_id: str) -> str:
    """The base id without trailing ``-v1`` and ``-YYYYMMDD`` parts: ``anthropic.claude-3-haiku``."""
    family = _base(model_id)
    while True:
        shorter = _DATE_OR_VERSION.sub("", family)
        if shorter == family:
            return family
        family = shorter


def get_limits(model_id: str, *, backend: Backend | None = None) -> ModelLimits:
    """The row of a base model.

    Matches, in order: the exact id; the id of a foundation-model ARN; the same base id whatever its ``:N`` and
    ``:128k`` suffixes (``anthropic.claude-3-haiku-20240307-v1:0`` and ``...-v1:0:200k`` both match); the same
    family whatever its ``-YYYYMMDD`` and ``-vN`` parts (``anthropic.claude-3-haiku``). Case is ignored.
    ``backend="sagemaker"`` always returns the SageMaker row (any Hugging Face id or ``s3://`` model).

    Raises:
        UnknownModelError: no row matches; the message lists the known ids.
    """
    if backend == "sagemaker":
        return _BY_ID[SAGEMAKER_MODEL_ID]
    wanted = model_id.strip().lower()
    arn = _ARN_MODEL.match(wanted)
    if arn:
        wanted = arn.group("id")
    rows = [row for row in MODEL_LIMITS if backend is None or row.backend == backend]
    for key in (lambda i: i, _base, _family):
        matches = [row for row in rows if key(row.model_id.lower()) == key(wanted)]
        if len(matches) == 1:
            return matches[0]
    raise UnknownModelError(model_id, known_model_ids())


def _number(value: float, kind: HyperparameterKind) -> str:
    if math.isinf(value):
        return "inf"
    if kind == "int":
        return str(int(value))
    return repr(float(value))


def _shown(value: Any) -> str:
    return value.strip() if isinstance(value, str) else repr(value)


_INT_LITERAL = re.compile(r"^[+-]?\d+$")


def _parse(value: Any, kind: HyperparameterKind) -> float | None:
    """The number in ``value`` (a number or Bedrock's string form), or ``None`` when it is not one of ``kind``.

    Integers must be written as integers ("2", not "2.0": Bedrock parses them as integers).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        return None
    if kind == "int":
        return float(int(text)) if _INT_LITERAL.match(text) else None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def check_hyperparameters(limits: ModelLimits, params: Mapping[str, Any]) -> list[HyperparameterProblem]:
    """Every hyperparameter in ``params`` that ``limits`` would refuse, in ``params`` order (empty when all pass).

    Values may be numbers or strings (Bedrock passes hyperparameters as strings): "2" is a valid int, "0.00001" a
    valid float, "abc" is ``wrong_type``. Names are the model's own (Bedrock camelCase for Bedrock rows).
    """
    problems: list[HyperparameterProblem] = []
    model = limits.model_id
    for name, value in params.items():
        allowed = limits.hyperparameter(name)
        if allowed is None:
            known = ", ".join(hp.name for hp in limits.hyperparameters)
            message = f"unknown hyperparameter {name!r} for {model} (known: {known})"
            problems.append(HyperparameterProblem(name, "unknown_hyperparameter", message))
            continue
        number = _parse(value, allowed.kind)
        if number is None:
            expected = "an integer" if allowed.kind == "int" else "a number"
            message = f"{name} {_shown(value)!r} is not {expected}; {model} expects {expected} in {allowed.bounds()}"
            problems.append(HyperparameterProblem(name, "wrong_type", message))
            continue
        if not allowed.minimum <= number <= allowed.maximum:
            message = f"{name} {_shown(value)} is outside {allowed.bounds()} allowed for {model}"
            problems.append(HyperparameterProblem(name, "out_of_range", message))
    return problems


def _count(value: int) -> str:
    return "no limit" if value >= NO_LIMIT else f"{value:,}"


def _size(value: int) -> str:
    if value >= NO_LIMIT:
        return "no limit"
    for unit, size in (("GB", GB), ("MB", MB), ("KB", KB)):
        if value >= size and value % size == 0:
            return f"{value // size:,} {unit}"
    return f"{value:,} bytes"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


ASSUMED_MARK = "†"


def limits_table_markdown() -> str:
    """A markdown table of every row (for docs); values marked † are assumptions, explained in the row's note."""

    def mark(row: ModelLimits, field: str, text: str) -> str:
        return f"{text} {ASSUMED_MARK}" if field in row.assumed else text

    header = (
        "| Model | Model id | Formats | Train records (min–max) | Validation records (max) | "
        "Train + validation (max) | Tokens per record | Train file | Validation file | Chars per token | "
        "Hyperparameters | Sources | Note |"
    )
    lines = [
        f"Values marked {ASSUMED_MARK} are assumptions (not found in the AWS documentation); the note says why.",
        "",
        header,
        "|" + "---|" * (header.count(" | ") + 1),
    ]
    for row in MODEL_LIMITS:
        tokens = f"{row.max_tokens_per_record:,}"
        if len(row.tokens_by_batch_size) > 1:
            tokens = ", ".join(f"{t:,} (batch ≤{b})" for b, t in row.tokens_by_batch_size)
        records = (
            f"{mark(row, 'min_train_records', f'{row.min_train_records:,}')}–"
            f"{mark(row, 'max_train_records', _count(row.max_train_records))}"
        )
        cells = [
            row.name,
            f"`{row.model_id}`",
            ", ".join(row.formats),
            records,
            mark(row, "max_validation_records", _count(row.max_validation_records)),
            mark(row, "max_total_records", _count(row.max_total_records)),
            mark(row, "max_tokens_per_record", tokens),
            mark(row, "max_train_file_bytes", _size(row.max_train_file_bytes)),
            mark(row, "max_validation_file_bytes", _size(row.max_validation_file_bytes)),
            mark(row, "chars_per_token", f"{row.chars_per_token:g}"),
            "; ".join(hp.describe() for hp in row.hyperparameters),
            f"[data]({row.source}), [hyperparameters]({row.hyperparameter_source})",
            row.note,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
