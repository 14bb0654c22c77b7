"""The evaluation report: one self-contained HTML page (inline CSS and SVG, no scripts, no external assets).

What a person reviewing an approval needs to see: each metric of the run's task with its 95% confidence interval
for the base, the fine-tuned and the champion model side by side; whether the differences are real (paired tests,
in plain words); per-class scores and confusion-matrix heat maps (classification) or per-label scores
(multilabel); the fine-tuned model's worst examples (its most confident mistakes, or its lowest per-example scores
on the gate metric). Every value taken from the document is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

HEADLINE = ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro", "recall_macro")
METRIC_TITLES = {
    "accuracy": "Accuracy",
    "f1_macro": "F1 (macro)",
    "f1_micro": "F1 (micro)",
    "f1_weighted": "F1 (weighted)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "subset_accuracy": "Subset accuracy (exact label set)",
    "hamming_loss": "Hamming loss (lower is better)",
    "f1_samples": "F1 (samples)",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rougeLsum": "ROUGE-Lsum",
    "exact_match": "Exact match (0-100)",
    "f1": "Token F1 (0-100)",
}
LOWER_IS_BETTER = frozenset({"hamming_loss"})
PERCENT = frozenset({"exact_match", "f1"})  # SQuAD's 0-100 scale
MODEL_TITLES = {"base": "Base model", "finetuned": "Fine-tuned", "champion": "Champion"}
TEXT_CHARS = 300
TASK_NOTES = {
    "classification": "Averages (macro, weighted) are over the labels that occur in the references or the "
    "predictions of each model.",
    "multilabel": "Each example has a set of labels. Subset accuracy counts exact sets; micro F1 pools every "
    "(example, label) decision, macro F1 averages the labels' F1, samples F1 averages each example's F1; the labels "
    "are those in the references or the predictions.",
    "summarization": "Generated summaries (greedy) against the reference summary: ROUGE F-measures, stemmed "
    "(Google's rouge-score).",
    "qa": "Generated answers (greedy) against every gold answer: SQuAD v1.1 exact match and token F1 on the best "
    "answer, 0-100.",
    "chat": "Generated replies (greedy) against the reference reply: ROUGE F-measures (stemmed), and SQuAD v1.1 "
    "exact match and token F1 (0-100).",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1f2328;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.2rem}
table{border-collapse:collapse;margin:.8rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right;
vertical-align:top}th{background:#f6f8fa}th.group{text-align:center}td.l,th.l{text-align:left}
.meta{color:#57606a;font-size:.92rem}code{font-size:.85rem;word-break:break-all}
.v{font-weight:600;font-variant-numeric:tabular-nums}.ci{color:#57606a;font-size:.85rem;white-space:nowrap;
font-variant-numeric:tabular-nums}
.up{color:#1a7f37}.down{color:#c62828}.gate{background:#fff8c5}
.summary{border:1px solid #d0d7de;border-left:.4rem solid #0969da;background:#f6f8fa;padding:.6rem 1rem;
margin:1rem 0}
.summary p{margin:.3rem 0}p.verdict{margin:.4rem 0}p.verdict.sig-better{color:#1a7f37}
p.verdict.sig-worse{color:#c62828}
.matrices{display:flex;flex-wrap:wrap;gap:1.5rem}.matrices figure{margin:0}
.matrices figcaption{font-weight:600;margin-bottom:.2rem}
table.confusion td{min-width:2.6rem;text-align:center;font-variant-numeric:tabular-nums}
table.worst td.text{text-align:left;max-width:36rem;white-space:pre-wrap;word-break:break-word}
svg.forest text{font-size:12px;fill:#1f2328}svg.forest .axis{stroke:#8c959f}
svg.forest .grid{stroke:#d0d7de;stroke-dasharray:2 3}svg.forest .threshold{stroke:#bf8700;stroke-dasharray:5 3}
.note{color:#57606a;font-size:.9rem}
"""


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return escape(str(value))
    return f"{value:.4f}" if isinstance(value, int | float) else escape(str(value))


def _p(value: float) -> str:
    return "&lt; 0.0001" if value < 0.0001 else f"{value:.4f}"


def _ci(scores: dict[str, Any], name: str) -> list[float] | None:
    ci = (scores.get("ci") or {}).get(name)
    return [float(ci[0]), float(ci[1])] if isinstance(ci, list | tuple) and len(ci) == 2 else None


def _cell(scores: dict[str, Any], name: str) -> str:
    if name not in scores:
        return "<td>n/a</td>"
    ci = _ci(scores, name)
    bracket = f' <span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>' if ci else ""
    return f'<td><span class="v">{_num(scores[name])}</span>{bracket}</td>'


def _delta(new: Any, old: Any, lower_is_better: bool = False) -> str:
    if not isinstance(new, int | float) or not isinstance(old, int | float):
        return "<td>n/a</td>"
    diff = new - old
    better = -diff if lower_is_better else diff
    css = "up" if better > 0 else "down" if better < 0 else ""
    return f'<td class="{css}">{diff:+.4f}</td>'


def _task(doc: dict[str, Any]) -> str:
    return str(doc.get("task") or "classification")


def _metric_names(doc: dict[str, Any]) -> list[str]:
    """The metrics shown: classification's headline list, else the task's metrics in the document's order."""
    if _task(doc) == "classification":
        return list(HEADLINE)
    ci = doc["finetuned"].get("ci")
    return [str(name) for name in ci] if isinstance(ci, dict) else []


def _title(name: str) -> str:
    return METRIC_TITLES.get(name, escape(name))


def _models(doc: dict[str, Any]) -> list[str]:
    return [m for m in ("base", "finetuned", "champion") if isinstance(doc.get(m), dict)]


def _metric_table(doc: dict[str, Any], models: list[str]) -> str:
    base, tuned = doc["base"], doc["finetuned"]
    champ = doc.get("champion") if "champion" in models else None
    head = "".join(f"<th>{MODEL_TITLES[m]}</th>" for m in models)
    head += "<th>fine-tuned &minus; base</th>" + ("<th>fine-tuned &minus; champion</th>" if champ else "")
    rows = []
    for name in _metric_names(doc):
        if name not in tuned:
            continue
        css = ' class="gate"' if name == doc.get("metric") else ""
        lower = name in LOWER_IS_BETTER
        cells = "".join(_cell(doc[m], name) for m in models)
        cells += _delta(tuned.get(name), base.get(name), lower)
        if champ:
            cells += _delta(tuned.get(name), champ.get(name), lower)
        rows.append(f'<tr{css} data-metric="{escape(name)}"><td class="l">{_title(name)}</td>{cells}</tr>')
    return (
        f'<table class="metrics"><thead><tr><th class="l">metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _forest(doc: dict[str, Any], models: list[str]) -> str:
    """The gate metric of each model with its interval, on a 0-1 axis (0-100 for exact match and token F1) and
    the threshold."""
    metric = str(doc.get("metric", "accuracy"))
    scale = 100.0 if metric in PERCENT else 1.0
    left, width, row_h, top = 130, 420, 30, 10
    height = top + row_h * len(models) + 34

    def x(value: float) -> float:
        return left + width * min(max(value / scale, 0.0), 1.0)

    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        at = tick * scale
        parts.append(f'<line class="grid" x1="{x(at):.1f}" y1="{top}" x2="{x(at):.1f}" y2="{height - 28}"/>')
        parts.append(f'<text x="{x(at):.1f}" y="{height - 12}" text-anchor="middle">{at:g}</text>')
    threshold = doc.get("threshold")
    if isinstance(threshold, int | float) and 0 < threshold <= scale:
        parts.append(
            f'<line class="threshold" x1="{x(threshold):.1f}" y1="{top}" x2="{x(threshold):.1f}" y2="{height - 28}">'
            f"<title>threshold {threshold:.4f}</title></line>"
        )
    for i, model in enumerate(models):
        scores = doc[model]
        value = scores.get(metric)
        if not isinstance(value, int | float):
            continue
        y = top + row_h * i + row_h / 2
        ci = _ci(scores, metric) or [float(value), float(value)]
        color = "#0969da" if model == "finetuned" else "#8250df" if model == "champion" else "#57606a"
        parts.append(f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end">{MODEL_TITLES[model]}</text>')
        parts.append(
            f'<line x1="{x(ci[0]):.1f}" y1="{y:.1f}" x2="{x(ci[1]):.1f}" y2="{y:.1f}" stroke="{color}" '
            f'stroke-width="3"><title>95% CI [{ci[0]:.4f}, {ci[1]:.4f}]</title></line>'
        )
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="5" fill="{color}"/>')
        parts.append(f'<text x="{left + width + 12}" y="{y + 4:.1f}">{value:.4f}</text>')
    parts.append(f'<line class="axis" x1="{left}" y1="{height - 28}" x2="{left + width}" y2="{height - 28}"/>')
    title = f"{_title(metric)} with 95% confidence intervals"
    return (
        f'<svg class="forest" role="img" aria-label="{title}" width="{left + width + 70}" height="{height}" '
        f'viewBox="0 0 {left + width + 70} {height}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
        f"{''.join(parts)}</svg>"
    )


def _bootstrap_tests(tests: dict[str, Any]) -> str:
    """The paired tests of the tasks without McNemar's test: the bootstrap difference and its interval."""
    rows, verdicts = [], []
    for key in ("finetuned_vs_base", "finetuned_vs_champion"):
        test = tests.get(key)
        if not isinstance(test, dict):
            continue
        baseline = MODEL_TITLES.get(str(test.get("baseline")), escape(str(test.get("baseline"))))
        low, high = test.get("delta_ci") or [0.0, 0.0]
        metric = _title(str(test.get("metric")))
        significant = "yes" if test.get("significant") else "no"
        rows.append(
            f'<tr data-test="{escape(key)}"><td class="l">Fine-tuned vs {baseline.lower()}</td>'
            f"<td>{metric} {float(test['delta']):+.4f} "
            f'<span class="ci">[{float(low):+.4f}, {float(high):+.4f}]</span></td>'
            f"<td>{_p(float(test['bootstrap_p_value']))}</td><td>{significant}</td></tr>"
        )
        css = "verdict"
        if test.get("significant"):
            css += " sig-better" if float(low) > 0 else " sig-worse"
        verdicts.append(f'<p class="{css}" data-test="{escape(key)}">{escape(str(test.get("verdict", "")))}</p>')
    return (
        '<table class="tests"><thead><tr><th class="l">comparison</th><th>difference [95% CI]</th>'
        "<th>bootstrap p (one-sided)</th><th>significant (interval excludes 0)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{''.join(verdicts)}"
    )


def _tests(doc: dict[str, Any]) -> str:
    tests = doc.get("paired_tests") or {}
    if not tests:
        return '<p class="note">No paired tests.</p>'
    if _task(doc) != "classification":
        return _bootstrap_tests(tests)
    rows, verdicts = [], []
    for key in ("finetuned_vs_base", "finetuned_vs_champion"):
        test = tests.get(key)
        if not isinstance(test, dict):
            continue
        baseline = MODEL_TITLES.get(str(test.get("baseline")), escape(str(test.get("baseline"))))
        low, high = test.get("delta_ci") or [0.0, 0.0]
        metric = METRIC_TITLES.get(str(test.get("metric")), escape(str(test.get("metric"))))
        rows.append(
            f'<tr data-test="{escape(key)}"><td class="l">Fine-tuned vs {baseline.lower()}</td>'
            f"<td>{int(test['baseline_only_correct'])}</td><td>{int(test['finetuned_only_correct'])}</td>"
            f'<td>{_p(float(test["mcnemar_p_value"]))} <span class="ci">({escape(str(test.get("mcnemar_method")))})'
            f"</span></td><td>{metric} {float(test['delta']):+.4f} "
            f'<span class="ci">[{float(low):+.4f}, {float(high):+.4f}]</span></td>'
            f"<td>{_p(float(test['bootstrap_p_value']))}</td></tr>"
        )
        css = "verdict"
        if test.get("significant"):
            css += " sig-better" if test["finetuned_only_correct"] > test["baseline_only_correct"] else " sig-worse"
        verdicts.append(f'<p class="{css}" data-test="{escape(key)}">{escape(str(test.get("verdict", "")))}</p>')
    return (
        '<table class="tests"><thead><tr><th class="l">comparison</th><th>only the other model right</th>'
        "<th>only the fine-tuned model right</th><th>McNemar p (two-sided)</th>"
        "<th>difference [95% CI]</th><th>bootstrap p (one-sided)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{''.join(verdicts)}"
    )


def _label_scores(doc: dict[str, Any], models: list[str], key: str, css: str) -> str:
    """Each label's precision, recall and F1 for every model, with its support (``doc[model][key][label]``)."""
    labels = doc["finetuned"].get("labels") or list(doc["finetuned"].get(key, {}))
    groups = "".join(f'<th colspan="3" class="group">{MODEL_TITLES[m]}</th>' for m in models)
    head = "<th>precision</th><th>recall</th><th>F1</th>" * len(models)
    rows = []
    for label in labels:
        support = doc["finetuned"].get(key, {}).get(label, {}).get("support", 0)
        cells = ""
        for m in models:
            scores = doc[m].get(key, {}).get(label)
            if scores is None:
                cells += "<td>n/a</td><td>n/a</td><td>n/a</td>"
            else:
                cells += f"<td>{_num(scores['precision'])}</td><td>{_num(scores['recall'])}</td>"
                cells += f"<td>{_num(scores['f1'])}</td>"
        rows.append(f'<tr><td class="l">{escape(str(label))}</td><td>{int(support)}</td>{cells}</tr>')
    return (
        f'<table class="{css}"><thead><tr><th class="l" rowspan="2">label</th><th rowspan="2">support</th>'
        f"{groups}</tr><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _per_class(doc: dict[str, Any], models: list[str]) -> str:
    return _label_scores(doc, models, "per_class", "per-class")


def _per_label(doc: dict[str, Any], models: list[str]) -> str:
    """Multilabel: each label's scores for every model (one-vs-rest)."""
    return _label_scores(doc, models, "per_label", "per-label")


def _heat(count: int, total: int, diagonal: bool) -> str:
    share = count / total if total else 0.0
    rgb = "26,127,55" if diagonal else "207,34,46"
    ink = "#fff" if share > 0.55 else "#1f2328"
    return f"background:rgba({rgb},{0.08 + 0.87 * share:.3f});color:{ink}" if count else "background:#fff"


def _matrix(model: str, scores: dict[str, Any]) -> str:
    labels = [str(label) for label in scores.get("labels", [])]
    matrix = scores.get("confusion_matrix") or []
    head = "".join(f"<th>{escape(label)}</th>" for label in labels)
    rows = []
    for i, (label, row) in enumerate(zip(labels, matrix, strict=False)):
        total = sum(row)
        cells = "".join(
            f'<td style="{_heat(int(n), total, i == j)}" title="true {escape(label)}, predicted '
            f'{escape(labels[j])}: {int(n)} of {total}">{int(n)}</td>'
            for j, n in enumerate(row)
        )
        rows.append(f'<tr><th class="l">{escape(label)}</th>{cells}</tr>')
    return (
        f'<figure><figcaption>{MODEL_TITLES[model]}</figcaption><table class="confusion" data-model="{model}">'
        f'<thead><tr><th class="l">true \\ predicted</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table></figure>"
    )


def _shown(value: Any) -> str:
    """An output or reference as a cell: a label list joined by commas, a list of gold texts one per line."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "\u2026"


def _worst_task(doc: dict[str, Any], models: list[str]) -> str:
    """The lowest-scoring examples of a multilabel or generative run."""
    examples = doc.get("worst_examples") or []
    metric = _title(str(doc.get("metric")))
    if not examples:
        return f'<p class="note">The fine-tuned model scored the best possible {metric} on every test example.</p>'
    multilabel = _task(doc) == "multilabel"
    key, what, gold = ("text", "text", "true labels") if multilabel else ("prompt", "prompt", "reference")
    others = [m for m in models if m != "finetuned"]
    head = "".join(f"<th>{MODEL_TITLES[m]}</th>" for m in others)
    rows = []
    for example in examples:
        text = str(example.get(key, ""))
        shown = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "\u2026"
        score = example.get("finetuned_score")
        scored = f' <span class="ci">({score:.2f})</span>' if isinstance(score, int | float) else ""
        cells = "".join(f'<td class="text">{escape(_shown(example.get(m, "")))}</td>' for m in others)
        rows.append(
            f'<tr><td>{int(example.get("line", 0))}</td><td class="text">{escape(shown)}</td>'
            f'<td class="text">{escape(_shown(example.get("reference", "")))}</td>'
            f'<td class="text">{escape(_shown(example.get("finetuned", "")))}{scored}</td>{cells}</tr>'
        )
    return (
        f'<table class="worst"><thead><tr><th>line</th><th class="l">{what}</th><th class="l">{gold}</th>'
        f'<th class="l">fine-tuned ({metric})</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _worst(doc: dict[str, Any], models: list[str]) -> str:
    if _task(doc) != "classification":
        return _worst_task(doc, models)
    examples = doc.get("worst_examples") or []
    if not examples:
        return '<p class="note">The fine-tuned model classified every test example correctly.</p>'
    others = [m for m in models if m != "finetuned"]
    head = "".join(f"<th>{MODEL_TITLES[m]}</th>" for m in others)
    rows = []
    for example in examples:
        text = str(example.get("text", ""))
        shown = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "\u2026"
        score = example.get("finetuned_score")
        confidence = f' <span class="ci">({score:.2f})</span>' if isinstance(score, int | float) else ""
        cells = "".join(f'<td class="l">{escape(str(example.get(m, "")))}</td>' for m in others)
        rows.append(
            f'<tr><td>{int(example.get("line", 0))}</td><td class="text">{escape(shown)}</td>'
            f'<td class="l">{escape(str(example.get("reference", "")))}</td>'
            f'<td class="l">{escape(str(example.get("finetuned", "")))}{confidence}</td>{cells}</tr>'
        )
    return (
        '<table class="worst"><thead><tr><th>line</th><th class="l">text</th><th class="l">true label</th>'
        f'<th class="l">fine-tuned (confidence)</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _summary(doc: dict[str, Any], models: list[str]) -> str:
    metric = str(doc.get("metric", "accuracy"))
    title = _title(metric)
    parts = []
    for m in models:
        value = doc[m].get(metric)
        ci = _ci(doc[m], metric)
        bracket = f" (95% CI {ci[0]:.4f} to {ci[1]:.4f})" if ci else ""
        parts.append(f"{MODEL_TITLES[m].lower()} <b>{_num(value)}</b>{bracket}")
    lines = [f"<p>{title}: {'; '.join(parts)}.</p>"]
    if "champion" not in models:
        note = doc.get("champion_note") or "no champion was evaluated"
        lines.append(f'<p class="champion-note">No champion compared: {escape(str(note))}.</p>')
    else:
        lines.append(f"<p>Champion: <code>{escape(str(doc.get('champion_arn')))}</code></p>")
    return f'<div class="summary">{"".join(lines)}</div>'


def render_report(doc: dict[str, Any]) -> str:
    """HTML for an evaluation.json document (``base`` and ``finetuned`` required, ``champion`` optional)."""
    models = _models(doc)
    dataset = doc.get("dataset", {})
    run_id = escape(str(doc["run_id"]))
    use_case, base_model = escape(str(doc.get("use_case"))), escape(str(doc.get("base_model")))
    uri, version = escape(str(dataset.get("uri"))), escape(str(dataset.get("version_id")))
    sha, job = escape(str(dataset.get("sha256"))), escape(str(doc.get("training_job")))
    boot = doc.get("bootstrap") or {}
    method = (
        f"Intervals: percentile bootstrap, {int(boot.get('resamples', 0))} resamples of the {doc['test_count']} test "
        f"examples, seed {escape(str(boot.get('seed')))}, {float(boot.get('confidence', 0.95)):.0%} confidence. "
        if boot
        else ""
    )
    files = "".join(
        f"<li>{name}: <code>{escape(str(doc[key]))}</code></li>"
        for name, key in (
            ("evaluation.json", "evaluation_uri"),
            ("metrics.csv", "metrics_csv_uri"),
            ("predictions.jsonl", "predictions_uri"),
        )
        if doc.get(key)
    )
    task = _task(doc)
    if task == "classification":
        tests_note = (
            "McNemar's test compares which examples each model gets right; a p-value below 0.05 means the "
            "difference is unlikely to be chance. The bootstrap difference is fine-tuned minus the other model on "
            "the gate metric; its p-value is the share of resamples where the fine-tuned model is not better."
        )
        matrices = "".join(_matrix(m, doc[m]) for m in models)
        details = f"""<h2>Per class</h2>
{_per_class(doc, models)}
<h2>Confusion matrices</h2>
<p class="note">Rows: true label; columns: predicted label. Green: correct, red: mistakes; the darker, the larger
the share of the row.</p>
<div class="matrices">{matrices}</div>
<h2>Worst examples</h2>
<p class="note">Test examples the fine-tuned model got wrong, the most confident mistakes first.</p>"""
    else:
        tests_note = (
            "Paired bootstrap: both models are scored on the same resampled test examples. The difference is "
            "fine-tuned minus the other model on the gate metric, with its 95% interval; when the interval excludes "
            "0 the difference is unlikely to be chance. The p-value is the share of resamples where the fine-tuned "
            "model is not better."
        )
        per_label = f"<h2>Per label</h2>\n{_per_label(doc, models)}\n" if task == "multilabel" else ""
        details = f"""{per_label}<h2>Worst examples</h2>
<p class="note">The test examples on which the fine-tuned model scores lowest on the gate metric (its score in
brackets), lowest first.</p>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>fmops evaluation {run_id}</title><link rel="icon" href="data:,"><style>{_STYLE}</style></head><body>
<h1>Evaluation of run {run_id}</h1>
<p class="meta">Use case <b>{use_case}</b> &middot; task <b>{escape(task)}</b>
&middot; base model <code>{base_model}</code> &middot; {int(doc["test_count"])} test records
&middot; gate metric <b>{escape(str(doc["metric"]))}</b>
(threshold {_num(doc.get("threshold", 0.0))}) &middot; {escape(str(doc.get("created_at")))}</p>
<p class="meta">Data set <code>{uri}</code> version <code>{version}</code> sha256 <code>{sha}</code><br>
Training job <code>{job}</code></p>
{_summary(doc, models)}
<h2>Metrics with 95% confidence intervals</h2>
<p class="note">Each cell: the value on the test split, then [low, high] of its 95% confidence interval. The gate
metric is highlighted.</p>
{_metric_table(doc, models)}
{_forest(doc, models)}
<h2>Are the differences real? Paired tests on the same test examples</h2>
<p class="note">{tests_note}</p>
{_tests(doc)}
{details}
{_worst(doc, models)}
<h2>How these numbers were computed</h2>
<p class="note">{method}{TASK_NOTES.get(task, "")}</p>
<ul class="files">{files}</ul>
</body></html>
"""
