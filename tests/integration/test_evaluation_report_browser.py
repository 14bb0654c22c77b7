"""The evaluation report in a real browser (headless Chromium): the numbers a reviewer sees, and no console errors.

The report is rendered by the workflow's own ``evaluate`` (on moto's S3) from a realistic processing-job output:
240 support tickets, 3 labels, base, fine-tuned and champion predictions. Chromium is a test dependency of this
file: when it is missing the test fails (it does not skip), telling to run ``make browser``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fmops.aws.s3 import S3Storage
from fmops.config import CommonSettings
from fmops.lifecycle.evaluation import evaluate, format_p, p_phrase
from fmops.schemas import parse
from fmops.schemas.steps import EvaluateEvent

from .browser import Element, console_problems, parse_dom, png_size, run_chromium, table_rows

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "tickets-5e1d7c0a9b2f"
CHAMPION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/tickets/7"
LABELS = ("billing", "outage", "praise")
TRICKY_TEXT = '<b>Refund</b> & "cancel" my <script>plan</script> now'
ENV = {
    "RUNS_TABLE": "fmops-runs",
    "APPROVALS_TABLE": "fmops-approvals",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:fmops-notifications",
    "DATASETS_BUCKET": "fmops-datasets",
    "ARTIFACTS_BUCKET": "fmops-artifacts",
    "REPORTS_BUCKET": "fmops-reports",
    "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
    "STACK_NAME": "fmops-test",
}


def predictions() -> list[dict[str, Any]]:
    """What evaluate.py writes for 240 tickets: the base model mostly says 'praise', the fine-tuned model is right
    about 9 times in 10, the champion a little less often (not significantly)."""
    rng = random.Random(7)
    rows = []
    for i in range(240):
        reference = LABELS[i % 3]
        others = [label for label in LABELS if label != reference]
        base = reference if rng.random() < 0.35 else "praise"
        tuned = reference if rng.random() < 0.9 else rng.choice(others)
        champion = reference if rng.random() < 0.9 else rng.choice(others)
        rows.append(
            {
                "line": i + 1,
                "text": f"ticket {i}: {reference} words and more words",
                "reference": reference,
                "base": base,
                "finetuned": tuned,
                "finetuned_score": round(0.5 + rng.random() / 2.1, 6),
                "champion": champion,
            }
        )
    # The most confident mistake of the fine-tuned model, with text that must be shown, not interpreted.
    rows[9].update(text=TRICKY_TEXT, finetuned="outage", finetuned_score=0.99)
    return rows


def event() -> dict[str, Any]:
    events = ROOT / "events"
    data: dict[str, Any] = json.loads((events / "evaluate.json").read_text())
    data["run"].update(run_id=RUN_ID, use_case="tickets", metric="f1_macro", threshold=0.75)
    data["dataset"]["labels"] = list(LABELS)
    data["evaluation_spec"].update(
        job_name=f"{RUN_ID}-eval",
        output_uri=f"s3://fmops-artifacts/evaluation/{RUN_ID}/",
        champion_arn=CHAMPION_ARN,
        champion_note=None,
    )
    return data


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """report.html as the workflow stores it, and its evaluation.json."""
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            for bucket in ("fmops-artifacts", "fmops-reports"):
                client.create_bucket(Bucket=bucket)
            body = "".join(json.dumps(r) + "\n" for r in predictions()).encode()
            client.put_object(Bucket="fmops-artifacts", Key=f"evaluation/{RUN_ID}/predictions.jsonl", Body=body)
            result = evaluate(
                parse(EvaluateEvent, event()), s3=S3Storage(client), settings=CommonSettings.from_env(ENV)
            )
            html = client.get_object(Bucket="fmops-reports", Key=f"runs/{RUN_ID}/report.html")["Body"].read()
            doc = json.loads(
                client.get_object(Bucket="fmops-reports", Key=f"runs/{RUN_ID}/evaluation.json")["Body"].read()
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.report_uri == f"s3://fmops-reports/runs/{RUN_ID}/report.html"
    path = tmp_path_factory.mktemp("evaluation_report") / "report.html"
    path.write_bytes(html)
    yield path, doc


# ---------------------------------------------------------------------------------------------- the browser


def dom_of(html_path: Path, tmp_path: Path) -> tuple[Element, str, list[str]]:
    result = run_chromium("--dump-dom", html_path.as_uri(), tmp_path=tmp_path)
    return parse_dom(result.stdout), result.stdout, console_problems(result.stderr)


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    # The check below is only worth something if it sees a broken page.
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><html><head><title>broken</title></head><body><p>x</p>"
        '<script>console.error("boom"); notDefined();</script></body></html>'
    )
    _, _, problems = dom_of(page, tmp_path)
    assert any("boom" in line for line in problems), problems
    assert any("Uncaught ReferenceError" in line for line in problems), problems


def cell(scores: dict[str, Any], name: str) -> str:
    low, high = scores["ci"][name]
    return f"{scores[name]:.4f} [{low:.4f}, {high:.4f}]"


def test_the_report_as_a_reviewer_sees_it(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, doc = report
    dom, dom_html, problems = dom_of(path, tmp_path)
    assert problems == [], problems
    assert dom.find("head").find("title").own_text() == f"fmops evaluation {RUN_ID}"
    assert dom.find("h1").own_text() == f"Evaluation of run {RUN_ID}"
    assert not dom.find_all("script")

    # Base, fine-tuned and champion side by side, each value with its 95% interval.
    header, *rows = table_rows(dom.find("table", "metrics"))
    assert header == ["metric", "Base model", "Fine-tuned", "Champion", "fine-tuned − base", "fine-tuned − champion"]
    metrics = {row[0]: row[1:] for row in rows}
    for title, name in (("Accuracy", "accuracy"), ("F1 (macro)", "f1_macro"), ("Recall (macro)", "recall_macro")):
        assert metrics[title][:3] == [cell(doc[m], name) for m in ("base", "finetuned", "champion")], title
        assert metrics[title][3] == f"{doc['finetuned'][name] - doc['base'][name]:+.4f}"
        assert metrics[title][4] == f"{doc['finetuned'][name] - doc['champion'][name]:+.4f}"
    assert 0.85 < doc["finetuned"]["accuracy"] < 0.95 and doc["base"]["accuracy"] < 0.6
    gate = [row for row in dom.find("table", "metrics").find_all("tr") if "gate" in row.classes]
    assert [r.own_text().split()[0:2] for r in gate] == [["F1", "(macro)"]]
    forest = dom.find("svg", "forest")
    assert len(forest.find_all("circle")) == 3

    # The paired tests, in plain words with their p-values.
    tests = {row[0]: row for row in table_rows(dom.find("table", "tests"))[1:]}
    versus_base, versus_champion = (
        doc["paired_tests"]["finetuned_vs_base"],
        doc["paired_tests"]["finetuned_vs_champion"],
    )
    assert tests["Fine-tuned vs base model"][1:3] == [
        str(versus_base["baseline_only_correct"]),
        str(versus_base["finetuned_only_correct"]),
    ]
    assert tests["Fine-tuned vs champion"][3].startswith(format_p(versus_champion["mcnemar_p_value"]))
    verdicts = {p.attrs["data-test"]: p.own_text() for p in dom.find_all("p", "verdict")}
    assert verdicts["finetuned_vs_base"].startswith("The fine-tuned model is significantly better than the base model")
    assert f"McNemar {p_phrase(versus_base['mcnemar_p_value'])}" in verdicts["finetuned_vs_base"]
    assert f"McNemar {p_phrase(versus_champion['mcnemar_p_value'])}" in verdicts["finetuned_vs_champion"]
    assert verdicts["finetuned_vs_champion"] == versus_champion["verdict"]
    assert verdicts["finetuned_vs_champion"].startswith("No significant difference between the fine-tuned model")

    # Per class, confusion matrices (coloured), worst examples (escaped text shown as text).
    per_class = {row[0]: row for row in table_rows(dom.find("table", "per-class"))[2:]}
    assert set(per_class) == set(LABELS) and all(row[1] == "80" for row in per_class.values())
    matrices = dom.find_all("table", "confusion")
    assert [m.attrs["data-model"] for m in matrices] == ["base", "finetuned", "champion"]
    for matrix in matrices:
        counts = [int(c) for row in table_rows(matrix)[1:] for c in row[1:]]
        assert sum(counts) == doc["test_count"] == 240
        assert any("background:rgba" in td.attrs.get("style", "").replace(" ", "") for td in matrix.find_all("td"))
    worst = table_rows(dom.find("table", "worst"))
    assert worst[1][:4] == ["10", TRICKY_TEXT, "billing", "outage (0.99)"]
    assert "<b>Refund</b>" not in dom_html  # shown as text, not parsed as markup
    assert len(worst) - 1 == len(doc["worst_examples"]) == 20


def test_the_screenshot(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = report
    shot = tmp_path / "report.png"
    result = run_chromium(f"--screenshot={shot}", "--window-size=1280,2400", path.as_uri(), tmp_path=tmp_path)
    assert console_problems(result.stderr) == []
    assert shot.is_file(), "chromium wrote no screenshot"
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = png_size(png)
    assert (width, height) == (1280, 2400)
    assert len(png) > 60_000, f"the screenshot is only {len(png)} bytes: is the page blank?"
