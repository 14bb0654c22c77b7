"""The SageMaker model-serving contract around inference.py, as a small stdlib HTTP server.

``python serve.py --model-dir DIR --port N [--host 127.0.0.1] [--program inference.py]``

``GET /ping``: 200 once the model is loaded (503 before). ``POST /invocations``: ``input_fn`` →
``predict_fn`` → ``output_fn`` of the handler module; 400 ``{"error": ...}`` on a bad request, 500 on an
internal error. Port 0 picks a free port. Once listening with the model loaded it prints
``fmops-serve ready port=<N>`` on stdout. A model that cannot load ends the process with exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from fmops_training.runtime import failure_message

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints' payload limit


class _State:
    def __init__(self, handlers: ModuleType) -> None:
        self.handlers = handlers
        self.model: Any = None
        self.ready = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    server_version = "fmops-serve/1"
    protocol_version = "HTTP/1.1"
    state: _State

    def _send(self, status: int, body: bytes | str, content_type: str = "application/json") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != "/ping":
            self._error(404, f"no route GET {self.path}: use GET /ping or POST /invocations")
        elif self.state.ready.is_set():
            self._send(200, json.dumps({"status": "ok"}))
        else:
            self._send(503, json.dumps({"status": "loading"}))

    def do_POST(self) -> None:  # noqa: N802
        length_text = self.headers.get("Content-Length")
        if self.path.split("?", 1)[0] != "/invocations":
            self.close_connection = True
            self._error(404, f"no route POST {self.path}: use POST /invocations")
            return
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            self._error(411, "a Content-Length header is required")
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(413, f"request body of {length} bytes exceeds {MAX_BODY_BYTES} bytes")
            return
        body = self.rfile.read(length)
        if not self.state.ready.is_set():
            self._error(503, "model is loading")
            return
        handlers = self.state.handlers
        try:
            data = handlers.input_fn(body, self.headers.get("Content-Type"))
        except ValueError as exc:
            self._error(400, str(exc))
            return
        try:
            prediction = handlers.predict_fn(data, self.state.model)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error: {failure_message(exc)}")
            return
        try:
            out = handlers.output_fn(prediction, self.headers.get("Accept"))
        except ValueError as exc:
            self._error(406, str(exc))
            return
        if isinstance(out, tuple):  # output_fn may return (body, content type)
            out, content_type = out
        else:
            content_type = "application/json"
        self._send(200, out, content_type)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base class)
        sys.stderr.write(f"fmops-serve {self.address_string()} {format % args}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    p.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--program",
        default=os.environ.get("SAGEMAKER_PROGRAM", "inference.py"),
        help="handler module next to serve.py (default: $SAGEMAKER_PROGRAM or inference.py)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module = args.program.removesuffix(".py")
    try:
        handlers = importlib.import_module(module)
        for name in ("model_fn", "input_fn", "predict_fn", "output_fn"):
            if not callable(getattr(handlers, name, None)):
                raise ImportError(f"handler module {args.program} has no {name}()")
    except ImportError as exc:
        print(f"fmops-serve: cannot load handlers: {failure_message(exc)}", file=sys.stderr, flush=True)
        return 1

    state = _State(handlers)
    handler_class = type("Handler", (_Handler,), {"state": state})
    try:
        server = ThreadingHTTPServer((args.host, args.port), handler_class)
    except OSError as exc:
        print(f"fmops-serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fmops-serve", daemon=True).start()
    port = server.server_address[1]

    started = time.perf_counter()
    try:
        state.model = handlers.model_fn(str(args.model_dir))
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(f"fmops-serve: model in {args.model_dir} cannot be loaded: {failure_message(exc)}", file=sys.stderr)
        server.shutdown()
        return 1
    state.ready.set()
    print(f"fmops-serve ready port={port}", flush=True)
    print(f"fmops-serve: model {args.model_dir} loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
