"""The ``fmops data stats`` HTML page in a real browser (headless Chromium): what a person would see.

Chromium is a test dependency of this file: when it is missing the test fails (it does not skip), telling to run
``make browser``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmops.data.stats import file_stats
from fmops.data.stats_html import render_html

from .browser import parse_dom, png_size, run_chromium, table_rows

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"

RECORDS = [
    {"text": "Great product, works well", "label": "pos"},
    {"text": "great product works well!", "label": "pos"},
    {"text": f"Terrible, write to me at {EMAIL}", "label": "neg"},
    {"text": "It is fine " * 40, "label": "neutral"},
    {"text": f"Call me on {PHONE} about the refund", "label": "neg"},
    {"text": "", "label": "pos"},
]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    tmp = tmp_path_factory.mktemp("stats_page")
    data = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    stats = file_stats([data], source="reviews.jsonl")
    path = tmp / "report.html"
    path.write_text(render_html(stats), encoding="utf-8")
    return path, len(stats.tokens.histogram)


def test_the_page_as_a_person_sees_it(page: tuple[Path, int], tmp_path: Path) -> None:
    path, bins = page
    dom_html = run_chromium("--dump-dom", path.as_uri(), tmp_path=tmp_path).stdout
    dom = parse_dom(dom_html)

    head_title = dom.find("head").find("title").own_text()
    assert head_title == "Data statistics: reviews.jsonl"
    assert dom.find("h1").own_text() == head_title

    summary = {row[0]: row[1] for row in table_rows(dom.find("table", "summary"))}
    assert summary["Source"] == "reviews.jsonl"
    assert summary["Format"] == "classification"
    assert (summary["Records (lines)"], summary["Valid records"], summary["Invalid records"]) == ("6", "5", "1")

    histogram = dom.find("svg", "histogram")
    assert bins > 1
    assert len(histogram.find_all("rect", "bar")) == bins
    axis_titles = [t.own_text() for t in histogram.find_all("text", "axis-title")]
    assert any("tokens per record" in t for t in axis_titles) and "records" in axis_titles

    labels = dom.find("svg", "labels")
    bars = labels.find_all("rect", "label-bar")
    assert len(bars) == 3
    shown = [t.own_text() for t in labels.find_all("text")]
    assert {"pos", "neg", "neutral"} <= set(shown)

    assert "2 records with likely personal data." in dom.find("div", "pii").own_text()
    pii = {row[0]: row for row in table_rows(dom.find("table", "pii"))[1:]}
    assert pii["Email addresses"][1:] == ["1", "1", "3"]
    assert pii["Phone numbers"][1:] == ["1", "1", "5"]
    assert pii["Payment card numbers"][1:3] == ["0", "0"]
    assert EMAIL not in dom_html and PHONE not in dom_html and "7946" not in dom_html

    duplicates = {row[0]: row for row in table_rows(dom.find("table", "duplicates"))[1:]}
    assert duplicates["Normalised"][1:3] == ["1", "1"] and "1, 2" in duplicates["Normalised"][3]

    limits = table_rows(dom.find("table", "limits"))
    assert any("SageMaker" in row[0] for row in limits[1:])


def test_the_screenshot(page: tuple[Path, int], tmp_path: Path) -> None:
    path, _ = page
    shot = tmp_path / "report.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri(), tmp_path=tmp_path)
    assert shot.is_file(), "chromium wrote no screenshot"
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = png_size(png)
    assert (width, height) == (1280, 2000)
    assert len(png) > 30_000, f"the screenshot is only {len(png)} bytes: is the page blank?"
