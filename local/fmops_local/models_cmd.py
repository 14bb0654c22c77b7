"""``fmops models``: the model registry (one model package group per use case) through the REST API.

    fmops models list GROUP
    fmops models show GROUP VERSION
    fmops models lineage GROUP VERSION
    fmops models compare GROUP V1 V2 [V3 ...]
    fmops models approve GROUP VERSION --reason "..."
    fmops models reject GROUP VERSION --reason "..."

Metrics are the version's task's (``task`` in each answer): classification shows accuracy and f1_macro, the other
tasks their gate metrics (``fmops.schemas.run.TASK_METRICS``, the default gate metric first), each beside the base
model's. ``compare`` tests pairs of versions with McNemar's test (classification) or the paired bootstrap of the
task's gate metric (multilabel and generative tasks); the API refuses versions of different tasks.

Every command takes ``--api-url`` (default ``FMOPS_API_URL``, or the one ``fmops local up`` wrote), ``--region``
and ``--format table|json`` (default table). Requests are SigV4-signed with your AWS credentials.
Exit codes: 0 success, 1 the API refused (an unknown group or version, a bad request...; one line on stderr),
2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

# SageMaker's model package group name pattern (fmops.registry.GROUP_PATTERN).
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# The list's metric columns for classification versions (other tasks: their first two metrics and the base's first).
HEADLINE = (("accuracy", "ACCURACY"), ("f1_macro", "F1_MACRO"), ("base_accuracy", "BASE_ACC"))
CLASSIFICATION = "classification"


# ------------------------------------------------------------------------------------------ argument types


def group_name(value: str) -> str:
    if not _GROUP.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a model package group name (letters, digits, '-')")
    return value


def version_number(value: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]{0,9}", value.strip()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a version number (1, 2, ...)")
    return int(value)


def reason_text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("the reason must not be empty")
    return value


# ------------------------------------------------------------------------------------------ formatting


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[str(h) for h in headers], *[[_text(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def fields(pairs: Sequence[tuple[str, Any]], indent: str = "") -> str:
    """``label:  value`` lines with the values aligned."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return "\n".join(f"{indent}{(label + ':').ljust(width)}  {_text(value)}" for label, value in pairs)


def _history(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "approval history: none"
    rows = [[e.get("when"), e.get("decision"), e.get("who"), e.get("reason")] for e in entries]
    return "approval history:\n" + _indent(table(["WHEN", "DECISION", "WHO", "REASON"], rows))


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def _metrics(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    return "  ".join(f"{name} {_num(value)}" for name, value in metrics.items() if value is not None) or "-"


def _task(version: dict[str, Any]) -> str:
    return str(version.get("task") or CLASSIFICATION)


def _split(metrics: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A version's headline metrics as (fine-tuned, base): the ``base_<name>`` entries are the base model's."""
    tuned = {k: v for k, v in (metrics or {}).items() if not k.startswith("base_")}
    base = {k.removeprefix("base_"): v for k, v in (metrics or {}).items() if k.startswith("base_")}
    return tuned, base


def list_columns(versions: Sequence[dict[str, Any]]) -> list[tuple[str, str]] | None:
    """The list's metric columns ``(key, header)``: classification's ``HEADLINE``; for versions of one other task its
    first two metrics (the gate metric first, as the API orders them) and the base model's first; None when the
    versions are of several tasks (then each row says its task and its first metric)."""
    tasks = {_task(v) for v in versions}
    if tasks <= {CLASSIFICATION}:
        return list(HEADLINE)
    if len(tasks) > 1:
        return None
    names = list(_split(versions[0].get("metrics"))[0])
    if not names:
        return []
    return [*[(n, n.upper()) for n in names[:2]], (f"base_{names[0]}", f"BASE_{names[0].upper()}")]


def render_list(result: dict[str, Any]) -> str:
    versions = result.get("versions") or []
    columns = list_columns(versions)
    common = ["VERSION", "STATUS", "CREATED", "RUN", "BACKEND"]
    rows: list[list[Any]] = []
    for v in versions:
        row = [v.get("version"), v.get("status"), v.get("created"), v.get("run_id"), v.get("backend")]
        metrics = v.get("metrics") or {}
        if columns is not None:
            row += [_num(metrics.get(key)) for key, _ in columns]
        else:
            tuned, base = _split(metrics)
            first = next(iter(tuned), None)
            row += [_task(v), first, _num(tuned.get(first or "")), _num(base.get(first or ""))]
        rows.append([*row, v.get("report_uri")])
    if columns is not None:
        headers = [*common, *[label for _, label in columns], "REPORT"]
    else:
        headers = [*common, "TASK", "METRIC", "VALUE", "BASE", "REPORT"]
    count = f"{len(versions)} version{'s' if len(versions) != 1 else ''}"
    return f"{result.get('group')}: {count}\n" + table(headers, rows)


def render_show(result: dict[str, Any]) -> str:
    tuned, base = _split(result.get("metrics"))
    inference = result.get("inference") or {}
    containers = inference.get("containers") or []
    serving = [
        ("image", containers[0].get("image") if containers else None),
        ("model data", containers[0].get("model_data_url") if containers else None),
        ("instance types", ", ".join(inference.get("realtime_instance_types") or []) or None),
        ("custom model", inference.get("custom_model_arn")),
    ]
    lines = [
        f"{result.get('group')} version {result.get('version')}: {result.get('status')}",
        fields(
            [
                ("arn", result.get("arn")),
                ("created", result.get("created")),
                ("run", result.get("run_id")),
                ("backend", result.get("backend")),
                ("task", _task(result)),
                ("base model", result.get("base_model")),
                ("metrics", _metrics(tuned)),
                ("base metrics", _metrics(base)),
                ("report", result.get("report_uri")),
                ("lineage", result.get("lineage_uri")),
                ("decision", result.get("approval_description")),
                *[(label, value) for label, value in serving if value],
            ]
        ),
        "metadata:",
        fields(sorted((result.get("metadata") or {}).items()), indent="  "),
        _history(result.get("approval_history") or []),
    ]
    return "\n".join(lines)


def render_lineage(result: dict[str, Any]) -> str:
    dataset = result.get("dataset") or {}
    training = result.get("training") or {}
    code = result.get("code") or {}
    metrics = result.get("metrics") or {}
    hyperparameters = result.get("hyperparameters") or {}
    job_label = "customization job" if result.get("backend") == "bedrock" else "training job"
    count = metrics.get("test_count")
    lines = [
        f"{result.get('group')} version {result.get('version')} (run {_text(result.get('run_id'))}, "
        f"{_text(result.get('backend'))}): {result.get('status')}",
        fields(
            [
                ("task", _task(result)),
                ("data set", dataset.get("uri")),
                ("  S3 version", dataset.get("version_id")),
                ("  sha256", dataset.get("sha256")),
                ("  manifest", dataset.get("manifest_uri")),
                ("  test split sha256", dataset.get("test_sha256")),
                ("hyperparameters", " ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items())) or None),
                ("base model", result.get("base_model")),
                (job_label, training.get("job_arn")),
                ("custom model", training.get("custom_model_arn")),
                ("model artifacts", training.get("model_artifacts_uri")),
                ("code", code.get("uri")),
                ("  sha256", code.get("sha256")),
                ("metrics", _metrics(metrics.get("finetuned"))),
                ("base metrics", _metrics(metrics.get("base"))),
                ("test records", count),
                ("report", result.get("report_uri")),
                ("evaluation", result.get("evaluation_uri")),
                ("lineage", result.get("lineage_uri")),
                ("registered", result.get("registered_at")),
            ]
        ),
        _history(result.get("approval_history") or []),
    ]
    return "\n".join(lines)


def render_compare(result: dict[str, Any]) -> str:
    versions = result.get("versions") or []
    task = str(result.get("task") or CLASSIFICATION)
    headers = ["", *[f"v{v.get('version')}" for v in versions]]
    rows: list[list[Any]] = [
        [name, *[_num(values.get(str(v.get("version")))) for v in versions]]
        for name, values in (result.get("metrics") or {}).items()
    ]
    rows.append(["status", *[v.get("status") for v in versions]])
    rows.append(["run", *[v.get("run_id") for v in versions]])
    rows.append(["test records", *[v.get("test_count") for v in versions]])
    rows.append(["test split", *[str(v.get("test_sha256") or "-")[:12] for v in versions]])
    title = f"{result.get('group')}: versions {', '.join(str(v.get('version')) for v in versions)}"
    lines = [title if task == CLASSIFICATION else f"{title} (task {task})", table(headers, rows)]
    if task == CLASSIFICATION:
        lines.append("paired tests (McNemar on per-example correctness of the fine-tuned predictions):")
    else:
        lines.append(
            f"paired tests (paired bootstrap of {result.get('metric')} on the fine-tuned predictions; "
            "the difference is the second version minus the first, with its 95% interval):"
        )
    for pair in result.get("paired_tests") or []:
        a, b, test = pair.get("a"), pair.get("b"), pair.get("test")
        if not test:
            lines.append(f"  v{a} vs v{b}: not tested: {pair.get('reason')}")
            continue
        verdict = (
            f"v{test['better']} is better at alpha {test.get('alpha')}"
            if test.get("better") is not None
            else f"no significant difference at alpha {test.get('alpha')}"
        )
        if test.get("name") == "paired_bootstrap":
            low, high = test.get("delta_ci") or (math.nan, math.nan)
            values = f"{test.get('metric')} v{a} {_num(test.get('a_value'))}, v{b} {_num(test.get('b_value'))}"
            lines.append(
                f"  v{a} vs v{b}: {test.get('examples')} examples, {values}, v{b} - v{a} {test.get('delta'):+.4f} "
                f"[{low:+.4f}, {high:+.4f}], p = {test.get('p_value'):.4g} (one-sided): {verdict}"
            )
            continue
        lines.append(
            f"  v{a} vs v{b}: {test.get('examples')} examples, only v{a} right {test.get('only_a_correct')}, "
            f"only v{b} right {test.get('only_b_correct')}, p = {test.get('p_value'):.4g} "
            f"({test.get('method')}): {verdict}"
        )
    return "\n".join(lines)


def render_decision(result: dict[str, Any]) -> str:
    return (
        f"{result.get('group')} version {result.get('version')}: {result.get('status')} "
        f"(was {result.get('previous_status')}) by {result.get('who')} at {result.get('when')}: {result.get('reason')}"
    )


# ------------------------------------------------------------------------------------------ commands


def _client(args: argparse.Namespace) -> Any:
    from fmops_local.cli import _api_client  # the same URL / credentials resolution as `fmops approve`

    return _api_client(args)


def _run(args: argparse.Namespace, call: Callable[[Any], Any], render: Callable[[dict[str, Any]], str]) -> int:
    import requests

    from fmops_local.api_client import ApiError

    client = _client(args)
    try:
        result = call(client)
    except ApiError as exc:
        print(f"fmops models {args.action}: {exc.message}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(f"fmops models {args.action}: cannot reach the API at {client.base_url}: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(result, indent=2, default=str))
    else:
        print(render(result))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    return _run(args, lambda c: c.models(args.group_name), render_list)


def cmd_show(args: argparse.Namespace) -> int:
    return _run(args, lambda c: c.model(args.group_name, args.version), render_show)


def cmd_lineage(args: argparse.Namespace) -> int:
    return _run(args, lambda c: c.model_lineage(args.group_name, args.version), render_lineage)


def cmd_compare(args: argparse.Namespace) -> int:
    versions = list(dict.fromkeys(args.versions))
    if len(versions) < 2:
        print("fmops models compare: give at least 2 different versions", file=sys.stderr)
        return 2
    return _run(args, lambda c: c.compare_models(args.group_name, versions), render_compare)


def cmd_decide(args: argparse.Namespace) -> int:
    return _run(
        args, lambda c: c.decide_model(args.group_name, args.version, args.action, args.reason), render_decision
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help="the API's URL (default: FMOPS_API_URL or `fmops local up`'s)")
    parser.add_argument("--region", help="the region to sign requests for (default: AWS_DEFAULT_REGION)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (table)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``fmops models ...`` on the ``fmops`` subparsers; returns the ``models`` parser."""
    models = subparsers.add_parser(
        "models",
        help="the model registry: versions, lineage, comparison, decisions",
        description="The model registry (one model package group per use case) through the REST API.",
    )
    actions = models.add_subparsers(dest="action", required=True)

    def action(name: str, helptext: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=helptext, description=helptext)
        parser.add_argument("group_name", metavar="GROUP", type=group_name, help="model package group (use case)")
        parser.set_defaults(func=func)
        return parser

    action("list", "list a group's versions, newest first", cmd_list)
    for name, helptext, func in (
        ("show", "show a version: status, metadata, metrics, serving, approval history", cmd_show),
        ("lineage", "where a version comes from: data, code, job, hyperparameters, metrics", cmd_lineage),
    ):
        parser = action(name, helptext, func)
        parser.add_argument("version", metavar="VERSION", type=version_number)
    compare = action("compare", "compare versions' metrics, with a paired test on the same test split", cmd_compare)
    compare.add_argument("versions", metavar="VERSION", type=version_number, nargs="+", help="two or more versions")
    for name in ("approve", "reject"):
        parser = action(name, f"{name} a version (recorded in its approval history)", cmd_decide)
        parser.add_argument("version", metavar="VERSION", type=version_number)
        parser.add_argument("--reason", required=True, type=reason_text, help="why (recorded with your identity)")
    for parser in actions.choices.values():
        _common(parser)
    return models
