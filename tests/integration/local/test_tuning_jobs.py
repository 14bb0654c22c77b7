"""Hyperparameter tuning jobs on the local AWS: Optuna proposes, real training jobs run, AWS's answer shapes.

The training script is a tiny stand-in for train.py (no torch): its validation accuracy is a known function of the
learning rate, printed as train.py prints it, so each job's real final metric can be checked.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import botocore.exceptions
import optuna
import pytest

from fmops.lifecycle.tuning import rank_trials
from fmops_local.patches.sagemaker_tuning import local_parallelism

from .conftest import BUCKET, role, run_execution, tarball

pytestmark = pytest.mark.integration

# A literal: moto's ASL grammar mis-reads a "RoleArn.$" Parameters key.
ROLE_ARN = "arn:aws:iam::123456789012:role/test-role"

TRAIN = r"""
import json, math, os, sys, time
hps = json.loads(os.environ["SM_HPS"])
number = int(os.environ["TRAINING_JOB_NAME"].rsplit("-", 2)[1])
lr = float(hps["learning_rate"])
epochs = int(hps.get("epochs", "3"))
pause = float(hps.get("sleep", "0"))
score = 1.0 - (math.log10(lr) + 2.0) ** 2 / 8
if hps.get("variant") == "b":
    score -= 0.05
if hps.get("crash_job") in ("all", str(number)):
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write(f"ValueError: job {number} diverged")
    sys.exit(1)
if hps.get("late_jobs_bad") == "yes" and number >= 3:
    score, pause = 0.01, 0.5
for k in range(1, epochs + 1):
    print(f"fmops-metric name=validation_accuracy value={score * k / epochs:.6f} step={k}", flush=True)
    time.sleep(pause)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w").write(json.dumps({"lr": lr}))
"""


def accuracy(lr: float, variant: str = "a") -> float:
    """What TRAIN prints last for a learning rate."""
    return round(1.0 - (math.log10(lr) + 2.0) ** 2 / 8 - (0.05 if variant == "b" else 0.0), 6)


@pytest.fixture
def code(aws: Any) -> dict[str, str]:
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/data.jsonl", Body=b'{"text": "a", "label": "x"}\n')
    s3.put_object(Bucket=BUCKET, Key="code/src.tar.gz", Body=tarball({"train.py": TRAIN}))
    return {"sagemaker_program": "train.py", "sagemaker_submit_directory": f"s3://{BUCKET}/code/src.tar.gz"}


def request(
    name: str,
    static: dict[str, str],
    *,
    max_jobs: int = 3,
    parallel: int = 1,
    strategy: str = "Bayesian",
    early_stopping: str = "Off",
    seed: int = 7,
    ranges: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation_accuracy"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges
            or {"ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "1"}]},
            "TrainingJobEarlyStoppingType": early_stopping,
            "RandomSeed": seed,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": static,
            "AlgorithmSpecification": {
                "TrainingImage": "local",
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {
                        "Name": "validation_accuracy",
                        "Regex": "fmops-metric name=validation_accuracy value=([0-9.eE+-]+)",
                    }
                ],
            },
            "RoleArn": ROLE_ARN,
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
        "Tags": [{"Key": "fmops:stack", "Value": "test"}],
    }


def wait(sm: Any, name: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            return dict(described)
        time.sleep(0.2)
    raise TimeoutError(name)


def children(sm: Any, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    token = None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, **kwargs, **({"NextToken": token} if token else {})
        )
        jobs += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            return jobs


def test_bayesian_proposals_are_optunas_tpe_and_objectives_are_the_jobs_final_metrics(aws: Any, code: Any) -> None:
    sm = aws.client("sagemaker")
    ranges = {
        "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "1"}],
        "CategoricalParameterRanges": [{"Name": "variant", "Values": ["a", "b"]}],
    }
    sm.create_hyper_parameter_tuning_job(**request("tpe", code, max_jobs=5, ranges=ranges, seed=3))
    described = wait(sm, "tpe")
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    jobs = children(sm, "tpe", SortBy="Name")
    assert [j["TrainingJobName"].rsplit("-", 2)[1] for j in jobs] == ["001", "002", "003", "004", "005"]

    # Replayed with Optuna's TPE sampler (seeded; its first configuration is random, as fmops_local documents for
    # 5 jobs), told the same objective values in the same order, Optuna proposes exactly what the jobs ran.
    # "Auto" scaling over 1e-4..1 (four decades) is logarithmic.
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=1, constant_liar=True)
    )
    space = {
        "learning_rate": optuna.distributions.FloatDistribution(0.0001, 1.0, log=True),
        "variant": optuna.distributions.CategoricalDistribution(["a", "b"]),
    }
    for job in jobs:
        trial = study.ask(space)
        tuned = job["TunedHyperParameters"]
        assert tuned == {"learning_rate": repr(trial.params["learning_rate"]), "variant": trial.params["variant"]}
        value = job["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        # The objective is the job's real final metric: what its script printed last, as the job recorded it.
        assert value == pytest.approx(accuracy(float(tuned["learning_rate"]), tuned["variant"]), abs=1e-9)
        described_job = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
        final = {m["MetricName"]: m["Value"] for m in described_job["FinalMetricDataList"]}
        assert final["validation_accuracy"] == value
        assert described_job["HyperParameters"]["learning_rate"] == tuned["learning_rate"]
        assert described_job["TuningJobArn"] == described["HyperParameterTuningJobArn"]
        study.tell(trial, value)


def test_ranking_best_training_job_counters_and_listing(aws: Any, code: Any) -> None:
    sm = aws.client("sagemaker")
    sm.create_hyper_parameter_tuning_job(**request("rank", code, max_jobs=4, parallel=2))
    described = wait(sm, "rank")

    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"] == {
        "Completed": 4,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    ranked = children(sm, "rank", SortBy="FinalObjectiveMetricValue", SortOrder="Descending", MaxResults=3)
    values = [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in ranked]
    assert len(ranked) == 4 and values == sorted(values, reverse=True)  # two pages of 3 and 1
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] == ranked[0]["TrainingJobName"]
    assert best["TrainingJobStatus"] == "Completed" and best["ObjectiveStatus"] == "Succeeded"
    assert best["TuningJobName"] == "rank" and "learning_rate" in best["TunedHyperParameters"]
    # fmops' own ranking (tuning.json, `fmops hpo results`) agrees.
    trials = rank_trials(children(sm, "rank"), "Maximize", best["TrainingJobName"])
    assert [t.training_job_name for t in trials] == [j["TrainingJobName"] for j in ranked]
    assert [t.rank for t in trials] == [1, 2, 3, 4] and trials[0].best
    # The training jobs are ordinary ones too: ListTrainingJobs, tags, the model each one uploaded.
    names = {j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]}
    assert {j["TrainingJobName"] for j in ranked} <= names
    arn = ranked[0]["TrainingJobArn"]
    assert {"Key": "fmops:stack", "Value": "test"} in sm.list_tags(ResourceArn=arn)["Tags"]
    summaries = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["HyperParameterTuningJobStatus"]) for s in summaries] == [
        ("rank", "Completed")
    ]


def test_parallel_jobs_are_capped_by_the_machine(aws: Any, code: Any) -> None:
    aws.executor.settings.torch_threads = 1
    sm = aws.client("sagemaker")
    sm.create_hyper_parameter_tuning_job(**request("parallel", {**code, "sleep": "0.3"}, max_jobs=2, parallel=2))
    wait(sm, "parallel")
    first, second = (
        sm.describe_training_job(TrainingJobName=j["TrainingJobName"]) for j in children(sm, "parallel", SortBy="Name")
    )
    overlapped = second["CreationTime"] < first["TrainingEndTime"]
    assert overlapped == (local_parallelism(2) == 2 == min(2, (os.cpu_count() or 1)))


def test_a_failing_training_job_counts_as_failed(aws: Any, code: Any) -> None:
    sm = aws.client("sagemaker")
    sm.create_hyper_parameter_tuning_job(**request("mixed", {**code, "crash_job": "2"}, max_jobs=3))
    described = wait(sm, "mixed")

    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 2, "Pending": 0, "Failed": 1}
    (failed,) = children(sm, "mixed", StatusEquals="Failed")
    assert failed["TrainingJobName"].rsplit("-", 2)[1] == "002"
    assert failed["FailureReason"] == "ValueError: job 2 diverged"
    assert failed["ObjectiveStatus"] == "Failed" and "FinalHyperParameterTuningJobObjectiveMetric" not in failed
    # Sorted by the objective, a job without one is not listed (as on AWS).
    assert len(children(sm, "mixed", SortBy="FinalObjectiveMetricValue")) == 2
    assert described["BestTrainingJob"]["TrainingJobName"] != failed["TrainingJobName"]


def test_createHyperParameterTuningJob_sync_ends_with_the_tuning_job(aws: Any, code: Any) -> None:
    def state(static: dict[str, str]) -> dict[str, Any]:
        parameters = request("placeholder", static, max_jobs=2)
        parameters.pop("HyperParameterTuningJobName")
        return {
            "StartAt": "Tune",
            "States": {
                "Tune": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
                    "Parameters": {"HyperParameterTuningJobName.$": "$$.Execution.Name", **parameters},
                    "End": True,
                }
            },
        }

    ok = run_execution(aws, state(code), {}, "sync-ok")
    assert ok["status"] == "SUCCEEDED", ok
    output = json.loads(ok["output"])
    assert output["HyperParameterTuningJobStatus"] == "Completed"
    assert output["BestTrainingJob"]["TrainingJobStatus"] == "Completed"

    failed = run_execution(aws, state({**code, "crash_job": "all"}), {}, "sync-failed")
    assert failed["status"] == "FAILED"
    assert failed["error"] == "States.TaskFailed"
    cause = json.loads(failed["cause"])
    assert cause["HyperParameterTuningJobStatus"] == "Failed"
    assert "No training job completed" in cause["FailureReason"] and "job 1 diverged" in cause["FailureReason"]
    assert cause["TrainingJobStatusCounters"]["NonRetryableError"] == 2


def test_early_stopping_auto_stops_jobs_worse_than_the_median(aws: Any, code: Any) -> None:
    sm = aws.client("sagemaker")
    static = {**code, "epochs": "5", "late_jobs_bad": "yes"}  # jobs 3 and 4 learn nothing, slowly
    sm.create_hyper_parameter_tuning_job(**request("early", static, max_jobs=4, early_stopping="Auto"))
    described = wait(sm, "early")

    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    assert described["TrainingJobStatusCounters"]["Stopped"] == 2
    jobs = children(sm, "early", SortBy="Name")
    assert [j["TrainingJobStatus"] for j in jobs] == ["Completed", "Completed", "Stopped", "Stopped"]
    for summary in jobs[2:]:
        job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        # StopTrainingJob's semantics: Stopped, no failure reason, its metrics so far kept.
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
        assert "FailureReason" not in job and "FailureReason" not in summary
        assert job["SecondaryStatusTransitions"][-1]["Status"] == "Stopped"
        # Stopped at its first value (0.002, far below the median), long before its 5th.
        assert summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(0.002)
    assert described["BestTrainingJob"]["TrainingJobName"] in {j["TrainingJobName"] for j in jobs[:2]}


def test_early_stopping_off_lets_every_job_finish(aws: Any, code: Any) -> None:
    sm = aws.client("sagemaker")
    static = {**code, "epochs": "2", "late_jobs_bad": "yes"}
    sm.create_hyper_parameter_tuning_job(**request("late", static, max_jobs=3, early_stopping="Off"))
    described = wait(sm, "late")
    assert described["TrainingJobStatusCounters"]["Completed"] == 3
    assert described["TrainingJobStatusCounters"]["Stopped"] == 0


def test_stopping_a_tuning_job_stops_its_training_jobs(aws: Any, code: Any) -> None:
    sm = aws.client("sagemaker")
    static = {**code, "epochs": "200", "sleep": "0.2"}
    sm.create_hyper_parameter_tuning_job(**request("stopme", static, max_jobs=3))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = children(sm, "stopme")
        if running and sm.describe_training_job(TrainingJobName=running[0]["TrainingJobName"])["SecondaryStatus"] == (
            "Training"
        ):
            break
        time.sleep(0.1)

    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    assert sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")[
        "HyperParameterTuningJobStatus"
    ] in ("Stopping", "Stopped")
    described = wait(sm, "stopme")

    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    (job,) = children(sm, "stopme")  # nothing launched after the stop
    assert job["TrainingJobStatus"] == "Stopped" and "FailureReason" not in job
    assert described["TrainingJobStatusCounters"]["Stopped"] == 1
    assert "BestTrainingJob" not in described
    with pytest.raises(botocore.exceptions.ClientError, match="only an InProgress job can be stopped"):
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(HyperParameterTuningJobName="x" * 33), "at most 32 characters"),
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "not supported by the local AWS"),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].update(MaxParallelTrainingJobs=5),
            "cannot exceed MaxNumberOfTrainingJobs",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(MetricName="auc"),
            "not one of the MetricDefinitions",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0].update(
                MinValue="0", ScalingType="Logarithmic"
            ),
            "Logarithmic scaling needs MinValue > 0",
        ),
        (
            lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(learning_rate="0.1"),
            "both static and tuned",
        ),
    ],
)
def test_invalid_requests_are_refused_before_any_job(aws: Any, code: Any, change: Any, message: str) -> None:
    sm = aws.client("sagemaker")
    body = request("refused", code)
    change(body)
    with pytest.raises(botocore.exceptions.ClientError, match=message):
        sm.create_hyper_parameter_tuning_job(**body)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_a_child_state_machine_runs_with_startExecution_sync_2(aws: Any) -> None:
    sfn = aws.client("stepfunctions")
    child = {
        "StartAt": "Choose",
        "States": {
            "Choose": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Fail"}],
                "Default": "Done",
            },
            "Done": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.x, $.x)"}, "End": True},
            "Fail": {"Type": "Fail", "Error": "TuningFailedError", "Cause": "no training job completed"},
        },
    }
    child_arn = sfn.create_state_machine(name="child", definition=json.dumps(child), roleArn=role(aws))[
        "stateMachineArn"
    ]
    parent = {
        "StartAt": "Run child",
        "States": {
            "Run child": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {
                    "StateMachineArn": child_arn,
                    "Name.$": "States.Format('{}-hpo', $$.Execution.Name)",
                    "Input": {"x.$": "$.x", "fail.$": "$.fail"},
                },
                "ResultSelector": {"doubled.$": "$.Output.doubled", "arn.$": "$.ExecutionArn"},
                "End": True,
            }
        },
    }
    ok = run_execution(aws, parent, {"x": 21, "fail": False}, "parent-ok")
    assert ok["status"] == "SUCCEEDED", ok
    assert json.loads(ok["output"]) == {
        "doubled": 42,
        "arn": child_arn.replace(":stateMachine:", ":execution:") + ":parent-ok-hpo",
    }
    failed = run_execution(aws, parent, {"x": 1, "fail": True}, "parent-failed")
    assert failed["status"] == "FAILED" and failed["error"] == "States.TaskFailed"
    cause = json.loads(failed["cause"])
    assert (cause["Error"], cause["Cause"]) == ("TuningFailedError", "no training job completed")
