"""Ingest: an S3 "Object Created" event becomes one run (record + execution), exactly once."""

from __future__ import annotations

import hashlib
import json
import re

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sns import Notifier
from fmops.aws.stepfunctions import StepFunctions, execution_arn
from fmops.config import IngestSettings
from fmops.errors import RequestValidationError
from fmops.lifecycle._common import STATUS_FAILED, STATUS_RUNNING, Clock, iso, utcnow
from fmops.observability import logger, metrics
from fmops.schemas.base import parse
from fmops.schemas.run import DEFAULT_HYPERPARAMETERS, USE_CASE_PATTERN, DatasetRef, RunRequest, UseCaseConfig
from fmops.schemas.s3event import S3ObjectCreatedEvent
from fmops.schemas.steps import IngestResult

CONFIG_NAME = "fmops.json"
DATA_SUFFIXES = (".jsonl",)


def run_id_for(use_case: str, bucket: str, key: str, version: str | None) -> str:
    """``<use_case>-<first 12 hex of sha256(bucket/key/version)>``: the same object version, the same run."""
    digest = hashlib.sha256(f"{bucket}/{key}/{version or ''}".encode()).hexdigest()
    return f"{use_case}-{digest[:12]}"


def classify_key(key: str, prefix: str) -> tuple[str | None, str | None]:
    """``(use_case, None)`` for a data set key ``<prefix><use_case>/<name>.jsonl``; ``(None, reason)`` else."""
    if not key.startswith(prefix):
        return None, f"not under {prefix}"
    parts = key[len(prefix) :].split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None, f"not a data set file directly under {prefix}<use_case>/"
    name = parts[1]
    if name == CONFIG_NAME:
        return None, "use-case config file"
    if not name.endswith(DATA_SUFFIXES):
        return None, f"not a data set file ({', '.join(DATA_SUFFIXES)})"
    return parts[0], None


def load_use_case_config(s3: S3Storage, bucket: str, prefix: str, use_case: str) -> UseCaseConfig:
    """``<prefix><use_case>/fmops.json`` (all defaults when absent).

    Raises:
        RequestValidationError: invalid JSON or an invalid field, named with the file's URI.
    """
    key = f"{prefix}{use_case}/{CONFIG_NAME}"
    uri = f"s3://{bucket}/{key}"
    found, content = s3.read_json_if_exists(bucket, key)
    if not found:
        return UseCaseConfig()
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError(f"{uri}: invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise RequestValidationError(f"{uri}: expected a JSON object")
    return parse(UseCaseConfig, document, uri)


def start_run(
    event: S3ObjectCreatedEvent,
    *,
    settings: IngestSettings,
    s3: S3Storage,
    runs: Table,
    sfn: StepFunctions,
    notifier: Notifier,
    clock: Clock = utcnow,
) -> IngestResult:
    """Start the fine-tune workflow for an uploaded data set, at most once per object version.

    Keys that are not data sets (``fmops.json``, prepared splits, other prefixes) are skipped. An invalid
    use-case config records the run as FAILED and notifies once, without starting an execution.

    Raises:
        TransientAwsError, AwsRequestError.
    """
    bucket = event.detail.bucket.name
    obj = event.detail.object
    use_case, reason = classify_key(obj.key, settings.dataset_prefix)
    if use_case is None:
        logger.info("skipping object", extra={"key": obj.key, "reason": reason})
        return IngestResult(skipped=True, reason=reason)
    if not re.match(USE_CASE_PATTERN, use_case):
        reason = f"folder {use_case!r} is not a valid use case name (lower-case letters, digits, '-', max 24)"
        logger.warning("skipping object", extra={"key": obj.key, "reason": reason})
        notifier.publish(f"fmops: data set ignored: {obj.key}", f"s3://{bucket}/{obj.key} was ignored: {reason}.")
        return IngestResult(skipped=True, reason=reason)

    run_id = run_id_for(use_case, bucket, obj.key, obj.version_id or obj.etag)
    dataset = DatasetRef(bucket=bucket, key=obj.key, version_id=obj.version_id)
    now = iso(clock())
    try:
        options = load_use_case_config(s3, bucket, settings.dataset_prefix, use_case).options()
        if "hyperparameters" in options:  # the file's hyperparameters add to (and override) the defaults
            options["hyperparameters"] = {**DEFAULT_HYPERPARAMETERS, **options["hyperparameters"]}
        request = parse(
            RunRequest,
            {**options, "run_id": run_id, "use_case": use_case, "dataset": dataset.model_dump()},
            "run request",
        )
    except RequestValidationError as exc:
        return _reject(run_id, use_case, dataset, exc, runs=runs, notifier=notifier, now=now)

    arn = execution_arn(settings.finetune_state_machine_arn, run_id)
    record = {
        "run_id": run_id,
        "use_case": use_case,
        "status": STATUS_RUNNING,
        "execution_arn": arn,
        "dataset_uri": dataset.uri,
        "dataset_version_id": dataset.version_id,
        "backend": request.backend,
        "request": request.model_dump(mode="json"),
        "created_at": now,
        "updated_at": now,
    }
    created = runs.put(record, only_if_absent=True)
    arn, started = sfn.start_execution(settings.finetune_state_machine_arn, run_id, request.model_dump(mode="json"))
    duplicate = not (created and started)
    if duplicate:
        logger.info("duplicate event: the run already exists", extra={"run_id": run_id})
    else:
        metrics.add_metric(name="RunsStarted", unit="Count", value=1)
        logger.info("run started", extra={"run_id": run_id, "execution_arn": arn})
    return IngestResult(started=not duplicate, duplicate=duplicate, run_id=run_id, execution_arn=arn)


def _reject(
    run_id: str,
    use_case: str,
    dataset: DatasetRef,
    exc: RequestValidationError,
    *,
    runs: Table,
    notifier: Notifier,
    now: str,
) -> IngestResult:
    logger.warning("invalid run request", extra={"run_id": run_id, "error": exc.message})
    created = runs.put(
        {
            "run_id": run_id,
            "use_case": use_case,
            "status": STATUS_FAILED,
            "dataset_uri": dataset.uri,
            "dataset_version_id": dataset.version_id,
            "error": "RequestValidationError",
            "cause": exc.message,
            "failed_step": "Ingest",
            "created_at": now,
            "updated_at": now,
        },
        only_if_absent=True,
    )
    if created:
        notifier.publish(
            f"fmops: run {run_id} failed: invalid request",
            f"Run {run_id} (use case {use_case}) was not started.\n\n"
            f"Data set: {dataset.uri} (version {dataset.version_id})\n"
            f"Error: RequestValidationError\nCause: {exc.message}\n",
            {"run_id": run_id, "status": STATUS_FAILED},
        )
    return IngestResult(started=False, duplicate=not created, run_id=run_id, reason=exc.message)
