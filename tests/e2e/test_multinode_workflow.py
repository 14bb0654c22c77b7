"""A multi-node SageMaker run end to end: a 2-instance classification training job (two hosts, torchrun on
127.0.0.1) through evaluation, registration, approval and deployment."""

from __future__ import annotations

import json

import pytest

from .conftest import Lab, dataset

pytestmark = pytest.mark.e2e


def test_a_two_instance_run_trains_on_both_hosts_and_is_approved(lab: Lab) -> None:
    # threshold 0: this is about the path through two hosts, not about how well 1 epoch of tiny data learns
    run_id = lab.upload("twohosts", dataset(240, seed=31), instance_count=2, threshold=0.0)
    lab.wait_for_approval(run_id)
    lab.api.decide(run_id, "approve", "e2e: two hosts reviewed")
    result = lab.wait(run_id)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    sm = lab.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=f"{run_id}-train")
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["HyperParameters"]["task"] == "classification"
    names = {m["MetricName"] for m in job["FinalMetricDataList"]}
    assert {"train_loss", "validation_accuracy", "rank_train_loss"} <= names
    # one log stream per host, and both hosts trained (each printed its own rank's loss)
    logs = lab.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{run_id}-train/"
    )
    hosts = {}
    for stream in streams["logStreams"]:
        name = stream["logStreamName"]
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=name)["events"]
        hosts[name.split("/")[1].rsplit("-", 1)[0]] = "\n".join(e["message"] for e in events)
    assert sorted(hosts) == ["algo-1", "algo-2"]
    assert all("fmops-metric name=rank_train_loss" in text for text in hosts.values())
    assert "rank 0 of 2 (ddp)" in hosts["algo-1"]
    # the evaluated, registered and deployed model is the one algo-1 uploaded
    evaluation = output["evaluation"]
    assert set(evaluation["finetuned_metrics"]) == {
        "accuracy",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
    }
    package = sm.describe_model_package(ModelPackageName=output["model_package"]["model_package_arn"])
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["task"] == "classification"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    endpoint = output["deployment"]["endpoint_name"]
    answer = lab.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"inputs": "the delivery was fast"})
    )
    assert json.loads(answer["Body"].read())["predictions"][0]["label"] in ("negative", "positive")
