"""Validate a data file and split it into train/validation/test, in two streaming passes.

Pass 1 validates every line (quarantining the bad ones with their line number and errors) and keeps, per
valid record, only its stratum and group ids. Pass 2 reads the source again and routes each valid record to
its split. Memory is a few bytes per record; the split files are spooled to disk, then stored by the caller
(``store_local`` or ``store_s3``) together with ``manifest.json``.

Nothing is lost: records in = records written to the splits + records quarantined.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from fmops.data.schemas import SCHEMAS, to_builtins
from fmops.data.split import SPLITS, assign_splits, split_counts
from fmops.data.validate import Checked, ValidationReport, Validator

if TYPE_CHECKING:
    from fmops.aws.s3 import S3Storage
    from fmops.data.limits import ModelLimits

MANIFEST_FORMAT = "fmops.dataset-manifest/v1"
SPOOL_BYTES = 16 * 1024 * 1024
QUARANTINE = "quarantine"


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


@dataclass
class PreparedFile:
    name: str
    spool: IO[bytes] = field(default_factory=_spool)
    records: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    values: Counter[str] = field(default_factory=Counter)

    def write(self, line: bytes) -> None:
        self.spool.write(line)
        self.digest.update(line)
        self.records += 1

    @property
    def sha256(self) -> str:
        return str(self.digest.hexdigest())


@dataclass
class PreparedDataset:
    """Validated, split data in spooled files; ``close()`` when stored."""

    report: ValidationReport
    files: dict[str, PreparedFile]
    quarantine: PreparedFile
    options: dict[str, Any]
    version: str
    counts: dict[str, int]

    def close(self) -> None:
        for prepared in [*self.files.values(), self.quarantine]:
            prepared.spool.close()

    def manifest(self, *, source_uri: str, source_version: str | None, uris: dict[str, str]) -> dict[str, Any]:
        splits = {
            name: {
                "uri": uris.get(name),
                "sha256": prepared.sha256,
                "records": prepared.records,
                **({"values": dict(sorted(prepared.values.items()))} if prepared.values else {}),
            }
            for name, prepared in self.files.items()
        }
        return {
            "format": MANIFEST_FORMAT,
            "version": self.version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {
                "uri": source_uri,
                "version_id": source_version,
                "sha256": self.report.sha256,
                "bytes": self.report.bytes,
                "records": self.report.records,
            },
            "data_format": self.report.format,
            **self.options,
            "splits": splits,
            "quarantine": {
                "uri": uris.get(QUARANTINE) if self.quarantine.records else None,
                "records": self.quarantine.records,
                "sha256": self.quarantine.sha256 if self.quarantine.records else None,
            },
            "validation": {
                "valid": self.report.valid,
                "error_count": self.report.error_count,
                "warning_count": self.report.warning_count,
            },
        }


class FieldValues:
    """Turns the value of a field (any JSON value) into a small int id, and back."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def id(self, value: Any) -> int:
        key = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.names)
            self.names.append(key)
        return found

    def ranks(self) -> list[int]:
        """Each id's position in sorted name order (so strata order does not depend on file order)."""
        order = sorted(range(len(self.names)), key=self.names.__getitem__)
        ranks = [0] * len(order)
        for rank, value_id in enumerate(order):
            ranks[value_id] = rank
        return ranks


def _field(record: Any, name: str, number: int) -> Any:
    value = getattr(record, name, msgspec.UNSET)
    if value is msgspec.UNSET:
        raise KeyError(f"line {number}: has no field {name!r}")
    return value


def quarantine_line(checked: Checked, raw: bytes | None) -> bytes:
    """One quarantine record: the line number, its errors, and the line itself."""
    text = (raw if raw is not None else b"").decode("utf-8", errors="replace")
    entry = {"line": checked.number, "errors": [i.as_dict() for i in checked.issues], "raw": text}
    return json.dumps(entry, ensure_ascii=False).encode() + b"\n"


def prepare_dataset(
    read: Callable[[], Iterable[bytes]],
    *,
    ratios: tuple[float, float, float],
    seed: int,
    data_format: str | None = None,
    limits: ModelLimits | None = None,
    stratify_by: str | None = None,
    group_by: str | None = None,
    max_errors: int | None = 1000,
    min_records: int = 1,
    require: Mapping[str, str] | None = None,
) -> PreparedDataset:
    """Validate and split the file that ``read()`` streams (it is called twice).

    Records lacking the ``stratify_by`` or ``group_by`` field are quarantined, and so are records lacking a field
    of ``require`` (field name -> why it is needed: ``{"labels": "task multilabel needs a list of labels"}``; for
    a format's optional fields). Raises ``ValueError`` for bad ratios; a data set with errors still returns
    (``report.valid`` False): the caller decides.
    """
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {list(ratios)}")
    options: dict[str, Any] = {
        "ratios": list(ratios),
        "seed": seed,
        "stratify_by": stratify_by,
        "group_by": group_by,
    }
    extra = tuple(dict.fromkeys(f for f in (stratify_by, group_by) if f))
    required = dict(require or {})
    validator = Validator(data_format=data_format, limits=limits, max_errors=max_errors, extra_fields=extra)
    strata_values, group_values = FieldValues(), FieldValues()
    strata, groups = array("I"), array("Q")
    accepted = bytearray()  # per physical line: 1 when the record goes to a split
    quarantine = PreparedFile(QUARANTINE)
    for checked in validator.check_chunks(read()):
        record = checked.record
        if record is not None and required:
            missing_required = next((f for f in required if getattr(record, f, msgspec.UNSET) is msgspec.UNSET), None)
            if missing_required is not None:
                record = None
                checked = checked._replace(issues=[_required_issue(checked.number, missing_required, required)])
                validator.reject(checked.issues[0])
        if record is not None:
            try:
                stratum = strata_values.id(_field(record, stratify_by, checked.number)) if stratify_by else 0
                group = group_values.id(_field(record, group_by, checked.number)) if group_by else 0
            except KeyError as exc:
                record = None
                missing = str(exc.args[0]).split(": ", 1)[1]
                checked = checked._replace(issues=[_missing_issue(checked.number, stratify_by, missing)])
                validator.reject(checked.issues[0])
            else:
                strata.append(stratum)
                groups.append(group)
        accepted.append(record is not None)
        if record is None:
            quarantine.write(quarantine_line(checked, checked.data))
    report = validator.report()
    total = len(strata)
    if total < min_records and report.records:
        validator.reject(_file_issue("too_few_records", f"{total} valid record(s); at least {min_records} needed"))
        report = validator.report()
    counts = split_counts(total, ratios)
    for name, ratio, count in zip(SPLITS, ratios, counts, strict=True):
        if ratio > 0 and count == 0 and total:
            validator.reject(
                _file_issue("empty_split", f"{total} valid records leave the {name} split empty at ratio {ratio}")
            )
            report = validator.report()
    files = {name: PreparedFile(name) for name in SPLITS}
    version = hashlib.sha256(
        json.dumps([report.sha256, data_format or report.format, options], sort_keys=True).encode()
    ).hexdigest()[:12]
    prepared = PreparedDataset(report, files, quarantine, options, version, dict(zip(SPLITS, counts, strict=True)))
    if validator.file_errors:
        return prepared  # whole-file problems: nothing to split
    rank = strata_values.ranks()
    assignment = assign_splits(
        [rank[s] for s in strata] if stratify_by else strata, ratios, seed, groups if group_by else None
    )
    second = Validator(data_format=report.format, max_errors=0, extra_fields=extra)
    # Fields named only to stratify or group, not part of the format, are not written to the splits.
    base_fields = SCHEMAS[report.format].__struct_fields__ if report.format else ()
    not_written = tuple(f for f in extra if f not in base_fields)
    index = 0
    for number, checked in enumerate(second.check_chunks(read()), start=1):
        if not accepted[number - 1]:
            continue
        out = files[SPLITS[assignment[index]]]
        if stratify_by:
            out.values[strata_values.names[strata[index]]] += 1
        out.write(_strip(checked, not_written) + b"\n")
        index += 1
    if second.sha256 != report.sha256 or index != total:
        prepared.close()
        raise RuntimeError("the source changed while it was being split (its sha256 differs between the two reads)")
    prepared.counts = {name: files[name].records for name in SPLITS}
    return prepared


def _strip(checked: Checked, extra: tuple[str, ...]) -> bytes:
    """The line as written to a split: the fields used only to stratify or group are removed."""
    assert checked.data is not None and checked.record is not None
    if not extra or not any(getattr(checked.record, name, msgspec.UNSET) is not msgspec.UNSET for name in extra):
        return checked.data
    fields = to_builtins(checked.record)
    for name in extra:
        fields.pop(name, None)
    return json.dumps(fields, ensure_ascii=False).encode()


def _file_issue(code: str, message: str) -> Any:
    from fmops.data.validate import Issue

    return Issue(0, None, code, message)


def _required_issue(number: int, name: str, required: Mapping[str, str]) -> Any:
    from fmops.data.validate import Issue

    return Issue(number, name, "missing_field", f"is missing: {required[name]}")


def _missing_issue(number: int, stratify_by: str | None, missing: str) -> Any:
    from fmops.data.validate import Issue

    name = missing.split("'")[1] if "'" in missing else missing
    role = "stratify" if name == stratify_by else "group"
    return Issue(number, name, "missing_field", f"is missing, and it is needed to {role} the split")


def store_local(prepared: PreparedDataset, out_dir: Path, *, source_uri: str) -> dict[str, Any]:
    """Write the splits, the quarantine file (when there is one) and ``manifest.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    uris: dict[str, str] = {}
    for prepared_file in [*prepared.files.values(), prepared.quarantine]:
        if prepared_file is prepared.quarantine and not prepared_file.records:
            continue
        target = out_dir / f"{prepared_file.name}.jsonl"
        temporary = target.with_suffix(".jsonl.tmp")
        with temporary.open("wb") as handle:
            prepared_file.spool.seek(0)
            while block := prepared_file.spool.read(1024 * 1024):
                handle.write(block)
        os.replace(temporary, target)
        uris[prepared_file.name] = str(target)
    manifest = prepared.manifest(source_uri=source_uri, source_version=None, uris=uris)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def store_s3(
    prepared: PreparedDataset,
    s3: S3Storage,
    bucket: str,
    prefix: str,
    *,
    source_uri: str,
    source_version: str | None,
) -> dict[str, Any]:
    """Store under ``<prefix><version>/`` (a versioned prefix): splits, quarantine, manifest.

    Each object carries metadata tying it to the manifest (``fmops-dataset-version``, ``fmops-manifest``,
    ``fmops-sha256``). Returns the manifest (with ``uri`` of each file).
    """
    base = f"{prefix}{prepared.version}/"
    manifest_key = f"{base}manifest.json"
    tie = {"fmops-dataset-version": prepared.version, "fmops-manifest": f"s3://{bucket}/{manifest_key}"}
    uris: dict[str, str] = {}
    for prepared_file in [*prepared.files.values(), prepared.quarantine]:
        if prepared_file is prepared.quarantine and not prepared_file.records:
            continue
        key = f"{base}{prepared_file.name}.jsonl"
        metadata = {**tie, "fmops-sha256": prepared_file.sha256, "fmops-records": str(prepared_file.records)}
        uris[prepared_file.name] = s3.put_file(bucket, key, prepared_file.spool, "application/jsonlines", metadata)
    manifest = prepared.manifest(source_uri=source_uri, source_version=source_version, uris=uris)
    manifest["uri"] = s3.put_json(bucket, manifest_key, manifest, {"fmops-dataset-version": prepared.version})
    return manifest
