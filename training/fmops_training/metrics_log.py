"""Metric lines on stdout, in the one format SageMaker ``MetricDefinitions`` (and the local executor) parse.

``fmops-metric name=<name> value=<float> step=<int>`` and, for one rank of a distributed job,
``fmops-metric name=rank_<name> value=<float> step=<int> rank=<int>``.

Aggregate metrics (``train_loss`` over every rank's tokens, ``tokens_per_second`` of the whole job, the
validation metrics) are printed by rank 0 only; every rank prints its own ``rank_train_loss`` and
``rank_tokens_per_second``. SageMaker reads each instance's log stream with the same definitions, so
CloudWatch shows the ``rank_*`` series per instance (its ``Host`` dimension) beside the aggregate ones.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from typing import TextIO

METRIC_NAMES = (
    "train_loss",
    "learning_rate",
    "validation_loss",
    "validation_accuracy",
    "validation_f1_micro",
    "validation_perplexity",
    "tokens_per_second",
    "rank_train_loss",
    "rank_tokens_per_second",
)

_NUMBER = r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"

# For a training job's AlgorithmSpecification.MetricDefinitions (group 1 is the value). Kept to the
# plain regex subset (no non-capturing groups) so SageMaker's and Python's engines read them alike.
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": f"fmops-metric name={name} value=([-+0-9.eE]+) step="} for name in METRIC_NAMES
]

LINE_RE = re.compile(
    rf"^fmops-metric name=(?P<name>[A-Za-z0-9_]+) value=(?P<value>{_NUMBER}) step=(?P<step>\d+)"
    r"(?: rank=(?P<rank>\d+))?$"
)


def format_metric(name: str, value: float, step: int, rank: int | None = None) -> str:
    """The metric line (without newline); a non-finite value is refused, since no regex would match it."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    if not math.isfinite(value):
        raise ValueError(f"metric {name} is not finite: {value}")
    suffix = "" if rank is None else f" rank={int(rank)}"
    return f"fmops-metric name={name} value={value:.6g} step={int(step)}{suffix}"


def parse_metric_line(line: str) -> tuple[str, float, int] | None:
    """``(name, value, step)`` of a metric line, None for any other line."""
    match = LINE_RE.match(line.strip())
    if not match:
        return None
    return match["name"], float(match["value"]), int(match["step"])


@dataclass
class MetricLogger:
    """Prints metric lines (flushed) and keeps their history."""

    stream: TextIO = field(default_factory=lambda: sys.stdout)
    history: list[tuple[str, float, int]] = field(default_factory=list)

    def log(self, name: str, value: float, step: int, rank: int | None = None) -> None:
        print(format_metric(name, value, step, rank), file=self.stream, flush=True)
        self.history.append((name, float(value), int(step)))

    def last(self, name: str) -> float | None:
        for n, value, _ in reversed(self.history):
            if n == name:
                return value
        return None
