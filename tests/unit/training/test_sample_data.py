"""The generated demo data set: deterministic, balanced, and labelled by its own words."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from fmops_local import sample_data
from fmops_local.sample_data import NEGATIVE, POSITIVE, generate, write_jsonl

_NEGATION = re.compile(r"\b(not|never|hardly|far from|by no means)\b|n't\b")


def _oracle(text: str) -> str:
    """The label a reader gives: the first clause's adjective, flipped by a negation in that clause."""
    clause = text.split(" and ")[0]
    words = re.findall(r"[a-z]+", clause)
    adjectives = [w for w in words if w in POSITIVE or w in NEGATIVE]
    assert adjectives, text
    positive = adjectives[-1] in POSITIVE
    if _NEGATION.search(clause):
        positive = not positive
    return "positive" if positive else "negative"


def test_deterministic_for_a_seed() -> None:
    assert generate(50, seed=3) == generate(50, seed=3)
    assert generate(50, seed=3) != generate(50, seed=4)
    # Pinned: the same records on any machine and Python version (random.Random over fixed lists).
    assert sample_data.generate(3, seed=0) == [
        {"text": "this time the refund process was not at all polite this week", "label": "negative"},
        {
            "text": "this time the packaging is not at all reliable and the onboarding is quite broken as expected",
            "label": "negative",
        },
        {"text": "as usual the hotel is surprisingly polite today", "label": "positive"},
    ]


def test_records_are_labelled_by_their_words() -> None:
    records = generate(2000, seed=7)
    assert all(set(r) == {"text", "label"} for r in records)
    assert [_oracle(r["text"]) for r in records] == [r["label"] for r in records]


def test_balanced_and_not_a_keyword_task() -> None:
    records = generate(2000, seed=11)
    counts = Counter(r["label"] for r in records)
    assert 0.45 < counts["positive"] / len(records) < 0.55
    negated = sum(bool(_NEGATION.search(r["text"])) for r in records) / len(records)
    assert 0.2 < negated < 0.5
    # The adjective alone is not enough: every adjective occurs under both labels.
    for adjective in POSITIVE + NEGATIVE:
        labels = {r["label"] for r in records if re.search(rf"\b{adjective}\b", r["text"])}
        assert labels == {"positive", "negative"}, adjective
    assert len({r["text"] for r in records}) > 1500  # varied, few duplicates


def test_write_jsonl(tmp_path: Path) -> None:
    records = generate(5, seed=1)
    path = write_jsonl(tmp_path / "deep" / "data.jsonl", records)
    assert [json.loads(line) for line in path.read_text().splitlines()] == records


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate(-1, seed=0)


def test_importable_without_torch() -> None:
    import subprocess
    import sys

    code = "import sys, fmops_local.sample_data; assert 'torch' not in sys.modules"
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root / "local")
