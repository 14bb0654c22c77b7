"""The Bedrock branch end to end on the local AWS: customization job → invoke evaluation → provisioned model."""

from __future__ import annotations

import json

import pytest

from .conftest import Lab, dataset

pytestmark = pytest.mark.e2e

# The prompt template makes the task harder for the local stand-in model: three epochs (measured: 0.5 after one).
BEDROCK_HPS = {"epochCount": "3", "learningRate": "0.0003", "batchSize": "16"}


def test_bedrock_customization_is_evaluated_approved_and_provisioned(lab: Lab) -> None:
    run_id = lab.upload(
        "titan",
        dataset(480, seed=21),
        backend="bedrock",
        base_model="amazon.titan-text-lite-v1",
        hyperparameters=BEDROCK_HPS,
    )
    lab.wait_for_approval(run_id)
    lab.api.decide(run_id, "approve", "e2e: bedrock metrics reviewed")
    result = lab.wait(run_id)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["training"]["backend"] == "bedrock"
    job = lab.client("bedrock").get_model_customization_job(jobIdentifier=output["training"]["job_arn"])
    assert job["status"] == "Completed"
    base, tuned = output["evaluation"]["base_metrics"], output["evaluation"]["finetuned_metrics"]
    assert tuned["accuracy"] > base["accuracy"] + 0.15
    provisioned = output["deployment"]["provisioned_model_arn"]
    assert lab.client("bedrock").get_provisioned_model_throughput(provisionedModelId=provisioned)["status"] == (
        "InService"
    )
    runtime = lab.client("bedrock-runtime")
    body = json.dumps(
        {"inputText": "Classify the text into one of: negative, positive.\nText: the support was not helpful\nLabel:"}
    )
    answer = json.loads(runtime.invoke_model(modelId=provisioned, body=body)["body"].read())
    assert answer["results"][0]["outputText"] in ("negative", "positive")


def test_failed_bedrock_run_releases_its_provisioned_throughput(lab: Lab) -> None:
    run_id = lab.upload(
        "titanfail",
        dataset(160, seed=22),
        backend="bedrock",
        base_model="amazon.titan-text-lite-v1",
        hyperparameters={"epochCount": "1", "learningRate": "0.0003", "batchSize": "16"},
        threshold=1.0,
    )
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert result["error"] == "QualityGateFailed", result.get("cause")
    entered = [e["stateEnteredEventDetails"]["name"] for e in lab.history(run_id) if "stateEnteredEventDetails" in e]
    assert "Provision Bedrock model for evaluation" in entered
    bedrock = lab.client("bedrock")
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_provisioned_model_throughput(provisionedModelId=run_id)
    messages = [n["message"] or "" for n in lab.notifications()]
    assert any(run_id in m and "provisioned throughput deleted" in m for m in messages)
