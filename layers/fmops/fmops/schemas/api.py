"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from fmops.schemas.base import FmopsModel, StrictModel


class DecisionBody(StrictModel):
    """POST /approvals/{run_id}/approve|reject body."""

    reason: str = Field(min_length=1, max_length=1000)


class PendingApproval(FmopsModel):
    """A pending approval as the API shows it (the task token is never returned)."""

    run_id: str
    use_case: str | None = None
    model_package_arn: str | None = None
    requested_at: str
    expires_at: int
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    report_uri: str | None = None


class ApprovalList(FmopsModel):
    """GET /approvals."""

    approvals: list[PendingApproval]


class DecisionResult(FmopsModel):
    """POST /approvals/{run_id}/approve|reject response."""

    run_id: str
    decision: Literal["approved", "rejected"]
    approver: str
    reason: str
    decided_at: str
    model_package_arn: str | None = None


class RunRecord(FmopsModel):
    """GET /runs/{run_id}: the run record (fields grow as the run moves on)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    run_id: str
    status: str
    use_case: str | None = None
    execution_arn: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class ErrorBody(FmopsModel):
    """Every API error."""

    error: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)
