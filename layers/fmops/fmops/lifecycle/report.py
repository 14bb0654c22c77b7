"""A small self-contained HTML report of an evaluation (no scripts, no external assets)."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f4f4f4}"
    "td.l,th.l{text-align:left}.up{color:#1a7f37}.down{color:#c62828}"
)
HEADLINE = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else escape(str(value))


def _delta(new: float, old: float) -> str:
    diff = new - old
    css = "up" if diff > 0 else "down" if diff < 0 else ""
    return f'<td class="{css}">{diff:+.4f}</td>'


def render_report(doc: dict[str, Any]) -> str:
    """HTML for an evaluation.json document."""
    base, tuned = doc["base"], doc["finetuned"]
    rows = "".join(
        f'<tr><td class="l">{name}</td><td>{_num(base[name])}</td><td>{_num(tuned[name])}</td>'
        f"{_delta(tuned[name], base[name])}</tr>"
        for name in HEADLINE
    )
    per_class = "".join(
        f'<tr><td class="l">{escape(label)}</td><td>{scores["support"]}</td>'
        f"<td>{_num(base['per_class'].get(label, {}).get('f1', 0.0))}</td><td>{_num(scores['f1'])}</td>"
        f"<td>{_num(scores['precision'])}</td><td>{_num(scores['recall'])}</td></tr>"
        for label, scores in tuned["per_class"].items()
    )
    labels = tuned["labels"]
    head = "".join(f"<th>{escape(label)}</th>" for label in labels)
    matrix = "".join(
        f'<tr><th class="l">{escape(label)}</th>' + "".join(f"<td>{n}</td>" for n in row) + "</tr>"
        for label, row in zip(labels, tuned["confusion_matrix"], strict=True)
    )
    dataset = doc.get("dataset", {})
    use_case, base_model = escape(str(doc.get("use_case"))), escape(str(doc.get("base_model")))
    uri, version = escape(str(dataset.get("uri"))), escape(str(dataset.get("version_id")))
    sha, job = escape(str(dataset.get("sha256"))), escape(str(doc.get("training_job")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fmops evaluation {escape(doc["run_id"])}</title>
<style>{_STYLE}</style></head><body>
<h1>Evaluation of run {escape(doc["run_id"])}</h1>
<p>Use case <b>{use_case}</b> &middot; base model <code>{base_model}</code>
&middot; {doc["test_count"]} test records &middot; gate metric <b>{escape(doc["metric"])}</b>
(threshold {_num(doc.get("threshold", 0.0))}) &middot; {escape(str(doc.get("created_at")))}</p>
<p>Data set <code>{uri}</code> version <code>{version}</code> sha256 <code>{sha}</code><br>
Training job <code>{job}</code></p>
<h2>Base vs fine-tuned</h2>
<table><tr><th class="l">metric</th><th>base</th><th>fine-tuned</th><th>change</th></tr>{rows}</table>
<h2>Per class (fine-tuned)</h2>
<table><tr><th class="l">label</th><th>support</th><th>base F1</th><th>F1</th><th>precision</th><th>recall</th></tr>
{per_class}</table>
<h2>Confusion matrix (fine-tuned; rows: true, columns: predicted)</h2>
<table><tr><th></th>{head}</tr>{matrix}</table>
</body></html>
"""
