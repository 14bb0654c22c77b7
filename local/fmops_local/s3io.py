"""Small S3 helpers for the local executor and model server (boto3 against the local AWS)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_client(region: str) -> Any:
    return boto3.client("s3", region_name=region)


def download_prefix(s3: Any, uri: str, dest: Path) -> list[Path]:
    """Download one object (exact key) or every object under a prefix into ``dest``."""
    bucket, key = split_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        obj["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=key)
        for obj in page.get("Contents", [])
        if not obj["Key"].endswith("/")
    ]
    if not keys:
        raise FileNotFoundError(f"no object at {uri}")
    for k in keys:
        rel = Path(k).name if k == key else os.path.relpath(k, key.rstrip("/") if key.endswith("/") else key)
        if rel.startswith(".."):
            rel = Path(k).name
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, k, str(target))
        files.append(target)
    return files


def upload_dir(s3: Any, src: Path, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    uploaded = []
    for path in sorted(src.rglob("*")):
        if path.is_file():
            key = f"{prefix.rstrip('/')}/{path.relative_to(src).as_posix()}" if prefix else path.name
            s3.upload_file(str(path), bucket, key)
            uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


def make_tarball(src: Path, target: Path) -> Path:
    """``model.tar.gz`` as SageMaker writes it: the directory's contents at the archive root.

    Gzip level 1: model weights hardly compress, and level 9 (tarfile's default) took most of a minute for a
    540 MB causal LM on these machines for a few percent of size."""
    with tarfile.open(target, "w:gz", compresslevel=1) as tar:
        for path in sorted(src.rglob("*")):
            tar.add(path, arcname=path.relative_to(src).as_posix(), recursive=False)
    return target


def extract_tarball(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
