"""Validate and split the data set of a run (state "Validate and split dataset").

The run's file is validated in its task's format (``TASK_FORMATS``) and stored under the versioned prefix
``datasets/<use_case>/<version>/`` with its manifest:

- ``classification``: ``{"text", "label"}``, stratified by label (at least 2 labels);
- ``multilabel``: ``{"text", "labels": [...]}`` (every record needs ``labels``; at least 2 labels in all), not
  stratified (label sets are too many to stratify on);
- ``summarization``: ``{"document", "summary"}``; ``qa``: ``{"context", "question", "answers"}``; both also take
  the generic shapes of ``chat``: prompt/completion and conversations (``conversation``, ``conversation-legacy``).
  One format per file (detected from its first record); not stratified.

A Bedrock run also gets train and validation files in the base model's Bedrock format (prompt/completion or a
conversation format; the prompts of summarization and QA are built exactly as SageMaker training builds them), which
are checked against the base model's limits (token, record count, file size). A data set with any error ends the
run before training: the JSON report (and the quarantined lines) are stored in the reports bucket and the error
message links the report.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator
from typing import Any

from fmops.aws.s3 import S3Storage
from fmops.config import CommonSettings
from fmops.data.formats import RecordFormatError, bedrock_generative_line, bedrock_line, generative_example
from fmops.data.jsonl import ClassificationRecord
from fmops.data.limits import ModelLimits, get_limits
from fmops.data.lines import iter_line_batches
from fmops.data.prepare import PreparedDataset, PreparedFile, prepare_dataset, store_s3
from fmops.data.validate import Issue, ValidationReport, Validator
from fmops.errors import DatasetValidationError, ResourceNotFoundError, UnknownModelError
from fmops.observability import logger, metrics
from fmops.schemas.run import DatasetRef, RunRequest
from fmops.schemas.steps import DataPlan, DatasetInfo, Shard, ShardSummary, SplitCounts

MIN_RECORDS = 10
MAX_LABELS = 1000
MAX_REPORTED_ERRORS = 100
DATA_FORMAT = "classification"  # the format of the label tasks (classification and multilabel)
MAX_SHARDS = 1000
GENERIC_FORMATS = ("prompt-completion", "conversation", "conversation-legacy")
# The record formats each task trains on (training/fmops_training/data.py and prompts.py read the same ones).
TASK_FORMATS: dict[str, tuple[str, ...]] = {
    "classification": (DATA_FORMAT,),
    "multilabel": (DATA_FORMAT,),
    "summarization": ("summarization", *GENERIC_FORMATS),
    "qa": ("qa", *GENERIC_FORMATS),
    "chat": GENERIC_FORMATS,
}
# A field the format leaves optional that a task needs, and why (records without it are quarantined).
TASK_REQUIRED_FIELDS: dict[str, dict[str, str]] = {
    "multilabel": {"labels": "task multilabel needs a list of labels per record ('labels': [...])"},
}
# Stratified by this field: only single-label classification (a label set per record is too fine to stratify on).
TASK_STRATIFY: dict[str, str | None] = {"classification": "label"}


def task_data_format(task: str) -> str | None:
    """The format a task's file is validated as; None: detected from the first record (several are accepted)."""
    formats = TASK_FORMATS[task]
    return formats[0] if len(formats) == 1 else None


def format_issue(task: str, data_format: str | None) -> Issue | None:
    """The whole-file problem of a file whose detected format the task does not train on (None when it does)."""
    if data_format is None or data_format in TASK_FORMATS[task]:
        return None
    return Issue(
        0,
        None,
        "format_not_for_task",
        f"{data_format} records cannot train task {task}; it takes {', '.join(TASK_FORMATS[task])}",
    )


def dataset_prefix(run: RunRequest) -> str:
    """``datasets/<use_case>/``: the folder of the uploaded file; versions go below it (ignored by ingest)."""
    folder = posixpath.dirname(run.dataset.key)
    return f"{folder}/" if folder else ""


def report_key(run: RunRequest, name: str) -> str:
    return f"runs/{run.run_id}/{name}"


def _reader(s3: S3Storage, source: DatasetRef) -> Iterator[bytes]:
    try:
        stream = s3.open(source.bucket, source.key, source.version_id)
    except ResourceNotFoundError as exc:
        raise DatasetValidationError(f"{source.uri} (version {source.version_id}) does not exist") from exc
    return stream.iter_chunks()


def _labels(prepared: PreparedDataset, task: str) -> list[str]:
    """The sorted labels of the splits: the strata of classification, every ``labels`` entry of multilabel, none
    for the generative tasks."""
    labels: set[str] = set()
    if task == "multilabel":
        for prepared_file in prepared.files.values():
            prepared_file.spool.seek(0)
            for line in prepared_file.spool:
                labels.update(json.loads(line).get("labels") or ())
        return sorted(labels)
    for prepared_file in prepared.files.values():
        labels.update(prepared_file.values)
    return sorted(labels)


def _fail(
    run: RunRequest, s3: S3Storage, settings: CommonSettings, report: ValidationReport, quarantine: PreparedFile | None
) -> DatasetValidationError:
    """Store the report (and the quarantined lines) and build the error that ends the run."""
    document: dict[str, Any] = {"source": run.dataset.uri, "version_id": run.dataset.version_id, **report.as_dict()}
    if quarantine is not None and quarantine.records:
        document["quarantine_uri"] = s3.put_file(
            settings.reports_bucket, report_key(run, "quarantine.jsonl"), quarantine.spool, "application/jsonlines"
        )
    uri = s3.put_json(settings.reports_bucket, report_key(run, "data-validation.json"), document)
    first = report.errors[0] if report.errors else Issue(0, None, "invalid", "the data set is invalid")
    metrics.add_metric(name="DatasetInvalid", unit="Count", value=1)
    logger.warning("data set invalid", extra={"run_id": run.run_id, "errors": report.error_count, "report": uri})
    return DatasetValidationError(
        f"{first.message} ({report.error_count} problem(s) in all; report: {uri})",
        line=first.line or None,
        field=first.field,
    )


def _with_error(report: ValidationReport, issue: Issue) -> ValidationReport:
    report.errors.insert(0, issue)
    report.error_count += 1
    report.valid = False
    return report


def _bedrock_files(
    run: RunRequest, prepared: PreparedDataset, labels: list[str], s3: S3Storage, settings: CommonSettings
) -> dict[str, PreparedFile]:
    """Train and validation in the Bedrock model's format, checked against the model's limits.

    Classification records become ``classification_prompt`` prompts with the label as completion; generative
    records become their conversation (summarization and QA with training's prompts), written as prompt/completion
    or a conversation format (:func:`fmops.data.formats.bedrock_generative_line`).
    """
    try:
        limits = get_limits(run.base_model)
    except UnknownModelError:
        limits = None
        logger.warning("no data limits known for the base model", extra={"base_model": run.base_model})
    data_format = bedrock_format(limits)
    out: dict[str, PreparedFile] = {}

    def close_all() -> None:
        for done in out.values():
            done.spool.close()

    for name in ("train", "validation"):
        source = prepared.files[name]
        converted = PreparedFile(f"{name}.bedrock")
        source.spool.seek(0)
        for number, line in enumerate(source.spool, start=1):
            obj = json.loads(line)
            if run.task == "classification":
                converted.write(bedrock_line(ClassificationRecord(obj["text"], obj["label"]), labels, data_format))
                continue
            try:
                converted.write(bedrock_generative_line(generative_example(obj), data_format))
            except RecordFormatError as exc:
                converted.spool.close()
                close_all()
                model = limits.model_id if limits else run.base_model
                problem = f"{exc} ({name} split record {number}, for {model}'s {data_format} format)"
                report = ValidationReport(
                    valid=False,
                    records=source.records,
                    valid_records=source.records - 1,
                    errors=[Issue(0, exc.field, "not_convertible", problem)],
                    warnings=[],
                    format=prepared.report.format,
                    error_count=1,
                    warning_count=0,
                    model=model,
                )
                raise _fail(run, s3, settings, report, None) from exc
        validator = Validator(data_format=data_format, limits=limits, role=name, max_errors=MAX_REPORTED_ERRORS)
        converted.spool.seek(0)
        for _ in validator.check_chunks(_blocks(converted.spool), emit_valid=False):
            pass
        report = validator.report()
        if not report.valid:
            converted.spool.close()
            close_all()
            raise _fail(run, s3, settings, report, None)
        out[converted.name] = converted
    return out


def bedrock_format(limits: ModelLimits | None) -> str:
    """The data format to write for a Bedrock base model: prompt/completion where it takes it, else a
    conversation format (Nova and Llama 3.2 take ``conversation``, Claude 3 Haiku ``conversation-legacy``)."""
    if limits is None or "prompt-completion" in limits.formats:
        return "prompt-completion"
    return "conversation" if "conversation" in limits.formats else "conversation-legacy"


def _blocks(spool: Any) -> Iterable[bytes]:
    while block := spool.read(1024 * 1024):
        yield block


def plan_dataset(run: RunRequest, *, s3: S3Storage, default_shard_bytes: int) -> DataPlan:
    """Decide whether the data set is validated in one pass or in parallel byte-range shards."""
    source = run.dataset
    try:
        size = s3.size(source.bucket, source.key, source.version_id)
    except ResourceNotFoundError as exc:
        raise DatasetValidationError(f"{source.uri} (version {source.version_id}) does not exist") from exc
    shard_bytes = max(run.split.shard_bytes or default_shard_bytes, -(-size // MAX_SHARDS))
    if size <= shard_bytes:
        return DataPlan(size=size, sharded=False, shards=[])
    bounds = list(range(0, size, shard_bytes)) + [size]
    shards = [Shard(index=i, start=a, end=b) for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))]
    logger.info("data set sharded", extra={"run_id": run.run_id, "bytes": size, "shards": len(shards)})
    return DataPlan(size=size, sharded=True, shards=shards)


def validate_shard(run: RunRequest, shard: Shard, *, s3: S3Storage, settings: CommonSettings) -> ShardSummary:
    """Validate the lines that start inside ``shard`` (numbered from 1 within the shard); store the result."""
    source = run.dataset
    read_from = max(shard.start - 1, 0)  # one byte back: a line starting exactly at ``start`` is ours
    chunks = s3.open_range(source.bucket, source.key, source.version_id, read_from)
    validator = Validator(data_format=task_data_format(run.task), max_errors=MAX_REPORTED_ERRORS)
    batches = iter_line_batches(chunks, skip_partial_first=shard.start > 0, stop_at=shard.end - read_from)
    for _ in validator.check_lines(batches, emit_valid=False):
        pass
    report = validator.report()
    document = {
        "index": shard.index,
        "start": shard.start,
        "end": shard.end,
        "crlf_lines": validator.crlf_lines,
        **report.as_dict(),
    }
    uri = s3.put_json(settings.reports_bucket, report_key(run, f"shards/{shard.index:05d}.json"), document)
    return ShardSummary(index=shard.index, uri=uri, lines=report.records, error_count=report.error_count)


def merge_shards(shards: list[ShardSummary], s3: S3Storage, task: str = "classification") -> ValidationReport:
    """One report for the whole file from the shard results, with file-global line numbers.

    A task that accepts several formats has each shard detect its own: shards of different formats, or a format
    the task does not train on, are a whole-file error.
    """
    merged = Validator(data_format=task_data_format(task), max_errors=MAX_REPORTED_ERRORS)
    offset = 0
    formats: list[tuple[str, int]] = []
    for summary in sorted(shards, key=lambda s: s.index):
        bucket, _, key = summary.uri.removeprefix("s3://").partition("/")
        part = json.loads(s3.read_bytes(bucket, key))
        report = ValidationReport.from_dict(part)
        if report.format is not None and report.format not in (f for f, _ in formats):
            formats.append((report.format, offset + 1))
        merged.absorb(report, line_offset=offset, crlf_lines=part.get("crlf_lines", 0))
        offset += report.records
    merged.finish()
    if len(formats) > 1:
        (first, _), (other, line) = formats[0], formats[1]
        problem = f"the file mixes formats: {first} records, then {other} records (from around line {line})"
        merged.reject(Issue(0, None, "mixed_formats", problem))
    issue = format_issue(task, merged.report().format)
    if issue is not None:
        merged.reject(issue)
    return merged.report()


def validate_dataset(
    run: RunRequest, *, s3: S3Storage, settings: CommonSettings, shards: list[ShardSummary] | None = None
) -> DatasetInfo:
    """Validate the run's data set, split it, and store the splits and manifest under a versioned prefix.

    With ``shards`` (the results of the parallel validation) an invalid data set fails at once with the
    merged report; a valid one is split here (the split pass checks every line again as it goes).

    Raises:
        DatasetValidationError: the first problem (``line 7: field 'label': must not be empty...``), with
            the count of all problems and the S3 URI of the full JSON report.
        TransientAwsError, AwsRequestError.
    """
    source = run.dataset
    task = run.task
    if shards:
        merged = merge_shards(shards, s3, task)
        if not merged.valid:
            raise _fail(run, s3, settings, merged, None)
    prepared = prepare_dataset(
        lambda: _reader(s3, source),
        ratios=run.split.ratios,
        seed=run.split.seed,
        data_format=task_data_format(task),
        stratify_by=TASK_STRATIFY.get(task),
        min_records=MIN_RECORDS,
        max_errors=MAX_REPORTED_ERRORS,
        require=TASK_REQUIRED_FIELDS.get(task),
    )
    try:
        report = prepared.report
        wrong_format = format_issue(task, report.format)
        if wrong_format is not None:
            report = _with_error(report, wrong_format)
        labels = _labels(prepared, task) if report.valid else []
        field = "labels" if task == "multilabel" else "label"
        if report.valid and task in ("classification", "multilabel") and len(labels) < 2:
            only = f" ({labels[0]!r})" if labels else ""
            problem = f"only {len(labels)} distinct label{only}; {task} needs at least 2"
            report = _with_error(report, Issue(0, field, "too_few_labels", problem))
        if report.valid and len(labels) > MAX_LABELS:
            report = _with_error(report, Issue(0, field, "too_many_labels", f"more than {MAX_LABELS} labels"))
        if not report.valid:
            raise _fail(run, s3, settings, report, prepared.quarantine)
        bedrock = _bedrock_files(run, prepared, labels, s3, settings) if run.backend == "bedrock" else {}
        prepared.files.update(bedrock)
        version_id = source.version_id or s3.head_version(source.bucket, source.key)
        manifest = store_s3(
            prepared,
            s3,
            settings.datasets_bucket,
            dataset_prefix(run),
            source_uri=source.uri,
            source_version=version_id,
        )
    finally:
        prepared.close()
    splits = manifest["splits"]
    counts = SplitCounts(
        train=prepared.counts["train"], validation=prepared.counts["validation"], test=prepared.counts["test"]
    )
    metrics.add_metric(name="DatasetRecords", unit="Count", value=report.valid_records)
    logger.info(
        "data set prepared", extra={"run_id": run.run_id, "counts": counts.model_dump(), "version": prepared.version}
    )
    return DatasetInfo(
        source_uri=source.uri,
        version_id=version_id,
        sha256=report.sha256 or "",
        prepared_prefix=f"s3://{settings.datasets_bucket}/{dataset_prefix(run)}{prepared.version}/",
        manifest_uri=manifest["uri"],
        train_uri=splits["train"]["uri"],
        validation_uri=splits["validation"]["uri"],
        test_uri=splits["test"]["uri"],
        counts=counts,
        labels=labels,
        bedrock_train_uri=splits.get("train.bedrock", {}).get("uri"),
        bedrock_validation_uri=splits.get("validation.bedrock", {}).get("uri"),
    )
