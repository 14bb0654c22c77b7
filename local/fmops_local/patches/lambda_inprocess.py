"""Run Lambda functions in-process instead of in Docker.

moto's only Docker touch point is ``LambdaFunction._invoke_lambda``; every invoke path (API, Step
Functions, EventBridge, SNS) goes through it. We unzip the deployed code once, import the handler
module by file path under a unique module name, and call it with the event and a context object.
Errors come back as ``{"errorType", "errorMessage"}`` so that Step Functions Retry/Catch see the
exception's class name, exactly as on AWS.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# One lock for all handlers: os.environ and the stdout proxy are process-wide.
_LOCK = threading.RLock()
_CODE_ROOT = tempfile.mkdtemp(prefix="fmops-lambda-")
_MODULES: dict[str, ModuleType] = {}


class _ThreadLocalStdout(io.TextIOBase):
    """A stdout that a thread can temporarily capture (handler logs go to CloudWatch, not the terminal)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._local = threading.local()

    def capture(self) -> io.StringIO:
        buf = io.StringIO()
        self._local.buf = buf
        return buf

    def release(self) -> None:
        self._local.buf = None

    def write(self, s: str) -> int:
        buf = getattr(self._local, "buf", None)
        return (buf or self._real).write(s)

    def flush(self) -> None:
        buf = getattr(self._local, "buf", None)
        (buf or self._real).flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")


def install_stdout_proxy() -> _ThreadLocalStdout:
    """Install (once) the thread-aware stdout used to capture handler output."""
    if not isinstance(sys.stdout, _ThreadLocalStdout):
        sys.stdout = _ThreadLocalStdout(sys.stdout)
    return sys.stdout


@dataclass
class LambdaContext:
    """The subset of the Lambda context object that handlers and Powertools use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + self.aws_request_id.replace("-", "")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_OVERLAY = threading.local()  # .stack: this thread's in-process invocations, innermost last
_DELETED = object()


def _layer() -> dict[str, Any] | None:
    stack = getattr(_OVERLAY, "stack", None)
    return stack[-1] if stack else None


class _SnapshotEnviron(os._Environ):  # type: ignore[misc,type-arg,unused-ignore]
    """``os.environ`` with a per-thread overlay for in-process Lambda invocations.

    Handlers run in-process, and they read their configuration (``STACK_NAME``, ``AWS_LAMBDA_FUNCTION_NAME``...)
    from the environment. Setting those process-wide and removing them afterwards raced with other threads
    (seen in CI as runs failing with ``'AWS_LAMBDA_FUNCTION_NAME'`` and ``'STACK_NAME'``). Instead, an
    invocation pushes its variables as an overlay seen only by its own thread: reads, writes, deletes,
    iteration and ``copy()`` in that thread see the process environment plus the overlay; other threads and
    the process environment (what subprocesses inherit) never change.
    """

    def __getitem__(self, key: str) -> str:
        layer = _layer()
        if layer is not None and key in layer:
            value = layer[key]
            if value is _DELETED:
                raise KeyError(key)
            return str(value)
        return str(super().__getitem__(key))

    def __setitem__(self, key: str, value: str) -> None:
        layer = _layer()
        if layer is None:
            super().__setitem__(key, value)
        else:
            layer[str(key)] = str(value)

    def __delitem__(self, key: str) -> None:
        layer = _layer()
        if layer is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        layer[key] = _DELETED

    def copy(self) -> dict[str, str]:
        # The process part is copied in one step under the GIL: no key can vanish between listing and reading.
        data = self._data.copy()
        out = {self.decodekey(k): self.decodevalue(v) for k, v in data.items()}
        layer = _layer()
        for key, value in (layer or {}).items():
            if value is _DELETED:
                out.pop(key, None)
            else:
                out[key] = str(value)
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.copy()))

    def __len__(self) -> int:
        return len(self.copy())

    def __contains__(self, key: object) -> bool:
        layer = _layer()
        if layer is not None and key in layer:
            return layer[key] is not _DELETED
        return super().__contains__(key)


def _install_snapshot_environ() -> None:
    if not isinstance(os.environ, _SnapshotEnviron):
        os.environ.__class__ = _SnapshotEnviron


def environment_lock() -> threading.RLock:
    """The lock every change to the process environment takes (in-process handlers run under it too)."""
    return _LOCK


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The function's variables, visible to this thread only, for the duration of one invocation."""
    stack = getattr(_OVERLAY, "stack", None)
    if stack is None:
        stack = _OVERLAY.stack = []
    # A nested invocation (a handler that invokes another function in the same thread) starts from its caller's view.
    stack.append({**(stack[-1] if stack else {}), **values})
    try:
        yield
    finally:
        stack.pop()


def reset() -> None:
    """Forget every loaded handler: the next invoke of each function is a cold start."""
    with _LOCK:
        _MODULES.clear()


def _load_handler(code: bytes, handler: str, key: str, config: dict[str, str]) -> Callable[[Any, Any], Any]:
    digest = hashlib.sha256(code).hexdigest()[:16]
    module_path, _, func_name = handler.rpartition(".")
    # A new configuration (environment) means a new execution environment on AWS: a cold start.
    cache_key = f"{key}:{digest}:{module_path}:{hashlib.sha256(repr(sorted(config.items())).encode()).hexdigest()}"
    module = _MODULES.get(cache_key)
    if module is None:
        target = os.path.join(_CODE_ROOT, digest)
        if not os.path.isdir(target):
            with zipfile.ZipFile(io.BytesIO(code)) as zf:
                zf.extractall(target)
        file_path = os.path.join(target, *module_path.split(".")) + ".py"
        if not os.path.isfile(file_path):
            raise ImportError(f"Unable to import module '{module_path}': no {module_path}.py in the code")
        unique = "fmops_lambda_" + hashlib.sha1(cache_key.encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(unique, file_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        _MODULES[cache_key] = module
    func = getattr(module, func_name, None)
    if func is None:
        raise AttributeError(f"Handler '{func_name}' missing on module '{module_path}'")
    return func  # type: ignore[no-any-return,unused-ignore]


def invoke_in_process(fn: Any, event: Any) -> tuple[str, bool, str]:
    """Invoke a moto ``LambdaFunction`` in this process; returns (payload, errored, logs)."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "_HANDLER": fn.handler,
    }
    env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
    context = LambdaContext(
        function_name=fn.function_name,
        function_version=str(fn.version),
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=int(fn.memory_size),
        timeout_seconds=int(fn.timeout),
    )
    if isinstance(event, str):
        event = json.loads(event) if event else {}
    proxy = install_stdout_proxy()
    errored = False
    with _LOCK, _environment(env):
        buf = proxy.capture()
        try:
            handler = _load_handler(fn.code_bytes, fn.handler, fn.function_arn, env)
            result = handler(event, context)
            payload = json.dumps(result, default=str)
        except Exception as exc:  # the Lambda runtime's contract: any error becomes a payload
            errored = True
            payload = json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
            )
            traceback.print_exception(exc, file=buf)
        finally:
            proxy.release()
    logs = buf.getvalue()
    _save_logs(fn, context, logs)
    return payload, errored, logs


def _save_logs(fn: Any, context: LambdaContext, logs: str) -> None:
    try:
        fn.logs_backend.ensure_log_group(context.log_group_name)
        fn.logs_backend.create_log_stream(context.log_group_name, context.log_stream_name)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in logs.splitlines() if line.strip()]
        if events:
            fn.logs_backend.put_log_events(context.log_group_name, context.log_stream_name, events)
    except Exception:  # logging must never break an invoke
        pass


def apply() -> None:
    from moto.awslambda.models import LambdaFunction

    _install_snapshot_environ()

    def _invoke_lambda(self: Any, event: str | None = None) -> tuple[str, bool, str]:
        return invoke_in_process(self, event)

    LambdaFunction._invoke_lambda = _invoke_lambda
