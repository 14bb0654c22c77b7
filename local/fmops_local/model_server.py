"""Local model servers behind ``invoke_endpoint``.

Each deployed model (by its ``ModelDataUrl``) gets one server process speaking the SageMaker serving
contract (``GET /ping``, ``POST /invocations``), started from the model's serving code
(``SAGEMAKER_SUBMIT_DIRECTORY``/``SAGEMAKER_PROGRAM`` in the container environment, as the AWS
inference containers read them; the repository's ``training/`` when they are absent).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests

from fmops_local.s3io import download_prefix, extract_tarball

REPO_TRAINING_DIR = Path(__file__).resolve().parents[2] / "training"


class ModelServerError(Exception):
    """A model server could not start or answer."""


@dataclass
class ModelServer:
    model_data_url: str
    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ModelServerPool:
    """Starts at most one server per model artifact and keeps it for the life of the local AWS."""

    def __init__(self, root: Path, python: str = sys.executable, start_timeout: float = 180) -> None:
        self.root = root
        self.python = python
        self.start_timeout = start_timeout
        self._servers: dict[str, ModelServer] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(
        self, model_data_url: str, environment: dict[str, str], region: str, program: str | None = None
    ) -> ModelServer:
        """The running server for a model artifact (and handler module), started on first use."""
        key = f"{model_data_url}#{program or ''}"
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            server = self._servers.get(key)
            if server and server.process.poll() is None:
                return server
            server = self._start(model_data_url, environment, region, program)
            self._servers[key] = server
            return server

    def invoke(self, server: ModelServer, body: bytes, content_type: str, accept: str) -> tuple[int, bytes, str]:
        resp = requests.post(
            f"{server.url}/invocations",
            data=body,
            headers={"Content-Type": content_type, "Accept": accept},
            timeout=60,
        )
        return resp.status_code, resp.content, resp.headers.get("Content-Type", "application/json")

    def shutdown(self) -> None:
        for server in self._servers.values():
            if server.process.poll() is None:
                server.process.terminate()
        for server in self._servers.values():
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
        self._servers.clear()

    def _start(self, model_data_url: str, environment: dict[str, str], region: str, program: str | None) -> ModelServer:
        digest = hashlib.sha256(f"{model_data_url}#{program}".encode()).hexdigest()[:16]
        workdir = self.root / "models" / digest
        shutil.rmtree(workdir, ignore_errors=True)
        s3 = boto3.client("s3", region_name=region)
        archive = download_prefix(s3, model_data_url, workdir / "archive")[0]
        model_dir = workdir / "model"
        extract_tarball(archive, model_dir)
        code_dir = REPO_TRAINING_DIR
        submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit and submit.startswith("s3://"):
            code_archive = download_prefix(s3, submit, workdir / "code_archive")[0]
            code_dir = workdir / "code"
            extract_tarball(code_archive, code_dir)
        env = {k: v for k, v in os.environ.copy().items() if not k.startswith(("AWS_", "MOTO_"))}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": "1",
                "FMOPS_TORCH_THREADS": "1",
                "PATH": os.path.dirname(self.python) + os.pathsep + os.environ.get("PATH", ""),
            }
        )
        env.pop("PYTHONPATH", None)
        program = program or environment.get("SAGEMAKER_PROGRAM") or "inference.py"
        proc = subprocess.Popen(
            [self.python, "serve.py", "--model-dir", str(model_dir), "--port", "0", "--program", program],
            cwd=code_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        port = self._wait_ready(proc)
        server = ModelServer(model_data_url=model_data_url, port=port, process=proc)
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{server.url}/ping", timeout=5).status_code == 200:
                    return server
            except requests.RequestException:
                pass
            time.sleep(0.2)
        proc.kill()
        raise ModelServerError(f"model server for {model_data_url} did not answer /ping")

    def _wait_ready(self, proc: subprocess.Popen[str]) -> int:
        assert proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        tail: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    raise ModelServerError("model server exited: " + " | ".join(tail[-5:]))
                continue
            tail.append(line.rstrip())
            if line.startswith("fmops-serve ready"):
                for part in line.split():
                    if part.startswith("port="):
                        return int(part.split("=", 1)[1])
        proc.kill()
        raise ModelServerError("model server did not report ready in time")


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass
