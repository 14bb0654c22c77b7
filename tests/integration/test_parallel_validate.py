"""A large local file validated on several processes gives exactly the single-pass report."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fmops.data.validate import validate_chunks
from fmops_local import parallel_validate
from fmops_local.parallel_validate import validate_file

pytestmark = pytest.mark.integration


def _file(tmp_path: Path, crlf: bool = False) -> Path:
    rng = random.Random(4)
    rows = []
    for i in range(3000):
        record = {"prompt": f"question {i} " + "x" * rng.randint(0, 300), "completion": "answer"}
        line = json.dumps(record)
        roll = rng.random()
        if roll < 0.01:
            line = '{"prompt": "", "completion": "b"}'
        elif roll < 0.02:
            line = "{broken"
        elif roll < 0.025:
            line = '{"prompt": "a", "completion": "b", "prompt": "c"}'
        rows.append(line)
    path = tmp_path / "data.jsonl"
    path.write_bytes(("\r\n" if crlf else "\n").join(rows).encode() + b"\n")
    return path


@pytest.mark.parametrize("crlf", [False, True])
def test_sharded_report_equals_the_single_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crlf: bool) -> None:
    path = _file(tmp_path, crlf)
    monkeypatch.setattr(parallel_validate, "MIN_SHARD_BYTES", 16 * 1024)  # many shards on a small file
    single = validate_chunks([path.read_bytes()], hash_file=False, max_errors=20).as_dict()
    sharded = validate_file(path, workers=2, max_errors=20).as_dict()
    assert sharded == single
    assert single["error_count"] > 20 and single["records"] == 3000


def test_a_model_limit_is_applied_once_to_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path)
    monkeypatch.setattr(parallel_validate, "MIN_SHARD_BYTES", 16 * 1024)
    single = validate_chunks([path.read_bytes()], hash_file=False, data_format="prompt-completion").as_dict()
    sharded = validate_file(path, workers=2, model="amazon.titan-text-lite-v1").as_dict()
    assert [e["code"] for e in sharded["errors"] if e["line"] == 0] == []
    assert sharded["error_count"] == single["error_count"]
    assert sharded["model"] == "amazon.titan-text-lite-v1:0:4k"


def test_the_file_is_cut_into_shards_that_cover_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    ranges: list[tuple[int, int]] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            ranges.append((args[1], args[2]))
            return super().submit(fn, *args, **kwargs)

    path = _file(tmp_path)
    monkeypatch.setattr(parallel_validate, "MIN_SHARD_BYTES", 16 * 1024)
    monkeypatch.setattr(parallel_validate, "ProcessPoolExecutor", Recording)
    validate_file(path, workers=2)
    assert len(ranges) == 8  # 4 per worker
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
