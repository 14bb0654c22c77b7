"""The process-wide local runtime: the job executor and the model-server pool the patches use."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fmops_local.executor import ExecutorSettings, LocalExecutor
from fmops_local.model_server import ModelServerPool


@dataclass
class LocalRuntime:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fmops-local-")))
    executor: LocalExecutor = field(init=False)
    models: ModelServerPool = field(init=False)

    def __post_init__(self) -> None:
        self.executor = LocalExecutor(ExecutorSettings(root=self.root / "jobs"))
        self.models = ModelServerPool(self.root)

    def shutdown(self) -> None:
        self.executor.shutdown()
        self.models.shutdown()


_CURRENT: LocalRuntime | None = None


def current() -> LocalRuntime:
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = LocalRuntime()
    return _CURRENT


def replace(runtime: LocalRuntime | None) -> None:
    global _CURRENT
    if _CURRENT is not None and _CURRENT is not runtime:
        _CURRENT.shutdown()
    _CURRENT = runtime
