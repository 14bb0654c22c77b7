"""`fmops demo --task chat`: SmolLM2-135M-Instruct (from its wheel) really learns to route tickets through the
whole lifecycle on the local AWS: LoRA training job, evaluation job (base vs fine-tuned), registration, approval
through the API, deployment, batched generation at the endpoint.

Measured on the 2-core machine: exact match 0 → 97.5 on the 40 held-out tickets, 19 of 20 endpoint answers
right. The bars below leave room for a different CPU's bf16 arithmetic.
"""

from __future__ import annotations

import pytest

from fmops_local.demo import DemoConfig, run_demo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_smollm2_learns_to_route_tickets_through_the_whole_lifecycle(tmp_path):
    cfg = DemoConfig.for_task("chat", out_dir=tmp_path / "out", poll_seconds=1)
    assert cfg.records == 400 and cfg.use_case == "tickets"
    summary = run_demo(cfg, echo=lambda _line: None)

    assert summary["execution_status"] == "SUCCEEDED", summary.get("cause")
    base, tuned = summary["base_metrics"], summary["finetuned_metrics"]
    assert base["exact_match"] < 20  # the base model answers in free text
    assert tuned["exact_match"] >= 80
    assert tuned["rougeL"] > base["rougeL"] + 0.5
    assert summary["predictions"] == 20 and summary["prediction_accuracy"] >= 0.8
    assert summary["model_package_arn"].endswith("model-package/tickets/1")
