"""Serving handlers for the *base* model of a fine-tuned classifier: the exact starting point of training.

``model_fn`` reads ``fmops_model.json`` and ``labels.json`` of a model folder written by ``train.py`` and
rebuilds the base encoder with the classification head initialised from the same seed, as
``evaluate.py`` does for its base predictions. ``input_fn``/``predict_fn``/``output_fn`` are those of
``inference.py``. The local AWS serves foundation-model invocations with it (``serve.py --program
base_inference.py``), so that "base model vs fine-tuned" compares the same two models everywhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from inference import LoadedModel, input_fn, output_fn, predict_fn

from fmops_training.artifacts import read_labels, read_metadata

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Rebuild the base model that the fine-tuned model in ``model_dir`` started from."""
    from fmops_training.runtime import prepare_torch

    prepare_torch()
    from fmops_training.modeling import build_classifier, load_tokenizer, model_labels, pick_device, resolve_base_model

    folder = Path(model_dir)
    meta = read_metadata(folder)
    labels = read_labels(folder)
    hps = meta.get("hyperparameters", {})
    seed = int(hps.get("seed", 42))
    max_length = int(hps.get("max_length", 32))
    source = resolve_base_model(str(meta["base_model"]), scratch=Path(tempfile.mkdtemp(prefix="fmops-base-")))
    tokenizer = load_tokenizer(source.location)
    model, _digest = build_classifier(source, labels, seed, tokenizer.pad_token_id)
    device = pick_device()
    model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, model_labels(model), max_length, device)
