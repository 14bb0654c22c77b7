"""Write one section of benchmarks/RESULTS.md, keeping the others."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, body: str, results: Path = RESULTS) -> None:
    """Replace (or append) the ``## <heading>`` section with ``body``."""
    current = results.read_text() if results.exists() else "# Benchmarks\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", flags=re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _m: section + "\n", current)
    else:
        current = current.rstrip() + "\n\n" + section
    results.write_text(current.rstrip() + "\n")
