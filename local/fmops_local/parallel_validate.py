"""Validate a large local file on every core: byte-range shards in worker processes, merged in file order.

The same shard rule as the workflow's Distributed Map (``fmops.lifecycle.dataset.validate_shard``): a shard
reads from one byte before its start and owns the lines that start inside it. The merged report is the
one a single pass gives (line numbers file-global, counts exact, whole-file rules applied once).
"""

from __future__ import annotations

import gc
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from fmops.data.lines import GZIP_MAGIC, iter_line_batches
from fmops.data.schemas import detect_format
from fmops.data.validate import Role, ValidationReport, Validator, validate_chunks

MIN_SHARD_BYTES = 32 * 1024 * 1024  # below this per worker, one process is as fast
CHUNK_BYTES = 1024 * 1024


def _chunks(path: Path, start: int) -> Any:
    with path.open("rb") as handle:
        handle.seek(start)
        while block := handle.read(CHUNK_BYTES):
            yield block


def _validate_range(path: str, start: int, end: int, options: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """One shard's report (lines numbered from 1 within the shard) and its CRLF line count."""
    from fmops.data.limits import get_limits

    model = options.pop("model", None)
    validator = Validator(limits=get_limits(model) if model else None, **options)
    read_from = max(start - 1, 0)
    batches = iter_line_batches(
        _chunks(Path(path), read_from),
        skip_partial_first=start > 0,
        stop_at=end - read_from,
        max_line_bytes=validator.max_line_bytes,
    )
    gc.disable()
    for _ in validator.check_lines(batches, emit_valid=False):
        pass
    gc.enable()
    return validator.report().as_dict(), validator.crlf_lines


def _first_format(path: Path) -> str | None:
    """The format of the first line that is a JSON object (None: let the single pass report it)."""
    for _, line in zip(range(1000), _lines_head(path), strict=False):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        return detect_format(obj)
    return None


def _lines_head(path: Path) -> Any:
    with path.open("rb") as handle:
        yield from handle


def validate_file(
    path: Path,
    *,
    workers: int | None = None,
    data_format: str | None = None,
    model: str | None = None,
    role: Role = "train",
    max_errors: int | None = 100,
    hash_file: bool = False,
) -> ValidationReport:
    """Validate ``path``, in parallel when it is large enough and more than one worker is allowed."""
    from fmops.data.limits import get_limits

    limits = get_limits(model) if model else None
    size = path.stat().st_size
    workers = workers or os.cpu_count() or 1
    with path.open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    data_format = data_format or (None if compressed else _first_format(path))
    if workers < 2 or size < 2 * MIN_SHARD_BYTES or hash_file or compressed or data_format is None:
        return validate_chunks(
            _chunks(path, 0),
            hash_file=hash_file,
            data_format=data_format,
            limits=limits,
            role=role,
            max_errors=max_errors,
        )
    shards = max(2, min(workers * 4, size // MIN_SHARD_BYTES))
    bounds = [size * i // shards for i in range(shards + 1)]
    options = {"data_format": data_format, "model": model, "role": role, "max_errors": max_errors}
    merged = Validator(data_format=data_format, limits=limits, role=role, max_errors=max_errors)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_validate_range, str(path), start, end, dict(options))
            for start, end in zip(bounds, bounds[1:], strict=False)
        ]
        offset = 0
        for future in futures:  # in file order
            part, crlf = future.result()
            report = ValidationReport.from_dict(part)
            merged.absorb(report, line_offset=offset, crlf_lines=crlf)
            offset += report.records
    merged.bytes = size
    merged.finish()
    return merged.report()
