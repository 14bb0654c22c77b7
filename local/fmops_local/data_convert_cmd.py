"""``fmops data convert``: a data set of any supported format as prompt-completion or Bedrock conversation JSONL.

Nothing is lost: every record of the input is either written to ``--out`` or, with the reasons, to the
quarantine file ``<out>.quarantine.jsonl`` beside it. Outputs are written to temporary files in the same
folder and renamed at the end, so an interrupted run leaves no half-written output.

Exit codes: 0 every record converted; 1 some records quarantined (outputs written; with ``--strict``
nothing written); 2 usage errors (missing input, bad options, unknown columns, unreadable input), with a
one-line message on stderr and no output files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from fmops.data.convert import (
    SOURCES,
    TABULAR_SOURCES,
    TARGETS,
    ConvertStats,
    ConvertUsageError,
    CsvSource,
    JsonlSource,
    Row,
    TableChecker,
    collect_labels,
    convert_rows,
    label_set,
    parse_column_map,
    resolve_columns,
)
from fmops_local.data_io import DataSourceError, is_s3, read_chunks

PROG = "fmops data convert"
QUARANTINE_SUFFIX = ".quarantine.jsonl"


class _Source(Protocol):
    format: str | None

    @property
    def detected(self) -> str | None: ...

    def check(self) -> None: ...

    def rows(self) -> Iterator[Row]: ...


class ParquetSource:
    """Parquet rows, read in record batches (streaming) with pyarrow; ``Row.line`` is the 1-based row number
    and ``Row.raw`` the row's used columns as a JSON object."""

    def __init__(self, path: str, columns: Mapping[str, str] | None = None, *, batch_size: int = 4096) -> None:
        self.path = path
        self._mapping = dict(columns or {})
        self._batch_size = batch_size
        self.format: str | None = None
        self.columns: dict[str, str] = {}

    @property
    def detected(self) -> str | None:
        return self.format

    def _file(self) -> Any:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow is a CLI dependency
            raise ConvertUsageError("reading Parquet needs pyarrow (pip install pyarrow)") from exc
        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow's ArrowInvalid, OSError...
            raise ConvertUsageError(f"{self.path}: not a readable Parquet file: {exc}") from exc

    def check(self) -> None:
        parquet = self._file()
        try:
            self.format, self.columns = resolve_columns(parquet.schema_arrow.names, self._mapping)
        finally:
            parquet.close()

    def rows(self) -> Iterator[Row]:
        parquet = self._file()
        try:
            data_format, columns = resolve_columns(parquet.schema_arrow.names, self._mapping)
            self.format, self.columns = data_format, columns
            checker = TableChecker(data_format)
            wanted = list(dict.fromkeys(columns.values()))
            number = 0
            batches = iter(parquet.iter_batches(batch_size=self._batch_size, columns=wanted))
            while True:
                try:
                    batch = next(batches, None)
                    table = batch.to_pylist() if batch is not None else None
                except Exception as exc:  # a corrupt page: pyarrow's ArrowInvalid, OSError...
                    raise ConvertUsageError(f"{self.path}: cannot read the rows after row {number}: {exc}") from exc
                if table is None:
                    break
                for values in table:
                    number += 1
                    raw = json.dumps(values, ensure_ascii=False, default=repr)
                    yield checker.row(number, raw, {field: values[column] for field, column in columns.items()})
        finally:
            parquet.close()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``convert`` on an ``add_subparsers()`` object (the ``fmops data`` group)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert a data set to prompt-completion or Bedrock conversation JSONL",
        description=(
            "Convert FILE (a local path or s3://BUCKET/KEY) to prompt-completion or Bedrock conversation JSONL. "
            "Records that cannot be converted go to OUT.quarantine.jsonl with the reasons. "
            "Exit codes: 0 all converted, 1 some quarantined, 2 usage error."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the input: a local path or s3://BUCKET/KEY")
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=SOURCES,
        help="csv or parquet (columns by name, see --columns), jsonl (format detected), or a JSONL record format",
    )
    parser.add_argument("--to", dest="target", required=True, choices=TARGETS, help="the output format")
    parser.add_argument("--out", required=True, metavar="FILE", help="the output JSONL file (local)")
    parser.add_argument(
        "--system", metavar="TEXT", help="system prompt of conversations (records that have their own keep it)"
    )
    parser.add_argument(
        "--columns",
        metavar="FIELD=COLUMN,...",
        help="csv/parquet: read record fields from other columns, e.g. prompt=question,completion=answer",
    )
    parser.add_argument(
        "--labels",
        metavar="A,B,...",
        help="classification: the label set (default: every label of the data, found in a first pass); "
        "records with other labels are quarantined; prompts list the labels sorted",
    )
    parser.add_argument("--strict", action="store_true", help="write nothing at all if any record is bad")
    parser.set_defaults(func=run)
    return parser


def _usage(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _parse_labels(text: str | None) -> list[str] | None:
    if text is None:
        return None
    labels = [label.strip() for label in text.split(",")]
    if not all(labels):
        raise ConvertUsageError("--labels: expected A,B,... with no empty labels")
    return label_set(labels)


def _check_output(args: argparse.Namespace) -> tuple[Path, Path]:
    if is_s3(args.out):
        raise ConvertUsageError("--out must be a local file")
    out = Path(args.out)
    quarantine = out.with_name(out.name + QUARANTINE_SUFFIX)
    if out.is_dir():
        raise ConvertUsageError(f"--out {args.out}: is a folder")
    if not out.parent.is_dir():
        raise ConvertUsageError(f"--out {args.out}: no such folder {str(out.parent)!r}")
    if not is_s3(args.file):
        source = Path(args.file).resolve()
        if source in (out.resolve(), quarantine.resolve()):
            raise ConvertUsageError("--out must not overwrite FILE")
    return out, quarantine


def _chunks(uri: str) -> Callable[[], Iterable[bytes]]:
    return lambda: read_chunks(uri)


def _source(args: argparse.Namespace, local_path: str) -> _Source:
    columns = parse_column_map(args.columns)
    if columns and args.source not in TABULAR_SOURCES:
        raise ConvertUsageError("--columns applies to --from csv or parquet")
    if args.source == "csv":
        return CsvSource(_chunks(args.file), columns)
    if args.source == "parquet":
        return ParquetSource(local_path, columns)
    return JsonlSource(_chunks(args.file), None if args.source == "jsonl" else args.source)


class _TempFile:
    """A file written under a temporary name in the folder of ``path``, renamed to ``path`` by ``commit``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.temp = Path(name)
        self.handle: IO[bytes] = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> None:
        self.handle.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temp, 0o666 & ~umask)  # mkstemp makes it 0600; give it a new file's usual mode
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.handle.close()
        self.temp.unlink(missing_ok=True)


class _Quarantine:
    """The quarantine file, created at its first line only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: _TempFile | None = None

    def write(self, data: bytes) -> None:
        if self.file is None:
            self.file = _TempFile(self.path)
        self.file.write(data)


def _download(uri: str) -> str:
    """An S3 object copied to a local temporary file (Parquet needs to seek); returns its path."""
    fd, name = tempfile.mkstemp(prefix="fmops-convert-", suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in read_chunks(uri):
                handle.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return name


def run(args: argparse.Namespace) -> int:
    """The ``convert`` command; returns the exit code."""
    downloaded: str | None = None
    try:
        try:
            if args.system is not None and args.target != "conversation":
                raise ConvertUsageError("--system applies to --to conversation")
            if args.system is not None and not args.system.strip():
                raise ConvertUsageError("--system must not be empty")
            labels = _parse_labels(args.labels)
            if labels is not None and args.source not in ("csv", "parquet", "jsonl", "classification"):
                raise ConvertUsageError(f"--labels applies to classification data, not {args.source}")
            out, quarantine_path = _check_output(args)
            if not is_s3(args.file) and not Path(args.file).is_file():
                raise ConvertUsageError(f"{args.file}: no such file")
            local_path = args.file
            if args.source == "parquet" and is_s3(args.file):
                downloaded = local_path = _download(args.file)
            source = _source(args, local_path)
            source.check()
            if labels is not None and source.format not in (None, "classification"):
                raise ConvertUsageError(f"--labels applies to classification data, not {source.format}")
            if labels is None and source.format in (None, "classification"):
                labels = collect_labels(source.rows())
            return _convert(args, source, labels, out, quarantine_path)
        except (ConvertUsageError, DataSourceError) as exc:
            return _usage(str(exc))
    finally:
        if downloaded is not None:
            Path(downloaded).unlink(missing_ok=True)


def _convert(
    args: argparse.Namespace, source: _Source, labels: list[str] | None, out: Path, quarantine_path: Path
) -> int:
    output = _TempFile(out)
    quarantine = _Quarantine(quarantine_path)
    committed = False
    try:
        stats = convert_rows(
            source.rows(),
            args.target,
            output.write,
            None if args.strict else quarantine.write,
            labels=labels or [],
            system=args.system,
        )
        if stats.records == 0:
            raise ConvertUsageError(f"{args.file}: no records")
        if args.labels is not None and source.detected not in (None, "classification"):
            print(f"{PROG}: --labels ignored: the data is {source.detected}", file=sys.stderr)
        if args.strict and stats.quarantined:
            _print_summary(args, source, stats, written=0, output=None, quarantine=None, rejected=stats.quarantined)
            issue = stats.first_issue
            first = f"; first: {issue}" if issue is not None else ""
            print(
                f"{PROG}: --strict: {stats.quarantined} of {stats.records} record(s) bad, nothing written{first}",
                file=sys.stderr,
            )
            return 1
        if quarantine.file is not None:
            quarantine.file.commit()
        elif quarantine_path.is_file():
            quarantine_path.unlink()  # a stale quarantine of an earlier run: it would describe other data
        output.commit()
        committed = True
        _print_summary(
            args,
            source,
            stats,
            written=stats.written,
            output=str(out),
            quarantine=str(quarantine_path) if quarantine.file is not None else None,
        )
        return 1 if stats.quarantined else 0
    finally:
        if not committed:
            output.discard()
            if quarantine.file is not None:
                quarantine.file.discard()


def _print_summary(
    args: argparse.Namespace,
    source: _Source,
    stats: ConvertStats,
    *,
    written: int,
    output: str | None,
    quarantine: str | None,
    rejected: int | None = None,
) -> None:
    summary: dict[str, Any] = {
        "records": stats.records,
        "written": written,
        "quarantined": 0 if rejected is not None else stats.quarantined,
        "output": output,
        "quarantine": quarantine,
        "from": args.source,
        "to": args.target,
        "format": source.detected,
    }
    if rejected is not None:
        summary["rejected"] = rejected
    print(json.dumps(summary, ensure_ascii=False))
