"""Logger, Metrics and Tracer, created once per process.

The Powertools Tracer imports the X-Ray SDK when it is created (about 0.3 s), so ``tracer`` here is a thin
stand-in that creates the real Tracer at the first traced call, and only when tracing is on (in Lambda,
``POWERTOOLS_TRACE_DISABLED`` not true). The decorators keep Powertools' names and order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

F = TypeVar("F", bound=Callable[..., Any])

# The template sets POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE to "fmops" (CONTRACTS.md); the same
# default here keeps metrics valid when a process imports this module before the function's environment is set
# (the local AWS runs several handlers in one process).
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "fmops"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "fmops"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_enabled(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """True in Lambda unless POWERTOOLS_TRACE_DISABLED is set (the same rule as Powertools)."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true", "yes", "on"):
        return False
    if env.get("AWS_SAM_LOCAL", "").lower() == "true":
        return False
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))


class LazyTracer:
    """Defers ``aws_lambda_powertools.Tracer()`` (and the X-Ray SDK import) to the first traced call."""

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._checked = False

    @property
    def tracer(self) -> Tracer | None:
        """The Powertools Tracer, or None when tracing is off."""
        if not self._checked:
            self._checked = True
            if tracing_enabled():
                from aws_lambda_powertools import Tracer

                self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, capture_response: bool = True) -> Callable[[F], F]:
        """Same as ``Tracer.capture_lambda_handler``; a no-op when tracing is off."""

        def decorate(handler: F) -> F:
            wrapped: list[Callable[..., Any]] = []

            @functools.wraps(handler)
            def wrapper(event: Any, context: Any) -> Any:
                if not wrapped:
                    real = self.tracer
                    wrapped.append(
                        handler
                        if real is None
                        else real.capture_lambda_handler(handler, capture_response=capture_response)
                    )
                return wrapped[0](event, context)

            return wrapper  # type: ignore[return-value]

        return decorate

    def put_annotation(self, key: str, value: str | bool) -> None:
        """Annotate the current trace segment (no-op when tracing is off)."""
        real = self.tracer
        if real is not None:
            real.put_annotation(key=key, value=value)


tracer = LazyTracer()
