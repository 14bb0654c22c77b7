"""Approval: token stored with a TTL, notification saying how, exactly one decision wins."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from fmops_testkit import FIXED_NOW, FakeAws, RecordingStepFunctions, fixed_clock, load_event

from fmops.config import RequestApprovalSettings
from fmops.errors import ApprovalAlreadyDecidedError, ApprovalNotFoundError, ResourceNotFoundError
from fmops.lifecycle.approval import decide_approval, get_approval, list_approvals, request_approval
from fmops.schemas import parse
from fmops.schemas.steps import RequestApprovalEvent

RUN_ID = "churn-3f2a9c1d0b7e"
ALICE = "arn:aws:iam::123456789012:user/alice"


def pending_package() -> str:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    return str(
        client.create_model_package(
            ModelPackageGroupName="churn",
            ModelPackageDescription=f"fmops run {RUN_ID}",
            ModelApprovalStatus="PendingManualApproval",
        )["ModelPackageArn"]
    )


def request(aws: FakeAws, package_arn: str | None = None) -> RequestApprovalEvent:
    raw = load_event("request_approval")
    if package_arn:
        raw["model_package"]["model_package_arn"] = package_arn
    event = parse(RequestApprovalEvent, raw)
    request_approval(
        event,
        approvals=aws.approvals,
        runs=aws.runs,
        notifier=aws.notifier,
        settings=RequestApprovalSettings.from_env(),
        clock=fixed_clock,
    )
    return event


def decide(aws: FakeAws, decision: str, sfn: RecordingStepFunctions, who: str = ALICE, reason: str = "looks good"):  # type: ignore[no-untyped-def]
    return decide_approval(
        RUN_ID,
        decision,  # type: ignore[arg-type]
        approver=who,
        reason=reason,
        approvals=aws.approvals,
        runs=aws.runs,
        sagemaker=aws.sagemaker,
        sfn=sfn,
        clock=fixed_clock,
    )


def test_request_stores_the_token_with_a_ttl_and_says_how_to_decide(aws: FakeAws) -> None:
    # Given a run that passed the gate, When approval is requested
    event = request(aws)
    # Then the token is stored until the timeout plus a margin, and the notification says what and how
    item = aws.approvals.get(RUN_ID)
    assert item is not None
    assert item["task_token"] == event.task_token
    assert item["model_package_arn"] == event.model_package.model_package_arn
    expected_ttl = FIXED_NOW + timedelta(seconds=86400 + 3600)
    assert item["expires_at"] == int(expected_ttl.timestamp())
    assert item["requested_at"] == "2025-01-01T12:00:00Z"
    [note] = aws.messages()
    assert note["Subject"] == f"fmops: approval needed for {RUN_ID}"
    body = note["Message"]
    assert f'fmops approve {RUN_ID} --reason "..."' in body
    assert f'fmops reject {RUN_ID} --reason "..."' in body
    assert f"POST https://abc123.execute-api.us-east-1.amazonaws.com/prod/approvals/{RUN_ID}/approve" in body
    assert "accuracy: fine-tuned 0.9600, base 0.5200" in body
    assert event.evaluation.report_uri in body
    assert event.model_package.model_package_arn in body
    run = aws.runs.get(RUN_ID)
    assert run is not None and run["status"] == "AWAITING_APPROVAL"


def test_pending_approvals_are_listed_without_their_token(aws: FakeAws) -> None:
    request(aws)
    listed = list_approvals(approvals=aws.approvals, clock=fixed_clock)
    assert [a.run_id for a in listed.approvals] == [RUN_ID]
    assert "task_token" not in listed.approvals[0].model_dump()
    assert get_approval(RUN_ID, approvals=aws.approvals).value == 0.96
    later = FIXED_NOW + timedelta(days=3)
    assert list_approvals(approvals=aws.approvals, clock=lambda: later).approvals == []


def test_approve_resumes_the_execution_and_approves_the_package(aws: FakeAws) -> None:
    package = pending_package()
    event = request(aws, package)
    sfn = RecordingStepFunctions()
    result = decide(aws, "approved", sfn)
    assert result.decision == "approved" and result.approver == ALICE
    assert sfn.calls == [
        (
            "success",
            {
                "token": event.task_token,
                "output": {
                    "decision": "approved",
                    "approver": ALICE,
                    "reason": "looks good",
                    "decided_at": "2025-01-01T12:00:00Z",
                },
            },
        )
    ]
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == f"approved by {ALICE}: looks good"
    assert aws.approvals.get(RUN_ID) is None
    run = aws.runs.get(RUN_ID)
    assert run is not None and run["status"] == "APPROVED" and run["approval"]["approver"] == ALICE


def test_reject_fails_the_waiting_state_with_approval_rejected(aws: FakeAws) -> None:
    package = pending_package()
    request(aws, package)
    sfn = RecordingStepFunctions()
    decide(aws, "rejected", sfn, reason="f1 too low")
    [(kind, call)] = sfn.calls
    assert kind == "failure"
    assert call["error"] == "ApprovalRejected"
    assert call["cause"] == f"rejected by {ALICE}: f1 too low"
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Rejected"


def test_a_second_decision_is_a_conflict(aws: FakeAws) -> None:
    request(aws, pending_package())
    sfn = RecordingStepFunctions()
    decide(aws, "approved", sfn)
    with pytest.raises(ApprovalAlreadyDecidedError, match=f"already decided: approved by {ALICE}"):
        decide(aws, "rejected", sfn, who="arn:aws:iam::123456789012:user/bob")
    assert len(sfn.calls) == 1


def test_a_lost_race_is_a_conflict(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given another decision deletes the token between our read and our conditional delete
    request(aws)
    table = aws.approvals
    original = table.delete

    def racing_delete(key: str, only_if_exists: bool = False) -> bool:
        original(key)
        return original(key, only_if_exists=only_if_exists)

    monkeypatch.setattr(table, "delete", racing_delete)
    sfn = RecordingStepFunctions()
    with pytest.raises(ApprovalAlreadyDecidedError):
        decide_approval(
            RUN_ID,
            "approved",
            approver=ALICE,
            reason="r",
            approvals=table,
            runs=aws.runs,
            sagemaker=aws.sagemaker,
            sfn=sfn,
        )
    assert sfn.calls == []


def test_no_pending_approval_is_not_found(aws: FakeAws) -> None:
    with pytest.raises(ApprovalNotFoundError, match=f"no pending approval for run {RUN_ID}"):
        decide(aws, "approved", RecordingStepFunctions())


def test_an_approval_after_the_timeout_rejects_the_package(aws: FakeAws) -> None:
    package = pending_package()
    request(aws, package)
    sfn = RecordingStepFunctions(fail_with=ApprovalNotFoundError("the execution no longer waits"))
    with pytest.raises(ApprovalNotFoundError):
        decide(aws, "approved", sfn)
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Rejected"


def test_a_failure_before_the_decision_puts_the_token_back(aws: FakeAws) -> None:
    # Given a pending approval whose model package cannot be updated (it does not exist)
    request(aws, "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/99")
    sfn = RecordingStepFunctions()
    # When someone approves, Then the error surfaces, nothing was sent, and the approval is still pending
    with pytest.raises(ResourceNotFoundError, match="model package .*/churn/99 does not exist"):
        decide(aws, "approved", sfn)
    assert sfn.calls == []
    assert aws.approvals.get(RUN_ID) is not None
