"""Step Functions API gaps: ``SendTaskFailure`` loses its ``cause`` in moto's response handler."""

from __future__ import annotations

from typing import Any


def apply() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions import responses as sfr

    if getattr(sfr.StepFunctionResponse, "_fmops_patched", False):
        return
    sfr.StepFunctionResponse._fmops_patched = True

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    sfr.StepFunctionResponse.send_task_failure = send_task_failure
