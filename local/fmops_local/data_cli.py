"""``fmops data``: validate, profile, split and convert fine-tuning data (the library is ``fmops.data``).

Exit codes, for every command: 0 success (valid data, nothing quarantined), 1 the data has problems
(reported; outputs that could be written are written, nothing lost), 2 a usage error (bad option, missing
file, unknown model) with one line on standard error and no output files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fmops_local import data_convert_cmd, data_stats_cmd
from fmops_local.data_io import DataSourceError, is_s3, read_chunks, s3_version_id, split_s3

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
SUMMARY_ERRORS = 20  # errors listed in a split summary (the quarantine file has every bad line)


class UsageError(Exception):
    """A usage problem found after argument parsing (exit code 2)."""


def _limits(model: str | None) -> Any:
    if not model:
        return None
    from fmops.data.limits import get_limits
    from fmops.errors import UnknownModelError

    try:
        return get_limits(model)
    except UnknownModelError as exc:
        raise UsageError(str(exc)) from exc


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected three numbers like 0.8,0.1,0.1") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise argparse.ArgumentTypeError(f"{text!r}: three non-negative numbers summing to 1")
    return values[0], values[1], values[2]


def _print_report_text(report: Any) -> None:
    print(report.summary())
    for issue in report.errors:
        print(f"  error   {issue}  [{issue.code}]")
    for issue in report.warnings:
        print(f"  warning {issue}  [{issue.code}]")
    if report.error_count > len(report.errors):
        print(f"  ... {report.error_count - len(report.errors)} more error(s) (--max-errors)")


def cmd_validate(args: argparse.Namespace) -> int:
    from fmops.data.validate import validate_chunks

    limits = _limits(args.model)
    if is_s3(args.file):
        report = validate_chunks(
            read_chunks(args.file),
            hash_file=args.sha256,
            data_format=args.data_format,
            limits=limits,
            role=args.split,
            max_errors=args.max_errors,
        )
    else:
        from fmops_local.parallel_validate import validate_file

        path = Path(args.file)
        if not path.is_file():
            raise DataSourceError(f"{args.file}: no such file")
        report = validate_file(
            path,
            workers=args.workers,
            data_format=args.data_format,
            model=args.model,
            role=args.split,
            max_errors=args.max_errors,
            hash_file=args.sha256,
        )
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        _print_report_text(report)
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_split(args: argparse.Namespace) -> int:
    from fmops.data.prepare import prepare_dataset, store_local, store_s3

    source = args.file
    if is_s3(args.out):
        split_s3(args.out.rstrip("/") + "/x")  # validates the URI before any work
    prepared = prepare_dataset(
        lambda: read_chunks(source),
        ratios=args.ratios,
        seed=args.seed,
        data_format=args.data_format,
        limits=_limits(args.model),
        stratify_by=args.stratify_by,
        group_by=args.group_by,
        max_errors=args.max_errors,
    )
    try:
        report = prepared.report
        file_level = [e for e in report.errors if e.line == 0]
        summary: dict[str, Any] = {
            "records": report.records,
            "written": sum(prepared.counts.values()) if not file_level else 0,
            "quarantined": prepared.quarantine.records,
            "counts": prepared.counts,
            "version": prepared.version,
            "error_count": report.error_count,
            "errors": [e.as_dict() for e in report.errors[:SUMMARY_ERRORS]],
        }
        if file_level or (args.strict and not report.valid):
            summary["written"] = 0
            summary["manifest"] = None
            print(json.dumps(summary, indent=2, ensure_ascii=False))
            print(f"fmops data split: nothing written: {report.errors[0]}", file=sys.stderr)
            return EXIT_INVALID
        if is_s3(args.out):
            from fmops.aws.s3 import S3Storage

            bucket, _, prefix = args.out.removeprefix("s3://").partition("/")
            prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
            manifest = store_s3(
                prepared,
                S3Storage(),
                bucket,
                prefix,
                source_uri=source,
                source_version=s3_version_id(source),
            )
            summary["manifest"] = manifest["uri"]
        else:
            store_local(prepared, Path(args.out), source_uri=str(Path(source).resolve()))
            summary["manifest"] = str(Path(args.out) / "manifest.json")
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return EXIT_OK if report.valid else EXIT_INVALID
    finally:
        prepared.close()


def cmd_models(args: argparse.Namespace) -> int:
    from fmops.data.limits import MODEL_LIMITS, limits_table_markdown

    if args.format == "json":
        rows = [
            {
                "model_id": row.model_id,
                "name": row.name,
                "formats": list(row.formats),
                "min_train_records": row.min_train_records,
                "max_train_records": row.max_train_records,
                "max_validation_records": row.max_validation_records,
                "max_tokens_per_record": row.max_tokens_per_record,
                "source": row.source,
            }
            for row in MODEL_LIMITS
        ]
        print(json.dumps(rows, indent=2))
    else:
        print(limits_table_markdown())
    return EXIT_OK


def _usage_errors_exit_2(command: Any) -> Any:
    """Run a data command, turning usage problems into exit code 2 with one line on standard error."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except (UsageError, DataSourceError, ValueError) as exc:
            print(f"fmops data {args.action}: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def add_parser(sub: Any) -> None:
    """Register ``fmops data ...`` on the top-level subparsers."""
    from fmops.data.schemas import FORMATS

    data = sub.add_parser("data", help="validate, profile, split and convert data sets").add_subparsers(
        dest="action", required=True
    )

    validate = data.add_parser("validate", help="check every line of a data file; exit 1 when invalid")
    validate.add_argument("file", help="a local JSONL file or s3://bucket/key")
    validate.add_argument("--model", help="check against this base model's limits (see `fmops data models`)")
    validate.add_argument("--data-format", choices=FORMATS, help="the record format (default: detected)")
    validate.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    validate.add_argument("--max-errors", type=int, default=100, help="list at most N errors (counts stay exact)")
    validate.add_argument(
        "--split", choices=("train", "validation"), default="train", help="which limits apply (default: train)"
    )
    validate.add_argument("--sha256", action="store_true", help="also report the file's sha256 (one process)")
    validate.add_argument(
        "--workers", type=int, default=None, help="processes for a large local file (default: one per CPU)"
    )
    validate.set_defaults(func=_usage_errors_exit_2(cmd_validate))

    split = data.add_parser("split", help="write train/validation/test JSONL and manifest.json")
    split.add_argument("file", help="a local JSONL file or s3://bucket/key")
    split.add_argument("--ratios", type=_ratios, default=(0.8, 0.1, 0.1), help="train,validation,test")
    split.add_argument("--seed", type=int, default=42)
    split.add_argument("--stratify-by", help="keep this field's values in proportion in every split")
    split.add_argument("--group-by", help="never put two records with this field's value in different splits")
    split.add_argument("--out", required=True, help="a folder, or s3://bucket/prefix (a <version>/ goes below it)")
    split.add_argument("--data-format", choices=FORMATS)
    split.add_argument("--model", help="also check this base model's limits")
    split.add_argument("--max-errors", type=int, default=100)
    split.add_argument("--strict", action="store_true", help="write nothing when any record is bad")
    split.set_defaults(func=_usage_errors_exit_2(cmd_split))

    models = data.add_parser("models", help="the per-model data limits fmops checks")
    models.add_argument("--format", choices=("markdown", "json"), default="markdown")
    models.set_defaults(func=cmd_models)

    data_stats_cmd.add_parser(data)
    data_convert_cmd.add_parser(data)
