"""The S3 backend of rzero_worker.storage (boto3; any S3-compatible endpoint).

Endpoint: the location's endpoint_url, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. Credentials come only
from boto3's standard chain (AWS_* variables, web identity, instance profile) and are never logged.
Retries: botocore "standard" mode (exponential backoff with jitter on throttling, 5xx and connection
errors). Large files go through s3transfer's multipart upload/download.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rzero_worker.storage import (
    HASH_CHUNK,
    MAX_ATTEMPTS,
    MULTIPART_CHUNKSIZE,
    MULTIPART_THRESHOLD,
    FileInfo,
    Storage,
    StorageError,
    check_key,
    join_key,
    sha256_file,
    write_atomically,
)
from rzero_worker.task import StorageLocation


class S3Storage(Storage):
    """s3://bucket/prefix through boto3. Every object we write carries its sha256 as user metadata, so
    committing a prefix needs one HEAD per file instead of re-reading checkpoints."""

    def __init__(
        self,
        location: StorageLocation,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNKSIZE,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        bucket, _, base = location.uri[len("s3://") :].partition("/")
        if not bucket:
            raise StorageError(f"storage uri {location.uri!r}: missing bucket name")
        self.bucket, self.base = bucket, base.strip("/")
        self.uri = f"s3://{bucket}/{self.base}".rstrip("/")
        endpoint = location.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options: dict = {
            "retries": {"mode": "standard", "total_max_attempts": max_attempts},
            "connect_timeout": 10,
            "read_timeout": 120,
        }
        if endpoint:
            # S3-compatible stores (MinIO, Ceph, moto): path-style addressing, and checksums only when
            # required, since many do not implement the newer default integrity headers. The manifest's
            # sha256 is our end-to-end check.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        self.client = _new_session().client(
            "s3", endpoint_url=endpoint, region_name=location.region, config=Config(**options)
        )
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=8,
            preferred_transfer_client="classic",
        )

    def _full(self, key: str, *, allow_root: bool = False) -> str:
        return join_key(self.base, check_key(key, allow_root=allow_root))

    def _missing(self, error) -> bool:
        return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")

    def put_bytes(self, key: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, Metadata={"sha256": digest})

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except ClientError as error:
            if self._missing(error):
                raise FileNotFoundError(f"{self.uri_for(key)} does not exist") from None
            raise

    def put_file(self, key: str, local_path: Path) -> None:
        extra = {"Metadata": {"sha256": sha256_file(Path(local_path))}}
        self.client.upload_file(str(local_path), self.bucket, self._full(key), ExtraArgs=extra, Config=self.transfer)

    def get_file(self, key: str, local_path: Path) -> None:
        from botocore.exceptions import ClientError

        def download(tmp: Path) -> None:
            self.client.download_file(self.bucket, self._full(key), str(tmp), Config=self.transfer)

        try:
            write_atomically(Path(local_path), download)
        except ClientError as error:
            if self._missing(error):
                raise FileNotFoundError(f"{self.uri_for(key)} does not exist") from None
            raise

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if self._missing(error):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def list(self, prefix: str = "") -> list[str]:
        full = self._full(prefix, allow_root=True)
        start = len(self.base) + 1 if self.base else 0
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{full}/" if full else ""
        ):
            keys.extend(item["Key"][start:] for item in page.get("Contents", []))
        return sorted(keys)

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._full(k)} for k in keys[i : i + 1000]]
            reply = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise StorageError(f"deleting {first.get('Key')} failed: {first.get('Code')} {first.get('Message')}")

    def file_info(self, key: str, path: str) -> FileInfo:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(f"{self.uri_for(key)} does not exist")
        digest = head.get("Metadata", {}).get("sha256")
        if not digest:  # written by another tool: hash the bytes as stored
            body = self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
            hasher = hashlib.sha256()
            for chunk in body.iter_chunks(HASH_CHUNK):
                hasher.update(chunk)
            digest = hasher.hexdigest()
        return FileInfo(path=path, size=head["ContentLength"], sha256=digest)

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key, allow_root=True)}".rstrip("/")


_shared_loader = None


def _new_session():
    """A fresh boto3 session (credentials resolved anew: never cached across runs) that shares one
    botocore data loader, so the S3 service model is parsed once per process instead of per client."""
    import boto3
    import botocore.loaders
    import botocore.session

    global _shared_loader
    if _shared_loader is None:
        _shared_loader = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader)
    return boto3.session.Session(botocore_session=core)

