"""What a training run will cost, before it runs: price tables in code and a documented estimate.

Prices. US dollars, **us-east-1 list prices** (on-demand; no Savings Plans, free tier or credits). Other regions
cost roughly the same to about 30% more: the estimate always says it is priced at us-east-1. Every value was
looked up on ``PRICES_AS_OF`` in stored copies of the AWS price pages (``SAGEMAKER_PRICING_URL``,
``BEDROCK_PRICING_URL``); the AWS pages themselves were not reachable, so the values come from third-party
copies of them. A value marked ``assumed`` was not found in any copy: it is our best figure (said in its note)
and the estimate lists it under ``assumptions``.

The estimate (``estimate_cost``):

* SageMaker: ``hours = min(OVERHEAD_SECONDS + training seconds, max_runtime) / 3600``; ``cost = hours x
  instance_count x price_per_hour``, times ``1 - SPOT_DISCOUNT`` with managed spot. ``records`` are the training
  split's records. The training seconds depend on what the run's ``task`` trains (docs/TASKS.md):

  - ``classification``, ``multilabel`` (an encoder): ``records x epochs x (max_length / 32) /
    records_per_second``, with ``records_per_second`` an assumption per instance family (``RECORDS_PER_SECOND``:
    the fmops container, one process on one device, at max_length 32), scaled linearly with ``max_length``;
  - ``summarization``, ``qa``, ``chat`` (a causal LM, ``GENERATIVE_TASKS``): ``records x epochs x
    tokens_per_record / tokens_per_second``, with ``tokens_per_second`` an assumption per instance family
    (``CAUSAL_LM_TOKENS_PER_SECOND``: a small causal LM, the default SmolLM2-135M-Instruct) and
    ``tokens_per_record`` the data's estimated tokens per record (capped at ``max_length``) when its tokens or
    characters are known, else ``max_length`` (every record assumed to fill it).

  SageMaker bills every instance of the job for the whole job. The time is not shortened for extra instances
  (multi-node training splits each global batch between them): with ``instance_count`` > 1 the estimate errs high.
* Bedrock: ``tokens x epochs x price per 1,000 tokens / 1000``, where ``tokens`` is the training split's estimate
  (``fmops.data.tokens.estimate_tokens``: ``ceil(characters / chars_per_token)`` with the base model's ratio
  from ``fmops.data.limits``). Storing the custom model costs ``storage_usd_per_month`` on top (shown, not
  added to the total); serving it (provisioned throughput) is not part of the estimate.

Standard library only: this module runs in Lambda (``plan_training``) and in the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from fmops.data.limits import ModelLimits, get_limits

PRICES_AS_OF = "2026-11-27"
PRICE_REGION = "us-east-1"
REGION_NOTE = (
    "us-east-1 list prices; other regions cost roughly the same to about 30% more (not modelled): check the "
    "AWS pricing pages for yours"
)
SAGEMAKER_PRICING_URL = "https://aws.amazon.com/sagemaker/ai/pricing/"
BEDROCK_PRICING_URL = "https://aws.amazon.com/bedrock/pricing/"

SPOT_DISCOUNT = 0.70
"""Assumption: managed spot training costs 30% of on-demand. AWS advertises "up to 90%" savings; the actual
discount varies by instance type, region and time, and SageMaker reports it per job (BillableTimeInSeconds vs
TrainingTimeInSeconds). 70% is a typical, deliberately not optimistic, figure."""

OVERHEAD_SECONDS = 300
"""Assumption: billable seconds of a SageMaker job besides training (image and data download, model load, model
upload). The launch itself (``Starting``) is not billed."""

BASE_MAX_LENGTH = 32
"""The sequence length at which ``RECORDS_PER_SECOND`` is given (the fmops default ``max_length``)."""

RECORDS_PER_SECOND: Mapping[str, float] = {
    # CPU. Derived from the local benchmark (benchmarks/RESULTS.md, "Local demo"): train.py + evaluate.py on 1,920
    # training records, 1 epoch, 2 CPUs took 34.8 s with model load and evaluation; ml.m5.xlarge has 4 vCPUs
    # (2 physical cores).
    "m5": 60.0,
    # GPU, one device used by the container (assumptions: order of magnitude for a MiniLM-sized encoder at
    # sequence length 32, fp32, batch 32).
    "g5": 1_500.0,  # NVIDIA A10G
    "g6": 1_200.0,  # NVIDIA L4
    "p4d": 3_000.0,  # one NVIDIA A100 of 8
    "p5": 5_000.0,  # one NVIDIA H100 of 8
    # Trainium: the fmops container runs PyTorch without the Neuron SDK, so training falls back to the CPUs.
    "trn1": 300.0,
}
DEFAULT_RECORDS_PER_SECOND = 60.0
"""Assumption for an instance family not in ``RECORDS_PER_SECOND``: as slow as a small CPU instance."""

GENERATIVE_TASKS: frozenset[str] = frozenset({"summarization", "qa", "chat"})
"""The tasks that fine-tune a causal LM (``fmops.schemas.run.GENERATIVE_TASKS``; this module stays stdlib-only)."""

CAUSAL_LM_PARAMETERS = 135_000_000
"""The causal LM the throughputs below are for: SmolLM2-135M-Instruct, the generative tasks' default base model."""

CAUSAL_LM_TOKENS_PER_SECOND: Mapping[str, float] = {
    # Assumptions, not measurements: training tokens (prompt and answer, padding excluded) per second of one job on
    # one device, for a ~135M-parameter causal LM. Reasoning: training costs about 6 x parameters = 8.1e8 FLOPs per
    # token (attention adds under 10% at a few hundred tokens); a model this small keeps a GPU busy only ~10-15% of
    # its dense bf16 peak (hidden size 576: small matrix products, launch overhead, the optimizer step), and the
    # container trains in bf16 autocast on these GPUs. As for RECORDS_PER_SECOND, deliberately not optimistic.
    "g5": 10_000.0,  # NVIDIA A10G, ~70 TFLOP/s bf16 dense: 12% of it / 8.1e8 FLOPs per token
    "g6": 8_000.0,  # NVIDIA L4: more bf16 FLOP/s on paper than the A10G but half its memory bandwidth
    "p4d": 40_000.0,  # one NVIDIA A100 of 8 (312 TFLOP/s bf16): ~10%, a small model does not fill it
    "p5": 80_000.0,  # one NVIDIA H100 of 8 (989 TFLOP/s bf16 dense): even less of it filled
    # CPU (fp32): ml.m5.xlarge's 2 physical cores, ~0.1 TFLOP/s in practice, at ~40%: about 50 tokens/s. The
    # encoder row's 60 records/s at 32 tokens is ~1,900 tokens/s for a model 6x smaller (22M parameters).
    "m5": 50.0,
    # Trainium: no Neuron SDK in the container, training falls back to the CPUs (as RECORDS_PER_SECOND: 5x m5).
    "trn1": 250.0,
}
DEFAULT_CAUSAL_LM_TOKENS_PER_SECOND = 50.0
"""Assumption for an instance family not in ``CAUSAL_LM_TOKENS_PER_SECOND``: as slow as a small CPU instance."""

ASSUMED_CHARS_PER_RECORD = 1_000
"""Assumption when the characters of a Bedrock training split are unknown (no file size): 1,000 characters per
record."""


@dataclass(frozen=True)
class InstancePrice:
    """SageMaker training, on-demand, us-east-1, USD per instance-hour."""

    instance_type: str
    usd_per_hour: float
    assumed: bool = False
    note: str = ""


@dataclass(frozen=True)
class CustomizationPrice:
    """Bedrock model customization (fine-tuning), us-east-1."""

    model_id: str
    usd_per_1k_tokens: float
    storage_usd_per_month: float
    assumed: bool = False
    note: str = ""


_COPIES = "third-party copies of the AWS price list agree"
SAGEMAKER_TRAINING_PRICES: Mapping[str, InstancePrice] = {
    p.instance_type: p
    for p in (
        InstancePrice("ml.m5.xlarge", 0.23, note=_COPIES),
        InstancePrice("ml.g5.xlarge", 1.408, note=_COPIES),
        InstancePrice("ml.g5.2xlarge", 1.515, note=_COPIES + " (one quotes the AWS Price List API)"),
        InstancePrice("ml.g5.12xlarge", 7.09, note=_COPIES),
        InstancePrice("ml.g5.48xlarge", 20.36, note=_COPIES),
        InstancePrice(
            "ml.p4d.24xlarge",
            37.688,
            note="one third-party copy (37.69); others quote 32.77, the EC2 price; AWS cut P4/P5 prices in 2025",
        ),
        InstancePrice(
            "ml.p5.48xlarge",
            113.07,
            assumed=True,
            note="not found (copies quote 98.32, the EC2 price); SageMaker's price before the 2025 cut",
        ),
        InstancePrice("ml.g6.xlarge", 1.1267, note=_COPIES + " (1.127)"),
        InstancePrice(
            "ml.trn1.32xlarge",
            24.725,
            assumed=True,
            note="not found (copies quote 21.50, the EC2 price); EC2 price plus SageMaker's usual premium",
        ),
    )
}
"""The instance types fmops uses; SAGEMAKER_PRICING_URL, "Training" tab, us-east-1, looked up on PRICES_AS_OF."""

_STORAGE = 1.95  # per custom model per month: the same for every model in the copies found
_LLAMA2_FOUND = "Llama 2 13B 0.00149 and 70B 0.00799 per 1,000 tokens were found"
BEDROCK_CUSTOMIZATION_PRICES: Mapping[str, CustomizationPrice] = {
    p.model_id: p
    for p in (
        CustomizationPrice(
            "amazon.nova-micro-v1:0:128k", 0.001, _STORAGE, assumed=True, note="not found; AWS's launch price"
        ),
        CustomizationPrice(
            "amazon.nova-lite-v1:0:300k", 0.002, _STORAGE, assumed=True, note="not found; AWS's launch price"
        ),
        CustomizationPrice(
            "amazon.nova-pro-v1:0:300k", 0.008, _STORAGE, assumed=True, note="not found; AWS's launch price"
        ),
        CustomizationPrice(
            "anthropic.claude-3-haiku-20240307-v1:0:200k",
            0.004,
            _STORAGE,
            assumed=True,
            note="not found; AWS's price at general availability",
        ),
        CustomizationPrice(
            "meta.llama3-1-8b-instruct-v1:0:128k",
            0.00149,
            _STORAGE,
            assumed=True,
            note=f"not found; as the smaller Llama 2 ({_LLAMA2_FOUND})",
        ),
        CustomizationPrice(
            "meta.llama3-1-70b-instruct-v1:0:128k",
            0.00799,
            _STORAGE,
            assumed=True,
            note=f"not found; as Llama 2 70B ({_LLAMA2_FOUND})",
        ),
        CustomizationPrice(
            "meta.llama3-2-1b-instruct-v1:0:128k",
            0.00149,
            _STORAGE,
            assumed=True,
            note=f"not found; as the smaller Llama 2 (probably an over-estimate; {_LLAMA2_FOUND})",
        ),
        CustomizationPrice(
            "meta.llama3-2-3b-instruct-v1:0:128k",
            0.00149,
            _STORAGE,
            assumed=True,
            note=f"not found; as the smaller Llama 2 (probably an over-estimate; {_LLAMA2_FOUND})",
        ),
        CustomizationPrice(
            "meta.llama3-2-11b-instruct-v1:0:128k",
            0.00149,
            _STORAGE,
            assumed=True,
            note=f"not found; as the smaller Llama 2 ({_LLAMA2_FOUND})",
        ),
        CustomizationPrice(
            "meta.llama3-2-90b-instruct-v1:0:128k",
            0.00799,
            _STORAGE,
            assumed=True,
            note=f"not found; as Llama 2 70B ({_LLAMA2_FOUND})",
        ),
        CustomizationPrice(
            "amazon.titan-text-express-v1:0:8k",
            0.008,
            _STORAGE,
            assumed=True,
            note="not found; AWS's price at general availability",
        ),
        CustomizationPrice(
            "amazon.titan-text-lite-v1:0:4k", 0.0004, _STORAGE, note="found in a copy of the AWS price list"
        ),
        CustomizationPrice(
            "amazon.titan-text-premier-v1:0:32k",
            0.002,
            _STORAGE,
            assumed=True,
            note="not found (customization was in preview); a guess between Titan Lite and Express",
        ),
    )
}
"""Every Bedrock row of ``fmops.data.limits.MODEL_LIMITS`` (by its model id): USD per 1,000 training tokens and
per custom model per month of storage; BEDROCK_PRICING_URL, "Model customization", us-east-1."""


class RunLike(Protocol):
    """The run options the estimate reads (``fmops.schemas.run.RunOptions`` and ``RunRequest`` have them)."""

    @property
    def backend(self) -> str: ...

    @property
    def task(self) -> str: ...

    @property
    def base_model(self) -> str: ...

    @property
    def hyperparameters(self) -> dict[str, str]: ...

    @property
    def instance_type(self) -> str: ...

    @property
    def instance_count(self) -> int: ...

    @property
    def max_runtime_seconds(self) -> int: ...

    @property
    def spot(self) -> bool: ...


class _Counts(Protocol):
    @property
    def train(self) -> int: ...


class DatasetLike(Protocol):
    """``fmops.schemas.steps.DatasetInfo``: the records per split."""

    @property
    def counts(self) -> _Counts: ...


@dataclass(frozen=True)
class DataVolume:
    """The training data an estimate is for: records of the training split, and its size when known.

    ``tokens`` (an estimate already made with the model's ratio) wins over ``characters``; with neither, the
    Bedrock estimate assumes ``ASSUMED_CHARS_PER_RECORD``. ``basis`` says where the numbers come from.
    """

    records: int
    characters: int | None = None
    tokens: int | None = None
    basis: str = "record counts"

    def __post_init__(self) -> None:
        for name in ("records", "characters", "tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass
class CostEstimate:
    """An estimate in USD (``total_usd`` None when a price is unknown). ``as_dict()`` is what is stored on the run.

    SageMaker fields: ``task``, ``instance_*``, ``spot``, ``usd_per_hour`` (after the spot discount), ``records``,
    ``epochs``, ``max_length``, ``records_per_second`` (encoder tasks) or ``tokens_per_second`` and
    ``tokens_per_record`` (generative tasks), ``estimated_seconds`` (before the cap), ``billable_seconds``,
    ``capped`` (at max_runtime), ``instance_hours``. Bedrock fields: ``model_id``,
    ``records``, ``characters``, ``tokens`` (one epoch), ``epochs``, ``training_tokens``, ``usd_per_1k_tokens``,
    ``storage_usd_per_month``. Fields of the other backend are None.
    """

    backend: str
    total_usd: float | None
    currency: str = "USD"
    price_region: str = PRICE_REGION
    prices_as_of: str = PRICES_AS_OF
    records: int = 0
    epochs: int = 1
    # SageMaker
    task: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    spot: bool | None = None
    on_demand_usd_per_hour: float | None = None
    spot_discount: float | None = None
    usd_per_hour: float | None = None
    max_length: int | None = None
    records_per_second: float | None = None
    tokens_per_second: float | None = None
    tokens_per_record: float | None = None
    estimated_seconds: float | None = None
    billable_seconds: float | None = None
    capped: bool | None = None
    instance_hours: float | None = None
    # Bedrock
    model_id: str | None = None
    characters: int | None = None
    tokens: int | None = None
    training_tokens: int | None = None
    usd_per_1k_tokens: float | None = None
    storage_usd_per_month: float | None = None
    basis: str = "record counts"
    assumptions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-compatible; fields that do not apply (None) are left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def family(instance_type: str) -> str:
    """``ml.g5.2xlarge`` -> ``g5``."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 else instance_type


def tokens_from_characters(characters: int, chars_per_token: float) -> int:
    """``estimate_tokens`` for a text of ``characters`` characters, without the text.

    ``fmops.data.tokens.estimate_tokens`` reads nothing but the length of its text, so this is the same rule.
    """
    from fmops.data.tokens import estimate_tokens

    if characters <= 0:
        return 0
    return estimate_tokens(_Sized(characters), chars_per_token)  # type: ignore[arg-type]


class _Sized:
    """A stand-in text of a given length (``estimate_tokens`` only takes its ``len``)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


def _int_hyperparameter(hyperparameters: Mapping[str, str], names: tuple[str, ...], default: int) -> int | None:
    """The first of ``names`` that is set, as a positive int; ``default`` when none is set; None when invalid."""
    for name in names:
        if name in hyperparameters:
            try:
                value = int(str(hyperparameters[name]).strip())
            except ValueError:
                return None
            return value if value >= 1 else None
    return default


def volume_of(data: DataVolume | DatasetLike) -> DataVolume:
    """A ``DataVolume`` as is; a ``DatasetInfo``: its training split's record count."""
    if isinstance(data, DataVolume):
        return data
    return DataVolume(records=int(data.counts.train), basis="training split record count")


def estimate_cost(
    run: RunLike,
    data: DataVolume | DatasetLike,
    *,
    max_runtime_seconds: int | None = None,
    limits: ModelLimits | None = None,
) -> CostEstimate:
    """The estimated cost of training ``run`` on ``data`` (see the module docstring for the arithmetic).

    ``max_runtime_seconds`` (default: the run's) caps SageMaker billing. ``limits``: the base model's row (default:
    looked up; Bedrock only).

    Raises:
        UnknownModelError: a Bedrock base model that ``fmops.data.limits`` does not know.
    """
    volume = volume_of(data)
    if run.backend == "bedrock":
        return _bedrock(run, volume, limits or get_limits(run.base_model, backend="bedrock"))
    return _sagemaker(run, volume, run.max_runtime_seconds if max_runtime_seconds is None else max_runtime_seconds)


def _sagemaker(run: RunLike, volume: DataVolume, max_runtime_seconds: int) -> CostEstimate:
    assumptions: list[str] = []
    epochs = _int_hyperparameter(run.hyperparameters, ("epochs",), 1)
    if epochs is None:
        epochs = 1
        assumptions.append(f"epochs {run.hyperparameters.get('epochs')!r} is not a positive integer: 1 assumed")
    max_length = _int_hyperparameter(run.hyperparameters, ("max_length",), BASE_MAX_LENGTH)
    if max_length is None:
        max_length = BASE_MAX_LENGTH
        assumptions.append(f"max_length is not a positive integer: {BASE_MAX_LENGTH} assumed")
    kind = family(run.instance_type)
    task = run.task
    speed: float | None = None
    token_speed: float | None = None
    per_record: float | None = None
    if task in GENERATIVE_TASKS:
        token_speed = CAUSAL_LM_TOKENS_PER_SECOND.get(kind, DEFAULT_CAUSAL_LM_TOKENS_PER_SECOND)
        known = "" if kind in CAUSAL_LM_TOKENS_PER_SECOND else f" (no figure for {kind}: the default)"
        assumptions.append(
            f"throughput {token_speed:g} tokens/s per job on {kind} for a small causal LM "
            f"({CAUSAL_LM_PARAMETERS / 1e6:g}M parameters, task {task}){known}; a larger base model takes about "
            "proportionally longer"
        )
        tokens = volume.tokens
        if tokens is None and volume.characters is not None:
            chars_per_token = get_limits(run.base_model, backend="sagemaker").chars_per_token
            tokens = tokens_from_characters(volume.characters, chars_per_token)
            assumptions.append(f"tokens estimated as ceil(characters / {chars_per_token:g})")
        if tokens is not None and volume.records > 0:
            measured = tokens / volume.records
            per_record = min(float(max_length), measured)
            assumptions.append(
                f"{per_record:g} tokens per record: the data's {measured:.1f} on average, at most max_length "
                f"{max_length}"
            )
        else:
            per_record = float(max_length)
            assumptions.append(f"every record fills max_length ({max_length} tokens): the data's tokens are unknown")
        training_seconds = volume.records * epochs * per_record / token_speed
    else:
        speed = RECORDS_PER_SECOND.get(kind, DEFAULT_RECORDS_PER_SECOND)
        known = "" if kind in RECORDS_PER_SECOND else f" (no figure for {kind}: the default)"
        assumptions.append(
            f"throughput {speed:g} records/s per job on {kind} at max_length {BASE_MAX_LENGTH}{known}, "
            "scaled linearly with max_length"
        )
        training_seconds = volume.records * epochs * (max_length / BASE_MAX_LENGTH) / speed
    assumptions.append(f"{OVERHEAD_SECONDS} s billable per job besides training (downloads, model load, upload)")
    estimated = OVERHEAD_SECONDS + training_seconds
    billable = min(estimated, float(max_runtime_seconds))
    instance_hours = billable / 3600 * run.instance_count
    price = SAGEMAKER_TRAINING_PRICES.get(run.instance_type)
    on_demand = price.usd_per_hour if price else None
    if price is None:
        assumptions.append(f"no price for {run.instance_type} in fmops.pricing: no total")
    elif price.assumed:
        assumptions.append(f"price of {run.instance_type} {price.usd_per_hour} USD/h: {price.note}")
    discount = SPOT_DISCOUNT if run.spot else None
    if run.spot:
        assumptions.append(f"managed spot at {SPOT_DISCOUNT:.0%} below on-demand")
    hourly = None if on_demand is None else on_demand * (1 - SPOT_DISCOUNT if run.spot else 1)
    total = None if hourly is None else instance_hours * hourly
    return CostEstimate(
        backend="sagemaker",
        total_usd=None if total is None else round(total, 4),
        records=volume.records,
        epochs=epochs,
        task=task,
        instance_type=run.instance_type,
        instance_count=run.instance_count,
        spot=run.spot,
        on_demand_usd_per_hour=on_demand,
        spot_discount=discount,
        usd_per_hour=None if hourly is None else round(hourly, 6),
        max_length=max_length,
        records_per_second=speed,
        tokens_per_second=token_speed,
        tokens_per_record=None if per_record is None else round(per_record, 3),
        estimated_seconds=round(estimated, 3),
        billable_seconds=round(billable, 3),
        capped=estimated > max_runtime_seconds,
        instance_hours=round(instance_hours, 6),
        basis=volume.basis,
        assumptions=assumptions,
        sources=[SAGEMAKER_PRICING_URL],
    )


def bedrock_epochs(hyperparameters: Mapping[str, str], limits: ModelLimits) -> int | None:
    """``epochCount`` (Bedrock's name) or ``epochs`` (fmops'), else the model's default epoch count (else 1)."""
    default = limits.hyperparameter("epochCount")
    fallback = int(default.default) if default is not None and default.default is not None else 1
    return _int_hyperparameter(hyperparameters, ("epochCount", "epochs"), fallback)


def _bedrock(run: RunLike, volume: DataVolume, limits: ModelLimits) -> CostEstimate:
    assumptions: list[str] = []
    epochs = bedrock_epochs(run.hyperparameters, limits)
    if epochs is None:
        epochs = 1
        assumptions.append("the epoch count is not a positive integer: 1 assumed")
    characters = volume.characters
    if volume.tokens is not None:
        tokens = volume.tokens
    else:
        if characters is None:
            characters = volume.records * ASSUMED_CHARS_PER_RECORD
            assumptions.append(f"{ASSUMED_CHARS_PER_RECORD:,} characters per record (the data size is unknown)")
        tokens = tokens_from_characters(characters, limits.chars_per_token)
    assumptions.append(
        f"tokens estimated as ceil(characters / {limits.chars_per_token:g}) (fmops.data.tokens.estimate_tokens)"
    )
    training_tokens = tokens * epochs
    price = BEDROCK_CUSTOMIZATION_PRICES.get(limits.model_id)
    total = None
    if price is None:
        assumptions.append(f"no customization price for {limits.model_id} in fmops.pricing: no total")
    else:
        total = training_tokens * price.usd_per_1k_tokens / 1000
        if price.assumed:
            assumptions.append(f"price of {limits.model_id} {price.usd_per_1k_tokens} USD/1k tokens: {price.note}")
    return CostEstimate(
        backend="bedrock",
        total_usd=None if total is None else round(total, 4),
        records=volume.records,
        epochs=epochs,
        model_id=limits.model_id,
        characters=characters,
        tokens=tokens,
        training_tokens=training_tokens,
        usd_per_1k_tokens=price.usd_per_1k_tokens if price else None,
        storage_usd_per_month=price.storage_usd_per_month if price else None,
        basis=volume.basis,
        assumptions=assumptions,
        sources=[BEDROCK_PRICING_URL],
    )


def price_table_markdown() -> str:
    """Both price tables as markdown (for docs and ``fmops train estimate --prices``); † marks an assumption."""
    lines = [
        f"Prices in USD, {PRICE_REGION}, as of {PRICES_AS_OF} ({REGION_NOTE}). † assumption (not found).",
        "",
        f"SageMaker training, on-demand, per instance-hour ({SAGEMAKER_PRICING_URL}); managed spot: "
        f"{SPOT_DISCOUNT:.0%} less †.",
        "",
        "| instance type | USD/hour | note |",
        "|---|---:|---|",
    ]
    for p in SAGEMAKER_TRAINING_PRICES.values():
        lines.append(f"| {p.instance_type} | {p.usd_per_hour:g}{' †' if p.assumed else ''} | {p.note} |")
    lines += [
        "",
        f"Bedrock model customization ({BEDROCK_PRICING_URL}).",
        "",
        "| model id | USD per 1,000 training tokens | USD per custom model per month | note |",
        "|---|---:|---:|---|",
    ]
    for b in BEDROCK_CUSTOMIZATION_PRICES.values():
        mark = " †" if b.assumed else ""
        lines.append(f"| {b.model_id} | {b.usd_per_1k_tokens:g}{mark} | {b.storage_usd_per_month:g} | {b.note} |")
    return "\n".join(lines) + "\n"
