"""`fmops demo --interactive` waits for a person, who approves with `fmops approve` from the command line."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from fmops_local import cli
from fmops_local.api_client import ApiClient
from fmops_local.demo import DemoConfig, run_demo

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_interactive_demo_waits_for_the_person_then_deploys(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FMOPS_LOCAL_DIR", str(tmp_path / "local"))
    cfg = DemoConfig(
        records=480,
        learning_rate=2e-4,
        batch_size=16,
        max_length=24,
        threshold=0.0,
        predictions=5,
        interactive=True,
        server_port=_free_port(),
        out_dir=tmp_path / "out",
        poll_seconds=1,
    )
    result: dict = {}
    demo = threading.Thread(target=lambda: result.update(run_demo(cfg, echo=lambda _line: None)), daemon=True)
    demo.start()

    env_file = tmp_path / "local" / "env.json"
    deadline = time.monotonic() + 300
    pending: list = []
    while time.monotonic() < deadline and not pending:
        if env_file.is_file():
            env = json.loads(env_file.read_text())
            client = ApiClient(env["FMOPS_API_URL"])
            pending = client.approvals()["approvals"]
        time.sleep(0.5)
    assert pending, "the demo never asked for an approval"
    time.sleep(2)
    assert demo.is_alive(), "the interactive demo must wait for the person"

    run_id = pending[0]["run_id"]
    assert cli.main(["approve", run_id, "--reason", "reviewed the report"]) == 0
    demo.join(timeout=300)

    assert result["execution_status"] == "SUCCEEDED"
    assert result["predictions"] == 5
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run_id"] == run_id
