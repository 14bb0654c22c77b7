"""Amazon S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

from fmops.aws._base import AwsService, error_code, translate, translate_errors
from fmops.errors import RequestValidationError, ResourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK_SIZE = 1024 * 1024
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion", "NoSuchBucket"})


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``.

    Raises:
        RequestValidationError: not an s3:// URI with a bucket.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise RequestValidationError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


class ObjectStream:
    """A streamed object body with the version that was read."""

    def __init__(self, body: Any, version_id: str | None, size: int | None) -> None:
        self._body = body
        self.version_id = version_id
        self.size = size

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The body in chunks; never the whole object in memory."""
        from botocore.exceptions import BotoCoreError

        from fmops.errors import TransientAwsError

        try:
            yield from self._body.iter_chunks(chunk_size)
        except BotoCoreError as exc:
            raise TransientAwsError(f"reading the S3 object: {exc}") from exc
        finally:
            self._body.close()


class S3Storage(AwsService):
    """Reads and writes objects; writes use SSE-KMS with the stack's key when one is given."""

    service_name = "s3"

    def __init__(self, client: S3Client | None = None, kms_key_id: str | None = None) -> None:
        super().__init__(client)
        self.kms_key_id = kms_key_id

    def _encryption(self) -> dict[str, str]:
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {}

    def open(self, bucket: str, key: str, version_id: str | None = None) -> ObjectStream:
        """Open an object for streaming.

        Raises:
            ResourceNotFoundError: no such object (or version).
            TransientAwsError, AwsRequestError: other failures.
        """
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(**kwargs)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise ResourceNotFoundError(f"s3://{bucket}/{key} does not exist") from exc
            raise translate(exc, f"GetObject s3://{bucket}/{key}") from exc
        return ObjectStream(response["Body"], response.get("VersionId"), response.get("ContentLength"))

    def head_version(self, bucket: str, key: str) -> str | None:
        """The current version id of an object (None when the bucket is not versioned)."""
        with translate_errors(f"HeadObject s3://{bucket}/{key}"):
            version = self.client.head_object(Bucket=bucket, Key=key).get("VersionId")
        return None if version in (None, "null") else str(version)

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """HeadObject (with the SHA-256 checksum when S3 has one), or None when the object does not exist.

        Returns ``{"version_id", "size", "etag", "metadata", "checksum_sha256"}``.

        Raises:
            TransientAwsError, AwsRequestError.
        """
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise translate(exc, f"HeadObject s3://{bucket}/{key}") from exc
        version = response.get("VersionId")
        return {
            "version_id": None if version in (None, "null") else str(version),
            "size": int(response.get("ContentLength") or 0),
            "etag": str(response.get("ETag") or "").strip('"'),
            "metadata": {str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()},
            "checksum_sha256": response.get("ChecksumSHA256"),
        }

    def open_range(self, bucket: str, key: str, version_id: str | None, start: int) -> Iterator[bytes]:
        """The object's bytes from offset ``start`` to the end, streamed (for byte-range shards)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-"}
        if version_id:
            kwargs["VersionId"] = version_id
        with translate_errors(f"GetObject s3://{bucket}/{key} from byte {start}"):
            response = self.client.get_object(**kwargs)
        return ObjectStream(response["Body"], response.get("VersionId"), response.get("ContentLength")).iter_chunks()

    def size(self, bucket: str, key: str, version_id: str | None = None) -> int:
        """An object's size in bytes."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        with translate_errors(f"HeadObject s3://{bucket}/{key}"):
            return int(self.client.head_object(**kwargs)["ContentLength"])

    def read_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        """A small object's content (config files, reports)."""
        return b"".join(self.open(bucket, key, version_id).iter_chunks())

    def read_json_if_exists(self, bucket: str, key: str) -> tuple[bool, bytes]:
        """``(True, content)`` or ``(False, b"")`` when the object does not exist."""
        try:
            return True, self.read_bytes(bucket, key)
        except ResourceNotFoundError:
            return False, b""

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None
    ) -> str:
        """Write an object (with optional user metadata); returns its s3:// URI."""
        extra: dict[str, Any] = {"Metadata": metadata} if metadata else {}
        with translate_errors(f"PutObject s3://{bucket}/{key}"):
            self.client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type, **extra, **self._encryption()
            )
        return s3_uri(bucket, key)

    def put_json(self, bucket: str, key: str, document: Any, metadata: dict[str, str] | None = None) -> str:
        """Write a JSON document; returns its s3:// URI."""
        data = json.dumps(document, indent=2, sort_keys=True).encode()
        return self.put_bytes(bucket, key, data, "application/json", metadata)

    def put_file(
        self, bucket: str, key: str, fileobj: IO[bytes], content_type: str, metadata: dict[str, str] | None = None
    ) -> str:
        """Upload a file object (streamed, multipart when large); returns its s3:// URI."""
        fileobj.seek(0)
        extra: dict[str, Any] = {"ContentType": content_type, **self._encryption()}
        if metadata:
            extra["Metadata"] = metadata
        with translate_errors(f"upload s3://{bucket}/{key}"):
            self.client.upload_fileobj(fileobj, bucket, key, ExtraArgs=extra)
        return s3_uri(bucket, key)
