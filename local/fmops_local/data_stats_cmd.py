"""``fmops data stats``: what a data set holds, before paying for a training job.

``SOURCE`` is one JSONL file (a local path or ``s3://BUCKET/KEY``), or a folder of splits (a local folder, or an
``s3://BUCKET/PREFIX/`` ending with ``/``) holding ``train.jsonl`` and optionally ``validation.jsonl`` and
``test.jsonl``, as ``fmops data split`` writes them: then each split gets its statistics, and validation and test
their leakage into train. The statistics are those of ``fmops.data.stats`` (its docstring lists the JSON keys).

Output: JSON on stdout (or in ``--out``), or with ``--format html`` one self-contained HTML page written to
``--out`` (required), whose path is printed.

Exit codes: 0 statistics written (whatever the data holds); 2 usage errors (unreadable source, unknown model,
no train.jsonl in a folder, html without --out), with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from fmops.data.limits import ModelLimits, get_limits
from fmops.data.schemas import FORMATS
from fmops.data.split import SPLITS
from fmops.data.stats import FileStats, SplitStats, compare_splits, file_stats
from fmops.data.stats_html import render_html
from fmops.errors import UnknownModelError
from fmops_local.data_io import DataSourceError, is_s3, read_chunks

PROG = "fmops data stats"
TRAIN = SPLITS[0]


class _UsageError(Exception):
    pass


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``stats`` on an ``add_subparsers()`` object (the ``fmops data`` group)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stats",
        help="statistics of a data set: lengths, duplicates, labels, token limits, personal data, leakage",
        description=(
            "Statistics of SOURCE: a JSONL file (local path or s3://BUCKET/KEY), or a folder (or s3://BUCKET/PREFIX/) "
            "with train.jsonl and optionally validation.jsonl and test.jsonl, whose leakage into train is reported. "
            "Exit codes: 0 done, 2 usage error."
        ),
    )
    parser.add_argument("source", metavar="FILE|DIR|s3://...", help="a JSONL file or a folder of splits")
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("json", "html"),
        default="json",
        help="json (default, on stdout unless --out) or html (a self-contained page, needs --out)",
    )
    parser.add_argument("--out", metavar="PATH", help="write the output to this local file and print its path")
    parser.add_argument(
        "--model", metavar="MODEL_ID", help="base model: its characters per token and limits (default: 4 chars/token)"
    )
    parser.add_argument(
        "--data-format", choices=FORMATS, help="the record format (default: detected from the first record)"
    )
    parser.set_defaults(func=run)
    return parser


def _usage(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _opened(uri: str) -> Iterator[bytes]:
    """The chunks of ``uri``, opened now: a missing file raises here rather than mid-way."""
    chunks = read_chunks(uri)
    try:
        first = next(chunks)
    except StopIteration:
        return iter(())
    except OSError as exc:
        raise DataSourceError(f"{uri}: {exc.strerror or exc}") from exc
    return chain((first,), chunks)


def _split_sources(source: str) -> dict[str, str] | None:
    """``{split: uri}`` when ``source`` is a folder of splits, None when it is one file."""
    if is_s3(source):
        if not source.endswith("/"):
            return None
        return {name: f"{source}{name}.jsonl" for name in SPLITS}
    folder = Path(source)
    if not folder.is_dir():
        return None
    found = {name: str(folder / f"{name}.jsonl") for name in SPLITS if (folder / f"{name}.jsonl").is_file()}
    if TRAIN not in found:
        raise _UsageError(f"{source}: a folder needs {TRAIN}.jsonl (and optionally validation.jsonl, test.jsonl)")
    return found


def compute(
    source: str, *, limits: ModelLimits | None = None, data_format: str | None = None
) -> FileStats | SplitStats:
    """The statistics of ``source`` (a file or a folder of splits).

    Raises:
        DataSourceError: a file cannot be read (the train split of a folder included).
    """
    sources = _split_sources(source)
    if sources is None:
        return file_stats(_opened(source), data_format=data_format, limits=limits, source=source)
    splits: dict[str, Iterable[bytes]] = {}
    for name, uri in sources.items():
        try:
            splits[name] = _opened(uri)
        except DataSourceError:
            if name == TRAIN:
                raise
            # an S3 prefix without this optional split
    return compare_splits(
        splits,
        train_split=TRAIN,
        sources={name: sources[name] for name in splits},
        data_format=data_format,
        limits=limits,
    )


def run(args: argparse.Namespace) -> int:
    if args.output_format == "html" and not args.out:
        return _usage("--format html needs --out PATH")
    if args.out and is_s3(args.out):
        return _usage("--out must be a local file")
    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        return _usage(f"--out {args.out}: not a file in an existing folder")
    try:
        limits = get_limits(args.model) if args.model else None
        stats = compute(args.source, limits=limits, data_format=args.data_format)
    except (DataSourceError, UnknownModelError, _UsageError) as exc:
        return _usage(str(exc))
    except OSError as exc:
        return _usage(f"{args.source}: {exc.strerror or exc}")
    text = render_html(stats) if args.output_format == "html" else json.dumps(stats.as_dict(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _usage(f"--out {args.out}: {exc.strerror or exc}")
    print(out)
    return 0
