"""Validate a classification JSONL data set from S3 and write its deterministic splits and manifest."""

from __future__ import annotations

import hashlib
import json
import tempfile
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from fmops.aws.s3 import S3Storage
from fmops.data.formats import bedrock_line
from fmops.data.jsonl import ClassificationRecord, HashingLineReader, dump_record, parse_classification_line
from fmops.data.split import SPLITS, assign_splits, split_counts
from fmops.errors import DatasetValidationError, ResourceNotFoundError
from fmops.schemas.run import DatasetRef
from fmops.schemas.steps import DatasetInfo, SplitCounts

MIN_RECORDS = 10
MAX_LABELS = 1000
SPOOL_BYTES = 16 * 1024 * 1024
FORMAT = "fmops.classification.jsonl/v1"


@dataclass
class _SplitFile:
    name: str
    spool: IO[bytes]
    records: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    digest: Any = field(default_factory=hashlib.sha256)

    def write(self, line: bytes, label: str) -> None:
        self.spool.write(line)
        self.digest.update(line)
        self.records += 1
        self.labels[label] += 1


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


def prepare_classification_dataset(
    *,
    s3: S3Storage,
    source: DatasetRef,
    output_bucket: str,
    output_prefix: str,
    ratios: tuple[float, float, float],
    seed: int,
    run_id: str,
    min_records: int = MIN_RECORDS,
    bedrock_format: bool = False,
) -> DatasetInfo:
    """Validate ``source`` line by line, split it, and write the splits and ``manifest.json``.

    Writes ``<output_prefix>{train,validation,test}.jsonl`` (and ``{train,validation}.bedrock.jsonl``
    with ``bedrock_format``) plus ``manifest.json`` to ``output_bucket``. Nothing is written unless the
    whole data set is valid.

    Raises:
        DatasetValidationError: the first problem, with its 1-based line and field.
        TransientAwsError, AwsRequestError: S3 failures.
    """
    try:
        stream = s3.open(source.bucket, source.key, source.version_id)
    except ResourceNotFoundError as exc:
        raise DatasetValidationError(f"{source.uri} (version {source.version_id}) does not exist") from exc

    label_index: dict[str, int] = {}
    label_names: list[str] = []
    label_ids = array("I")
    reader = HashingLineReader(stream.iter_chunks())
    with _spool() as validated:
        for line_no, raw in reader:
            record = parse_classification_line(line_no, raw)
            label_id = label_index.get(record.label)
            if label_id is None:
                if len(label_names) >= MAX_LABELS:
                    raise DatasetValidationError(f"more than {MAX_LABELS} distinct labels", line=line_no, field="label")
                label_id = label_index[record.label] = len(label_names)
                label_names.append(record.label)
            label_ids.append(label_id)
            validated.write(dump_record(record))

        total = len(label_ids)
        if reader.size == 0:
            raise DatasetValidationError(f"{source.uri} is empty")
        if total < min_records:
            raise DatasetValidationError(f"{total} record(s); at least {min_records} are needed")
        if len(label_names) < 2:
            raise DatasetValidationError(f"only 1 distinct label ({label_names[0]!r}); classification needs at least 2")
        counts = split_counts(total, ratios)
        for name, ratio, count in zip(SPLITS, ratios, counts, strict=True):
            if ratio > 0 and count == 0:
                raise DatasetValidationError(
                    f"{total} records leave the {name} split empty at ratio {ratio}; add records or change split.ratios"
                )
        assignment = assign_splits(label_ids, label_names, ratios, seed)
        labels_sorted = sorted(label_names)

        outputs = [_SplitFile(name, _spool()) for name in SPLITS]
        bedrock = [_SplitFile(name, _spool()) for name in SPLITS[:2]] if bedrock_format else []
        try:
            validated.seek(0)
            for index, line in enumerate(validated):
                split = assignment[index]
                label = label_names[label_ids[index]]
                outputs[split].write(line, label)
                if bedrock and split < 2:
                    obj = json.loads(line)
                    bedrock[split].write(
                        bedrock_line(ClassificationRecord(obj["text"], obj["label"]), labels_sorted), label
                    )
            uris: dict[str, str] = {}
            manifest_splits: dict[str, Any] = {}
            for out in outputs:
                key = f"{output_prefix}{out.name}.jsonl"
                uris[out.name] = s3.put_file(output_bucket, key, out.spool, "application/jsonlines")
                manifest_splits[out.name] = {
                    "uri": uris[out.name],
                    "sha256": out.digest.hexdigest(),
                    "records": out.records,
                    "labels": dict(sorted(out.labels.items())),
                }
            bedrock_uris: dict[str, str] = {}
            for out in bedrock:
                key = f"{output_prefix}{out.name}.bedrock.jsonl"
                bedrock_uris[out.name] = s3.put_file(output_bucket, key, out.spool, "application/jsonlines")
                manifest_splits[f"{out.name}.bedrock"] = {
                    "uri": bedrock_uris[out.name],
                    "sha256": out.digest.hexdigest(),
                    "records": out.records,
                }
        finally:
            for out in [*outputs, *bedrock]:
                out.spool.close()

    version_id = source.version_id or stream.version_id
    manifest = {
        "format": FORMAT,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"uri": source.uri, "version_id": version_id, "sha256": reader.sha256, "bytes": reader.size},
        "records": total,
        "labels": dict(sorted(Counter(label_names[i] for i in label_ids).items())),
        "seed": seed,
        "ratios": list(ratios),
        "splits": manifest_splits,
    }
    manifest_uri = s3.put_json(output_bucket, f"{output_prefix}manifest.json", manifest)
    return DatasetInfo(
        source_uri=source.uri,
        version_id=version_id,
        sha256=reader.sha256,
        prepared_prefix=f"s3://{output_bucket}/{output_prefix}",
        manifest_uri=manifest_uri,
        train_uri=uris["train"],
        validation_uri=uris["validation"],
        test_uri=uris["test"],
        counts=SplitCounts(train=counts[0], validation=counts[1], test=counts[2]),
        labels=labels_sorted,
        bedrock_train_uri=bedrock_uris.get("train"),
        bedrock_validation_uri=bedrock_uris.get("validation"),
    )
