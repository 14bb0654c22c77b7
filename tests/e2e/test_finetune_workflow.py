"""The fine-tune workflow end to end: S3 upload → ... → endpoint, and its failure paths.

All runs are started together (they train concurrently), then each test drives and checks its own.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import Lab, dataset

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(lab: Lab) -> dict[str, str]:
    bad = dataset(40, seed=1).splitlines(keepends=True)
    bad[2] = b'{"text": "fine", "label": }\n'  # line 3 is not JSON
    big_bad = dataset(400, seed=2).splitlines(keepends=True)
    big_bad[299] = b'{"text": "fine", "label": "pos", "label": "neg"}\n'  # line 300: a duplicate key
    sharded = {"ratios": [0.7, 0.15, 0.15], "seed": 5, "shard_bytes": 4096}
    return {
        # The happy path also takes the large-file path: its ~30 kB are validated as 4 kB shards.
        "happy": lab.upload("happy", dataset(480, seed=11), split=sharded),
        "sharded-bad": lab.upload("sharded-bad", b"".join(big_bad), split=sharded),
        # These two are about the approval, not about learning: any model reaches it (threshold 0).
        "rejected": lab.upload("rejected", dataset(480, seed=12), threshold=0.0),
        "timeout": lab.upload("timeout", dataset(480, seed=13), approval_timeout_seconds=10, threshold=0.0),
        "crash": lab.upload("crash", dataset(120, seed=14), hyperparameters={"learning_rate": "abc"}),
        "malformed": lab.upload("malformed", b"".join(bad)),
    }


def _states_entered(lab: Lab, run_id: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in lab.history(run_id) if "stateEnteredEventDetails" in e]


def _endpoints(lab: Lab) -> list[str]:
    return [e["EndpointName"] for e in lab.client("sagemaker").list_endpoints()["Endpoints"]]


def _package_statuses(lab: Lab, group: str) -> list[str]:
    sm = lab.client("sagemaker")
    try:
        packages = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    except sm.exceptions.ClientError:
        return []
    return [p["ModelApprovalStatus"] for p in packages]


def test_approved_run_deploys_the_finetuned_model(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["happy"]
    pending = lab.wait_for_approval(run_id)
    assert pending["run_id"] == run_id

    lab.api.decide(run_id, "approve", "e2e: metrics reviewed")
    result = lab.wait(run_id)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    base, tuned = output["evaluation"]["base_metrics"], output["evaluation"]["finetuned_metrics"]
    assert tuned["accuracy"] > base["accuracy"] + 0.15
    assert _package_statuses(lab, "happy") == ["Approved"]
    endpoint = output["deployment"]["endpoint_name"]
    desc = lab.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    assert desc["EndpointStatus"] == "InService"
    # The endpoint serves the artifact this run's training job produced, and it predicts well.
    config = lab.client("sagemaker").describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    model = lab.client("sagemaker").describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    job = lab.client("sagemaker").describe_training_job(TrainingJobName=f"{run_id}-train")
    containers = model.get("Containers") or [model.get("PrimaryContainer", {})]
    assert (
        containers[0].get("ModelDataUrl", job["ModelArtifacts"]["S3ModelArtifacts"])
        == job["ModelArtifacts"]["S3ModelArtifacts"]
    )
    rt = lab.client("sagemaker-runtime")
    held_out = [json.loads(line) for line in dataset(20, seed=999).splitlines()]
    correct = 0
    for record in held_out:
        resp = rt.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"inputs": record["text"]})
        )
        correct += json.loads(resp["Body"].read())["predictions"][0]["label"] == record["label"]
    assert correct >= 15
    subjects = [n["subject"] or "" for n in lab.notifications()]
    assert any("approval" in s.lower() for s in subjects)


def test_rejected_run_deploys_nothing(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["rejected"]
    lab.wait_for_approval(run_id)

    lab.api.decide(run_id, "reject", "e2e: not good enough")
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert "e2e: not good enough" in result["cause"]
    assert "Deploy model" not in " ".join(_states_entered(lab, run_id))
    assert "rejected" not in _endpoints(lab)
    assert _package_statuses(lab, "rejected") == ["Rejected"]


def test_unanswered_approval_times_out(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["timeout"]
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert "timed out" in result["cause"].lower()
    assert "timeout" not in _endpoints(lab)
    assert "Approved" not in _package_statuses(lab, "timeout")
    with pytest.raises(Exception, match="404"):
        lab.api.approval(run_id)


def test_crashing_training_fails_notifies_and_deploys_nothing(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["crash"]
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert "learning_rate" in result["cause"]
    job = lab.client("sagemaker").describe_training_job(TrainingJobName=f"{run_id}-train")
    assert job["TrainingJobStatus"] == "Failed"
    assert _package_statuses(lab, "crash") == []
    assert "crash" not in _endpoints(lab)
    messages = [n["message"] or "" for n in lab.notifications()]
    assert any(run_id in m and "learning_rate" in m for m in messages)


def test_the_happy_run_validated_its_data_in_shards(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["happy"]
    deadline = time.monotonic() + 300
    while "Plan training" not in (entered := _states_entered(lab, run_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert entered[:4] == ["Start run", "Plan data validation", "Large data set?", "Validate shards"]
    assert "Validate and split dataset" in entered


def test_a_large_malformed_dataset_fails_with_the_file_global_line(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["sharded-bad"]
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert result["cause"].startswith("line 300: field 'label': key 'label' appears more than once")
    assert "Validate shards" in _states_entered(lab, run_id)
    assert not any(name.startswith("Train") for name in _states_entered(lab, run_id))
    report_uri = result["cause"].split("report: ", 1)[1].rstrip(")")
    bucket, key = report_uri.removeprefix("s3://").split("/", 1)
    report = json.loads(lab.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert (report["records"], report["valid_records"], report["error_count"]) == (400, 399, 1)


def test_malformed_dataset_fails_at_validation_with_line_number(lab: Lab, runs: dict[str, str]) -> None:
    run_id = runs["malformed"]
    result = lab.wait(run_id)

    assert result["status"] == "FAILED"
    assert "line 3" in result["cause"]
    assert not any(name.startswith("Train") for name in _states_entered(lab, run_id))
    jobs = lab.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert not any(j["TrainingJobName"].startswith(run_id) for j in jobs)
