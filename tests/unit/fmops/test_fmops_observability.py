"""Observability: the tracer stays lazy (no X-Ray SDK import) unless tracing is on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fmops.observability import LazyTracer, tracing_enabled

LAYER = Path(__file__).resolve().parents[3] / "layers" / "fmops"


def test_tracing_is_on_only_in_lambda_and_not_disabled() -> None:
    assert not tracing_enabled({})
    assert tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "f"})
    assert not tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_SAM_LOCAL": "true"})


def test_a_disabled_tracer_passes_calls_through() -> None:
    tracer = LazyTracer()

    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, int], context: object) -> int:
        return event["x"] + 1

    assert handler({"x": 1}, None) == 2
    assert tracer.tracer is None
    tracer.put_annotation("k", "v")


def test_importing_observability_does_not_import_the_xray_sdk() -> None:
    code = "import fmops.observability, sys; print('aws_xray_sdk.core' in sys.modules, 'boto3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(LAYER)}, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False False"
