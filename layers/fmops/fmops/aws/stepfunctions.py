"""AWS Step Functions: start executions and answer task tokens."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fmops.aws._base import AwsService, error_code, error_message, is_transient, translate
from fmops.errors import ApprovalNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

_TOKEN_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution named ``name`` of that state machine has."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


class StepFunctions(AwsService):
    """StartExecution, SendTaskSuccess, SendTaskFailure."""

    service_name = "stepfunctions"

    def __init__(self, client: SFNClient | None = None) -> None:
        super().__init__(client)

    def start_execution(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        """Start an execution named ``name``; ``(arn, False)`` when one with that name already exists.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        from botocore.exceptions import ClientError

        try:
            response = self.client.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return execution_arn(state_machine_arn, name), False
            raise translate(exc, f"StartExecution {name}") from exc
        return str(response["executionArn"]), True

    def _send(self, action: str, run_id: str, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            getattr(self.client, action)(**kwargs)
        except ClientError as exc:
            if error_code(exc) in _TOKEN_GONE and not is_transient(exc):
                raise ApprovalNotFoundError(
                    f"the execution of run {run_id} no longer waits for a decision "
                    f"({error_code(exc)}: {error_message(exc)})"
                ) from exc
            raise translate(exc, f"{action} {run_id}") from exc

    def send_task_success(self, task_token: str, output: dict[str, Any], run_id: str) -> None:
        """Resume the waiting state with ``output``.

        Raises:
            ApprovalNotFoundError: the token expired or the execution ended.
            TransientAwsError, AwsRequestError.
        """
        self._send("send_task_success", run_id, taskToken=task_token, output=json.dumps(output))

    def send_task_failure(self, task_token: str, error: str, cause: str, run_id: str) -> None:
        """Fail the waiting state with ``error`` / ``cause``.

        Raises:
            ApprovalNotFoundError: the token expired or the execution ended.
            TransientAwsError, AwsRequestError.
        """
        self._send("send_task_failure", run_id, taskToken=task_token, error=error[:256], cause=cause[:32768])
