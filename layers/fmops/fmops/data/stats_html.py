"""The statistics of ``fmops.data.stats`` as one self-contained HTML page (``fmops data stats --format html``).

No external script, font, stylesheet or image: the CSS is inline and the charts are inline SVG, so the page opens
anywhere (a laptop offline, an S3 object, an e-mail attachment). Every string that comes from the data (source,
format, labels, field paths, messages) is escaped. Personal data is shown as kind, count and line numbers only:
the statistics never hold the matched text.

Standard library only: this module runs in Lambda.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from fmops.data.stats import FileStats, HistogramBin, LabelStats, SplitStats

PII_NAMES = {"email": "Email addresses", "phone": "Phone numbers", "payment_card": "Payment card numbers"}
MAX_LABEL_BARS = 40
LABEL_CHARS = 28
_DASH = '<span class="muted">–</span>'

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f6f9;color:#1d2430;line-height:1.45;
 font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 32px 56px}
h1{font-size:1.75rem;margin:0 0 4px}
h2{font-size:1.35rem;margin:36px 0 8px;padding-bottom:4px;border-bottom:2px solid #d5dbe5}
h3{font-size:1.08rem;margin:0 0 8px}
p{margin:6px 0}
.subtitle{color:#5a6577;margin:0 0 16px;word-break:break-all}
.card{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:16px 20px;margin:14px 0}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 20px}
table{border-collapse:collapse;margin:6px 0;font-size:.95rem}
th,td{padding:5px 12px;border-bottom:1px solid #e5e9f0;text-align:left;vertical-align:top}
th{background:#f0f3f7;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.flag td{background:#fff4e5}
.warn{color:#a33c00;font-weight:600}
.ok{color:#1c7a3a;font-weight:600}
.muted{color:#6b7587}
.lines{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88rem}
svg{display:block;max-width:100%;height:auto}
svg text{font-size:12px;fill:#3b4556}
svg .axis-title{font-size:13px;fill:#1d2430}
svg .bar{fill:#3b73c4}
svg .label-bar{fill:#7a5cc2}
svg .axis{stroke:#7d8799;stroke-width:1}
svg .gridline{stroke:#e6e9ef;stroke-width:1}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int | float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def _lines(lines: Sequence[int], count: int) -> str:
    if not lines:
        return _DASH
    shown = ", ".join(str(line) for line in lines)
    more = count - len(lines)
    tail = f' <span class="muted">and {more:,} more</span>' if more > 0 else ""
    return f'<span class="lines">{shown}</span>{tail}'


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _flag(count: int) -> str:
    return f'<span class="warn">{count:,}</span>' if count else '<span class="ok">0</span>'


# -- charts ---------------------------------------------------------------------------------------------


def _nice_ticks(peak: int) -> list[int]:
    """Up to 5 whole-number ticks from 0 to at least ``peak``."""
    if peak <= 4:
        return list(range(peak + 1))
    step = 10 ** int(math.log10(peak / 4))
    for factor in (1, 2, 5, 10):
        if peak / (step * factor) <= 4:
            step *= factor
            break
    top = math.ceil(peak / step) * step
    return list(range(0, top + 1, step))


def histogram_svg(bins: Sequence[HistogramBin], *, x_title: str = "estimated tokens per record") -> str:
    """A bar chart of a token-length histogram: one ``rect.bar`` per bin, with axis ticks and titles."""
    width, height = 760, 300
    left, right, top, bottom = 64, 20, 16, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = _nice_ticks(max((b.count for b in bins), default=0))
    y_max = ticks[-1] or 1
    parts = [
        f'<svg class="chart histogram" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="Histogram of estimated tokens per record" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in ticks:
        y = top + plot_h - plot_h * tick / y_max
        parts.append(f'<line class="gridline" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    slot = plot_w / max(1, len(bins))
    label_every = max(1, math.ceil(len(bins) / 10))
    for index, item in enumerate(bins):
        bar_h = plot_h * item.count / y_max
        x = left + index * slot
        span = f"{item.low:,}" if item.low == item.high else f"{item.low:,}–{item.high:,}"
        noun = "record" if item.count == 1 else "records"
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{top + plot_h - bar_h:.1f}" width="{max(1.0, slot - 2):.1f}" '
            f'height="{bar_h:.1f}"><title>{_e(span)} tokens: {item.count:,} {noun}</title></rect>'
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{item.low:,}</text>'
            )
    parts.append(f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    parts.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height - 18}" text-anchor="middle">'
        f"{_e(x_title)} (bins start at the value shown)</text>"
    )
    parts.append(
        f'<text class="axis-title" x="16" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + plot_h / 2:.1f})">records</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def labels_svg(labels: LabelStats) -> str:
    """A horizontal bar chart of the label counts: one ``rect.label-bar`` per label shown (largest first)."""
    rows = list(labels.counts.items())[:MAX_LABEL_BARS]
    width, row_h, left, right, top = 760, 26, 220, 70, 8
    bottom = 40
    height = top + row_h * len(rows) + bottom
    plot_w = width - left - right
    peak = max((count for _, count in rows), default=1) or 1
    parts = [
        f'<svg class="chart labels" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="Records per label" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (label, count) in enumerate(rows):
        y = top + index * row_h
        shown = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        bar_w = plot_w * count / peak
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end"><title>{_e(label)}</title>'
            f"{_e(shown)}</text>"
        )
        parts.append(
            f'<rect class="label-bar" x="{left}" y="{y + 4}" width="{max(1.0, bar_w):.1f}" height="{row_h - 8}">'
            f"<title>{_e(label)}: {count:,}</title></rect>"
        )
        parts.append(f'<text x="{left + bar_w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">{count:,}</text>')
    axis_y = top + row_h * len(rows)
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{axis_y}"/>')
    parts.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{axis_y + 26}" text-anchor="middle">'
        "records with the label</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


# -- sections -------------------------------------------------------------------------------------------


def _summary(stats: FileStats) -> str:
    tokens = stats.tokens
    estimate = f"{tokens.estimate} ({'the model' if tokens.basis == 'model' else 'default'} ratio)"
    rows = [
        ("Source", _e(stats.source or stats.name or "–"), False),
        ("Format", _e(stats.format or "unknown"), False),
        ("Records (lines)", _n(stats.records), True),
        ("Valid records", _n(stats.valid_records), True),
        ("Invalid records", _flag(stats.invalid_records), True),
        ("Analysed records", _n(stats.analysed_records), True),
        ("Size", f"{_n(stats.bytes)} bytes", True),
        ("Model", _e(stats.model or "none given"), False),
        ("Token estimate", _e(estimate), False),
    ]
    body = "".join(
        f'<tr><th>{label}</th><td class="{"num" if num else ""}">{value}</td></tr>' for label, value, num in rows
    )
    out = f'<div class="card"><h3>Summary</h3><table class="summary">{body}</table>'
    if stats.issues_by_code:
        issues = "".join(
            f'<tr><td>{_e(code)}</td><td class="num">{count:,}</td></tr>'
            for code, count in stats.issues_by_code.items()
        )
        out += (
            '<p class="muted">Validation errors by code:</p>'
            f'<table class="issues"><tr><th>Code</th><th class="num">Count</th></tr>{issues}</table>'
        )
    if stats.file_issues:
        items = "".join(f"<li>{_e(issue.code)}: {_e(issue.message)}</li>" for issue in stats.file_issues)
        out += f'<p class="muted">File-level findings:</p><ul class="file-issues">{items}</ul>'
    return out + "</div>"


def _tokens(stats: FileStats) -> str:
    tokens = stats.tokens
    head = "".join(f'<th class="num">{name}</th>' for name in ("Records", "Min", "p50", "p95", "Max", "Mean", "Total"))
    values = (tokens.records, tokens.min, tokens.p50, tokens.p95, tokens.max, tokens.mean, tokens.total)
    cells = "".join(f'<td class="num">{_n(value)}</td>' for value in values)
    chart = histogram_svg(tokens.histogram) if tokens.histogram else '<p class="muted">No analysed records.</p>'
    return (
        f'<div class="card"><h3>Token lengths</h3><p class="muted">Estimated as {_e(tokens.estimate)} '
        "per record; percentiles are nearest-rank.</p>"
        f'<table class="tokens"><tr>{head}</tr><tr>{cells}</tr></table>{chart}</div>'
    )


def _labels(labels: LabelStats | None) -> str:
    if labels is None:
        return ""
    ratio = f"{labels.imbalance_ratio:,.2f}"
    warn = ' class="warn"' if labels.imbalance_ratio >= 10 else ""
    more = ""
    shown = min(len(labels.counts), MAX_LABEL_BARS)
    if labels.classes > shown:
        more = f'<p class="muted">The {shown:,} largest of {labels.classes:,} labels are shown.</p>'
    return (
        f'<div class="card"><h3>Labels</h3><p>{_count(labels.classes, "label")} ({_e(labels.kind)}-label) over '
        f"{_count(labels.records, 'record')}. Imbalance ratio (largest / smallest class): <span{warn}>{ratio}</span> "
        f"(largest {_e(labels.largest)}, smallest {_e(labels.smallest)}).</p>{labels_svg(labels)}{more}</div>"
    )


def _duplicates(stats: FileStats) -> str:
    rows = []
    for name, dup in (("Exact", stats.exact_duplicates), ("Normalised", stats.normalised_duplicates)):
        groups = "<br>".join(_lines(group.lines, group.count) for group in dup.first_groups)
        rows.append(
            f"<tr><td>{name}</td><td class='num'>{_flag(dup.records)}</td><td class='num'>{dup.groups:,}</td>"
            f"<td>{groups or _DASH}</td></tr>"
        )
    return (
        '<div class="card"><h3>Duplicates</h3><p class="muted">Records that repeat an earlier one; normalised: '
        "case-folded, punctuation stripped, whitespace collapsed.</p>"
        '<table class="duplicates"><tr><th>Kind</th><th class="num">Repeated records</th><th class="num">Groups</th>'
        f"<th>First groups (line numbers)</th></tr>{''.join(rows)}</table></div>"
    )


def _empty(stats: FileStats) -> str:
    if not stats.empty_fields:
        return '<div class="card"><h3>Empty fields</h3><p class="ok">No empty or whitespace-only fields.</p></div>'
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{lines.count:,}</td><td>{_lines(lines.lines, lines.count)}</td></tr>"
        for name, lines in stats.empty_fields.items()
    )
    return (
        f'<div class="card"><h3>Empty fields</h3><p>{_count(stats.empty_records, "record")} with an empty field.</p>'
        f'<table class="empty"><tr><th>Field</th><th class="num">Records</th><th>Lines</th></tr>{rows}</table></div>'
    )


def _pii(stats: FileStats) -> str:
    rows = "".join(
        f"<tr><td>{_e(PII_NAMES.get(kind, kind))}</td><td class='num'>{_flag(found.records)}</td>"
        f"<td class='num'>{found.matches:,}</td><td>{_lines(found.lines, found.records)}</td></tr>"
        for kind, found in stats.pii.items()
    )
    return (
        f'<div class="card pii"><h3>Likely personal data</h3><p>{_count(stats.pii_records, "record")} with likely '
        'personal data.</p><p class="muted">Found by shape (payment cards also by the Luhn check). Only line numbers '
        "are shown, never the data itself.</p>"
        '<table class="pii"><tr><th>Kind</th><th class="num">Records</th><th class="num">Matches</th><th>Lines</th>'
        f"</tr>{rows}</table></div>"
    )


def _limits(stats: FileStats) -> str:
    if not stats.over_token_limit:
        return (
            '<div class="card"><h3>Model token limits</h3><p class="muted">No model in the limits table takes this '
            "format.</p></div>"
        )
    over = [row for row in stats.over_token_limit if row.count]
    if over:
        names = ", ".join(_e(row.name) for row in over)
        verdict = f'<p class="warn">Records exceed the token limit of: {names}.</p>'
    else:
        verdict = '<p class="ok">No record exceeds the token limit of any model that takes this format.</p>'
    rows = "".join(
        f"<tr class='{'flag' if row.count else ''}'><td>{_e(row.name)}<br><span class='muted lines'>"
        f"{_e(row.model)}</span></td><td class='num'>{row.max_tokens:,}</td>"
        f"<td class='num'>{row.chars_per_token:g}</td><td class='num'>{_flag(row.count)}</td>"
        f"<td>{_lines(row.lines, row.count)}</td></tr>"
        for row in stats.over_token_limit
    )
    return (
        f'<div class="card"><h3>Model token limits</h3>{verdict}<table class="limits"><tr><th>Model</th>'
        '<th class="num">Max tokens</th><th class="num">Chars / token</th><th class="num">Records over</th>'
        f"<th>Lines</th></tr>{rows}</table></div>"
    )


def _file_body(stats: FileStats) -> str:
    return "".join(
        (
            _summary(stats),
            _tokens(stats),
            _labels(stats.labels),
            '<div class="grid2">',
            _duplicates(stats),
            _empty(stats),
            "</div>",
            _pii(stats),
            _limits(stats),
        )
    )


def _splits(stats: SplitStats) -> str:
    head = (
        "<tr><th>Split</th><th>Format</th><th class='num'>Records</th><th class='num'>Valid</th>"
        "<th class='num'>Invalid</th><th class='num'>p50 tokens</th><th class='num'>p95 tokens</th>"
        "<th class='num'>Exact duplicates</th><th class='num'>Records with personal data</th></tr>"
    )
    rows = []
    for name, split in stats.splits.items():
        rows.append(
            f"<tr><td><a href='#split-{_e(name)}'>{_e(name)}</a></td><td>{_e(split.format or 'unknown')}</td>"
            f"<td class='num'>{split.records:,}</td><td class='num'>{split.valid_records:,}</td>"
            f"<td class='num'>{_flag(split.invalid_records)}</td><td class='num'>{_n(split.tokens.p50)}</td>"
            f"<td class='num'>{_n(split.tokens.p95)}</td><td class='num'>{_flag(split.exact_duplicates.records)}</td>"
            f"<td class='num'>{_flag(split.pii_records)}</td></tr>"
        )
    overview = f'<div class="card"><h3>Splits</h3><table class="splits">{head}{"".join(rows)}</table></div>'
    leak_rows = "".join(
        f"<tr class='{'flag' if leak.leaked else ''}'><td>{_e(name)}</td><td class='num'>{leak.records:,}</td>"
        f"<td class='num'>{_flag(leak.leaked)}</td>"
        f"<td class='num'>{'–' if leak.fraction is None else f'{leak.fraction:.1%}'}</td>"
        f"<td class='lines'>{', '.join(f'{x.line} (train {x.train_line})' for x in leak.first) or '–'}</td></tr>"
        for name, leak in stats.leakage.items()
    )
    leakage = (
        f'<div class="card"><h3>Leakage into {_e(stats.train_split)}</h3><p class="muted">Records whose normalised '
        f"input (prompt, text, document, context and question, or user turns) equals that of a "
        f"{_e(stats.train_split)} record.</p>"
        '<table class="leakage"><tr><th>Split</th><th class="num">Records compared</th><th class="num">Leaked</th>'
        f'<th class="num">Share</th><th>First lines (matching {_e(stats.train_split)} line)</th></tr>'
        f"{leak_rows}</table></div>"
    )
    sections = "".join(
        f'<section id="split-{_e(name)}"><h2>Split: {_e(name)}</h2>{_file_body(split)}</section>'
        for name, split in stats.splits.items()
    )
    return overview + leakage + sections


def render_html(stats: FileStats | SplitStats, *, title: str | None = None) -> str:
    """One self-contained HTML page of ``stats`` (a file's, or a folder of splits' with their leakage)."""
    if isinstance(stats, SplitStats):
        subject = ", ".join(stats.splits)
        sources = [s.source for s in stats.splits.values() if s.source]
        subtitle = " · ".join(sources) if sources else subject
        body = _splits(stats)
    else:
        subject = stats.source or stats.name or "data set"
        subtitle = subject
        body = _file_body(stats)
    heading = title or f"Data statistics: {subject}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head>"
        f'<body><main><h1>{_e(heading)}</h1><p class="subtitle">{_e(subtitle)}</p>{body}'
        '<p class="muted">Generated by fmops data stats.</p></main></body></html>\n'
    )
