"""The two ends of a run: success, and the notify-and-fail path."""

from __future__ import annotations

import json
import re
from typing import Any

from fmops.aws.bedrock import Bedrock
from fmops.aws.dynamodb import Table
from fmops.aws.sagemaker import SageMaker
from fmops.aws.sns import Notifier
from fmops.errors import ResourceNotFoundError
from fmops.lifecycle._common import STATUS_FAILED, STATUS_SUCCEEDED, Clock, fmt, iso, truncate, utcnow
from fmops.observability import logger, metrics
from fmops.schemas.run import TASK_METRICS, RunRequest
from fmops.schemas.steps import CompleteRunEvent, EvaluationResult, FailureResult, HandleFailureEvent, RunCompletion

CAUSE_LIMIT = 4000
TUNING_STEP = "Tune hyperparameters"
# Reported metrics for which lower is better (they cannot gate).
LOWER_IS_BETTER = frozenset({"hamming_loss", "perplexity"})
# How the local AWS (moto's Step Functions) refuses a Fail state whose ErrorPath resolves to a States.* name.
RERAISED_STATES_ERROR = re.compile(r"MUST NOT begin with the prefix 'States\.', got '(States\.[A-Za-z]+)'")
# Causes nested deeper than this (a child execution's cause holding another's...) are shown as they are.
MAX_CAUSE_DEPTH = 4


def metric_lines(run: RunRequest, evaluation: EvaluationResult) -> list[str]:
    """The run's metrics for the success notification, for every task: the gate metric first (fine-tuned, base,
    threshold, the champion's when one was evaluated, and the paired bootstrap's 95% interval of the fine-tuned minus
    base difference when the evaluation carries it), then the task's other metrics, each beside the base model's."""
    tuned, base = evaluation.finetuned_metrics.values(), evaluation.base_metrics.values()
    gate = run.metric
    parts = [f"base {fmt(base.get(gate))}", f"threshold {fmt(run.threshold)}"]
    if evaluation.champion_metrics is not None:
        parts.append(f"champion {fmt(evaluation.champion_metrics.values().get(gate))}")
    line = f"{gate} (gate metric, {evaluation.test_count} test records): {fmt(tuned.get(gate))} ({', '.join(parts)})"
    test = evaluation.paired_tests.get("finetuned_vs_base")
    if test is not None and test.metric == gate:
        low, high = test.delta_ci
        line += f"; fine-tuned - base {test.delta:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}] (paired bootstrap)"
    known = TASK_METRICS.get(run.task, ())
    others = [n for n in known if n != gate and n in tuned] + sorted(n for n in tuned if n not in known and n != gate)
    lines = [line]
    if others:
        lines.append(
            ", ".join(
                f"{name} {fmt(tuned[name])} (base {fmt(base.get(name))})"
                + (" (lower is better)" if name in LOWER_IS_BETTER else "")
                for name in others
            )
        )
    return lines


def complete_run(event: CompleteRunEvent, *, runs: Table, notifier: Notifier, clock: Clock = utcnow) -> RunCompletion:
    """Mark the run SUCCEEDED (endpoint, package, metrics) and notify.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    run, evaluation, deployment = event.run, event.evaluation, event.deployment
    now = iso(clock())
    runs.update(
        run.run_id,
        {
            "status": STATUS_SUCCEEDED,
            "endpoint_name": deployment.endpoint_name,
            "model_package_arn": event.model_package.model_package_arn,
            "base_metrics": evaluation.base_metrics.model_dump(),
            "finetuned_metrics": evaluation.finetuned_metrics.model_dump(),
            "report_uri": evaluation.report_uri,
            "completed_at": now,
            "updated_at": now,
        },
    )
    tuned = evaluation.finetuned_metrics
    notifier.publish(
        f"fmops: run {run.run_id} deployed to {deployment.endpoint_name}",
        "\n".join(
            [
                f"Run {run.run_id} (use case {run.use_case}, task {run.task}) succeeded.",
                f"Serving: {deployment.endpoint_name} ({deployment.backend}, status {event.endpoint.status})",
                f"Model package: {event.model_package.model_package_arn}",
                *metric_lines(run, evaluation),
                f"Approved by {event.approval.approver}: {event.approval.reason}",
                f"Report: {evaluation.report_uri}",
            ]
        ),
        {"run_id": run.run_id, "status": STATUS_SUCCEEDED},
    )
    metrics.add_metric(name="RunsSucceeded", unit="Count", value=1)
    return RunCompletion(
        run_id=run.run_id,
        status="SUCCEEDED",
        endpoint_name=deployment.endpoint_name,
        model_package_arn=event.model_package.model_package_arn,
        finetuned_metrics=tuned,
    )


def failed_step(event: HandleFailureEvent) -> str:
    """The state that failed, from which results the workflow state already holds."""
    backend = (event.run or {}).get("backend", "sagemaker")
    if event.dataset is None:
        if event.data_plan is None:
            return "Plan data validation"
        if event.data_plan.get("sharded") and event.shard_results is None:
            return "Validate shards"
        return "Validate and split dataset"
    if event.training_spec is None:
        return "Plan training"
    if event.training is None:
        if backend == "bedrock":
            return "Train on Bedrock"
        return TUNING_STEP if (event.run or {}).get("tuning") else "Train on SageMaker"
    if event.evaluation is None:
        if backend == "bedrock":
            return "Evaluate Bedrock model"
        if event.evaluation_spec is None:
            return "Plan evaluation"
        return "Evaluate on SageMaker" if event.evaluation_job is None else "Compute metrics"
    if event.model_package is None:
        return "Register model"
    if event.gate is None or not event.gate.get("passed"):
        return "Quality gate"
    if event.approval is None:
        return "Request approval"
    if event.deployment is None:
        return "Deploy model"
    if (event.endpoint or {}).get("status") == "InService":
        return "Complete run"
    return "Wait for endpoint"


def _json_object(raw: str) -> dict[str, Any] | None:
    """``raw`` as a JSON object, or None when it is not one."""
    if not raw.lstrip().startswith("{"):
        return None
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _first_str(document: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = document.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _is_execution(document: dict[str, Any]) -> bool:
    """A DescribeExecution response: what ``states:startExecution.sync`` / ``.sync:2`` put in the Cause when the child
    execution did not succeed (PascalCase as Step Functions gives it; boto3's camelCase accepted too)."""
    return any(key in document for key in ("ExecutionArn", "executionArn")) or (
        any(key in document for key in ("Error", "error"))
        and any(key in document for key in ("Cause", "cause", "Status", "status"))
        and "errorMessage" not in document
    )


def _as_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _unwrap(error: str, raw: str, depth: int = 0) -> tuple[str, str]:
    """``(error, cause)`` with the cause's JSON read: a Lambda's ``errorMessage`` (and ``errorType`` for a generic
    error name); a child execution's own Error and Cause, read again (the HPO state machine fails with the error of
    the state that failed in it: a Lambda's, or the tuning job's ``States.TaskFailed``); a job's FailureReason."""
    parsed = _json_object(raw)
    if parsed is None or depth >= MAX_CAUSE_DEPTH:
        return error, raw
    if isinstance(parsed.get("errorMessage"), str):
        if error in ("States.TaskFailed", "Lambda.Unknown") and isinstance(parsed.get("errorType"), str):
            error = parsed["errorType"]
        return error, parsed["errorMessage"]
    if _is_execution(parsed):
        name = _first_str(parsed, "Name", "name") or _first_str(parsed, "ExecutionArn", "executionArn") or "execution"
        status = _first_str(parsed, "Status", "status") or "FAILED"
        inner_error = _first_str(parsed, "Error", "error")
        inner_cause = _as_text(parsed.get("Cause", parsed.get("cause")))
        if not inner_cause:
            # No cause of its own (a state machine's Fail state may give none): its output, if it wrote one.
            inner_cause = _as_text(parsed.get("Output", parsed.get("output")))
        if inner_error is None and not inner_cause:
            return error, f"execution {name} ended {status}"
        found_error, found_cause = _unwrap(inner_error or error, inner_cause, depth + 1)
        reraised = RERAISED_STATES_ERROR.search(found_cause) if found_error == "States.Runtime" else None
        if reraised:
            # The child's Fail state re-raised a caught States.* error, which Step Functions refuses (the local AWS
            # says so in these words): its own cause is gone; name the failure after the error it re-raised.
            found_error = reraised.group(1)
            found_cause = (
                f"{found_error}, re-raised by a Fail state (which may not raise States.* errors): its cause was lost"
            )
        if not found_cause.strip():
            found_cause = f"ended with {found_error}"
        return found_error, f"execution {name} {status}: {found_cause}"
    reason = _first_str(parsed, "FailureReason", "FailureMessage", "failureMessage")
    if reason:
        job = _first_str(
            parsed,
            "TrainingJobName",
            "ProcessingJobName",
            "HyperParameterTuningJobName",
            "JobName",
            "jobName",
        )
        job_status = _first_str(
            parsed,
            "TrainingJobStatus",
            "ProcessingJobStatus",
            "HyperParameterTuningJobStatus",
            "Status",
            "status",
        )
        if "HyperParameterTuningJobName" in parsed and job is not None:
            job = f"tuning job {job}"
        return error, f"{job or 'job'} {job_status or 'Failed'}: {reason}"
    return error, raw


def readable_failure(event: HandleFailureEvent, step: str) -> tuple[str, str]:
    """``(error, cause)`` for people: the Lambda's own message, the job's FailureReason, a timeout in words; for the
    HPO child execution (``Tune hyperparameters``), the error and cause of what failed inside it."""
    error, cause = _unwrap(event.error.error, event.error.cause or "")
    if error == "States.Timeout" and step == "Request approval":
        timeout = (event.run or {}).get("approval_timeout_seconds")
        error = "ApprovalTimedOut"
        cause = f"the approval timed out after {timeout} seconds without a decision"
    elif error == "States.Timeout":
        cause = f"{step} timed out" + (f": {cause}" if cause else "")
    if not cause.strip():
        cause = "the approval was rejected" if error == "ApprovalRejected" else f"{error} in {step}"
    return _public_error_name(error, step), truncate(cause, CAUSE_LIMIT)


def _public_error_name(error: str, step: str) -> str:
    """A Fail state may not raise a ``States.*`` name: name the failure after what failed instead."""
    if not error.startswith("States."):
        return error
    if error == "States.TaskFailed" and step.startswith("Train"):
        return "TrainingJobFailed"
    if error == "States.TaskFailed" and step == TUNING_STEP:
        return "HyperparameterTuningFailed"
    if error == "States.TaskFailed" and step.startswith("Evaluate"):
        return "EvaluationJobFailed"
    return error.removeprefix("States.")


def _with_endpoint_reason(cause: str, deployment: dict[str, Any] | None, sagemaker: SageMaker) -> str:
    """A failed endpoint's own FailureReason is the useful part of the cause."""
    name = (deployment or {}).get("endpoint_name")
    if not isinstance(name, str) or not name:
        return cause
    reason = (sagemaker.describe_endpoint(name) or {}).get("FailureReason")
    return f"{cause}: {reason}" if reason else cause


def handle_failure(
    event: HandleFailureEvent,
    *,
    runs: Table,
    approvals: Table,
    sagemaker: SageMaker,
    notifier: Notifier,
    bedrock: Bedrock | None = None,
    clock: Clock = utcnow,
) -> FailureResult:
    """Mark the run FAILED, drop a pending approval token, reject an unapproved package, release any
    Bedrock provisioned throughput of the run (billed by the hour), notify.

    Works on partial or malformed state (a bad request has no valid run); every step is idempotent.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    step = failed_step(event)
    error, cause = readable_failure(event, step)
    if error == "EndpointFailed":
        cause = _with_endpoint_reason(cause, event.deployment, sagemaker)
    run = event.run or {}
    run_id = run.get("run_id") if isinstance(run.get("run_id"), str) else None
    now = iso(clock())
    if run_id:
        runs.update(
            run_id,
            {
                "status": STATUS_FAILED,
                "error": error,
                "cause": cause,
                "failed_step": step,
                "failed_at": now,
                "updated_at": now,
            },
        )
        approvals.delete(run_id)
    package_arn = (event.model_package or {}).get("model_package_arn")
    rejected = False
    if isinstance(package_arn, str) and package_arn:
        try:
            package = sagemaker.describe_model_package(package_arn)
        except ResourceNotFoundError:
            package = None
        if package is not None and package.get("ModelApprovalStatus") != "Approved":
            sagemaker.update_approval_status(package_arn, "Rejected", f"run failed at {step}: {error}: {cause}")
            rejected = True
    provisioned = (event.deployment or {}).get("provisioned_model_arn")
    released = bool(
        bedrock is not None
        and isinstance(provisioned, str)
        and provisioned
        and bedrock.delete_provisioned_throughput(provisioned)
    )
    lines = [
        f"Run {run_id or '(unknown: the request was malformed)'} failed.",
        f"Use case: {run.get('use_case', 'unknown')}",
        f"Failed state: {step}",
        f"Error: {error}",
        f"Cause: {cause}",
    ]
    if rejected:
        lines.append(f"Model package set to Rejected: {package_arn}")
    if released:
        lines.append(f"Bedrock provisioned throughput deleted: {provisioned}")
    notifier.publish(
        f"fmops: run {run_id or 'unknown'} FAILED at {step}",
        "\n".join(lines),
        {"run_id": run_id or "", "status": STATUS_FAILED},
    )
    metrics.add_metric(name="RunsFailed", unit="Count", value=1)
    logger.warning("run failed", extra={"run_id": run_id, "step": step, "error": error, "cause": cause})
    return FailureResult(run_id=run_id, error=error, cause=cause, failed_step=step)
