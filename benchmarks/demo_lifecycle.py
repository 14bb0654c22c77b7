"""Local lifecycle time: `fmops demo` (ingest to 20 predictions) against its own training run alone.

Baseline, measured in the same run: `training/train.py` + `training/evaluate.py` run directly on the same
data (what a data scientist would run by hand). The ratio is the price of the whole lifecycle: S3 event,
workflow, registry, approval, deployment and model-server start on top of the real work.
Writes the "Local demo" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section  # benchmarks/ is on sys.path when a script here runs

from fmops_local.demo import DemoConfig, run_demo
from fmops_local.sample_data import generate, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def baseline(cfg: DemoConfig) -> float:
    """train.py + evaluate.py by hand on the demo's split sizes."""
    records = generate(cfg.records, seed=cfg.seed)
    n_train, n_val = int(len(records) * 0.8), int(len(records) * 0.1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, part in (
            ("train", records[:n_train]),
            ("validation", records[n_train : n_train + n_val]),
            ("test", records[n_train + n_val :]),
        ):
            (d / name).mkdir()
            write_jsonl(d / name / "data.jsonl", part)
        env = dict(
            os.environ,
            SM_MODEL_DIR=str(d / "model"),
            SM_OUTPUT_DIR=str(d / "out"),
            SM_CHECKPOINT_DIR=str(d / "ckpt"),
            SM_CHANNEL_TRAIN=str(d / "train"),
            SM_CHANNEL_VALIDATION=str(d / "validation"),
            HF_HUB_OFFLINE="1",
            SM_HPS=json.dumps(
                {
                    "epochs": str(cfg.epochs),
                    "learning_rate": str(cfg.learning_rate),
                    "batch_size": str(cfg.batch_size),
                    "max_length": str(cfg.max_length),
                    "seed": str(cfg.seed),
                }
            ),
        )
        for sub in ("model", "out", "ckpt"):
            (d / sub).mkdir()
        started = time.monotonic()
        subprocess.run([sys.executable, "train.py"], cwd=ROOT / "training", env=env, check=True, capture_output=True)
        subprocess.run(
            [
                sys.executable,
                "evaluate.py",
                "--model-dir",
                str(d / "model"),
                "--test",
                str(d / "test"),
                "--output",
                str(d / "eval"),
            ],
            cwd=ROOT / "training",
            env=env,
            check=True,
            capture_output=True,
        )
        return time.monotonic() - started


def main() -> int:
    cfg = DemoConfig(out_dir=Path(tempfile.mkdtemp(prefix="fmops-bench-")))
    base_s = baseline(cfg)
    summary = run_demo(cfg, echo=lambda _line: None)
    demo_s = float(summary["elapsed_seconds"])
    rows = [
        "| what | seconds | ratio to baseline |",
        "|---|---:|---:|",
        f"| baseline: `train.py` + `evaluate.py` by hand, same data | {base_s:.1f} | 1.00 |",
        f"| `fmops demo`: upload → ... → endpoint → 20 predictions | {demo_s:.1f} | {demo_s / base_s:.2f} |",
    ]
    text = (
        f"`python benchmarks/demo_lifecycle.py` ({cfg.records} records, {cfg.epochs} epoch, 2 torch threads), "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}. Target: demo under 300 s.\n"
        f"Run status {summary['execution_status']}; accuracy base {summary['base_metrics'].get('accuracy', 0):.3f} "
        f"→ fine-tuned {summary['finetuned_metrics'].get('accuracy', 0):.3f}; "
        f"{summary.get('predictions')} predictions, {summary.get('prediction_accuracy', 0):.2f} correct.\n\n"
        + "\n".join(rows)
    )
    print(text)
    write_section("Local demo", text)
    return 0 if summary["execution_status"] == "SUCCEEDED" and demo_s < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
