"""Human approval with a Step Functions task token: request, list, decide."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal
from urllib.parse import quote

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sagemaker import SageMaker
from fmops.aws.sns import Notifier
from fmops.aws.stepfunctions import StepFunctions
from fmops.config import RequestApprovalSettings
from fmops.errors import ApprovalAlreadyDecidedError, ApprovalNotFoundError, ResourceNotFoundError
from fmops.lifecycle._common import (
    STATUS_APPROVED,
    STATUS_AWAITING_APPROVAL,
    STATUS_REJECTED,
    Clock,
    fmt,
    iso,
    metric_of,
    utcnow,
)
from fmops.observability import logger, metrics
from fmops.registry import history_entry, record_decision
from fmops.schemas.api import ApprovalList, DecisionResult, PendingApproval, RunRecord
from fmops.schemas.steps import ApprovalDecision, ApprovalRequested, RequestApprovalEvent

# The token item outlives the execution's own timeout a little, then DynamoDB TTL removes it.
TTL_MARGIN_SECONDS = 3600
REJECTED_ERROR = "ApprovalRejected"

Decision = Literal["approved", "rejected"]


def report_link(report_uri: str, region: str | None = None) -> str:
    """The report's S3 URI and, with a region (on AWS), its page in the S3 console: an HTTPS link that opens after
    console sign-in and never expires (a presigned URL would die with the Lambda role's session, before most
    approval deadlines)."""
    if not region or not report_uri.startswith("s3://") or "/" not in report_uri[5:]:
        return report_uri
    bucket, key = report_uri[5:].split("/", 1)
    console = f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}?region={quote(region)}&prefix={quote(key)}"
    return f"{report_uri} (open in the S3 console: {console})"


def console_region() -> str | None:
    """The region of the S3 console link: the function's own, None on the local AWS (no console there)."""
    return None if os.environ.get("AWS_ENDPOINT_URL") else os.environ.get("AWS_REGION")


def approval_message(event: RequestApprovalEvent, api_url: str, expires: str, region: str | None = None) -> str:
    """The notification body: what to approve, its metrics, the report, and exactly how to decide."""
    run, evaluation, gate = event.run, event.evaluation, event.gate
    base, tuned = evaluation.base_metrics, evaluation.finetuned_metrics
    url = api_url.rstrip("/")
    champion = f"{fmt(gate.champion_value)} ({gate.champion_arn})" if gate.champion_arn else "none approved yet"
    return "\n".join(
        [
            f"Run {run.run_id} (use case {run.use_case}) is waiting for your approval to deploy.",
            "",
            f"Model package:  {event.model_package.model_package_arn}",
            f"Base model:     {run.base_model} ({run.backend})",
            f"Data set:       {run.dataset.uri} (version {run.dataset.version_id})",
            f"{run.metric}: fine-tuned {fmt(metric_of(tuned, run.metric))}, base {fmt(metric_of(base, run.metric))}, "
            f"threshold {fmt(run.threshold)}, current champion {champion}",
            f"accuracy {fmt(tuned.accuracy)} (base {fmt(base.accuracy)}), "
            f"f1_macro {fmt(tuned.f1_macro)} (base {fmt(base.f1_macro)}) on {evaluation.test_count} test records",
            f"Gate: {gate.reason}",
            f"Report: {report_link(evaluation.report_uri, region)}",
            f"Decide before {expires}; without a decision the run fails.",
            "",
            "To approve:",
            f'  fmops approve {run.run_id} --reason "..."',
            "To reject:",
            f'  fmops reject {run.run_id} --reason "..."',
            "Or through the API (IAM auth, SigV4-signed):",
            f'  POST {url}/approvals/{run.run_id}/approve   body {{"reason": "..."}}',
            f'  POST {url}/approvals/{run.run_id}/reject    body {{"reason": "..."}}',
        ]
    )


def request_approval(
    event: RequestApprovalEvent,
    *,
    approvals: Table,
    runs: Table,
    notifier: Notifier,
    settings: RequestApprovalSettings,
    clock: Clock = utcnow,
) -> ApprovalRequested:
    """Store the task token for the run and notify the approvers.

    A retry overwrites the item with the newest token (the one the execution waits for).

    Raises:
        TransientAwsError, AwsRequestError.
    """
    run = event.run
    now = clock()
    deadline = now + timedelta(seconds=run.approval_timeout_seconds)
    expires_at = int((deadline + timedelta(seconds=TTL_MARGIN_SECONDS)).timestamp())
    tuned = event.evaluation.finetuned_metrics
    approvals.put(
        {
            "run_id": run.run_id,
            "task_token": event.task_token,
            "use_case": run.use_case,
            "model_package_arn": event.model_package.model_package_arn,
            "requested_at": iso(now),
            "deadline": iso(deadline),
            "expires_at": expires_at,
            "metric": run.metric,
            "value": metric_of(tuned, run.metric),
            "threshold": run.threshold,
            "report_uri": event.evaluation.report_uri,
        }
    )
    runs.update(run.run_id, {"status": STATUS_AWAITING_APPROVAL, "updated_at": iso(now)})
    notifier.publish(
        f"fmops: approval needed for {run.run_id}",
        approval_message(event, settings.api_url, iso(deadline), console_region()),
        {"run_id": run.run_id, "status": STATUS_AWAITING_APPROVAL},
    )
    metrics.add_metric(name="ApprovalsRequested", unit="Count", value=1)
    logger.info("approval requested", extra={"run_id": run.run_id, "deadline": iso(deadline)})
    return ApprovalRequested(run_id=run.run_id, requested_at=iso(now), expires_at=expires_at)


def _pending(item: dict[str, object]) -> PendingApproval:
    return PendingApproval.model_validate({k: v for k, v in item.items() if k != "task_token"})


def list_approvals(*, approvals: Table, clock: Clock = utcnow) -> ApprovalList:
    """Pending approvals, oldest first (expired items that TTL has not removed yet are left out)."""
    now = clock().timestamp()
    items = [i for i in approvals.scan() if int(str(i.get("expires_at", 0))) > now]
    pending = sorted((_pending(i) for i in items), key=lambda p: p.requested_at)
    return ApprovalList(approvals=pending)


def get_approval(run_id: str, *, approvals: Table) -> PendingApproval:
    """One pending approval.

    Raises:
        ApprovalNotFoundError.
    """
    item = approvals.get(run_id)
    if item is None:
        raise ApprovalNotFoundError(f"no pending approval for run {run_id}")
    return _pending(item)


def get_run(run_id: str, *, runs: Table) -> RunRecord:
    """The run record.

    Raises:
        ResourceNotFoundError.
    """
    item = runs.get(run_id)
    if item is None:
        raise ResourceNotFoundError(f"no run {run_id}")
    return RunRecord.model_validate(item)


def decide_approval(
    run_id: str,
    decision: Decision,
    *,
    approver: str,
    reason: str,
    approvals: Table,
    runs: Table,
    sagemaker: SageMaker,
    sfn: StepFunctions,
    clock: Clock = utcnow,
    s3: S3Storage | None = None,
    reports_bucket: str | None = None,
) -> DecisionResult:
    """Approve or reject a pending approval; exactly one decision wins.

    The token item is deleted conditionally first, so a second decision (or the failure handler) cannot
    also act. Then the model package status is set and the decision appended to the package's approval
    history (``fmops.registry.record_decision``; the full history goes to S3 when ``s3`` is given), the
    waiting state is resumed (SendTaskSuccess) or failed (SendTaskFailure ``ApprovalRejected``), and the run
    record updated.

    Raises:
        ApprovalNotFoundError: nothing pending for the run (404), or the execution stopped waiting.
        ApprovalAlreadyDecidedError: the run was already decided, or another decision won the race (409).
        TransientAwsError, AwsRequestError.
    """
    item = approvals.get(run_id)
    if item is None:
        previous = (runs.get(run_id) or {}).get("approval")
        if isinstance(previous, dict) and previous.get("decision"):
            raise ApprovalAlreadyDecidedError(
                f"the approval of run {run_id} was already decided: {previous['decision']} by "
                f"{previous.get('approver')} at {previous.get('decided_at')}"
            )
        raise ApprovalNotFoundError(f"no pending approval for run {run_id}")
    if not approvals.delete(run_id, only_if_exists=True):
        raise ApprovalAlreadyDecidedError(f"the approval of run {run_id} was already decided")
    decided_at = iso(clock())
    package_arn = str(item.get("model_package_arn") or "") or None
    token = str(item["task_token"])
    description = f"{decision} by {approver}: {reason}"
    try:
        if package_arn:
            record_decision(
                sagemaker,
                s3,
                package_arn,
                status="Approved" if decision == "approved" else "Rejected",
                description=description,
                entry=history_entry(approver, decided_at, decision, reason),
                reports_bucket=reports_bucket,
            )
        if decision == "approved":
            output = ApprovalDecision(decision=decision, approver=approver, reason=reason, decided_at=decided_at)
            sfn.send_task_success(token, output.model_dump(mode="json"), run_id)
        else:
            sfn.send_task_failure(token, REJECTED_ERROR, f"rejected by {approver}: {reason}", run_id)
    except ApprovalNotFoundError:
        # The execution stopped waiting (timed out or ended): the decision cannot count.
        if package_arn and decision == "approved":
            late = f"approval by {approver} arrived after the run stopped waiting"
            record_decision(
                sagemaker,
                s3,
                package_arn,
                status="Rejected",
                description=late,
                entry=history_entry("fmops", iso(clock()), "rejected", late),
                reports_bucket=reports_bucket,
            )
        raise
    except Exception:
        # Nothing was decided (a transient failure...): put the token back so the decision can be retried.
        approvals.put(item, only_if_absent=True)
        raise
    runs.update(
        run_id,
        {
            "status": STATUS_APPROVED if decision == "approved" else STATUS_REJECTED,
            "approval": {"decision": decision, "approver": approver, "reason": reason, "decided_at": decided_at},
            "updated_at": decided_at,
        },
    )
    metrics.add_metric(
        name="ApprovalsApproved" if decision == "approved" else "ApprovalsRejected", unit="Count", value=1
    )
    logger.info("approval decided", extra={"run_id": run_id, "decision": decision, "approver": approver})
    return DecisionResult(
        run_id=run_id,
        decision=decision,
        approver=approver,
        reason=reason,
        decided_at=decided_at,
        model_package_arn=package_arn,
    )
