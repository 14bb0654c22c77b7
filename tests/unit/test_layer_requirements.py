"""The Lambda layer ships every third-party package that fmops and the handlers import, pinned as in dev.lock."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "layers" / "fmops" / "requirements.txt"
# import name -> distribution name
DISTRIBUTIONS = {
    "aws_lambda_powertools": "aws-lambda-powertools",
    "pydantic": "pydantic",
    "boto3": "boto3",
    "botocore": "boto3",
}


def _runtime_imports() -> set[str]:
    """Top-level modules imported at run time (not under ``if TYPE_CHECKING``) by the layer and handlers."""
    found: set[str] = set()
    files = list((ROOT / "layers" / "fmops" / "fmops").rglob("*.py")) + list((ROOT / "functions").rglob("app.py"))
    for path in files:
        tree = ast.parse(path.read_text())
        guarded = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for stmt in block.body
            for node in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"fmops"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(3)
    return pins


def test_every_third_party_import_is_shipped_by_the_layer():
    layer = _pins(LAYER_REQUIREMENTS)
    missing = {mod for mod in _runtime_imports() if DISTRIBUTIONS.get(mod, mod).lower() not in layer}
    assert not missing, f"imported by Lambda code but not in {LAYER_REQUIREMENTS.name}: {sorted(missing)}"


def test_layer_pins_match_the_development_lock():
    lock = _pins(ROOT / "requirements" / "dev.lock")
    for dist, version in _pins(LAYER_REQUIREMENTS).items():
        assert lock.get(dist) == version, f"{dist}: layer pins {version}, dev.lock has {lock.get(dist)}"


def test_no_ml_library_reaches_lambda():
    assert not _runtime_imports() & {"torch", "transformers", "peft", "numpy", "sklearn"}
