"""A fine-tune run with ``tuning`` end to end on the local AWS: S3 upload → ... → HPO state machine (a real tuning
job: Optuna TPE proposals, real training jobs) → evaluate → register → approval → deploy, on the best job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Lab, dataset

pytestmark = pytest.mark.e2e

LR_MIN, LR_MAX = 5e-5, 5e-4
TUNING = {
    "max_jobs": 3,
    "max_parallel_jobs": 2,
    "early_stopping": "Auto",
    "seed": 11,
    "ranges": {"learning_rate": {"type": "continuous", "min": LR_MIN, "max": LR_MAX, "scaling": "Logarithmic"}},
}


def _s3_json(lab: Lab, uri: str) -> Any:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(lab.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def runs(lab: Lab) -> dict[str, str]:
    broken = {"max_jobs": 2, "max_parallel_jobs": 2, "ranges": TUNING["ranges"]}
    return {
        # The gate is not what this test is about: any best model passes it (threshold 0).
        "tuned": lab.upload("tuned", dataset(480, seed=21), tuning=TUNING, threshold=0.0),
        # Every training job fails at once: train.py refuses max_length "abc".
        "tuned-broken": lab.upload(
            "tuned-broken", dataset(120, seed=22), tuning=broken, hyperparameters={"max_length": "abc"}
        ),
    }


def test_a_tuned_run_registers_and_deploys_the_best_training_job(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["tuned"]
    lab.wait_for_approval(run_id)

    sm = lab.client("sagemaker")
    record = lab.api.run(run_id)["tuning"]
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=record["job_name"])
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    assert tuning["HyperParameterTuningJobConfig"]["Strategy"] == "Bayesian"
    assert tuning["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Auto"
    assert sum(tuning["TrainingJobStatusCounters"].values()) == 3
    best = tuning["BestTrainingJob"]
    assert record["best_training_job"] == best["TrainingJobName"]

    # Three real training jobs with tuned learning rates in the range, each with its real final accuracy.
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=record["job_name"], SortBy="CreationTime"
    )["TrainingJobSummaries"]
    assert len(jobs) == 3
    for summary in jobs:
        assert LR_MIN <= float(summary["TunedHyperParameters"]["learning_rate"]) <= LR_MAX
        job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert job["TuningJobArn"] == tuning["HyperParameterTuningJobArn"]
        assert job["HyperParameters"]["learning_rate"] == summary["TunedHyperParameters"]["learning_rate"]
        if summary["TrainingJobStatus"] == "Completed":
            final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
            assert summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == final["validation_accuracy"]
    completed = [j for j in jobs if j["TrainingJobStatus"] == "Completed"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(
        j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in completed
    )

    # tuning.json ranks every configuration, best first.
    report = _s3_json(lab, record["results_uri"])
    assert [t["training_job_name"] for t in report["trials"] if t["best"]] == [best["TrainingJobName"]]
    assert len(report["trials"]) == 3 and report["trials"][0]["rank"] == 1

    # The registered version is the best training job's model, with the hyperparameters it ran with.
    (package,) = sm.list_model_packages(ModelPackageGroupName="tuned")["ModelPackageSummaryList"]
    described = sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert described["CustomerMetadataProperties"]["training_job_arn"] == best["TrainingJobArn"]
    best_job = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == best_job["ModelArtifacts"]["S3ModelArtifacts"]
    lineage = lab.api.request("GET", "/models/tuned/1/lineage")
    assert lineage["hyperparameters"]["learning_rate"] == best["TunedHyperParameters"]["learning_rate"]

    # The HPO state machine ran once, as the run's child execution.
    hpo_arn = lab.aws.stack.output("HpoStateMachineArn")
    children = lab.client("stepfunctions").list_executions(stateMachineArn=hpo_arn)["executions"]
    assert [e["name"] for e in children if e["name"].startswith(run_id)] == [f"{run_id}-hpo"]

    lab.api.decide(run_id, "approve", "e2e: best configuration reviewed")
    result = lab.wait(run_id)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["training"]["job_name"] == best["TrainingJobName"]
    assert output["run"]["hyperparameters"]["learning_rate"] == best["TunedHyperParameters"]["learning_rate"]


def test_a_tuning_job_without_a_successful_training_job_fails_the_run(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["tuned-broken"]
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert f"{run_id}-hpo" in result["cause"]  # the failed HPO execution
    sm = lab.client("sagemaker")
    name = lab.api.run(run_id)["tuning"]["job_name"]
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert tuning["HyperParameterTuningJobStatus"] == "Failed"
    assert "max_length" in tuning["FailureReason"]  # the training jobs' own failure reason
    assert tuning["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert "BestTrainingJob" not in tuning
    try:
        packages = sm.list_model_packages(ModelPackageGroupName="tuned-broken")["ModelPackageSummaryList"]
    except sm.exceptions.ClientError:
        packages = []
    assert packages == []
