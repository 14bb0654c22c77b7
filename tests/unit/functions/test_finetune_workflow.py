"""The fine-tune ASL run by moto's Step Functions interpreter, with the real handlers invoked in-process.

The two ``.sync`` job states are replaced by Pass states with the result a finished job gives (the local AWS's
executor runs them for real; moto alone cannot). Everything else is the definition in statemachines/.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fmops_testkit import create_resources, jsonl, load_event, sample_records
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[3]
RUN_ID = "churn-3f2a9c1d0b7e"
FUNCTIONS = {
    "PlanDatasetFunctionArn": "plan_dataset",
    "ValidateShardFunctionArn": "validate_shard",
    "ValidateDatasetFunctionArn": "validate_dataset",
    "PlanTrainingFunctionArn": "plan_training",
    "PlanEvaluationFunctionArn": "plan_evaluation",
    "EvaluateFunctionArn": "evaluate",
    "RegisterModelFunctionArn": "register_model",
    "QualityGateFunctionArn": "quality_gate",
    "RequestApprovalFunctionArn": "request_approval",
    "DeployModelFunctionArn": "deploy_model",
    "CompleteRunFunctionArn": "complete_run",
    "HandleFailureFunctionArn": "handle_failure",
}
MODEL_URI = f"s3://fmops-artifacts/training/{RUN_ID}/{RUN_ID}-train/output/model.tar.gz"


class Workflow:
    def __init__(self, aws: Any, handler: Any, lambda_context: Any) -> None:
        self.broken: set[str] = set()
        self.aws = aws
        self.handler = handler
        self.context = lambda_context
        self.sfn = boto3.client("stepfunctions")
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "")
        client = boto3.client("lambda")
        substitutions = {
            key: client.create_function(
                FunctionName=folder,
                Runtime="python3.11",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": archive.getvalue()},
            )["FunctionArn"]
            for key, folder in FUNCTIONS.items()
        }
        substitutions.update(
            NotificationTopicArn=aws.env["NOTIFICATION_TOPIC_ARN"], SageMakerRoleArn=role, BedrockRoleArn=role
        )
        # Runs here have no "tuning": the HPO state machine is never started.
        substitutions["HpoStateMachineArn"] = "arn:aws:states:us-east-1:123456789012:stateMachine:fmops-hpo"
        text = (ROOT / "statemachines" / "finetune.asl.json").read_text()
        asl = json.loads(re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], text))
        asl["States"]["Train on SageMaker"] = {
            "Type": "Pass",
            "Result": {
                "backend": "sagemaker",
                "job_name": f"{RUN_ID}-train",
                "job_arn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{RUN_ID}-train",
                "status": "Completed",
                "model_artifacts_uri": MODEL_URI,
            },
            "ResultPath": "$.training",
            "Next": "Plan evaluation",
        }
        asl["States"]["Evaluate on SageMaker"] = {
            "Type": "Pass",
            "Result": {"job_name": f"{RUN_ID}-eval", "job_arn": "arn:eval", "status": "Completed"},
            "ResultPath": "$.evaluation_job",
            "Next": "Compute metrics",
        }
        self.machine = self.sfn.create_state_machine(name="finetune", definition=json.dumps(asl), roleArn=role)[
            "stateMachineArn"
        ]

    def start(self, dataset: bytes, predictions: list[dict[str, Any]], **run: Any) -> str:
        self.aws.s3_client.put_object(
            Bucket="fmops-artifacts", Key=f"evaluation/{RUN_ID}/predictions.jsonl", Body=jsonl(*predictions)
        )
        request = load_event("validate_dataset")["run"]
        request["dataset"]["version_id"] = self.aws.put_dataset(dataset)
        request.update(poll_seconds=1, **run)
        return str(
            self.sfn.start_execution(stateMachineArn=self.machine, name=RUN_ID, input=json.dumps(request))[
                "executionArn"
            ]
        )

    def wait(self, arn: str, until: Any = None, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING" or (until and until()):
                return dict(execution)
            time.sleep(0.05)
        raise AssertionError("the execution did not finish")

    def states(self, arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def api(self, name: str) -> dict[str, Any]:
        return self.handler("approval_api")(load_event(name), self.context)  # type: ignore[no-any-return]


@pytest.fixture
def workflow(
    env: dict[str, str], handler: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workflow]:
    from moto.awslambda.models import LambdaFunction

    handlers: dict[str, Any] = {}
    broken: set[str] = set()

    def invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        name = self.function_name
        if name in broken:
            return json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": "broken"}), True, ""
        if name not in handlers:
            handlers[name] = handler(name)
        try:
            return json.dumps(handlers[name](event, lambda_context)), False, ""
        except Exception as exc:  # reported to the state machine like the Lambda runtime does
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), True, ""

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": True}}):
        workflow = Workflow(create_resources(env), handler, lambda_context)
        workflow.broken = broken
        yield workflow


def predictions(tuned_right: bool = True) -> list[dict[str, Any]]:
    labels = ["churn", "stay"]
    return [
        {
            "line": i + 1,
            "text": f"t{i}",
            "reference": labels[i % 2],
            "base": "stay",
            "finetuned": labels[i % 2] if tuned_right else "stay",
        }
        for i in range(10)
    ]


def test_approved_run_is_deployed(workflow: Workflow) -> None:
    arn = workflow.start(jsonl(*sample_records(40)), predictions())
    workflow.wait(arn, until=lambda: workflow.aws.approvals.get(RUN_ID))
    assert workflow.api("approval_api_approve")["statusCode"] == 200
    execution = workflow.wait(arn)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["result"]["endpoint_name"] == "churn"
    assert output["approval"]["decision"] == "approved"
    assert workflow.states(arn)[-3:] == ["Endpoint in service?", "Complete run", "Run succeeded"]
    assert workflow.aws.runs.get(RUN_ID)["status"] == "SUCCEEDED"
    subjects = [m["Subject"] for m in workflow.aws.messages()]
    assert subjects == [f"fmops: approval needed for {RUN_ID}", f"fmops: run {RUN_ID} deployed to churn"]


def test_rejected_run_is_not_deployed(workflow: Workflow) -> None:
    arn = workflow.start(jsonl(*sample_records(40)), predictions())
    workflow.wait(arn, until=lambda: workflow.aws.approvals.get(RUN_ID))
    assert workflow.api("approval_api_reject")["statusCode"] == 200
    execution = workflow.wait(arn)
    assert (execution["status"], execution["error"]) == ("FAILED", "ApprovalRejected")
    assert "Deploy model" not in workflow.states(arn)
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_a_model_below_the_threshold_stops_at_the_gate(workflow: Workflow) -> None:
    arn = workflow.start(jsonl(*sample_records(40)), predictions(tuned_right=False), threshold=0.8)
    execution = workflow.wait(arn)
    assert (execution["status"], execution["error"]) == ("FAILED", "QualityGateFailed")
    assert execution["cause"] == "quality gate failed: accuracy 0.5000 is below the threshold 0.8000"
    assert "Request approval" not in workflow.states(arn)
    package = boto3.client("sagemaker").list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in package] == ["Rejected"]


def test_a_malformed_dataset_fails_at_validation_with_the_line(workflow: Workflow) -> None:
    body = jsonl(*sample_records(6)) + b'{"text": "x", "label": ""}\n'
    arn = workflow.start(body, predictions())
    execution = workflow.wait(arn)
    assert (execution["status"], execution["error"]) == ("FAILED", "DatasetValidationError")
    assert execution["cause"].startswith("line 7: field 'label': must not be empty or whitespace only")
    assert workflow.states(arn) == [
        "Start run",
        "Plan data validation",
        "Large data set?",
        "Validate and split dataset",
        "Handle failure",
        "Failed",
    ]
    [note] = workflow.aws.messages()
    # The notification names the line and links the full JSON report stored in S3.
    assert "line 7" in note["Message"]
    report_uri = note["Message"].split("report: ", 1)[1].split(")", 1)[0]
    report = json.loads(workflow.aws.read(report_uri))
    assert report["valid"] is False and report["errors"][0]["line"] == 7


def test_if_the_failure_handler_fails_the_run_still_fails_and_notifies(workflow: Workflow) -> None:
    workflow.broken.add("handle_failure")
    body = jsonl(*sample_records(6)) + b"{broken\n"
    arn = workflow.start(body, predictions())
    execution = workflow.wait(arn)
    assert (execution["status"], execution["error"]) == ("FAILED", "DatasetValidationError")
    assert "line 7: is not valid JSON" in execution["cause"]
    assert workflow.states(arn)[-3:] == ["Prepare fallback failure", "Notify failure directly", "Failed"]
    [note] = workflow.aws.messages()
    assert note["Subject"] == "fmops run failed" and "line 7: is not valid JSON" in note["Message"]
