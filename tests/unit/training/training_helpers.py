"""Helpers for the training tests: data folders and SageMaker-shaped subprocess runs of training/ scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fmops_local.sample_data import generate, write_jsonl

TRAINING_DIR = Path(__file__).resolve().parents[3] / "training"
PYTHON = sys.executable


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment of a local job: offline, 2 torch threads, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "PYTEST"))}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "FMOPS_TORCH_THREADS": str(max(1, min(2, os.cpu_count() or 1))),
            "OMP_NUM_THREADS": str(max(1, min(2, os.cpu_count() or 1))),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class JobDirs:
    root: Path
    train: Path
    validation: Path
    model: Path
    output: Path

    def env(self, hps: dict[str, str]) -> dict[str, str]:
        return job_env(
            {
                "SM_MODEL_DIR": str(self.model),
                "SM_OUTPUT_DIR": str(self.output),
                "SM_OUTPUT_DATA_DIR": str(self.output / "data"),
                "SM_CHECKPOINT_DIR": str(self.root / "checkpoints"),
                "SM_CHANNEL_TRAIN": str(self.train),
                "SM_CHANNEL_VALIDATION": str(self.validation),
                "SM_CHANNELS": json.dumps(["train", "validation"]),
                "SM_HPS": json.dumps(hps),
                "SM_HOSTS": json.dumps(["algo-1"]),
                "SM_CURRENT_HOST": "algo-1",
                "SM_NUM_GPUS": "0",
            }
        )


def make_job_dirs(root: Path, n_train: int = 300, n_validation: int = 100) -> JobDirs:
    dirs = JobDirs(root, root / "train", root / "validation", root / "model", root / "output")
    write_jsonl(dirs.train / "train.jsonl", generate(n_train, seed=1))
    write_jsonl(dirs.validation / "validation.jsonl", generate(n_validation, seed=2))
    return dirs


def run_script(
    script: str, args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a training/ script the way SageMaker does: cwd = the code folder."""
    return subprocess.run(
        [PYTHON, script, *args], cwd=TRAINING_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
