"""Follow a workflow run as it happens: state by state, and the training job's log lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Printer = Callable[[str], None]


@dataclass
class ExecutionFollower:
    """Polls the execution history and training logs; prints what changed since the last poll."""

    sfn: Any
    logs: Any
    execution_arn: str
    echo: Printer = print
    _seen_events: int = 0
    _log_tokens: dict[str, int] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _exited: set[str] = field(default_factory=set)

    def poll(self) -> str:
        self._tail_job_logs()
        history = self.sfn.get_execution_history(executionArn=self.execution_arn, maxResults=1000)["events"]
        for event in history[self._seen_events :]:
            self._print_event(event)
        self._seen_events = len(history)
        return str(self.sfn.describe_execution(executionArn=self.execution_arn)["status"])

    def wait(self, timeout: float = 1800, interval: float = 0.5, until: Callable[[], bool] | None = None) -> str:
        deadline = time.monotonic() + timeout
        status = self.poll()
        while status == "RUNNING" and time.monotonic() < deadline:
            if until and until():
                return status
            time.sleep(interval)
            status = self.poll()
        return status

    def _print_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            if name in self._started:  # a polling loop goes round: say it once
                return
            self._started[name] = time.monotonic()
            self.echo(f"  → {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in self._exited:
                return
            self._exited.add(name)
            took = time.monotonic() - self._started.get(name, time.monotonic())
            self.echo(f"  ✓ {name} ({took:.1f} s)")
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"):
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            self.echo(f"  ✗ {kind}: {details.get('error')}: {str(details.get('cause'))[:300]}")

    def _tail_job_logs(self) -> None:
        for group in ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"):
            try:
                streams = self.logs.describe_log_streams(logGroupName=group)["logStreams"]
            except self.logs.exceptions.ResourceNotFoundException:
                continue
            for stream in streams:
                name = stream["logStreamName"]
                events = self.logs.get_log_events(logGroupName=group, logStreamName=name, startFromHead=True)["events"]
                start = self._log_tokens.get(name, 0)
                for ev in events[start:]:
                    line = ev["message"]
                    if "train_loss" in line or "validation_" in line or "Error" in line or "epoch" in line.lower():
                        self.echo(f"      [{name.split('/')[0]}] {line.strip()}")
                self._log_tokens[name] = len(events)
