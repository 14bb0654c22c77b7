"""Spot-safe checkpoints: atomic ``step-<N>/`` folders in the checkpoint dir, the newest K kept.

A checkpoint is written into a hidden temporary folder (``.tmp-step-<N>-<pid>``): ``state.pt`` (one
``torch.save`` of everything the loop needs to continue exactly), fsynced, then the ``COMPLETE`` marker
(JSON: step, size of ``state.pt``), fsynced, then the folder is renamed to ``step-<N>`` and the parent
fsynced. A folder without a valid marker, or whose ``state.pt`` size differs from the marker's, is
incomplete and ignored; one that cannot be loaded is skipped for the next older one.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREFIX = "step-"
STATE_FILE = "state.pt"
MARKER = "COMPLETE"
DEFAULT_KEEP = 2
_NAME_RE = re.compile(r"^step-(\d+)$")


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder (where the platform allows opening folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), Python and numpy global RNG states, in types ``torch.load(weights_only=True)`` reads."""
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured (CUDA states only where there is CUDA)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _steps(directory: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``step-<N>`` folder, newest first (complete or not)."""
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _NAME_RE.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found, reverse=True)


def is_complete(folder: Path) -> bool:
    """The marker is there, names this folder's step, and ``state.pt`` has the size it recorded."""
    match = _NAME_RE.match(folder.name)
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        size = (folder / STATE_FILE).stat().st_size
    except (OSError, ValueError):
        return False
    return (
        match is not None
        and isinstance(marker, dict)
        and marker.get("step") == int(match.group(1))
        and marker.get("state_bytes") == size
    )


def complete_checkpoints(directory: Path) -> Iterator[tuple[int, Path]]:
    """Complete checkpoints, newest first."""
    for step, folder in _steps(directory):
        if is_complete(folder):
            yield step, folder


def latest_complete(directory: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    return next((folder for _, folder in complete_checkpoints(directory)), None)


def load_state(folder: Path) -> dict[str, Any]:
    """The saved state (tensors on the CPU)."""
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{folder / STATE_FILE} does not hold a dict")
    return state


def load_latest(directory: Path, echo: Any = print) -> tuple[int, Path, dict[str, Any]] | None:
    """``(step, folder, state)`` of the newest complete checkpoint that loads; unreadable ones are skipped."""
    for step, folder in complete_checkpoints(directory):
        try:
            return step, folder, load_state(folder)
        except Exception as exc:  # a torn or corrupt file: fall back to the previous checkpoint
            echo(f"fmops-train: checkpoint {folder} cannot be read ({type(exc).__name__}: {exc}); skipped", flush=True)
    return None


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int = DEFAULT_KEEP) -> Path:
    """Write ``step-<step>/`` atomically (temp folder, fsync, marker last, rename); keep the newest ``keep``."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step}"
    tmp = directory / f".tmp-{PREFIX}{step}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state_path = tmp / STATE_FILE
    with state_path.open("wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    marker = {"step": step, "state_bytes": state_path.stat().st_size}
    with (tmp / MARKER).open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(marker) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_path(tmp)
    if final.exists():  # the same step saved again (a resumed run interrupted before its next step)
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_path(directory)
    prune(directory, keep)
    return final


def prune(directory: Path, keep: int = DEFAULT_KEEP) -> None:
    """Remove all but the newest ``keep`` complete checkpoints, incomplete ``step-*`` folders older than the
    newest complete one, and temporary folders left by earlier processes."""
    complete = list(complete_checkpoints(directory))
    kept = {folder for _, folder in complete[:keep]}
    newest = complete[0][0] if complete else None
    for step, folder in _steps(directory):
        if folder in kept:
            continue
        if is_complete(folder) or (newest is not None and step < newest):
            shutil.rmtree(folder, ignore_errors=True)
    for child in directory.iterdir():
        if child.name.startswith(f".tmp-{PREFIX}") and not child.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(child, ignore_errors=True)
