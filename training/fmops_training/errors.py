"""Typed errors: each one's message is written as is to the SageMaker failure file."""

from __future__ import annotations


class FmopsTrainingError(Exception):
    """Base class of the errors the scripts report without a traceback."""


class ContractError(FmopsTrainingError):
    """The SageMaker environment or command line is missing something or malformed."""


class HyperparameterError(FmopsTrainingError):
    """A hyperparameter is unknown, cannot be parsed, or is out of range."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"hyperparameter {name}: {problem}")
        self.name = name
        self.problem = problem


class DataError(FmopsTrainingError):
    """A data channel is missing, empty, or holds a malformed record."""


class ModelLoadError(FmopsTrainingError):
    """A base model or a trained model cannot be found or loaded."""


class TrainingError(FmopsTrainingError):
    """Training itself went wrong (for example the loss became NaN)."""


class TrainingInterrupted(FmopsTrainingError):
    """SIGTERM (a spot interruption) stopped training at a step boundary, after checkpointing when it could.

    ``exit_code`` is 143 (128 + SIGTERM), as if the signal had ended the process.
    """

    exit_code = 143

    def __init__(self, step: int, checkpoint_step: int | None) -> None:
        if checkpoint_step is None:
            message = f"interrupted at step {step}; no checkpoint was saved, a restart starts over"
        else:
            message = f"interrupted; resume from checkpoint step {checkpoint_step}"
        super().__init__(message)
        self.step = step
        self.checkpoint_step = checkpoint_step


class InvalidInputError(FmopsTrainingError, ValueError):
    """An inference request is malformed (HTTP 400)."""
