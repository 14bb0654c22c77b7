"""The fine-tune state machine: structure, integrations, Retry/Catch, and its contract with the models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fmops.schemas import steps

ASL_PATH = Path(__file__).resolve().parents[3] / "statemachines" / "finetune.asl.json"
ASL: dict[str, Any] = json.loads(ASL_PATH.read_text())
STATES: dict[str, dict[str, Any]] = ASL["States"]

PLACEHOLDERS = {
    "PlanDatasetFunctionArn",
    "ValidateShardFunctionArn",
    "ValidateDatasetFunctionArn",
    "PlanTrainingFunctionArn",
    "PlanEvaluationFunctionArn",
    "EvaluateFunctionArn",
    "RegisterModelFunctionArn",
    "QualityGateFunctionArn",
    "RequestApprovalFunctionArn",
    "DeployModelFunctionArn",
    "CompleteRunFunctionArn",
    "HandleFailureFunctionArn",
    "NotificationTopicArn",
    "SageMakerRoleArn",
    "BedrockRoleArn",
    "HpoStateMachineArn",
}
INTEGRATIONS = {
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "arn:aws:states:::sagemaker:createTrainingJob.sync",
    "arn:aws:states:::sagemaker:createProcessingJob.sync",
    "arn:aws:states:::bedrock:createModelCustomizationJob.sync",
    "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
    "arn:aws:states:::sns:publish",
    "arn:aws:states:::states:startExecution.sync:2",
}
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientAwsError",
}
# Lambda state -> the model its function returns (the ResultSelector must pick exactly its fields).
OUTPUTS = {
    "Plan data validation": steps.DataPlan,
    "Validate and split dataset": steps.DatasetInfo,
    "Plan training": steps.TrainingSpec,
    "Plan evaluation": steps.EvaluationSpec,
    "Compute metrics": steps.EvaluationResult,
    "Evaluate Bedrock model": steps.EvaluationResult,
    "Register model": steps.ModelPackageRef,
    "Quality gate": steps.GateResult,
    "Deploy model": steps.DeploymentResult,
    "Complete run": steps.RunCompletion,
    "Handle failure": steps.FailureResult,
}


def tasks() -> dict[str, dict[str, Any]]:
    return {name: state for name, state in STATES.items() if state["Type"] == "Task"}


def test_placeholders_are_exactly_the_templates_substitutions() -> None:
    assert set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text())) == PLACEHOLDERS


def test_only_supported_integrations_and_jsonpath() -> None:
    assert "QueryLanguage" not in ASL or ASL["QueryLanguage"] == "JSONPath"
    assert {state["Resource"] for state in tasks().values()} <= INTEGRATIONS
    assert {state["Type"] for state in STATES.values()} <= {"Task", "Pass", "Choice", "Wait", "Fail", "Succeed", "Map"}


def test_every_transition_exists_and_every_state_is_reachable() -> None:
    reachable = {ASL["StartAt"]}
    frontier = [ASL["StartAt"]]
    while frontier:
        state = STATES[frontier.pop()]
        targets = [state.get("Next"), state.get("Default")]
        targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in STATES
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(STATES)


def test_every_task_retries_and_catches_into_the_failure_path() -> None:
    for name, state in tasks().items():
        assert state.get("Retry"), name
        assert state.get("Catch"), name
        assert all(c["ErrorEquals"] == ["States.ALL"] for c in state["Catch"]), name
        if name in ("Handle failure", "Notify failure directly"):
            continue
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle failure"}]
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        if state["Resource"].startswith("arn:aws:states:::lambda:invoke"):
            assert LAMBDA_TRANSIENT <= retried, name
        for retry in state["Retry"]:
            assert retry["MaxAttempts"] >= 1 and retry["BackoffRate"] >= 1, name


def test_lambda_result_selectors_pick_every_field_of_the_output_model() -> None:
    for name, model in OUTPUTS.items():
        selector = STATES[name]["ResultSelector"]
        assert {k.removesuffix(".$") for k in selector} == set(model.model_fields), name
        assert all(v == f"$.Payload.{k.removesuffix('.$')}" for k, v in selector.items()), name


@pytest.mark.parametrize(
    ("state", "path", "required"),
    [
        ("Train on SageMaker", "$.training_spec.sagemaker.", "TrainingJobName"),
        ("Train on Bedrock", "$.training_spec.bedrock.", "JobName"),
        ("Evaluate on SageMaker", "$.evaluation_spec.sagemaker.", "ProcessingJobName"),
    ],
)
def test_sync_jobs_map_the_planned_request_field_by_field(state: str, path: str, required: str) -> None:
    parameters = STATES[state]["Parameters"]
    assert parameters["RoleArn"].startswith("${")
    mapped = {k.removesuffix(".$"): v for k, v in parameters.items() if k.endswith(".$")}
    assert mapped[required] == path + required
    assert all(v == path + k for k, v in mapped.items())


def test_planned_requests_hold_every_field_the_asl_maps(env: dict[str, str]) -> None:
    from fmops_testkit import load_event

    from fmops.config import PlanEvaluationSettings, PlanTrainingSettings
    from fmops.lifecycle.evaluation import plan_evaluation
    from fmops.lifecycle.training import plan_training
    from fmops.schemas import parse

    training = parse(steps.PlanTrainingEvent, load_event("plan_training"))
    spec = plan_training(training.run, training.dataset, settings=PlanTrainingSettings.from_env())
    mapped = {k.removesuffix(".$") for k in STATES["Train on SageMaker"]["Parameters"] if k.endswith(".$")}
    assert spec.sagemaker is not None and mapped <= set(spec.sagemaker)

    raw = load_event("plan_training")
    raw["run"]["backend"] = "bedrock"
    raw["run"]["base_model"] = "amazon.titan-text-lite-v1"
    raw["dataset"].update(bedrock_train_uri="s3://b/t.jsonl", bedrock_validation_uri="s3://b/v.jsonl")
    bedrock = parse(steps.PlanTrainingEvent, raw)
    spec = plan_training(bedrock.run, bedrock.dataset, settings=PlanTrainingSettings.from_env())
    mapped = {k.removesuffix(".$") for k in STATES["Train on Bedrock"]["Parameters"] if k.endswith(".$")}
    assert spec.bedrock is not None and mapped <= set(spec.bedrock)

    evaluation = parse(steps.PlanEvaluationEvent, load_event("plan_evaluation"))
    planned = plan_evaluation(
        evaluation.run, evaluation.dataset, evaluation.training, settings=PlanEvaluationSettings.from_env()
    )
    mapped = {k.removesuffix(".$") for k in STATES["Evaluate on SageMaker"]["Parameters"] if k.endswith(".$")}
    assert mapped <= set(planned.sagemaker)


def test_approval_waits_for_the_token_with_the_runs_timeout() -> None:
    state = STATES["Request approval"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert state["TimeoutSecondsPath"] == "$.run.approval_timeout_seconds"
    assert state["ResultPath"] == "$.approval"


def test_the_endpoint_loop_is_bounded_and_handles_every_status() -> None:
    assert STATES["Wait for endpoint"]["SecondsPath"] == "$.run.poll_seconds"
    choice = STATES["Endpoint in service?"]
    assert choice["Choices"][0] == {
        "Variable": "$.endpoint.status",
        "StringEquals": "InService",
        "Next": "Complete run",
    }
    busy = {c["StringEquals"] for c in choice["Choices"][1]["Or"]}
    assert busy == {"Creating", "Updating", "SystemUpdating"}
    assert choice["Default"] == "Endpoint failed"
    bound = STATES["Endpoint still starting?"]["Choices"][0]
    assert bound["NumericGreaterThanEqualsPath"] == "$.deployment.max_polls"


def test_the_fail_state_surfaces_the_handlers_error_and_cause() -> None:
    assert STATES["Failed"] == {"Type": "Fail", "ErrorPath": "$.failure.error", "CausePath": "$.failure.cause"}
    assert STATES["Quality gate failed"]["Parameters"] == {"Error": "QualityGateFailed", "Cause.$": "$.gate.reason"}


def test_the_definition_parses_with_the_local_interpreter() -> None:
    parser = pytest.importorskip("moto.stepfunctions.parser.asl.parse.asl_parser")
    text = re.sub(
        r"\$\{(\w+)\}", lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:{m.group(1)}", ASL_PATH.read_text()
    )
    program, _ = parser.AmazonStateLanguageParser.parse(text)
    assert program is not None


def test_large_data_sets_are_validated_in_a_distributed_map_of_shards() -> None:
    fan_out = STATES["Validate shards"]
    assert fan_out["Type"] == "Map"
    assert fan_out["ItemsPath"] == "$.data_plan.shards"
    assert fan_out["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert fan_out["Catch"][0]["Next"] == "Handle failure"
    shard = fan_out["ItemProcessor"]["States"]["Validate shard"]
    assert shard["Parameters"]["FunctionName"] == "${ValidateShardFunctionArn}"
    assert {e for r in shard["Retry"] for e in r["ErrorEquals"]} >= LAMBDA_TRANSIENT
    selected = {key.removesuffix(".$") for key in shard["ResultSelector"]}
    assert selected == set(steps.ShardSummary.model_fields)
    choice = STATES["Large data set?"]
    assert choice["Choices"][0] == {"Variable": "$.data_plan.sharded", "BooleanEquals": True, "Next": "Validate shards"}
    assert choice["Default"] == "Validate and split dataset"
    assert STATES["Validate and split dataset"]["Parameters"]["Payload"] == {
        "run.$": "$.run",
        "shards.$": "$.shard_results",
    }


# ------------------------------------------------------------------------------ hyperparameter tuning (HPO)

HPO_PATH = ASL_PATH.parent / "hpo.asl.json"
HPO: dict[str, Any] = json.loads(HPO_PATH.read_text())
HPO_STATES: dict[str, dict[str, Any]] = HPO["States"]
HPO_OUTPUTS = {"Plan tuning": "TuningSpec", "Record tuning results": "TuningResult"}


def _reachable(asl: dict[str, Any]) -> set[str]:
    states = asl["States"]
    reachable = {asl["StartAt"]}
    frontier = [asl["StartAt"]]
    while frontier:
        state = states[frontier.pop()]
        targets = [state.get("Next"), state.get("Default")]
        targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in states
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    return reachable


def test_hpo_placeholders_integrations_and_reachability() -> None:
    assert set(re.findall(r"\$\{(\w+)\}", HPO_PATH.read_text())) == {
        "PlanTuningFunctionArn",
        "RecordTuningFunctionArn",
        "SageMakerRoleArn",
    }
    resources = {s["Resource"] for s in HPO_STATES.values() if s["Type"] == "Task"}
    assert resources == {
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
    }
    assert _reachable(HPO) == set(HPO_STATES)
    # Step Functions' own errors cannot be re-raised by name: they fail as HyperparameterTuningFailed, with the cause.
    choice = HPO_STATES["Tuning failed"]
    assert choice["Type"] == "Choice" and choice["Choices"][0]["StringMatches"] == "States.*"
    assert HPO_STATES[choice["Choices"][0]["Next"]] == {
        "Type": "Fail",
        "Error": "HyperparameterTuningFailed",
        "CausePath": "$.error.Cause",
    }
    assert HPO_STATES[choice["Default"]] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    assert HPO_STATES["Tuning succeeded"]["OutputPath"] == "$.tuning"


def test_hpo_tasks_retry_and_catch_into_the_fail_state() -> None:
    for name, state in HPO_STATES.items():
        if state["Type"] != "Task":
            continue
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Tuning failed"}]
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        if state["Resource"].startswith("arn:aws:states:::lambda:invoke"):
            assert LAMBDA_TRANSIENT <= retried, name
        else:
            assert retried == {"SageMaker.ThrottlingException", "SageMaker.ResourceLimitExceededException"}


def test_hpo_lambda_result_selectors_pick_every_field_of_the_output_model() -> None:
    from fmops.schemas import tuning

    for name, model_name in HPO_OUTPUTS.items():
        model = getattr(tuning, model_name)
        selector = HPO_STATES[name]["ResultSelector"]
        assert {k.removesuffix(".$") for k in selector} == set(model.model_fields), name
        assert all(v == f"$.Payload.{k.removesuffix('.$')}" for k, v in selector.items()), name
    selected = {k.removesuffix(".$") for k in HPO_STATES["Run tuning job"]["ResultSelector"]}
    assert selected == set(tuning.TuningJobRef.model_fields)


def test_the_tuning_job_maps_the_planned_request_field_by_field(env: dict[str, str]) -> None:
    from fmops_testkit import load_event

    from fmops.config import PlanTrainingSettings
    from fmops.lifecycle.training import plan_sagemaker
    from fmops.lifecycle.tuning import plan_tuning
    from fmops.schemas import parse

    parameters = HPO_STATES["Run tuning job"]["Parameters"]
    definition = parameters["TrainingJobDefinition"]
    assert definition["RoleArn"] == "${SageMakerRoleArn}"
    prefix = "$.tuning_spec.sagemaker."
    top = {k.removesuffix(".$"): v for k, v in parameters.items() if k.endswith(".$")}
    nested = {k.removesuffix(".$"): v for k, v in definition.items() if k.endswith(".$")}
    assert all(v == prefix + k for k, v in top.items())
    assert all(v == prefix + "TrainingJobDefinition." + k for k, v in nested.items())

    raw = load_event("plan_training")
    raw["run"]["tuning"] = {"ranges": {"learning_rate": {"type": "continuous", "min": 1e-5, "max": 1e-3}}}
    event = parse(steps.PlanTrainingEvent, raw)
    training = plan_sagemaker(event.run, event.dataset, PlanTrainingSettings.from_env())
    spec = plan_tuning(event.run, training, stack_name="fmops-test")
    assert set(top) | {"TrainingJobDefinition"} == set(spec.sagemaker)
    assert set(nested) | {"RoleArn"} == set(spec.sagemaker["TrainingJobDefinition"])


def test_the_hpo_definition_parses_with_the_local_interpreter() -> None:
    parser = pytest.importorskip("moto.stepfunctions.parser.asl.parse.asl_parser")
    text = re.sub(
        r"\$\{(\w+)\}", lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:{m.group(1)}", HPO_PATH.read_text()
    )
    program, _ = parser.AmazonStateLanguageParser.parse(text)
    assert program is not None


def test_a_run_with_tuning_runs_the_hpo_state_machine_and_continues_with_its_best_job() -> None:
    choice = STATES["Choose training backend"]
    tuned = [c for c in choice["Choices"] if c["Next"] == "Tune hyperparameters"]
    assert tuned == [
        {
            "And": [
                {"Variable": "$.run.tuning", "IsPresent": True},
                {"Variable": "$.run.tuning", "IsNull": False},
            ],
            "Next": "Tune hyperparameters",
        }
    ]
    assert choice["Choices"][0]["Next"] == "Train on Bedrock"  # a Bedrock run never reaches tuning
    tune = STATES["Tune hyperparameters"]
    assert tune["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
    # The child's name derives from the run's execution name: a retried state never starts a second tuning.
    assert tune["Parameters"]["Name.$"] == "States.Format('{}-hpo', $$.Execution.Name)"
    assert tune["Parameters"]["StateMachineArn"] == "${HpoStateMachineArn}"
    assert {k.removesuffix(".$") for k in tune["Parameters"]["Input"]} == {
        "run",
        "training_spec",
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID",
    }
    from fmops.schemas.tuning import TuningResult

    selected = {k.removesuffix(".$"): v for k, v in tune["ResultSelector"].items()}
    assert set(selected) - {"execution_arn"} == set(TuningResult.model_fields)
    assert all(v == f"$.Output.{k}" for k, v in selected.items() if k != "execution_arn")
    # $.training is what "Train on SageMaker" selects from DescribeTrainingJob, read from the best job's.
    best = STATES["Use best training job"]
    assert best["ResultPath"] == "$.training"
    train = STATES["Train on SageMaker"]["ResultSelector"]
    assert {
        k: v.replace("$.", "$.tuning.best_training_job.", 1) if k.endswith(".$") else v for k, v in train.items()
    } == (best["Parameters"])
    assert set(best["Parameters"]) == {f"{k}.$" if k != "backend" else k for k in steps.TrainingResult.model_fields} - {
        "custom_model_arn.$",
        "output_uri.$",
    }
    hyperparameters = STATES["Use tuned hyperparameters"]
    assert (hyperparameters["InputPath"], hyperparameters["ResultPath"]) == (
        "$.tuning.hyperparameters",
        "$.run.hyperparameters",
    )
    assert hyperparameters["Next"] == STATES["Train on SageMaker"]["Next"] == "Plan evaluation"
