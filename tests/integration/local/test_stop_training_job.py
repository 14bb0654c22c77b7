"""StopTrainingJob on the local AWS, for any training job (a tuning job's or not), as on AWS: the job goes Stopping,
its process gets SIGTERM, and the job ends Stopped with no FailureReason, its metrics so far kept; train.py's
contract (checkpoint at the next step, TrainingInterrupted in the failure file, exit 143) ends Stopped too."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import botocore.exceptions
import pytest

from fmops_local import executor as executor_module
from fmops_local.aws import LocalAws
from fmops_local.executor import _keep_final_status

from .conftest import BUCKET, run_execution, tarball

pytestmark = pytest.mark.integration

ROLE_ARN = "arn:aws:iam::123456789012:role/test-role"

# Like train.py: SIGTERM only sets a flag; at the next step boundary it writes TrainingInterrupted to the failure file
# and exits 143. Without "trap": no handler, SIGTERM ends the process (exit -15).
TRAIN = r"""
import json, os, signal, sys, time
hps = json.loads(os.environ["SM_HPS"])
stop = []
if hps.get("trap") == "yes":
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
step = 0
while True:
    step += 1
    print(f"fmops-metric name=train_loss value={1.0 / step:.6f} step={step}", flush=True)
    if stop:
        message = f"TrainingInterrupted: interrupted; resume from checkpoint step {step}"
        open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write(message)
        print(f"fmops-train: SIGTERM: stopped at step {step}", flush=True)
        sys.exit(143)
    if hps.get("steps") and step >= int(hps["steps"]):
        open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w").write("{}")
        break
    time.sleep(0.05)
"""


@pytest.fixture
def code(aws: LocalAws) -> dict[str, str]:
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/data.jsonl", Body=b'{"text": "a", "label": "x"}\n')
    s3.put_object(Bucket=BUCKET, Key="code/stop.tar.gz", Body=tarball({"train.py": TRAIN}))
    return {"sagemaker_program": "train.py", "sagemaker_submit_directory": f"s3://{BUCKET}/code/stop.tar.gz"}


def job_request(name: str, hps: dict[str, str]) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE_ARN,
        "AlgorithmSpecification": {
            "TrainingImage": "local",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train_loss", "Regex": "name=train_loss value=([0-9.eE+-]+)"}],
        },
        "HyperParameters": hps,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def lines_of(aws: LocalAws, name: str) -> tuple[list[str], threading.Event]:
    """The job's output lines as the executor reads them, and an event set at its first metric line."""
    seen: list[str] = []
    ready = threading.Event()

    def listen(job: str, line: str) -> None:
        if job == name:
            seen.append(line)
            if line.startswith("fmops-metric"):
                ready.set()

    aws.executor.listeners.append(listen)
    return seen, ready


def wait_for(aws: LocalAws, name: str, timeout: float = 120) -> dict[str, Any]:
    sm = aws.client("sagemaker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return dict(job)
        time.sleep(0.1)
    raise TimeoutError(name)


@pytest.mark.parametrize("trap", ["yes", "no"])
def test_a_stopped_training_job_ends_stopped_without_a_failure_reason(
    aws: LocalAws, code: dict[str, str], trap: str
) -> None:
    name = f"stop-plain-{trap}"
    seen, ready = lines_of(aws, name)
    sm = aws.client("sagemaker")
    sm.create_training_job(**job_request(name, {**code, "trap": trap}))
    assert ready.wait(60)

    sm.stop_training_job(TrainingJobName=name)
    stopping = sm.describe_training_job(TrainingJobName=name)
    assert stopping["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_for(aws, name)

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert "FailureReason" not in job
    transitions = [(t["Status"], t["StatusMessage"]) for t in job["SecondaryStatusTransitions"]]
    assert transitions[-2:] == [("Stopping", "Stopping the training job"), ("Stopped", "Training job stopped")]
    assert [m["MetricName"] for m in job["FinalMetricDataList"]] == ["train_loss"]  # its metrics so far are kept
    if trap == "yes":  # train.py's contract: the interruption message is in the log, not the job's failure
        assert any(line.startswith("fmops-train: SIGTERM: stopped at step") for line in seen)
    assert not aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"out/{name}/").get("Contents")

    # Stopping it again, or a job that ended, changes nothing.
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"


def test_a_job_stopped_before_its_entry_point_starts_never_runs_it(
    aws: LocalAws, code: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "stop-early"
    downloading, release = threading.Event(), threading.Event()
    download = executor_module.download_prefix

    def slow_download(*args: Any, **kwargs: Any) -> Any:
        downloading.set()
        assert release.wait(60)
        return download(*args, **kwargs)

    monkeypatch.setattr(executor_module, "download_prefix", slow_download)
    seen, _ = lines_of(aws, name)
    sm = aws.client("sagemaker")
    sm.create_training_job(**job_request(name, code))
    assert downloading.wait(60)
    sm.stop_training_job(TrainingJobName=name)
    described = sm.describe_training_job(TrainingJobName=name)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopping", "Stopping")
    release.set()

    job = wait_for(aws, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert "FailureReason" not in job and seen == []
    assert "Training" not in [t["Status"] for t in job["SecondaryStatusTransitions"]]


def test_a_stopped_job_fails_createTrainingJob_sync_as_stopped(aws: LocalAws, code: dict[str, str]) -> None:
    name = "stop-sync"
    _, ready = lines_of(aws, name)
    parameters = job_request(name, code)
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": parameters,
                "End": True,
            }
        },
    }
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(run_execution(aws, definition, {}, name)))
    worker.start()
    assert ready.wait(60)
    aws.client("sagemaker").stop_training_job(TrainingJobName=name)
    worker.join(120)

    assert result["status"] == "FAILED" and result["error"] == "States.TaskFailed"
    cause = json.loads(result["cause"])
    assert cause["TrainingJobStatus"] == "Stopped" and "FailureReason" not in cause


def test_a_completed_job_is_not_stopped_and_an_unknown_one_is_refused(aws: LocalAws, code: dict[str, str]) -> None:
    sm = aws.client("sagemaker")
    sm.create_training_job(**job_request("stop-done", {**code, "steps": "2"}))
    assert wait_for(aws, "stop-done")["TrainingJobStatus"] == "Completed"
    sm.stop_training_job(TrainingJobName="stop-done")
    assert sm.describe_training_job(TrainingJobName="stop-done")["TrainingJobStatus"] == "Completed"
    with pytest.raises(botocore.exceptions.ClientError, match="Could not find training job"):
        sm.stop_training_job(TrainingJobName="no-such-job")


def test_an_ended_jobs_status_no_longer_changes() -> None:
    class Job:
        def __init__(self) -> None:
            self.training_job_status = "InProgress"

    job = Job()
    _keep_final_status(job)
    job.training_job_status = "Stopping"
    job.training_job_status = "Stopped"
    job.training_job_status = "Stopping"  # a late StopTrainingJob
    assert job.training_job_status == "Stopped" and isinstance(job, Job)
    _keep_final_status(job)  # once is enough
    assert type(job).__mro__[1] is Job
