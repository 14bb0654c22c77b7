"""`fmops hpo results RUN` against the deployed stack: a real (tiny) tuning job on the local AWS, recorded by
RecordTuningFunction as the HPO state machine does, read back through the SigV4-signed API, S3 and SageMaker."""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from fmops_local.cli import main

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[1].parent / "events"

# A stand-in for train.py (no torch): its validation accuracy is a known function of the learning rate.
TRAIN = r"""
import json, math, os
hps = json.loads(os.environ["SM_HPS"])
lr = float(hps["learning_rate"])
print(f"fmops-metric name=validation_accuracy value={1.0 - (math.log10(lr) + 2.0) ** 2 / 8:.6f} step=1", flush=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w").write("{}")
"""


def _tarball(files: dict[str, str]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tune(stack_aws: Any, run_id: str, spec: dict[str, Any], max_jobs: int) -> str:
    """Start the planned tuning job (as "Run tuning job" does) with the stand-in script; returns its name."""
    artifacts = stack_aws.stack.output("ArtifactsBucketName")
    s3 = stack_aws.client("s3")
    s3.put_object(Bucket=artifacts, Key=f"hpo-cli/{run_id}/src.tar.gz", Body=_tarball({"train.py": TRAIN}))
    s3.put_object(Bucket=artifacts, Key=f"hpo-cli/{run_id}/data/train.jsonl", Body=b'{"text": "a", "label": "x"}\n')
    request = copy.deepcopy(spec["sagemaker"])
    config = request["HyperParameterTuningJobConfig"]
    config["ResourceLimits"] = {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": 1}
    config["ParameterRanges"] = {
        "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "1"}]
    }
    definition = request["TrainingJobDefinition"]
    definition["StaticHyperParameters"] = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": f"s3://{artifacts}/hpo-cli/{run_id}/src.tar.gz",
    }
    definition["InputDataConfig"] = [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{artifacts}/hpo-cli/{run_id}/data/"}
            },
        }
    ]
    definition["OutputDataConfig"] = {"S3OutputPath": f"s3://{artifacts}/hpo-cli/{run_id}/training/"}
    definition["RoleArn"] = stack_aws.stack.output("SageMakerExecutionRoleArn")
    sm = stack_aws.client("sagemaker")
    sm.create_hyper_parameter_tuning_job(**request)
    name = str(request["HyperParameterTuningJobName"])
    deadline = time.monotonic() + 120
    while sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["HyperParameterTuningJobStatus"] in (
        "InProgress",
        "Stopping",
    ):
        assert time.monotonic() < deadline, name
        time.sleep(0.2)
    return name


def _invoke(stack_aws: Any, logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
    response = stack_aws.client("lambda").invoke(
        FunctionName=stack_aws.stack.resources[logical_id], Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert not response.get("FunctionError"), payload
    return dict(payload)


def _new_run(stack_aws: Any, run_id: str) -> dict[str, Any]:
    """A run record (as ingestion writes it) and the HPO state machine's input for it."""
    event = json.loads((EVENTS / "plan_tuning.json").read_text())
    event["run"]["run_id"] = run_id
    event["training_spec"]["sagemaker"]["HyperParameters"]["sagemaker_submit_directory"] = "s3://unused/code.tar.gz"
    stack_aws.client("dynamodb").put_item(
        TableName=stack_aws.stack.output("RunsTableName"),
        Item={"run_id": {"S": run_id}, "status": {"S": "RUNNING"}, "use_case": {"S": "churn"}},
    )
    return event


@pytest.fixture(scope="module")
def tuned(stack_aws: Any) -> dict[str, Any]:
    """Run ``recorded``: planned, tuned (4 jobs) and recorded; run ``running``: planned and tuned, not recorded."""
    out: dict[str, Any] = {}
    for run_id, record in (("churn-hpocli-recorded", True), ("churn-hpocli-running", False)):
        event = _new_run(stack_aws, run_id)
        spec = _invoke(stack_aws, "PlanTuningFunction", event)
        name = _tune(stack_aws, run_id, spec, max_jobs=4 if record else 2)
        if record:
            out["result"] = _invoke(
                stack_aws,
                "RecordTuningFunction",
                {
                    "run": event["run"],
                    "tuning_spec": spec,
                    "tuning_job": {"job_name": name, "job_arn": "arn", "status": "Completed"},
                },
            )
        out[run_id] = name
    stack_aws.client("dynamodb").put_item(
        TableName=stack_aws.stack.output("RunsTableName"),
        Item={"run_id": {"S": "churn-hpocli-plain"}, "status": {"S": "RUNNING"}},
    )
    return out


def fmops(argv: list[str]) -> int:
    return main(argv)


def test_table_ranks_every_configuration_and_marks_the_best(stack_aws: Any, tuned: dict[str, Any], capsys: Any) -> None:
    url = ["--api-url", stack_aws.api.url]
    assert fmops(["hpo", "results", "churn-hpocli-recorded", *url]) == 0
    out = capsys.readouterr().out.splitlines()

    best = tuned["result"]["best"]
    assert out[0].startswith(f"tuning job {tuned['churn-hpocli-recorded']} (Completed, Bayesian): 4 training jobs")
    assert out[0].endswith("maximize validation_accuracy")
    assert out[1].split() == ["RANK", "BEST", "TRAINING", "JOB", "STATUS", "VALIDATION_ACCURACY", "LEARNING_RATE"]
    ranked = [line.split() for line in out[2:6]]
    assert [row[0] for row in ranked] == ["1", "2", "3", "4"]
    assert ranked[0][1:3] == ["*", best["training_job_name"]]
    values = [float(row[-2]) for row in ranked]
    assert values == sorted(values, reverse=True)
    assert out[6] == f"best: {best['training_job_name']} (validation_accuracy {best['objective_value']:.4f})"


def test_json_and_csv_hold_the_recorded_results(stack_aws: Any, tuned: dict[str, Any], capsys: Any) -> None:
    url = ["--api-url", stack_aws.api.url]
    assert fmops(["hpo", "results", "churn-hpocli-recorded", "--format", "json", *url]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["run_id"] == "churn-hpocli-recorded"
    assert results["best"] == tuned["result"]["best"]
    assert [t["rank"] for t in results["trials"]] == [1, 2, 3, 4]

    assert fmops(["hpo", "results", "churn-hpocli-recorded", "--format", "csv", *url]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["training_job"] for r in table] == [t["training_job_name"] for t in results["trials"]]
    assert [r["best"] for r in table] == ["true", "false", "false", "false"]
    assert float(table[0]["validation_accuracy"]) == results["trials"][0]["objective_value"]
    assert table[0]["learning_rate"] == results["trials"][0]["hyperparameters"]["learning_rate"]


def test_a_tuning_job_not_yet_recorded_is_read_from_sagemaker(
    stack_aws: Any, tuned: dict[str, Any], capsys: Any
) -> None:
    assert fmops(["hpo", "results", "churn-hpocli-running", "--format", "json", "--api-url", stack_aws.api.url]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["tuning_job_name"] == tuned["churn-hpocli-running"]
    assert len(results["trials"]) == 2 and sum(t["best"] for t in results["trials"]) == 1
    assert results["objective"] == {"metric": "validation_accuracy", "type": "Maximize"}


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("churn-nosuchrun", "fmops hpo results: no run churn-nosuchrun\n"),
        ("churn-hpocli-plain", "fmops hpo results: run churn-hpocli-plain has no hyperparameter tuning"),
    ],
)
def test_bad_runs_exit_1_with_one_line(
    stack_aws: Any, tuned: dict[str, Any], capsys: Any, run_id: str, message: str
) -> None:
    assert fmops(["hpo", "results", run_id, "--api-url", stack_aws.api.url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message) and captured.err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [["hpo"], ["hpo", "results"], ["hpo", "results", "Not_A_Run"], ["hpo", "results", "churn-x", "--format", "xml"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fmops(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err
