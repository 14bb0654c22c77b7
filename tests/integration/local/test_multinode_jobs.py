"""A training job with several instances runs one host per instance: train.py's torchrun launch on 127.0.0.1,
each host's log in its own stream, metrics from every host, one model uploaded (algo-1's)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from typing import Any

import pytest

from fmops_local.aws import LocalAws
from fmops_local.deploy import publish_training_code
from fmops_local.executor import free_port, host_names
from fmops_local.sample_data import generate

from .conftest import BUCKET, tarball

pytestmark = pytest.mark.integration

ROLE_ARN = "arn:aws:iam::123456789012:role/test-role"
METRICS = ["train_loss", "validation_accuracy", "rank_train_loss", "rank_tokens_per_second"]


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _create_job(aws: LocalAws, name: str, count: int, hps: dict[str, str], program: str, code_uri: str) -> None:
    aws.client("sagemaker").create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE_ARN,
        AlgorithmSpecification={
            "TrainingImage": "local",
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": n, "Regex": f"fmops-metric name={n} value=([-+0-9.eE]+) step="} for n in METRICS
            ],
        },
        HyperParameters={**hps, "sagemaker_program": program, "sagemaker_submit_directory": code_uri},
        InputDataConfig=[
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/{channel}/"}},
            }
            for channel in ("train", "validation")
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": count, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )


def _wait(aws: LocalAws, name: str, timeout: float = 540) -> dict[str, Any]:
    sm = aws.client("sagemaker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return dict(job)
        time.sleep(0.5)
    raise TimeoutError(name)


def _streams(aws: LocalAws, name: str) -> dict[str, list[str]]:
    logs = aws.client("logs")
    found = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/")
    out = {}
    for stream in found["logStreams"]:
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"])
        out[stream["logStreamName"]] = [e["message"] for e in events["events"]]
    return out


def _backend_job(aws: LocalAws, name: str) -> Any:
    """The local AWS's own record of a training job (what DescribeTrainingJob does not show)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[DEFAULT_ACCOUNT_ID][aws.region].training_jobs[name]


def _put_data(aws: LocalAws, name: str) -> None:
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{name}/train/data.jsonl", Body=_jsonl(generate(96, seed=3)))
    s3.put_object(Bucket=BUCKET, Key=f"{name}/validation/data.jsonl", Body=_jsonl(generate(32, seed=4)))


def test_hosts_and_ports() -> None:
    assert host_names(3) == ["algo-1", "algo-2", "algo-3"]
    port = free_port()
    assert 0 < port < 65536


def test_a_two_instance_classification_job_trains_on_both_hosts(aws: LocalAws) -> None:
    aws.executor.settings.torch_threads = 2
    code_uri = publish_training_code(aws.client("s3"), BUCKET)
    name = "multinode-ok"
    _put_data(aws, name)
    hps = {"epochs": "1", "batch_size": "16", "max_length": "16", "learning_rate": "1e-4", "seed": "3"}
    _create_job(aws, name, 2, hps, "train.py", code_uri)

    job = _wait(aws, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    streams = _streams(aws, name)
    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in streams) == ["algo-1", "algo-2"]
    for stream, lines in streams.items():  # every host trained and printed its own rank's metrics
        text = "\n".join(lines)
        assert "fmops-metric name=rank_train_loss" in text, (stream, text[-2000:])
    algo1 = "\n".join(next(lines for s, lines in streams.items() if "/algo-1-" in s))
    assert "host algo-1, rank 0 of 2 (ddp)" in algo1 and "model saved to" in algo1
    # the job's metrics are algo-1's; each host's own are kept beside them
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert {"train_loss", "validation_accuracy", "rank_train_loss"} <= set(final)
    per_host = _backend_job(aws, name).host_metrics
    assert set(per_host) == {"algo-1", "algo-2"}
    assert {m["MetricName"] for m in per_host["algo-2"]} == {"rank_train_loss", "rank_tokens_per_second"}
    assert per_host["algo-1"] == _backend_job(aws, name).final_metric_data_list
    # one model, written by rank 0 on algo-1
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"out/{name}/")["Contents"]]
    assert f"out/{name}/output/model.tar.gz" in keys
    body = aws.client("s3").get_object(Bucket=BUCKET, Key=f"out/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        meta = json.load(tar.extractfile("fmops_model.json"))  # type: ignore[arg-type]
    assert meta["training"]["ranks"] == 2 and meta["training"]["strategy"] == "ddp"
    assert job["BillableTimeInSeconds"] == 2 * job["TrainingTimeInSeconds"]


FAILING = """
import json, os, signal, sys, tempfile, time
def stopped(*_):
    print("stopped by the executor", flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, stopped)
host = os.environ["SM_CURRENT_HOST"]
print("hosts", os.environ["SM_HOSTS"], "me", host, "master", os.environ["FMOPS_MASTER_ADDR"],
      os.environ["FMOPS_MASTER_PORT"], "threads", os.environ["FMOPS_TORCH_THREADS"], flush=True)
# algo-1 says it is up (its SIGTERM handler installed) before algo-2 fails: otherwise a stop could come first.
ready = os.path.join(tempfile.gettempdir(), "fmops-multinode-" + os.environ["FMOPS_MASTER_PORT"])
if host == "algo-2":
    for _ in range(600):
        if os.path.exists(ready):
            os.remove(ready)
            break
        time.sleep(0.05)
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("RuntimeError: algo-2 lost its GPU")
    sys.exit(1)
open(ready, "w").close()
time.sleep(60)  # algo-1 would wait for its peer: the executor stops it
"""


def test_one_failing_host_fails_the_job_with_its_reason_and_stops_the_others(aws: LocalAws) -> None:
    aws.executor.settings.torch_threads = 2
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="code/fail.tar.gz", Body=tarball({"fail.py": FAILING}))
    name = "multinode-fail"
    _put_data(aws, name)
    _create_job(aws, name, 2, {}, "fail.py", f"s3://{BUCKET}/code/fail.tar.gz")

    job = _wait(aws, name, timeout=300)

    assert job["TrainingJobStatus"] == "Failed"

    assert job["FailureReason"].startswith("algo-2: RuntimeError: algo-2 lost its GPU")
    streams = _streams(aws, name)
    assert len(streams) == 2
    algo1 = " ".join(next(lines for s, lines in streams.items() if "/algo-1-" in s))
    assert '["algo-1", "algo-2"] me algo-1 master 127.0.0.1' in algo1 and "threads 1" in algo1
    assert "stopped by the executor" in algo1  # its peer is gone: algo-1 is stopped, not waited for
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=f"out/{name}/").get("Contents")
