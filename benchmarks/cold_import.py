#!/usr/bin/env python3
"""Cold import time of every Lambda handler (``import app`` in a fresh interpreter).

For each ``functions/<name>/``: ``python -X importtime -c "import app"`` with cwd = that folder and
PYTHONPATH = layers/fmops (what the Lambda layer provides), repeated; the cumulative time of the top-level
``app`` import is the number (median of the repeats). The baseline, ``python -c pass``, is measured in the
same run. Writes the table under "## Cold import" in benchmarks/RESULTS.md (other sections are kept).

Exits 1 if a handler imports torch, transformers or numpy. The target is < 300 ms per handler; this script
reports against it but does not fail on time (timings are machine-dependent).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from _results import write_section  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
LAYER = ROOT / "layers" / "fmops"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FORBIDDEN = ("torch", "transformers", "numpy")
TARGET_MS = 300.0
HEADING = "## Cold import"
LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def _env() -> dict[str, str]:
    # Like Lambda: the layer, then the installed packages, and no site/.pth processing (``-S``), so the
    # development venv's editable-install finder does not show up in the numbers.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(LAYER), sysconfig.get_paths()["purelib"]])
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def import_profile(folder: Path) -> tuple[float, list[tuple[str, float]], set[str]]:
    """(cumulative ms of ``app``, top-level packages by summed self time, every imported module name)."""
    proc = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c", "import app"],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{folder.name}: import failed:\n{proc.stderr[-2000:]}")
    total = 0.0
    packages: dict[str, float] = {}
    modules: set[str] = set()
    for line in proc.stderr.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        own, cumulative, indent, name = int(match.group(1)), int(match.group(2)), len(match.group(3)), match.group(4)
        modules.add(name)
        if name == "app" and indent == 1:
            total = cumulative / 1000
        top = name.split(".")[0]
        packages[top] = packages.get(top, 0.0) + own / 1000
    return total, sorted(packages.items(), key=lambda c: c[1], reverse=True), modules


def baseline_ms(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-S", "-c", "pass"], env=_env(), check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = parser.parse_args()

    folders = sorted(p for p in FUNCTIONS.iterdir() if (p / "app.py").is_file())
    base = baseline_ms(args.repeats)
    rows = []
    offenders: list[str] = []
    for folder in folders:
        runs = [import_profile(folder) for _ in range(args.repeats)]
        total = statistics.median(r[0] for r in runs)
        fastest = min(runs, key=lambda r: r[0])
        heavy = [m for m in fastest[2] if m.split(".")[0] in FORBIDDEN]
        if heavy:
            offenders.append(f"{folder.name}: {', '.join(sorted(heavy)[:5])}")
        rows.append((folder.name, total, fastest[0], fastest[1][:3]))

    header = [
        "| function | import app, median (ms) | min (ms) | median / `python -c pass` "
        "| heaviest packages (self ms, summed) |",
        "|---|---:|---:|---:|---|",
    ]
    body = [
        f"| {name} | {total:.0f} | {low:.0f} | {total / base:.2f} | "
        + ", ".join(f"{mod} {ms:.0f}" for mod, ms in children)
        + " |"
        for name, total, low, children in rows
    ]
    worst = max(r[1] for r in rows)
    section = "\n".join(
        [
            HEADING,
            "",
            f"`python -S -X importtime -c 'import app'` per handler folder, PYTHONPATH = layer + packages, median of "
            f"{args.repeats} fresh interpreters; measured by `benchmarks/cold_import.py` on "
            f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}.",
            f"Baseline `python -S -c pass` (whole process, wall): {base:.0f} ms. Target: < {TARGET_MS:.0f} ms per "
            f"handler; slowest: {worst:.0f} ms.",
            "",
            *header,
            *body,
            "",
            "boto3 (about 150 ms) is imported at the first AWS call, not at import; the X-Ray SDK (about 280 ms)"
            " only when tracing is on, at the first invocation (`fmops.observability.LazyTracer`).",
            "",
        ]
    )
    print(section)
    if not args.no_write:
        write_section(HEADING.removeprefix("## "), section.split("\n", 2)[2], RESULTS)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    over = [name for name, total, _, _ in rows if total >= TARGET_MS]
    if over:
        print(f"over the {TARGET_MS:.0f} ms target: {', '.join(over)}", file=sys.stderr)
    if offenders:
        print("handlers import forbidden heavy modules:\n  " + "\n  ".join(offenders), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
