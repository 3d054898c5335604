"""The S3 backend of rzero_worker.storage (boto3; any S3-compatible endpoint).

Endpoint: the location's endpoint_url, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. Credentials come only
from boto3's standard chain (AWS_* variables, web identity, instance profile) and are never logged.
Retries: botocore "standard" mode (exponential backoff with jitter on throttling, 5xx and connection
errors), within a bounded time per request; failures no retry can fix become StorageConfigurationError
(storage_s3_policy.py has both rules). Large files go through s3transfer's multipart upload/download.
Commits verify what storage holds: size, our sha256 metadata and, for single-part unencrypted or SSE-S3
objects, the ETag (the MD5 of the bytes S3 stored) against the MD5 of what was sent.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

from rzero_worker.storage import (
    HASH_CHUNK,
    MAX_ATTEMPTS,
    MULTIPART_CHUNKSIZE,
    MULTIPART_THRESHOLD,
    FileInfo,
    IntegrityError,
    Storage,
    StorageConfigurationError,
    StorageError,
    check_key,
    join_key,
    write_atomically,
)
from rzero_worker.storage_s3_policy import RequestPolicy
from rzero_worker.task import StorageLocation

_PLAIN_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
BODY_ATTEMPTS = 3  # reads of a response body cut short (s3transfer's own default is 5 for files)


def _translated(method):
    """Re-raise failures no retry can fix as StorageConfigurationError (one line naming the setting)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except StorageError:
            raise
        except Exception as error:
            problem = self.policy.permanent(error)
            if problem is None:
                raise
            raise StorageConfigurationError(problem) from error

    return wrapper


def _digests(path: Path) -> tuple[int, str, str]:
    """(size, sha256, md5) of a local file in one pass."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


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
        setting: str | None = None,
        deadline_s: float | None = None,
    ):
        """setting: how error messages name this location (default: `storage.uri '<uri>'`);
        deadline_s: the per-request time limit (default: RZERO_NETWORK_DEADLINE_S or 300 s)."""
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        bucket, _, base = location.uri[len("s3://") :].partition("/")
        setting = setting or f"storage.uri {location.uri!r}"
        if not bucket:
            raise StorageConfigurationError(f"{setting}: missing bucket name")
        self.bucket, self.base = bucket, base.strip("/")
        self.uri = f"s3://{bucket}/{self.base}".rstrip("/")
        endpoint = location.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.policy = RequestPolicy(setting, bucket, endpoint, deadline_s)
        self._sent_md5: dict[str, str] = {}  # full key -> MD5 of the bytes we uploaded there
        options: dict = {
            "retries": {"mode": "standard", "total_max_attempts": max_attempts},
            "connect_timeout": self.policy.connect_timeout_s,
            "read_timeout": self.policy.read_timeout_s,
        }
        if endpoint:
            # S3-compatible stores (MinIO, Ceph, moto): path-style addressing, and checksums only when
            # required, since many do not implement the newer default integrity headers. The manifest's
            # sha256 is our end-to-end check.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        try:
            self.client = _new_session().client(
                "s3", endpoint_url=endpoint, region_name=location.region, config=Config(**options)
            )
        except ValueError as error:  # botocore: "Invalid endpoint: ..."
            raise StorageConfigurationError(f"{setting}: {error} (spec.storage.endpoint)") from None
        self.policy.register(self.client)
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

    @_translated
    def put_bytes(self, key: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self._sent_md5[self._full(key)] = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, Metadata={"sha256": digest})

    @_translated
    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError
        from s3transfer.utils import S3_RETRYABLE_DOWNLOAD_ERRORS

        # botocore retries the request, not the body: a connection cut while reading it is retried here,
        # as s3transfer does for files (each try is itself bounded by the network deadline).
        for attempt in range(1, BODY_ATTEMPTS + 1):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
            except ClientError as error:
                if self._missing(error):
                    raise FileNotFoundError(f"{self.uri_for(key)} does not exist") from None
                raise
            except S3_RETRYABLE_DOWNLOAD_ERRORS:
                if attempt == BODY_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    @_translated
    def put_file(self, key: str, local_path: Path) -> FileInfo:
        size, sha256, md5 = _digests(Path(local_path))
        full = self._full(key)
        self._sent_md5[full] = md5
        extra = {"Metadata": {"sha256": sha256}}
        self.client.upload_file(str(local_path), self.bucket, full, ExtraArgs=extra, Config=self.transfer)
        return FileInfo(path=key, size=size, sha256=sha256)

    @_translated
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

    @_translated
    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    @_translated
    def list(self, prefix: str = "") -> list[str]:
        full = self._full(prefix, allow_root=True)
        start = len(self.base) + 1 if self.base else 0
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{full}/" if full else ""
        ):
            keys.extend(item["Key"][start:] for item in page.get("Contents", []))
        return sorted(keys)

    @_translated
    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._full(k)} for k in keys[i : i + 1000]]
            reply = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise StorageError(f"deleting {first.get('Key')} failed: {first.get('Code')} {first.get('Message')}")

    @_translated
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

    @_translated
    def verify(self, key: str, expected: FileInfo) -> None:
        head, where = self._head(key), self.uri_for(key)
        if head is None:
            raise IntegrityError(f"{where} is missing from storage (uploaded {expected.size} bytes)")
        size, stored_sha = head["ContentLength"], head.get("Metadata", {}).get("sha256")
        if size != expected.size or stored_sha != expected.sha256:
            found = f"{size} bytes" if size != expected.size else f"sha256 metadata {str(stored_sha)[:12]}"
            raise IntegrityError(f"{where} does not match what was uploaded: expected {expected.size} bytes, "
                                 f"sha256 {expected.sha256[:12]}..., found {found}")
        # S3 documents the ETag as the MD5 of the stored bytes for single-part objects that are
        # unencrypted or SSE-S3 encrypted (not for SSE-KMS/SSE-C or multipart): check the bytes when it is.
        etag, sent = head.get("ETag", "").strip('"'), self._sent_md5.get(self._full(key))
        plain = head.get("ServerSideEncryption") in (None, "AES256") and not head.get("SSECustomerAlgorithm")
        if sent and plain and _PLAIN_MD5_ETAG.match(etag) and etag != sent:
            raise IntegrityError(f"{where} does not match what was uploaded: S3 stored bytes with MD5 {etag}, "
                                 f"sent {sent}")

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

