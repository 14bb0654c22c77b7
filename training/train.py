"""SageMaker training entry point (``sagemaker_program=train.py``): fine-tune a text classifier.

Reads the SageMaker contract (``SM_*`` variables, ``SM_HPS`` and ``--name value`` hyperparameters), trains,
and writes the model to ``SM_MODEL_DIR``. Any error goes to ``$SM_OUTPUT_DIR/failure`` and exit code 1.
See README.md in this folder.
"""

from __future__ import annotations

import os
import sys

from fmops_training.contract import TrainingEnv, failure_file
from fmops_training.runtime import run_guarded


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv

    def job() -> None:
        env = TrainingEnv.from_environ(os.environ, args)
        from fmops_training.job import run_training

        run_training(env)

    return run_guarded(job, failure_file(os.environ))


if __name__ == "__main__":
    sys.exit(main())
