"""Run storage: a local directory or an S3 prefix, and the manifest commit rule.

A `Storage` is rooted at a run root (`StorageLocation.uri`); every key is a relative POSIX path under it,
e.g. `iter-001/solver/model/config.json`. Prefixes are directories: `iter-001/solver` never matches
`iter-001/solver.ckpt/...`.

Commit rule (docs/ARCHITECTURE.md): a prefix is committed once `<prefix>/_MANIFEST.json` exists. It is
written last and lists every file with size and sha256; readers trust only committed prefixes. A commit
first checks that storage holds every uploaded file as sent (`Storage.verify`: size, and the hash where the
backend has one cheaply), so what storage lost is never committed; readers check sizes and hashes against
the manifest (`download_committed`, `Storage.get_committed_bytes`) and refuse a mismatch (IntegrityError).

This module imports no ML library (the operator imports it). boto3 is imported only for s3:// roots.
Credentials are never read here: boto3's standard chain finds them (AWS_* variables, web identity...).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, Field, ValidationError

from rzero_worker.task import StorageLocation

log = logging.getLogger(__name__)

MANIFEST_NAME = "_MANIFEST.json"
MANIFEST_API_VERSION = "rzero.dev/manifest-v1"
_TMP_MARK = ".rzero-tmp-"  # local in-flight writes; never listed, never read as data
HASH_CHUNK = 8 * 1024 * 1024

# Checkpoints are large: multipart above 64 MiB, 8 parts in flight. S3 needs parts >= 5 MiB anyway.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNKSIZE = 64 * 1024 * 1024
MAX_ATTEMPTS = 10  # botocore "standard" retries: exponential backoff with jitter on throttling and 5xx


class StorageError(Exception):
    """Bad key or a storage-level failure the caller should see as such."""


class NotCommittedError(FileNotFoundError):
    """A reader asked for a prefix that has no (valid) manifest."""


class IntegrityError(StorageError, ValueError):
    """Stored data does not match what was written or what its manifest lists (a ValueError too: for
    readers that treat it like any unreadable data)."""


class StorageConfigurationError(StorageError):
    """Storage cannot work as configured (no such bucket, no credentials, read-only root...): no retry
    fixes it, so the worker exits 2. The message names the setting."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_verified_hashes: dict[tuple, str] = {}


def cached_sha256(path: Path) -> str:
    """sha256 of a local file, remembered per (path, inode, size, mtime, ctime): a cache directory is
    checked against a manifest at every use, and re-hashing gigabytes of checkpoint each time would cost
    minutes. Any rewrite of the file changes the key."""
    stat = os.stat(path)
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    digest = _verified_hashes.get(key)
    if digest is None:
        digest = _verified_hashes[key] = sha256_file(Path(path))
    return digest


def join_key(*parts: str) -> str:
    """Join run-relative key parts ('' parts are skipped)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def check_key(key: str, *, allow_root: bool = False) -> str:
    """Refuse keys that could escape the run root or alias another key."""
    if not isinstance(key, str):
        raise StorageError(f"storage key must be a string, got {type(key).__name__}")
    if key == "" and allow_root:
        return key
    parts = key.split("/")
    if key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid storage key {key!r}: use a relative path like 'iter-001/solver'")
    return key


class FileInfo(BaseModel):
    path: str = Field(description="Path relative to the committed prefix.")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    api_version: str = Field(default=MANIFEST_API_VERSION, alias="apiVersion")
    prefix: str
    created_at: str = Field(alias="createdAt")
    files: list[FileInfo]

    model_config = {"populate_by_name": True}

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()

    def digest(self) -> str:
        """Content identity of the committed files (stable across re-commits of the same bytes)."""
        lines = "".join(f"{f.path}\0{f.size}\0{f.sha256}\n" for f in sorted(self.files, key=lambda f: f.path))
        return hashlib.sha256(lines.encode()).hexdigest()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# --------------------------------------------------------------------------------------------------
# Backends


class Storage(ABC):
    """Same operations for both backends. Keys are run-relative; `list` returns run-relative keys."""

    uri: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Raises FileNotFoundError when the key does not exist."""

    @abstractmethod
    def put_file(self, key: str, local_path: Path) -> FileInfo:
        """Upload a local file; returns its size and sha256 as sent (the path is the key)."""

    @abstractmethod
    def get_file(self, key: str, local_path: Path) -> None:
        """Download atomically: local_path appears complete or not at all."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key under the directory `prefix` (recursive), sorted, run-relative."""

    @abstractmethod
    def _delete_keys(self, keys: list[str]) -> None: ...

    @abstractmethod
    def file_info(self, key: str, path: str) -> FileInfo:
        """Size and sha256 of a stored key (reported under the manifest-relative `path`)."""

    @abstractmethod
    def verify(self, key: str, expected: FileInfo) -> None:
        """Raise IntegrityError unless the stored key has the expected size (and hash, where the
        backend can tell cheaply)."""

    @abstractmethod
    def uri_for(self, key: str) -> str: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete everything under `prefix`. Manifests go first, so a half-deleted prefix never reads
        as committed."""
        keys = self.list(prefix)
        manifests = [k for k in keys if k.rsplit("/", 1)[-1] == MANIFEST_NAME]
        self._delete_keys(manifests)
        self._delete_keys([k for k in keys if k not in set(manifests)])
        return len(keys)

    def upload_dir(self, local_dir: Path, prefix: str) -> list[FileInfo]:
        """Upload every file under local_dir to `prefix/<relative path>`; returns what was sent (paths
        relative to the prefix): the list `commit` verifies and records."""
        local_dir = Path(local_dir)
        relative = sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())
        sent = []
        for rel in relative:
            info = self.put_file(join_key(prefix, rel), local_dir / rel)
            sent.append(FileInfo(path=rel, size=info.size, sha256=info.sha256))
        return sent

    def get_committed_bytes(self, prefix: str, name: str) -> bytes:
        """The bytes of file `name` of a committed prefix, checked against the manifest's size and sha256.
        Raises NotCommittedError (not committed, or not listed) or IntegrityError (changed since)."""
        manifest = read_manifest(self, prefix)
        if manifest is None:
            raise NotCommittedError(f"{self.uri_for(prefix)} is not committed (no valid {MANIFEST_NAME})")
        entry = next((f for f in manifest.files if f.path == name), None)
        if entry is None:
            raise NotCommittedError(f"{self.uri_for(join_key(prefix, name))} is not listed in its manifest")
        data = self.get_bytes(join_key(prefix, name))
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(_mismatch(self.uri_for(join_key(prefix, name)), entry, len(data)))
        return data

    def download_dir(self, prefix: str, local_dir: Path) -> list[str]:
        """Download every key under `prefix` into local_dir; returns the relative paths."""
        check_key(prefix, allow_root=True)
        start = len(prefix) + 1 if prefix else 0
        relative = [key[start:] for key in self.list(prefix)]
        for rel in relative:
            self.get_file(join_key(prefix, rel), Path(local_dir) / rel)
        return relative


def write_atomically(final: Path, fill: Callable[[Path], None]) -> None:
    """Have `fill` write a temp file beside `final`, then os.replace it into place: readers see the old
    file or the complete new one, never a torn one; on any error the temp file is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_TMP_MARK, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        fill(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(final: Path, data: bytes) -> None:
    """`data` into `final` atomically, synced to disk before it becomes visible."""

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomically(final, fill)


class LocalStorage(Storage):
    def __init__(self, root: Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str, *, allow_root: bool = False) -> Path:
        key = check_key(key, allow_root=allow_root)
        return self.root.joinpath(*key.split("/")) if key else self.root

    def put_bytes(self, key: str, data: bytes) -> None:
        write_bytes_atomically(self._path(key), data)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def put_file(self, key: str, local_path: Path) -> FileInfo:
        info = FileInfo(path=key, size=os.stat(local_path).st_size, sha256=sha256_file(Path(local_path)))
        write_atomically(self._path(key), lambda tmp: shutil.copyfile(local_path, tmp))
        return info

    def get_file(self, key: str, local_path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise FileNotFoundError(f"{self.uri_for(key)} does not exist")
        write_atomically(Path(local_path), lambda tmp: shutil.copyfile(source, tmp))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix, allow_root=True)
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if not name.startswith(_TMP_MARK):
                    keys.append((Path(dirpath) / name).relative_to(self.root).as_posix())
        return sorted(keys)

    def _delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        base = self._path(prefix, allow_root=True)
        if base != self.root and base.is_dir():
            shutil.rmtree(base)  # also sweeps temp files a crashed writer left behind
        return count

    def file_info(self, key: str, path: str) -> FileInfo:
        local = self._path(key)
        return FileInfo(path=path, size=local.stat().st_size, sha256=sha256_file(local))

    def verify(self, key: str, expected: FileInfo) -> None:
        local = self._path(key)
        if not local.is_file():
            raise IntegrityError(f"{local} is missing from storage (uploaded {expected.size} bytes)")
        size = local.stat().st_size
        if size != expected.size or sha256_file(local) != expected.sha256:
            raise IntegrityError(_mismatch(str(local), expected, size, "what was uploaded"))

    def uri_for(self, key: str) -> str:
        return str(self._path(key, allow_root=True))


def open_storage(location: StorageLocation, **s3_options) -> Storage:
    """Storage for a run root: `s3://bucket/prefix` or a local directory.

    s3_options (tests, tuning): multipart_threshold, multipart_chunksize, max_attempts, deadline_s, and
    setting (how error messages name the location).
    """
    if location.uri.startswith("s3://"):
        from rzero_worker.storage_s3 import S3Storage  # boto3 is imported only for s3:// roots

        return S3Storage(location, **s3_options)
    return LocalStorage(Path(location.uri))


# --------------------------------------------------------------------------------------------------
# Commit rule


def commit(storage: Storage, prefix: str, files: list[FileInfo] | None = None) -> Manifest:
    """Write `<prefix>/_MANIFEST.json`. Call it last.

    `files`: what was uploaded (`upload_dir`'s answer). Each must be in storage as sent, or nothing is
    committed (IntegrityError naming the file): an object storage lost or truncated is never listed.
    Without `files`, the manifest lists whatever is under the prefix now (files written by other means).
    """
    check_key(prefix)
    manifest_key = join_key(prefix, MANIFEST_NAME)
    if files is None:
        start = len(prefix) + 1
        files = [storage.file_info(key, key[start:]) for key in storage.list(prefix) if key != manifest_key]
    else:
        for entry in files:
            storage.verify(join_key(prefix, check_key(entry.path)), entry)
        files = sorted(files, key=lambda entry: entry.path)
    manifest = Manifest(
        prefix=prefix, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), files=files
    )
    storage.put_bytes(manifest_key, manifest.to_json())
    log.info("committed %s (%d files, %d bytes)", storage.uri_for(prefix), len(files), manifest.total_bytes)
    return manifest


def read_manifest(storage: Storage, prefix: str) -> Manifest | None:
    """The prefix's manifest, or None when absent or unparsable (= not committed)."""
    try:
        raw = storage.get_bytes(join_key(check_key(prefix), MANIFEST_NAME))
    except FileNotFoundError:
        return None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError:
        log.warning("ignoring unparsable manifest under %s", storage.uri_for(prefix))
        return None


def is_committed(storage: Storage, prefix: str) -> bool:
    return read_manifest(storage, prefix) is not None


def download_committed(storage: Storage, prefix: str, local_dir: Path) -> Manifest:
    """Download a committed prefix into local_dir and verify every file against the manifest.

    Files already in local_dir with the manifest's size and sha256 are kept (local_dir doubles as a
    cache). Raises NotCommittedError when the prefix is not committed, IntegrityError on a mismatch.
    """
    manifest = read_manifest(storage, prefix)
    if manifest is None:
        raise NotCommittedError(f"{storage.uri_for(prefix)} is not committed (no valid {MANIFEST_NAME})")
    local_dir = Path(local_dir)
    for entry in manifest.files:
        target = local_dir / check_key(entry.path)
        if _matches(target, entry):
            continue
        storage.get_file(join_key(prefix, entry.path), target)
        if not _matches(target, entry):
            size = target.stat().st_size
            target.unlink(missing_ok=True)
            raise IntegrityError(_mismatch(storage.uri_for(join_key(prefix, entry.path)), entry, size))
    return manifest


def _matches(path: Path, entry: FileInfo) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and cached_sha256(path) == entry.sha256


def _mismatch(where: str, expected: FileInfo, size: int, reference: str = "its manifest") -> str:
    found = f"{size} bytes" if size != expected.size else "other content"
    return (f"{where} does not match {reference}: expected {expected.size} bytes with sha256 "
            f"{expected.sha256[:12]}..., found {found}")
