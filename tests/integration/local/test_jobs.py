"""Training and processing jobs really run their script; .sync waits for the real outcome."""

from __future__ import annotations

import io
import json
import tarfile

from .conftest import BUCKET, role, run_execution, tarball

# A literal: moto's ASL grammar mis-reads a "RoleArn.$" Parameters key (RoleArn is an ASL keyword).
ROLE_ARN = "arn:aws:iam::123456789012:role/test-role"

TRAIN = """
import json, os, sys
hps = json.loads(os.environ["SM_HPS"])
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.jsonl")).read().splitlines()
print("fmops-metric name=train_loss value=0.75 step=1", flush=True)
if hps.get("crash") == "yes":
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("ValueError: hyperparameter crash: asked to")
    sys.exit(1)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
    json.dump({"rows": len(rows), "scale": float(hps["scale"])}, f)
print("fmops-metric name=train_loss value=0.125 step=2", flush=True)
"""

PROCESS = """
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for f in sorted(os.listdir(src)) for l in open(os.path.join(src, f))]
with open(os.path.join(out, "sum.json"), "w") as fh:
    json.dump({"total": sum(r["v"] for r in rows)}, fh)
"""


def _training_state() -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName.$": "$$.Execution.Name",
            "RoleArn": ROLE_ARN,
            "AlgorithmSpecification": {
                "TrainingImage": "local",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "train:loss", "Regex": "name=train_loss value=([0-9.eE+-]+)"}],
            },
            "HyperParameters.$": "$.hps",
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}},
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
        "End": True,
    }


def _setup(aws):
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/data.jsonl", Body=b'{"v": 1}\n{"v": 2}\n{"v": 4}\n')
    s3.put_object(Bucket=BUCKET, Key="code/src.tar.gz", Body=tarball({"train.py": TRAIN, "process.py": PROCESS}))
    return {"sagemaker_program": "train.py", "sagemaker_submit_directory": f"s3://{BUCKET}/code/src.tar.gz"}


def test_training_job_runs_script_uploads_model_and_records_metrics(aws):
    hps = {**_setup(aws), "scale": "0.5"}
    result = run_execution(
        aws, {"StartAt": "Train", "States": {"Train": _training_state()}}, {"role": role(aws), "hps": hps}, "train-ok"
    )

    assert result["status"] == "SUCCEEDED", result
    job = json.loads(result["output"])
    assert job["TrainingJobStatus"] == "Completed"
    assert job["FinalMetricDataList"][0]["MetricName"] == "train:loss"
    assert job["FinalMetricDataList"][0]["Value"] == 0.125
    body = aws.client("s3").get_object(Bucket=BUCKET, Key="out/train-ok/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        model = json.load(tar.extractfile("model.json"))  # type: ignore[arg-type]
    assert model == {"rows": 3, "scale": 0.5}


def test_crashing_training_script_fails_the_task_with_its_message(aws):
    hps = {**_setup(aws), "scale": "1", "crash": "yes"}
    result = run_execution(
        aws,
        {"StartAt": "Train", "States": {"Train": _training_state()}},
        {"role": role(aws), "hps": hps},
        "train-crash",
    )

    assert result["status"] == "FAILED"
    assert result["error"] == "States.TaskFailed"
    assert "hyperparameter crash" in result["cause"]
    job = aws.client("sagemaker").describe_training_job(TrainingJobName="train-crash")
    assert job["TrainingJobStatus"] == "Failed"
    assert "hyperparameter crash" in job["FailureReason"]


def test_processing_job_maps_inputs_and_outputs(aws):
    _setup(aws)
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
        "Parameters": {
            "ProcessingJobName.$": "$$.Execution.Name",
            "RoleArn": ROLE_ARN,
            "AppSpecification": {
                "ImageUri": "local",
                "ContainerEntrypoint": [
                    "/bin/sh",
                    "-c",
                    'cd /opt/ml/processing/code && tar xzf src.tar.gz && python3 process.py "$@"',
                    "sh",
                ],
                "ContainerArguments": ["/opt/ml/processing/input", "/opt/ml/processing/output"],
            },
            "ProcessingInputs": [
                {
                    "InputName": "data",
                    "S3Input": {
                        "S3Uri": f"s3://{BUCKET}/data/",
                        "LocalPath": "/opt/ml/processing/input",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                },
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": f"s3://{BUCKET}/code/src.tar.gz",
                        "LocalPath": "/opt/ml/processing/code",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                },
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "result",
                        "S3Output": {
                            "S3Uri": f"s3://{BUCKET}/processed/",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
            },
        },
        "End": True,
    }
    result = run_execution(aws, {"StartAt": "Process", "States": {"Process": state}}, {"role": role(aws)}, "proc-1")

    assert result["status"] == "SUCCEEDED", result
    body = aws.client("s3").get_object(Bucket=BUCKET, Key="processed/sum.json")["Body"].read()
    assert json.loads(body) == {"total": 7}


def test_bedrock_training_records_of_every_format_become_classification_records() -> None:
    from fmops_local.executor import _as_classification

    conversation = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": "Classify: great"}]},
            {"role": "assistant", "content": [{"text": "pos"}]},
        ],
    }
    legacy = {"messages": [{"role": "user", "content": "Classify: bad"}, {"role": "assistant", "content": "neg"}]}
    assert _as_classification({"prompt": "Classify: ok", "completion": " pos"}) == {
        "text": "Classify: ok",
        "label": "pos",
    }
    assert _as_classification(conversation) == {"text": "Classify: great", "label": "pos"}
    assert _as_classification(legacy) == {"text": "Classify: bad", "label": "neg"}
    assert _as_classification({"foo": 1}) is None
