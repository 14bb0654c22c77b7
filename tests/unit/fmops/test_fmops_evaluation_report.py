"""The evaluation report (render_report): what a reviewer reads, self-contained and escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from fmops.lifecycle.evaluation import model_scores, paired_test
from fmops.lifecycle.report import render_report

LABELS = ["neg", "pos"]


def document(champion: bool = True) -> dict[str, Any]:
    references = ["neg", "pos"] * 10
    base = ["pos"] * 20
    tuned = list(references)
    tuned[0], tuned[3] = "pos", "neg"  # two mistakes
    champ = list(references)
    for i in (0, 1, 2, 5):
        champ[i] = "pos" if references[i] == "neg" else "neg"
    models = {"base": base, "finetuned": tuned, **({"champion": champ} if champion else {})}
    scores = {name: model_scores(references, preds, LABELS, 300) for name, preds in models.items()}
    tests = {
        f"finetuned_vs_{name}": paired_test(
            references, models[name], tuned, baseline_name=name, metric="f1_macro", resamples=300
        ).model_dump()
        for name in ("base", "champion")
        if name in models
    }
    return {
        "run_id": "reviews-0123456789ab",
        "use_case": "reviews",
        "created_at": "2025-01-01T12:00:00Z",
        "metric": "f1_macro",
        "threshold": 0.7,
        "test_count": 20,
        "labels": LABELS,
        "dataset": {"uri": "s3://d/datasets/reviews/data.jsonl", "version_id": "v1", "sha256": "ab" * 32},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "training_job": "arn:aws:sagemaker:us-east-1:1:training-job/reviews-0123456789ab-train",
        "champion_arn": "arn:aws:sagemaker:us-east-1:1:model-package/reviews/4" if champion else None,
        "champion_note": None if champion else "no approved model in group reviews yet",
        "bootstrap": {"method": "percentile", "confidence": 0.95, "resamples": 300, "seed": 0},
        "evaluation_uri": "s3://r/runs/reviews-0123456789ab/evaluation.json",
        "metrics_csv_uri": "s3://r/runs/reviews-0123456789ab/metrics.csv",
        "predictions_uri": "s3://r/runs/reviews-0123456789ab/predictions.jsonl",
        **scores,
        "champion": scores.get("champion"),
        "paired_tests": tests,
        "worst_examples": [
            {"line": 4, "text": "<img src=x onerror=alert(1)> & more", "reference": "pos", "base": "pos",
             "finetuned": "neg", "finetuned_score": 0.93, **({"champion": "pos"} if champion else {})},
        ],
    }  # fmt: skip


class Tables(HTMLParser):
    """Cells of each table by class, and every tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        if tag == "table":
            self._table = found.get("class", "")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parsed(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def test_metric_table_has_each_model_with_its_interval() -> None:
    doc = document()
    page = parsed(render_report(doc))
    header, *rows = page.tables["metrics"]
    assert header == ["metric", "Base model", "Fine-tuned", "Champion", "fine-tuned − base", "fine-tuned − champion"]
    by_name = {row[0]: row for row in rows}
    assert list(by_name) == ["Accuracy", "F1 (macro)", "F1 (micro)", "F1 (weighted)", "Precision (macro)",
                             "Recall (macro)"]  # fmt: skip
    for column, model in ((1, "base"), (2, "finetuned"), (3, "champion")):
        low, high = doc[model]["ci"]["accuracy"]
        assert by_name["Accuracy"][column] == f"{doc[model]['accuracy']:.4f} [{low:.4f}, {high:.4f}]"
    assert by_name["Accuracy"][4] == f"{doc['finetuned']['accuracy'] - doc['base']['accuracy']:+.4f}"
    assert by_name["Accuracy"][5] == f"{doc['finetuned']['accuracy'] - doc['champion']['accuracy']:+.4f}"


def test_paired_tests_are_in_plain_words() -> None:
    doc = document()
    html = render_report(doc)
    page = parsed(html)
    header, *rows = page.tables["tests"]
    assert [row[0] for row in rows] == ["Fine-tuned vs base model", "Fine-tuned vs champion"]
    versus_base = doc["paired_tests"]["finetuned_vs_base"]
    assert rows[0][1:3] == [str(versus_base["baseline_only_correct"]), str(versus_base["finetuned_only_correct"])]
    assert rows[0][3].startswith(f"{versus_base['mcnemar_p_value']:.4f}")
    for test in doc["paired_tests"].values():
        assert test["verdict"] in html
    assert "significantly better than the base model" in doc["paired_tests"]["finetuned_vs_base"]["verdict"]
    assert "No significant difference between the fine-tuned model and the champion" in html
    assert re.search(r'<p class="verdict sig-better" data-test="finetuned_vs_base">', html)


def test_per_class_confusion_matrices_and_worst_examples() -> None:
    doc = document()
    html = render_report(doc)
    page = parsed(html)
    groups, columns, *body = page.tables["per-class"]
    assert groups == ["label", "support", "Base model", "Fine-tuned", "Champion"]
    assert columns == ["precision", "recall", "F1"] * 3
    per_class = {row[0]: row for row in body}
    assert set(per_class) == set(LABELS)
    assert per_class["neg"][1] == "10"
    assert per_class["neg"][2:5] == [f"{doc['base']['per_class']['neg'][k]:.4f}" for k in ("precision", "recall", "f1")]
    matrices = [attrs["data-model"] for tag, attrs in page.tags if tag == "table" and "data-model" in attrs]
    assert matrices == ["base", "finetuned", "champion"]
    assert page.tables["confusion"][-2:] == [
        ["neg", *map(str, doc["champion"]["confusion_matrix"][0])],
        ["pos", *map(str, doc["champion"]["confusion_matrix"][1])],
    ]  # the last matrix drawn: the champion's
    heat = [attrs["style"] for tag, attrs in page.tags if tag == "td" and "background:rgba" in attrs.get("style", "")]
    assert heat, "the confusion matrix cells are coloured"
    worst = page.tables["worst"]
    assert worst[0] == ["line", "text", "true label", "fine-tuned (confidence)", "Base model", "Champion"]
    assert worst[1] == ["4", "<img src=x onerror=alert(1)> & more", "pos", "neg (0.93)", "pos", "pos"]
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt; &amp; more" in html


def test_the_page_is_self_contained() -> None:
    html = render_report(document())
    assert "<script" not in html.lower()
    page = parsed(html)
    for _tag, attrs in page.tags:
        for name in ("src", "href"):
            assert not attrs.get(name, "data:").startswith(("http:", "https:", "//")), attrs
    assert "@import" not in html and "url(" not in html
    assert '<svg class="forest"' in html


def test_without_a_champion_the_report_says_why() -> None:
    html = render_report(document(champion=False))
    page = parsed(html)
    assert page.tables["metrics"][0] == ["metric", "Base model", "Fine-tuned", "fine-tuned − base"]
    assert [row[0] for row in page.tables["tests"][1:]] == ["Fine-tuned vs base model"]
    assert "No champion compared: no approved model in group reviews yet." in html
    assert [attrs["data-model"] for tag, attrs in page.tags if tag == "table" and "data-model" in attrs] == [
        "base",
        "finetuned",
    ]


@pytest.mark.parametrize("field", ["run_id", "use_case", "base_model", "champion_arn"])
def test_document_strings_are_escaped(field: str) -> None:
    doc = document()
    doc[field] = '<b onmouseover="x">"quoted"</b>'
    html = render_report(doc)
    assert "<b onmouseover" not in html and "&lt;b onmouseover=&quot;x&quot;&gt;" in html


def test_labels_are_escaped_everywhere() -> None:
    doc = document()
    evil = "<i>neg</i>"
    for model in ("base", "finetuned", "champion"):
        doc[model]["labels"] = [evil, "pos"]
        doc[model]["per_class"] = {evil if k == "neg" else k: v for k, v in doc[model]["per_class"].items()}
    html = render_report(doc)
    assert "<i>neg</i>" not in html and html.count("&lt;i&gt;neg&lt;/i&gt;") >= 4


def test_the_approval_links_the_report_in_the_s3_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from fmops.lifecycle.approval import console_region, report_link

    uri = "s3://fmops-reports/runs/reviews-0123456789ab/report.html"
    assert report_link(uri, None) == uri
    assert report_link(uri, "eu-west-1") == (
        f"{uri} (open in the S3 console: https://s3.console.aws.amazon.com/s3/object/fmops-reports"
        "?region=eu-west-1&prefix=runs/reviews-0123456789ab/report.html)"
    )
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert console_region() == "eu-west-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert console_region() is None  # the local AWS has no console
