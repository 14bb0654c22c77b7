"""Physical lines from a stream of byte chunks, in constant memory, for whole files and byte-range shards.

Lines come in batches (one list per chunk read) because a generator step per line costs more than the
rest of the line's handling on the fast path; ``iter_lines`` gives them one by one for everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

MAX_LINE_BYTES = 8 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"


class LineBatch(NamedTuple):
    """Consecutive lines, the first numbered ``first``. An entry is the line's bytes (a trailing ``\\r``
    kept), or an ``int``, the size of a line over the limit whose bytes were skipped. ``unterminated``
    says the batch's last line ended the stream without a newline."""

    first: int
    lines: list[bytes | int]
    unterminated: bool


class HashingChunks:
    """Passes chunks through while computing the sha256 and size of everything seen."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                self._hash.update(chunk)
                self.size += len(chunk)
                yield chunk


def iter_line_batches(
    chunks: Iterable[bytes],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    skip_partial_first: bool = False,
    stop_at: int | None = None,
) -> Iterator[LineBatch]:
    """Split ``chunks`` into lines numbered from 1 (``\\n`` ends a line).

    A byte-range shard reads from one byte before its start: with ``skip_partial_first`` everything up
    to and including the first newline is dropped (that line belongs to the previous shard), and with
    ``stop_at`` no line starting at or after that offset (relative to the first byte read) is returned.
    A line over ``max_line_bytes`` is never held in memory whole.
    """
    pending = bytearray()
    number = 1  # the number of the next line
    position = 0  # offset (from the first byte read) where the next line starts
    skipping_prefix = skip_partial_first
    oversize = -1  # bytes so far of a line already known to be too long, else -1
    for chunk in chunks:
        start = 0
        if skipping_prefix:
            newline = chunk.find(b"\n")
            if newline < 0:
                position += len(chunk)
                continue
            skipping_prefix = False
            position += newline + 1
            start = newline + 1
        lines: list[bytes | int] = []
        first = number
        if pending or oversize >= 0:
            newline = chunk.find(b"\n", start)
            if newline < 0:
                if oversize >= 0:
                    oversize += len(chunk) - start
                elif len(pending) + len(chunk) - start > max_line_bytes:
                    oversize = len(pending) + len(chunk) - start
                    pending.clear()
                else:
                    pending += chunk[start:]
                continue
            if stop_at is not None and position >= stop_at:
                return
            if oversize >= 0:
                size = oversize + newline - start
                lines.append(size)
                oversize = -1
            else:
                pending += chunk[start:newline]
                size = len(pending)
                lines.append(size if size > max_line_bytes else bytes(pending))
                pending.clear()
            position += size + 1
            start = newline + 1
        end = chunk.rfind(b"\n")
        if end >= start:
            body = chunk[start:end].split(b"\n")
            if stop_at is not None:
                for line in body:
                    if position >= stop_at:
                        if lines:
                            yield LineBatch(first, lines, False)
                        return
                    lines.append(line if len(line) <= max_line_bytes else len(line))
                    position += len(line) + 1
            else:
                if end - start > max_line_bytes:  # only then can one of these lines be over the limit
                    lines.extend(line if len(line) <= max_line_bytes else len(line) for line in body)
                else:
                    lines.extend(body)
                position += end + 1 - start
            start = end + 1
        rest = len(chunk) - start
        if rest > max_line_bytes:
            oversize = rest
        elif rest:
            pending += chunk[start:]
        if lines:
            number = first + len(lines)
            yield LineBatch(first, lines, False)
    if skipping_prefix or (stop_at is not None and position >= stop_at):
        return
    if oversize >= 0:
        yield LineBatch(number, [oversize], True)
    elif pending:
        yield LineBatch(number, [bytes(pending)], True)


def iter_lines(chunks: Iterable[bytes], **options: int | bool | None) -> Iterator[tuple[int, bytes | int]]:
    """``(number, line)`` pairs; see ``iter_line_batches`` for the options and what a line is."""
    for first, lines, _ in iter_line_batches(chunks, **options):  # type: ignore[arg-type]
        yield from enumerate(lines, first)
