"""``fmops train estimate``: what a training run would cost, before uploading its data set.

The options are a use case's (``--use-case-config fmops.json``, the file the workflow reads), then the flags.
``--task`` (or the config's ``task``) picks the SageMaker throughput assumption: an encoder's records per second
for ``classification``/``multilabel``, a small causal LM's tokens per second for ``summarization``/``qa``/``chat``
(whose default base model is then SmolLM2-135M-Instruct, as in the workflow).
The data: ``--data FILE.jsonl`` (a local path or ``s3://``: records and characters are measured with
``fmops.data``), or ``--records N`` [``--avg-chars N``]. Both count the whole data set; the estimate is for its
training split (the first of ``split.ratios``, 0.8 by default), as in the workflow. The arithmetic and the price
table are ``fmops.pricing``'s. Exit codes: 0 estimated, 1 the data file holds no usable record, 2 usage error
(invalid options, unknown model, hyperparameters the model refuses, unreadable file).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmops_local.data_io import DataSourceError, read_chunks

PROG = "fmops train estimate"
# fmops.schemas.run.Task (not imported here: the parser is built on every `fmops` start; a test compares them).
TASKS = ("classification", "multilabel", "summarization", "qa", "chat")


class UsageError(Exception):
    """Exit code 2."""


class DataError(Exception):
    """Exit code 1."""


@dataclass(frozen=True)
class Measured:
    """A data set: its records (every analysed one) and their characters and estimated tokens."""

    records: int
    characters: int | None
    tokens: int | None
    invalid: int = 0
    source: str = "--records"


def measure(uri: str, chars_per_token: float) -> Measured:
    """Records, characters of text and estimated tokens (``chars_per_token``) of a JSONL file, streamed.

    Lines with problems are skipped (counted in ``invalid``: ``fmops data validate`` names them).

    Raises:
        DataSourceError: the file cannot be read.
        DataError: no record is usable.
    """
    from fmops.data.checks import check_record
    from fmops.data.validate import Validator
    from fmops.pricing import tokens_from_characters

    validator = Validator(max_errors=0)
    records = characters = tokens = invalid = 0
    for checked in validator.check_chunks(read_chunks(uri), hash_file=False):
        if checked.record is None:
            invalid += 1
            continue
        _, chars = check_record(checked.record)
        records += 1
        characters += chars
        tokens += tokens_from_characters(chars, chars_per_token)
    if records == 0:
        problems = "; ".join(str(issue) for issue in validator.file_errors) or "no valid record"
        raise DataError(f"{uri}: {problems} (see fmops data validate {uri})")
    return Measured(records, characters, tokens, invalid, source=uri)


def _options(args: argparse.Namespace) -> Any:
    """The run options: defaults, then the use-case config, then the flags (``RunOptions``).

    Raises:
        UsageError: an unreadable or invalid config, or invalid options.
    """
    from fmops.errors import RequestValidationError
    from fmops.schemas import UseCaseConfig, parse
    from fmops.schemas.run import DEFAULT_HYPERPARAMETERS, RunOptions

    options: dict[str, Any] = {}
    if args.use_case_config:
        try:
            raw = json.loads(Path(args.use_case_config).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{args.use_case_config}: {exc}") from None
        try:
            options = parse(UseCaseConfig, raw, args.use_case_config).options()
        except RequestValidationError as exc:
            raise UsageError(str(exc)) from None
    hyperparameters = {**DEFAULT_HYPERPARAMETERS, **options.get("hyperparameters", {})}
    for name in ("backend", "task", "base_model", "instance_type", "instance_count", "spot", "max_runtime_seconds"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.epochs is not None:
        hyperparameters["epochs"] = str(args.epochs)
        if "epochCount" in hyperparameters:  # the flag wins over the config's Bedrock name too
            hyperparameters["epochCount"] = str(args.epochs)
    options["hyperparameters"] = hyperparameters
    try:
        return parse(RunOptions, options, "options")
    except RequestValidationError as exc:
        raise UsageError(str(exc)) from None


def _limits(run: Any) -> Any:
    """The base model's row (Bedrock: its hyperparameters are checked as the workflow would).

    Raises:
        UsageError: an unknown Bedrock model or hyperparameters it refuses.
    """
    from fmops.data.limits import get_limits
    from fmops.errors import RequestValidationError

    if run.backend != "bedrock":
        return get_limits(run.base_model, backend="sagemaker")
    from fmops.lifecycle.training import bedrock_limits, checked_bedrock_hyperparameters

    try:
        limits = bedrock_limits(run.base_model)
        checked_bedrock_hyperparameters(run.hyperparameters, limits)
    except RequestValidationError as exc:
        raise UsageError(str(exc)) from None
    return limits


def _data(args: argparse.Namespace, chars_per_token: float) -> Measured:
    if args.data:
        if args.records is not None or args.avg_chars is not None:
            raise UsageError("give either --data or --records [--avg-chars], not both")
        return measure(args.data, chars_per_token)
    if args.records is None:
        raise UsageError("give --data FILE.jsonl or --records N (with --avg-chars N for Bedrock)")
    if args.records < 1 or (args.avg_chars is not None and args.avg_chars < 0):
        raise UsageError("--records must be >= 1 and --avg-chars >= 0")
    characters = None if args.avg_chars is None else args.records * args.avg_chars
    return Measured(args.records, characters, None, source="--records")


def training_share(measured: Measured, train_fraction: float) -> Any:
    """The training split's part of the data set: ``floor(records x train_fraction)`` records, and the same
    share of the characters and tokens."""
    from fmops.pricing import DataVolume

    records = math.floor(measured.records * train_fraction + 1e-9)
    share = records / measured.records if measured.records else 0.0
    characters = None if measured.characters is None else round(measured.characters * share)
    tokens = None if measured.tokens is None else round(measured.tokens * share)
    basis = "measured in " + measured.source if measured.source != "--records" else "--records/--avg-chars"
    return DataVolume(records=records, characters=characters, tokens=tokens, basis=basis)


def _throughput(estimate: Any) -> str:
    """The throughput assumed: a causal LM's tokens per second (generative tasks), else an encoder's records."""
    if estimate.tokens_per_second is not None:
        return (
            f"{estimate.tokens_per_second:,g} tokens/s (small causal LM), {estimate.tokens_per_record:,g} tokens per "
            f"record (max_length {estimate.max_length})"
        )
    return f"{estimate.records_per_second:g} records/s at max_length 32 (this run: {estimate.max_length})"


def _money(value: float | None) -> str:
    if value is None:
        return "unknown (no price in the table)"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"


def render_table(estimate: Any, measured: Measured, train_fraction: float) -> str:
    """The estimate as an aligned two-column table, then its assumptions and sources."""
    e = estimate
    rows: list[tuple[str, str]] = [("backend", e.backend)]
    data = f"{measured.records:,} records ({measured.source})"
    if measured.invalid:
        data += f", {measured.invalid:,} line{'s' if measured.invalid != 1 else ''} with problems skipped"
    rows.append(("data set", data))
    rows.append(("training records", f"{e.records:,} ({train_fraction:.0%} training split)"))
    rows.append(("epochs", str(e.epochs)))
    if e.backend == "sagemaker":
        mode = "managed spot" if e.spot else "on-demand"
        rows += [
            ("instance", f"{e.instance_type} x {e.instance_count} ({mode})"),
            ("price per instance-hour", "unknown" if e.usd_per_hour is None else f"${e.usd_per_hour:,.4g}"),
            ("task", e.task),
            ("throughput", _throughput(e)),
            (
                "estimated time",
                f"{e.estimated_seconds / 60:,.1f} min" + (" (capped at max runtime)" if e.capped else ""),
            ),
            ("billable instance-hours", f"{e.instance_hours:,.3f}"),
        ]
    else:
        chars = "unknown" if e.characters is None else f"{e.characters:,}"
        rows += [
            ("base model", e.model_id),
            ("training characters", chars),
            ("training tokens", f"{e.tokens:,} x {e.epochs} epochs = {e.training_tokens:,}"),
            ("price per 1,000 tokens", "unknown" if e.usd_per_1k_tokens is None else f"${e.usd_per_1k_tokens:g}"),
            ("model storage", f"{_money(e.storage_usd_per_month)} per month (not in the total)"),
        ]
    rows.append(
        ("estimated total", f"{_money(e.total_usd)} ({e.currency}, {e.price_region} list prices of {e.prices_as_of})")
    )
    width = max(len(label) for label, _ in rows)
    lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in e.assumptions]
    from fmops.pricing import REGION_NOTE

    lines.append(f"  - {REGION_NOTE}")
    lines.append("sources: " + ", ".join(e.sources))
    return "\n".join(lines) + "\n"


def cmd_estimate(args: argparse.Namespace) -> int:
    from fmops.pricing import estimate_cost

    try:
        run = _options(args)
        limits = _limits(run)
        measured = _data(args, limits.chars_per_token)
    except (UsageError, DataSourceError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:
        print(f"{PROG}: not valid UTF-8: {exc}", file=sys.stderr)
        return 1
    train_fraction = run.split.ratios[0]
    volume = training_share(measured, train_fraction)
    estimate = estimate_cost(run, volume, limits=limits if run.backend == "bedrock" else None)
    if args.format == "json":
        data = {
            "source": measured.source,
            "records": measured.records,
            "invalid_lines": measured.invalid,
            "characters": measured.characters,
            "train_fraction": train_fraction,
        }
        print(json.dumps({"data": data, "estimate": estimate.as_dict()}, indent=2))
    else:
        sys.stdout.write(render_table(estimate, measured, train_fraction))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``fmops train ...`` on the top-level subparsers."""
    group = sub.add_parser("train", help="training runs").add_subparsers(dest="action", required=True)
    est = group.add_parser(
        "estimate",
        help="estimated cost of a training run (us-east-1 list prices)",
        description="Estimate what a training run costs, from a use-case config and/or options, and a data set.",
    )
    est.add_argument("--use-case-config", metavar="FMOPS_JSON", help="the use case's fmops.json")
    est.add_argument("--backend", choices=("sagemaker", "bedrock"))
    est.add_argument(
        "--task",
        choices=TASKS,
        help="what is fine-tuned (default: the config's, else classification); generative tasks are priced as a "
        "causal LM",
    )
    est.add_argument("--base-model", help="base model id (Bedrock: a model of `fmops data models`)")
    est.add_argument("--instance-type", help="SageMaker training instance type (ml.g5.xlarge...)")
    est.add_argument("--instance-count", type=int)
    est.add_argument("--epochs", type=int, help="epochs (Bedrock: epochCount)")
    est.add_argument("--spot", action=argparse.BooleanOptionalAction, default=None, help="SageMaker managed spot")
    est.add_argument("--max-runtime-seconds", type=int, help="the cap on SageMaker training time")
    est.add_argument("--data", metavar="FILE_JSONL", help="data set to measure (path or s3://)")
    est.add_argument("--records", type=int, help="records in the data set (instead of --data)")
    est.add_argument("--avg-chars", type=int, help="average characters of text per record (with --records)")
    est.add_argument("--format", choices=("table", "json"), default="table")
    est.set_defaults(func=cmd_estimate)
