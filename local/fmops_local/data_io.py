"""Where the data commands read from and write to: a local path or ``s3://bucket/key``, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1024 * 1024


class DataSourceError(Exception):
    """The source cannot be read (missing file, bad URI, S3 refusal): a usage error (exit code 2)."""


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise DataSourceError(f"{uri}: expected s3://BUCKET/KEY")
    return bucket, key


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")


def read_chunks(uri: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of ``uri`` in chunks, never the whole file in memory."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            body = _s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:  # botocore's ClientError, NoCredentialsError...
            raise DataSourceError(f"{uri}: {exc}") from exc
        yield from body.iter_chunks(chunk_bytes)
        return
    path = Path(uri)
    if not path.is_file():
        raise DataSourceError(f"{uri}: no such file")
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            yield chunk


def s3_version_id(uri: str) -> str | None:
    """The current version id of an S3 object (None for local files or unversioned buckets)."""
    if not is_s3(uri):
        return None
    bucket, key = split_s3(uri)
    version = _s3_client().head_object(Bucket=bucket, Key=key).get("VersionId")
    return None if version in (None, "null") else str(version)
