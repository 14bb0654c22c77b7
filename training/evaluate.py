"""SageMaker Processing entry point: base vs fine-tuned (vs champion) predictions over the test split.

``python evaluate.py --model-dir DIR --test DIR --output DIR [--champion-model-dir DIR] [--base-model ID]
[--seed N] [--batch-size N]``

``--model-dir`` holds the trained model's files or its ``model.tar.gz``; ``--champion-model-dir`` (optional) the
current champion's, whose predictions are written too (``champion`` on each line). Writes ``predictions.jsonl``
and ``summary.json`` into ``--output``. Errors: message on stderr and in the failure file (by default next to
the output folder: ``/opt/ml/processing/failure`` for ``/opt/ml/processing/output``), exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmops_training.errors import ContractError
from fmops_training.runtime import run_guarded


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ContractError(f"evaluate.py: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", required=True, type=Path, help="trained model files or model.tar.gz")
    p.add_argument("--test", required=True, type=Path, help="folder of test JSONL files")
    p.add_argument("--output", required=True, type=Path, help="where predictions.jsonl and summary.json go")
    p.add_argument(
        "--champion-model-dir", default=None, type=Path, help="the current champion's model files or model.tar.gz"
    )
    p.add_argument("--base-model", default=None, help="base model (default: fmops_model.json's base_model)")
    p.add_argument("--seed", type=int, default=None, help="head seed (default: the training seed)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--failure-file", type=Path, default=None, help="default: OUTPUT/../failure")
    return p


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    parsed: list[argparse.Namespace] = []

    def failure_file() -> Path | None:
        if parsed:
            return parsed[0].failure_file or parsed[0].output.resolve().parent / "failure"
        default = Path("/opt/ml/processing")
        return default / "failure" if default.is_dir() else None

    def job() -> None:
        parsed.append(_parser().parse_args(args_list))
        args = parsed[0]
        from fmops_training.evaluation import run_evaluation

        run_evaluation(
            args.model_dir,
            args.test,
            args.output,
            args.base_model,
            args.seed,
            args.batch_size,
            champion_dir=args.champion_model_dir,
        )

    return run_guarded(job, failure_file)


if __name__ == "__main__":
    sys.exit(main())
