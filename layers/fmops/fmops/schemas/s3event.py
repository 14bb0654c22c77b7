"""The EventBridge "Object Created" event from S3 (only the fields ingest needs)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from fmops.schemas.base import FmopsModel


class S3Bucket(FmopsModel):
    name: str


class S3Object(FmopsModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class S3ObjectCreatedDetail(FmopsModel):
    bucket: S3Bucket
    object: S3Object


class S3ObjectCreatedEvent(FmopsModel):
    """EventBridge event with source aws.s3 and detail-type "Object Created"."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    id: str | None = None
    source: str = "aws.s3"
    detail_type: str = Field(default="Object Created", alias="detail-type")
    detail: S3ObjectCreatedDetail
