"""Process-level plumbing shared by the scripts: failure reporting, thread count, quiet libraries."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from fmops_training.errors import ContractError, FmopsTrainingError


def failure_message(exc: BaseException) -> str:
    """One paragraph: ``Type: message`` with newlines folded."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"


def write_failure(path: Path | None, message: str) -> None:
    """Write the failure file SageMaker shows as the job's FailureReason; never raises."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"fmops: could not write failure file {path}: {exc}", file=sys.stderr)


def run_guarded(main: Callable[[], None], failure_path: Path | None | Callable[[], Path | None]) -> int:
    """Run ``main``; on any exception report it (failure file + stderr) and return exit code 1.

    ``failure_path`` may be a callable, asked only after a failure (for paths known once arguments parse).
    Typed errors (``FmopsTrainingError``) are expected conditions and are reported by their message;
    anything else also gets its traceback on stderr. An error with an ``exit_code`` attribute (an interrupted
    training, 143) returns that code instead of 1.
    """
    try:
        main()
    except (Exception, KeyboardInterrupt) as exc:
        message = failure_message(exc)
        if not isinstance(exc, FmopsTrainingError):
            traceback.print_exc(file=sys.stderr)
        print(f"fmops: {message}", file=sys.stderr, flush=True)
        write_failure(failure_path() if callable(failure_path) else failure_path, message)
        code = getattr(exc, "exit_code", 1)
        return code if isinstance(code, int) and code > 0 else 1
    return 0


def torch_threads(environ: dict[str, str] | None = None) -> int:
    """Threads for torch: ``FMOPS_TORCH_THREADS`` if set, else ``min(2, cpu_count)``."""
    env = os.environ if environ is None else environ
    text = env.get("FMOPS_TORCH_THREADS")
    if not text:
        return max(1, min(2, os.cpu_count() or 1))
    try:
        value = int(text)
    except ValueError:
        raise ContractError(f"FMOPS_TORCH_THREADS must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ContractError(f"FMOPS_TORCH_THREADS must be a positive integer, got {text!r}")
    return value


def prepare_torch() -> None:
    """Set torch's thread count and quiet transformers' load reports and progress bars (call before use)."""
    import torch
    import transformers

    threads = torch_threads()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # already set once parallel work started; the intra-op count is what matters
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@contextlib.contextmanager
def sigterm_flag() -> Iterator[Callable[[], bool]]:
    """While inside, SIGTERM (SageMaker's spot interruption notice) only sets a flag; yields its reader.

    The training loop polls it at step boundaries, checkpoints and stops. The previous handler comes back on
    exit. Outside the main thread no handler can be installed and the reader always says False.
    """
    flag = threading.Event()

    def handler(signum: int, frame: object) -> None:
        flag.set()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGTERM, previous)
