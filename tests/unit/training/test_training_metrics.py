"""Metric lines: the printed format, its parser and the SageMaker MetricDefinitions regexes."""

from __future__ import annotations

import io
import math
import re

import pytest

from fmops_training.metrics_log import (
    METRIC_DEFINITIONS,
    METRIC_NAMES,
    MetricLogger,
    format_metric,
    parse_metric_line,
)


@pytest.mark.parametrize("value", [0.693147, 5e-05, 1234.5678, 0.0, 1.0, -2.5e-7])
def test_round_trip_and_regexes(value: float) -> None:
    for name in METRIC_NAMES:
        line = format_metric(name, value, 17)
        parsed = parse_metric_line(line)
        assert parsed is not None
        assert parsed[0] == name and parsed[2] == 17
        assert parsed[1] == pytest.approx(value, rel=1e-5, abs=1e-12)
        matches = [d["Name"] for d in METRIC_DEFINITIONS if re.search(d["Regex"], line)]
        assert matches == [name]  # exactly one definition picks the line up
        (definition,) = [d for d in METRIC_DEFINITIONS if d["Name"] == name]
        assert float(re.search(definition["Regex"], line).group(1)) == pytest.approx(parsed[1])


def test_format_is_exact() -> None:
    assert format_metric("train_loss", 0.5, 10) == "fmops-metric name=train_loss value=0.5 step=10"


def test_refuses_unknown_and_non_finite() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        format_metric("accuracy", 1.0, 1)
    with pytest.raises(ValueError, match="not finite"):
        format_metric("train_loss", math.nan, 1)


def test_other_lines_are_not_metrics() -> None:
    assert parse_metric_line("epoch 1/1: train_loss=0.5") is None
    assert parse_metric_line("fmops-metric name=train_loss value=abc step=1") is None


def test_logger_prints_and_keeps_history() -> None:
    out = io.StringIO()
    logger = MetricLogger(stream=out)
    logger.log("validation_accuracy", 0.5, 1)
    logger.log("validation_accuracy", 0.75, 2)
    assert out.getvalue().splitlines()[-1] == "fmops-metric name=validation_accuracy value=0.75 step=2"
    assert logger.last("validation_accuracy") == 0.75 and logger.last("train_loss") is None
