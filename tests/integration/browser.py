"""Headless Chromium for the tests that look at HTML pages as a person sees them.

Chromium is a test dependency: when it is missing a test fails (it does not skip), telling to run
``make browser``. ``run_chromium`` runs it with console logging on, so ``console_problems`` can read the page's
console messages; ``DomParser`` turns the DOM Chromium serialised into a small tree for assertions.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FMOPS_CHROMIUM", "/usr/bin/chromium")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium() -> str:
    found = shutil.which(CHROMIUM) or shutil.which("chromium")
    if not found:
        pytest.fail(
            f"Chromium is not installed (looked for {CHROMIUM} and chromium on PATH): run `make browser` to install "
            "it; this test needs a headless browser and must not be skipped"
        )
    return found


# ------------------------------------------------------------------------------------------------- the page


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    children: list[Element] = field(default_factory=list)
    text: str = ""

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find_all(self, tag: str, cls: str | None = None) -> list[Element]:
        found = []
        for child in self.children:
            if child.tag == tag and (cls is None or cls in child.classes):
                found.append(child)
            found.extend(child.find_all(tag, cls))
        return found

    def find(self, tag: str, cls: str | None = None) -> Element:
        found = self.find_all(tag, cls)
        assert found, f"no <{tag}{' class=' + cls if cls else ''}> in the page"
        return found[0]

    def own_text(self) -> str:
        """The visible text of the element, without SVG tooltips (<title> inside shapes)."""
        parts = [self.text] + [child.own_text() for child in self.children if child.tag != "title"]
        return " ".join(" ".join(parts).split())


class DomParser(HTMLParser):
    """The DOM Chromium serialised, as a tree (enough for assertions: tags, classes, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.text += data


def table_rows(table: Element) -> list[list[str]]:
    return [[cell.own_text() for cell in row.children if cell.tag in ("th", "td")] for row in table.find_all("tr")]


def run_chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


def console_problems(stderr: str) -> list[str]:
    """Chromium's log lines for page console messages (``INFO:CONSOLE``: console.* calls, uncaught errors, failed
    loads). The report has no scripts, so any console message is a problem."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line or "console error" in line]


def parse_dom(dom: str) -> Element:
    parser = DomParser()
    parser.feed(dom)
    return parser.root


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG (from its IHDR chunk)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)
