"""Validate and split the data set of a run."""

from __future__ import annotations

import posixpath

from fmops.aws.s3 import S3Storage
from fmops.config import CommonSettings
from fmops.data.prepare import prepare_classification_dataset
from fmops.observability import logger, metrics
from fmops.schemas.run import RunRequest
from fmops.schemas.steps import DatasetInfo


def prepared_prefix(run: RunRequest) -> str:
    """``datasets/<use_case>/prepared/<run_id>/``: beside the uploaded file, ignored by ingest."""
    folder = posixpath.dirname(run.dataset.key)
    return f"{folder}/prepared/{run.run_id}/" if folder else f"prepared/{run.run_id}/"


def validate_dataset(run: RunRequest, *, s3: S3Storage, settings: CommonSettings) -> DatasetInfo:
    """Validate the run's data set line by line and write its splits and manifest.

    Raises:
        DatasetValidationError: the first bad line (``line 7: field 'label': must be a non-empty string``).
        TransientAwsError, AwsRequestError.
    """
    info = prepare_classification_dataset(
        s3=s3,
        source=run.dataset,
        output_bucket=settings.datasets_bucket,
        output_prefix=prepared_prefix(run),
        ratios=run.split.ratios,
        seed=run.split.seed,
        run_id=run.run_id,
        bedrock_format=run.backend == "bedrock",
    )
    total = info.counts.train + info.counts.validation + info.counts.test
    metrics.add_metric(name="DatasetRecords", unit="Count", value=total)
    logger.info("data set prepared", extra={"run_id": run.run_id, "counts": info.counts.model_dump()})
    return info
