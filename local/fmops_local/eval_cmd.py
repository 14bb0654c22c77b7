"""``fmops eval metrics``: the evaluation metrics of a JSONL file of predictions and references.

Each line holds ``prediction`` and ``reference`` (qa: a list of gold answers; multilabel: label lists;
generation: ``token_logprobs``). Exit codes: 0 computed, 1 bad input (the line is named), 2 usage error.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from typing import Any

from fmops_local.data_io import DataSourceError, read_chunks

TASKS = ("classification", "multilabel", "summarization", "qa", "generation")


class InputError(Exception):
    """Bad input: exit code 1."""


def read_rows(uri: str) -> list[dict[str, Any]]:
    """Every line of the file as an object; a blank, non-JSON or non-object line is an ``InputError``."""
    from fmops.data.lines import iter_lines

    rows: list[dict[str, Any]] = []
    for number, line in iter_lines(read_chunks(uri)):
        if isinstance(line, int):
            raise InputError(f"line {number}: longer than the line limit ({line:,} bytes)")
        text = line.decode("utf-8", errors="strict").strip() if line.strip() else ""
        if not text:
            raise InputError(f"line {number}: blank line")
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise InputError(f"line {number}: expected a JSON object")
        rows.append(row)
    if not rows:
        raise InputError(f"{uri}: the file is empty")
    return rows


def check_label_sets(task: str, rows: list[dict[str, Any]]) -> None:
    """A predicted label that no reference uses means the two label sets differ (a mapping slip)."""
    if task not in ("classification", "multilabel"):
        return
    known: set[Any] = set()
    for row in rows:
        reference = row.get("reference")
        known.update(reference if isinstance(reference, list) else [reference])
    for number, row in enumerate(rows, start=1):
        prediction = row.get("prediction")
        for label in prediction if isinstance(prediction, list) else [prediction]:
            if isinstance(label, str) and label not in known:
                raise InputError(
                    f"line {number}: predicted label {label!r} is in no reference: the label sets differ "
                    "(use --allow-new-labels to score such predictions as wrong)"
                )


def _csv(result: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "value", "ci_low", "ci_high"])
    for key, value in result.items():
        if key.endswith("_ci") or key == "n":
            continue
        low, high = result.get(f"{key}_ci") or (None, None)
        writer.writerow([key, value, "" if low is None else low, "" if high is None else high])
    writer.writerow(["n", result["n"], "", ""])
    return out.getvalue()


def cmd_metrics(args: argparse.Namespace) -> int:
    from fmops.errors import MetricInputError
    from fmops.metrics import compute_metrics

    try:
        rows = read_rows(args.input)
        result = compute_metrics(args.task, rows, stem=not args.no_stem, ci=not args.no_ci, seed=args.seed)
        if not args.allow_new_labels:  # after compute_metrics, which names missing fields and wrong types
            check_label_sets(args.task, rows)
    except DataSourceError as exc:
        print(f"fmops eval metrics: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"fmops eval metrics: {exc}", file=sys.stderr)
        return 1
    except MetricInputError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        field = f"field '{exc.field}': " if exc.field else ""
        print(f"fmops eval metrics: {where}{field}{exc.reason}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:
        print(f"fmops eval metrics: not valid UTF-8: {exc}", file=sys.stderr)
        return 1
    if args.format == "csv":
        sys.stdout.write(_csv(result))
    else:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
        print(json.dumps(clean, indent=2))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``fmops eval ...`` on the top-level subparsers."""
    group = sub.add_parser("eval", help="evaluation metrics").add_subparsers(dest="action", required=True)
    metrics = group.add_parser("metrics", help="metrics of a JSONL file of predictions and references")
    metrics.add_argument("--task", required=True, choices=TASKS)
    metrics.add_argument("--input", required=True, help="JSONL: prediction and reference per line (or s3://)")
    metrics.add_argument("--format", choices=("json", "csv"), default="json")
    metrics.add_argument("--no-stem", action="store_true", help="ROUGE without the Porter stemmer")
    metrics.add_argument("--no-ci", action="store_true", help="skip the bootstrap confidence intervals")
    metrics.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    metrics.add_argument("--allow-new-labels", action="store_true", help="score predicted labels no reference uses")
    metrics.set_defaults(func=cmd_metrics)
