"""inference.py request parsing and response encoding (no model needed)."""

from __future__ import annotations

import json

import inference
import pytest

from fmops_training.errors import InvalidInputError


@pytest.mark.parametrize(
    ("body", "content_type", "texts"),
    [
        (b'{"inputs": "one"}', "application/json", ["one"]),
        ('{"inputs": ["a", "b"]}', "application/json; charset=utf-8", ["a", "b"]),
        (b'{"inputs": ["a"]}', None, ["a"]),
    ],
)
def test_input_fn_accepts(body: bytes | str, content_type: str | None, texts: list[str]) -> None:
    assert inference.input_fn(body, content_type) == texts


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"\xff", "application/json", "not valid JSON"),
        (b'{"text": "a"}', "application/json", 'with "inputs"'),
        (b'["a"]', "application/json", 'with "inputs"'),
        (b'{"inputs": []}', "application/json", "non-empty list"),
        (b'{"inputs": 3}', "application/json", "non-empty list"),
        (b'{"inputs": ["a", 2]}', "application/json", r'"inputs"\[1\] must be a non-empty string'),
        (b'{"inputs": ["a", "  "]}', "application/json", r'"inputs"\[1\] must be a non-empty string'),
        (json.dumps({"inputs": ["a"] * 257}).encode(), "application/json", "at most 256"),
        (b"a,b", "text/csv", "unsupported content type 'text/csv'"),
    ],
)
def test_input_fn_rejects_with_value_error(body: bytes, content_type: str, text: str) -> None:
    with pytest.raises(ValueError, match=text) as info:
        inference.input_fn(body, content_type)
    assert isinstance(info.value, InvalidInputError)


def test_output_fn() -> None:
    prediction = [{"label": "positive", "score": 0.9}]
    for accept in (None, "application/json", "*/*", "text/html, application/json;q=0.9"):
        assert json.loads(inference.output_fn(prediction, accept)) == {"predictions": prediction}
    with pytest.raises(ValueError, match="unsupported accept type"):
        inference.output_fn(prediction, "text/csv")
