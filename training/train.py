"""SageMaker training entry point (``sagemaker_program=train.py``): fine-tune a classifier or a causal LM.

Reads the SageMaker contract (``SM_*`` variables, ``SM_HPS`` and ``--name value`` hyperparameters), trains,
and writes the model to ``SM_MODEL_DIR``. Any error goes to ``$SM_OUTPUT_DIR/failure`` and exit code 1.
With several GPUs or hosts it re-launches itself under torchrun (one process per GPU, per host on CPUs)
and exits with torchrun's status. See README.md in this folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from fmops_training.contract import TrainingEnv, failure_file
from fmops_training.runtime import run_guarded


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv

    launched: list[int] = []

    def job() -> None:
        env = TrainingEnv.from_environ(os.environ, args)
        from fmops_training.distributed import launch_command

        command = launch_command(env, os.path.abspath(__file__), args)
        if command is not None:
            print(f"fmops-train: launching {' '.join(command[2:])}", flush=True)
            proc = subprocess.Popen(command)
            # A spot interruption reaches this process: pass it on, torchrun hands it to every rank.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda signum, frame: proc.send_signal(signum))
            launched.append(proc.wait())
            return
        from fmops_training.job import run_training

        run_training(env)

    code = run_guarded(job, failure_file(os.environ))
    return launched[0] if launched and code == 0 else code


def _exit(code: int) -> None:
    """Exit; a rank under torchrun skips interpreter teardown, where gloo's threads sometimes abort the process
    (``terminate called without an active exception``, exit -6) after the work is done and saved."""
    from fmops_training.distributed import under_torchrun

    if under_torchrun():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
