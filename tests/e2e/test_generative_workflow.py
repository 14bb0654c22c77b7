"""Generative runs end to end on the local AWS, with a tiny causal LM built for the test (a random 2-layer Llama,
tests/unit/training/tiny_models.py): it learns little, so these check the path and the metrics' keys, not quality.

- SageMaker, task qa: the model is an ``s3://`` base model (the training job's ``base_model`` channel, and the
  evaluation job's), evaluated with SQuAD exact match / F1, registered, approved, deployed, and it generates text;
- Bedrock, task summarization: the local Bedrock customizes its stand-in causal LM (``FMOPS_LOCAL_BEDROCK_LM``) on
  prompt/completion lines built with training's summarization prompt, and the evaluation invokes the base and the
  custom model and scores the generated summaries with ROUGE.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fmops.data.formats import SUMMARIZE

from .conftest import Lab

pytestmark = pytest.mark.e2e

TINY_MODELS = Path(__file__).resolve().parents[1] / "unit" / "training" / "tiny_models.py"
CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Delhi", "Tokyo", "Quito", "Dakar", "Hanoi"]
COUNTRIES = ["France", "Italy", "Norway", "Peru", "Egypt", "India", "Japan", "Ecuador", "Senegal", "Vietnam"]
# Few short records, short sequences, one epoch and a few generated tokens: the tiny model runs in seconds.
GENERATIVE_HPS = {
    "epochs": "1",
    "batch_size": "8",
    "learning_rate": "1e-3",
    "max_length": "96",
    "max_new_tokens": "6",
    "seed": "7",
}


def qa_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "context": f"{CITIES[i % 10]} is the capital of {COUNTRIES[i % 10]}. Record {i}.",
            "question": f"Which country has {CITIES[i % 10]} as its capital?",
            "answers": [COUNTRIES[i % 10]],
        }
        for i in range(n)
    ]


def summary_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "document": f"Report {i}: the people of {CITIES[i % 10]} met in the square and talked about the weather "
            f"in {COUNTRIES[i % 10]} for a long time.",
            "summary": f"{CITIES[i % 10]} talked about weather.",
        }
        for i in range(n)
    ]


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("tiny_models", TINY_MODELS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    texts = [json.dumps(r) for r in qa_records(10) + summary_records(10)] + [SUMMARIZE]
    folder: Path = module.make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), texts * 5)
    return folder


@pytest.fixture(scope="module")
def runs(lab: Lab, tiny_lm: Path) -> Iterator[dict[str, str]]:
    """Both runs start together (they train concurrently)."""
    s3 = lab.client("s3")
    artifacts = lab.aws.stack.output("ArtifactsBucketName") if lab.aws.stack else "missing"
    for path in sorted(tiny_lm.iterdir()):
        s3.put_object(Bucket=artifacts, Key=f"models/tiny-llama/{path.name}", Body=path.read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        # the local Bedrock's stand-in foundation model for generative customization jobs
        patch.setenv("FMOPS_LOCAL_BEDROCK_LM", str(tiny_lm))
        yield {
            "qa": lab.upload(
                "tinyqa",
                jsonl(qa_records(40)),
                task="qa",
                base_model=f"s3://{artifacts}/models/tiny-llama/",
                hyperparameters=GENERATIVE_HPS,
                threshold=0.0,
            ),
            "summarization": lab.upload(
                "tinysum",
                jsonl(summary_records(40)),
                task="summarization",
                backend="bedrock",
                base_model="amazon.titan-text-lite-v1",
                hyperparameters={"epochCount": "1", "learningRate": "0.001", "batchSize": "8", "max_new_tokens": "6"},
                threshold=0.0,
            ),
        }


def _package(lab: Lab, arn: str) -> dict[str, Any]:
    return dict(lab.client("sagemaker").describe_model_package(ModelPackageName=arn))


def _evaluation(lab: Lab, uri: str) -> dict[str, Any]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(lab.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())  # type: ignore[no-any-return]


def test_a_sagemaker_qa_run_with_an_s3_causal_lm_is_evaluated_registered_and_deployed(
    lab: Lab, runs: dict[str, str]
) -> None:
    run_id = runs["qa"]
    lab.wait_for_approval(run_id)
    lab.api.decide(run_id, "approve", "e2e: generative path reviewed")
    result = lab.wait(run_id)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    sm = lab.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=f"{run_id}-train")
    assert job["HyperParameters"]["task"] == "qa"
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == {"train", "validation", "base_model"}
    processing = sm.describe_processing_job(ProcessingJobName=f"{run_id}-eval")
    assert "base_model" in {i["InputName"] for i in processing["ProcessingInputs"]}
    evaluation = output["evaluation"]
    assert evaluation["metric"] == "f1"
    assert set(evaluation["finetuned_metrics"]) == set(evaluation["base_metrics"]) == {"exact_match", "f1"}
    assert 0.0 <= evaluation["finetuned_metrics"]["f1"] <= 100.0
    assert set(evaluation["paired_tests"]) == {"finetuned_vs_base"}
    assert evaluation["paired_tests"]["finetuned_vs_base"]["mcnemar_p_value"] is None
    document = _evaluation(lab, evaluation["evaluation_uri"])
    assert document["task"] == "qa" and document["test_count"] == evaluation["test_count"] > 0
    assert set(document["finetuned"]["ci"]) == {"exact_match", "f1"}
    report_bucket, report_key = evaluation["report_uri"].removeprefix("s3://").split("/", 1)
    page = lab.client("s3").get_object(Bucket=report_bucket, Key=report_key)["Body"].read().decode()
    assert "Token F1 (0-100)" in page and "Worst examples" in page
    package = _package(lab, output["model_package"]["model_package_arn"])
    assert package["ModelApprovalStatus"] == "Approved"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["task"] == "qa" and {"f1", "exact_match", "base_f1"} <= set(metadata)
    # the deployed endpoint serves the fine-tuned causal LM: it generates text
    answer = lab.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=output["deployment"]["endpoint_name"],
        ContentType="application/json",
        Body=json.dumps({"inputs": "Which country has Oslo as its capital?", "parameters": {"max_new_tokens": 4}}),
    )
    prediction = json.loads(answer["Body"].read())["predictions"][0]
    assert isinstance(prediction["generated_text"], str)


def test_a_bedrock_summarization_run_is_evaluated_on_generated_summaries(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["summarization"]
    lab.wait_for_approval(run_id)
    lab.api.decide(run_id, "approve", "e2e: bedrock generative path reviewed")
    result = lab.wait(run_id)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["training"]["backend"] == "bedrock"
    # the customization data: training's summarization prompt, the summary as completion
    first = (
        lab.client("s3")
        .get_object(Bucket=lab.datasets_bucket, Key=output["dataset"]["bedrock_train_uri"].split("/", 3)[3])["Body"]
        .readline()
    )
    line = json.loads(first)
    assert set(line) == {"prompt", "completion"} and line["prompt"].startswith(SUMMARIZE)
    evaluation = output["evaluation"]
    assert evaluation["metric"] == "rougeL"
    assert set(evaluation["finetuned_metrics"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert all(0.0 <= v <= 1.0 for v in evaluation["finetuned_metrics"].values())
    document = _evaluation(lab, evaluation["evaluation_uri"])
    assert (
        document["task"] == "summarization" and document["champion_note"] == "the Bedrock branch evaluates no champion"
    )
    predictions_uri = document["predictions_uri"]
    bucket, key = predictions_uri.removeprefix("s3://").split("/", 1)
    rows = [json.loads(x) for x in lab.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]
    assert len(rows) == evaluation["test_count"] > 0
    assert all(isinstance(r["finetuned"], str) and isinstance(r["base"], str) for r in rows)
    assert rows[0]["prompt"].startswith(SUMMARIZE)
    # the provisioned custom model answers a summarization prompt with generated text
    provisioned = output["deployment"]["provisioned_model_arn"]
    body = json.dumps(
        {"inputText": SUMMARIZE + "Rome met in the square.", "textGenerationConfig": {"maxTokenCount": 4}}
    )
    answer = json.loads(lab.client("bedrock-runtime").invoke_model(modelId=provisioned, body=body)["body"].read())
    assert isinstance(answer["results"][0]["outputText"], str)
    assert _package(lab, output["model_package"]["model_package_arn"])["CustomerMetadataProperties"]["task"] == (
        "summarization"
    )
