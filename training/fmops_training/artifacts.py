"""The model folder's own files (``labels.json``, ``fmops_model.json``) and ``model.tar.gz`` handling."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from fmops_training.errors import ModelLoadError

LABELS_FILE = "labels.json"
METADATA_FILE = "fmops_model.json"
ARCHIVE_NAME = "model.tar.gz"


def write_model_files(model_dir: Path, labels: list[str], metadata: dict[str, Any]) -> None:
    """Write ``labels.json`` (a list) and ``fmops_model.json`` next to the saved model."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / LABELS_FILE).write_text(json.dumps(labels) + "\n", encoding="utf-8")
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """``fmops_model.json`` of a trained model folder, checked for the fields evaluation relies on."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} not found: the model folder was not written by train.py")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    for key in ("task", "base_model", "hyperparameters"):
        if key not in meta:
            raise ModelLoadError(f"{path} lacks {key!r}")
    from fmops_training.contract import TASKS

    if meta["task"] not in TASKS:
        raise ModelLoadError(f"{path}: task {meta['task']!r} is not supported (one of {', '.join(TASKS)})")
    return meta


def read_labels(model_dir: Path) -> list[str]:
    """``labels.json``: the class labels in index order."""
    path = model_dir / LABELS_FILE
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path} not found: the model folder was not written by train.py") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or len(labels) < 2:
        raise ModelLoadError(f"{path} must be a list of at least 2 label strings")
    return labels


def locate_model_dir(path: Path, scratch: Path) -> Path:
    """The folder holding the model files: ``path`` itself, or ``path/model.tar.gz`` extracted into ``scratch``."""
    if not path.is_dir():
        raise ModelLoadError(f"model dir {path} is not a directory")
    if (path / "config.json").is_file():
        return path
    archives = [path / ARCHIVE_NAME] if (path / ARCHIVE_NAME).is_file() else sorted(path.glob("*.tar.gz"))
    if not archives:
        raise ModelLoadError(f"model dir {path} holds neither model files (config.json) nor a {ARCHIVE_NAME}")
    target = scratch / "model"
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archives[0], "r:gz") as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelLoadError(f"cannot extract {archives[0]}: {exc}") from None
    if (target / "config.json").is_file():
        return target
    nested = [p.parent for p in target.rglob("config.json")]
    if len(nested) == 1:
        return nested[0]
    raise ModelLoadError(f"{archives[0]} holds no single model folder (config.json found {len(nested)} times)")
