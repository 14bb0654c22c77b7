"""The two ends of a run: success, and the notify-and-fail path."""

from __future__ import annotations

import json
from typing import Any

from fmops.aws.bedrock import Bedrock
from fmops.aws.dynamodb import Table
from fmops.aws.sagemaker import SageMaker
from fmops.aws.sns import Notifier
from fmops.errors import ResourceNotFoundError
from fmops.lifecycle._common import STATUS_FAILED, STATUS_SUCCEEDED, Clock, fmt, iso, truncate, utcnow
from fmops.observability import logger, metrics
from fmops.schemas.steps import CompleteRunEvent, FailureResult, HandleFailureEvent, RunCompletion

CAUSE_LIMIT = 4000


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
    tuned, base = evaluation.finetuned_metrics, evaluation.base_metrics
    notifier.publish(
        f"fmops: run {run.run_id} deployed to {deployment.endpoint_name}",
        "\n".join(
            [
                f"Run {run.run_id} (use case {run.use_case}) succeeded.",
                f"Serving: {deployment.endpoint_name} ({deployment.backend}, status {event.endpoint.status})",
                f"Model package: {event.model_package.model_package_arn}",
                f"accuracy {fmt(tuned.accuracy)} (base {fmt(base.accuracy)}), "
                f"f1_macro {fmt(tuned.f1_macro)} (base {fmt(base.f1_macro)})",
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
        return "Train on Bedrock" if backend == "bedrock" else "Train on SageMaker"
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


def readable_failure(event: HandleFailureEvent, step: str) -> tuple[str, str]:
    """``(error, cause)`` for people: the Lambda's own message, the job's FailureReason, a timeout in words."""
    error = event.error.error
    raw = event.error.cause or ""
    cause = raw
    try:
        parsed: Any = json.loads(raw) if raw.lstrip().startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if isinstance(parsed.get("errorMessage"), str):
            cause = parsed["errorMessage"]
            if error in ("States.TaskFailed", "Lambda.Unknown") and isinstance(parsed.get("errorType"), str):
                error = parsed["errorType"]
        else:
            reason = parsed.get("FailureReason") or parsed.get("FailureMessage") or parsed.get("failureMessage")
            if reason:
                job = (
                    parsed.get("TrainingJobName")
                    or parsed.get("ProcessingJobName")
                    or parsed.get("JobName")
                    or parsed.get("jobName")
                    or "job"
                )
                status = (
                    parsed.get("TrainingJobStatus")
                    or parsed.get("ProcessingJobStatus")
                    or parsed.get("Status")
                    or parsed.get("status")
                    or "Failed"
                )
                cause = f"{job} {status}: {reason}"
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
