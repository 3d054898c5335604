"""Storage: the same behaviour on local directories and S3 (moto server), plus the commit rule."""

from __future__ import annotations

import hashlib
import json
import os

import boto3
import pytest

from rzero_worker import storage as storage_module
from rzero_worker.storage import (
    MANIFEST_NAME,
    IntegrityError,
    NotCommittedError,
    StorageError,
    commit,
    download_committed,
    is_committed,
    open_storage,
    read_manifest,
)
from rzero_worker.task import StorageLocation
from support.fault_proxy import FlakyProxy


def raw_s3_client(location: StorageLocation):
    return boto3.client("s3", endpoint_url=location.endpoint_url, region_name="us-east-1")


# --------------------------------------------------------------------------------------------------
# Round trips, both backends


def test_bytes_round_trip_and_missing_key_raises_file_not_found(storage_location, tmp_path):
    store = open_storage(storage_location)
    store.put_bytes("iter-001/label/stats.json", b'{"kept": 3}')
    assert store.get_bytes("iter-001/label/stats.json") == b'{"kept": 3}'
    assert store.exists("iter-001/label/stats.json")
    assert not store.exists("iter-001/label/other.json")
    with pytest.raises(FileNotFoundError, match="other.json"):
        store.get_bytes("iter-001/label/other.json")
    with pytest.raises(FileNotFoundError):
        store.get_file("iter-001/label/other.json", tmp_path / "dl" / "x")
    assert not (tmp_path / "dl" / "x").exists()


def test_file_round_trip(storage_location, tmp_path):
    store = open_storage(storage_location)
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3000))
    store.put_file("a/b/in.bin", source)
    store.get_file("a/b/in.bin", tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == source.read_bytes()


def test_list_is_recursive_sorted_and_treats_prefixes_as_directories(storage_location):
    store = open_storage(storage_location)
    for key in ["iter-001/solver/model/w.bin", "iter-001/solver/summary.json", "iter-001/solver.ckpt/step-000001/x"]:
        store.put_bytes(key, b"x")
    assert store.list("iter-001/solver") == ["iter-001/solver/model/w.bin", "iter-001/solver/summary.json"]
    assert len(store.list("")) == 3
    assert store.list("iter-002") == []


def test_delete_prefix_removes_only_that_directory(storage_location):
    store = open_storage(storage_location)
    for key in ["out/a", "out/sub/b", "out.ckpt/step-000001/c", "outer/d"]:
        store.put_bytes(key, b"x")
    assert store.delete_prefix("out") == 2
    assert store.list("") == ["out.ckpt/step-000001/c", "outer/d"]


def test_upload_and_download_dir(storage_location, tmp_path):
    store = open_storage(storage_location)
    source = tmp_path / "model"
    (source / "nested").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "nested" / "weights.bin").write_bytes(os.urandom(1024))
    sent = store.upload_dir(source, "iter-001/solver/model")
    assert [(f.path, f.size) for f in sent] == [("config.json", 2), ("nested/weights.bin", 1024)]
    assert sent[1].sha256 == hashlib.sha256((source / "nested" / "weights.bin").read_bytes()).hexdigest()
    target = tmp_path / "copy"
    assert store.download_dir("iter-001/solver/model", target) == ["config.json", "nested/weights.bin"]
    assert (target / "nested" / "weights.bin").read_bytes() == (source / "nested" / "weights.bin").read_bytes()


def test_uri_for_names_the_full_location(local_location, s3_location):
    assert open_storage(local_location).uri_for("iter-001/x").endswith("/runs/iter-001/x")
    bucket = s3_location.uri.split("/")[2]
    assert open_storage(s3_location).uri_for("iter-001/x") == f"s3://{bucket}/runs/iter-001/x"


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", ""])
def test_keys_that_could_escape_the_run_root_are_refused(local_location, key):
    with pytest.raises(StorageError, match="invalid storage key"):
        open_storage(local_location).put_bytes(key, b"x")


# --------------------------------------------------------------------------------------------------
# Local specifics: atomic writes


def test_local_write_is_atomic_when_the_final_rename_fails(local_location, monkeypatch):
    store = open_storage(local_location)
    store.put_bytes("out/data.json", b"old complete content")

    def crash(*_args):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(storage_module.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.put_bytes("out/data.json", b"new")
    with pytest.raises(OSError, match="simulated crash"):
        store.put_bytes("out/other.json", b"new")
    monkeypatch.undo()
    assert store.get_bytes("out/data.json") == b"old complete content"
    assert not store.exists("out/other.json")
    assert store.list("out") == ["out/data.json"]
    assert os.listdir(store.root / "out") == ["data.json"]  # temp files cleaned up too


def test_local_in_flight_temp_files_are_never_listed(local_location):
    store = open_storage(local_location)
    store.put_bytes("out/a", b"x")
    (store.root / "out" / ".rzero-tmp-abc").write_bytes(b"partial")
    assert store.list("out") == ["out/a"]


# --------------------------------------------------------------------------------------------------
# S3 specifics: multipart, endpoint from the environment, retries


def test_s3_large_files_use_multipart_both_ways(s3_location, tmp_path):
    store = open_storage(s3_location, multipart_threshold=1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))  # > 5 MiB (S3's minimum part): two parts
    store.put_file("ckpt/big.bin", big)
    bucket = s3_location.uri.split("/")[2]
    head = raw_s3_client(s3_location).head_object(Bucket=bucket, Key="runs/ckpt/big.bin")
    assert head["ETag"].strip('"').endswith("-2"), "a multipart upload's ETag ends with -<parts>"
    store.get_file("ckpt/big.bin", tmp_path / "back.bin")
    assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()


def test_s3_endpoint_can_come_from_the_environment(s3_location, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_location.endpoint_url)
    store = open_storage(StorageLocation(uri=s3_location.uri))
    store.put_bytes("k", b"v")
    assert open_storage(s3_location).get_bytes("k") == b"v"


@pytest.mark.parametrize("status, failures", [(500, 2), (503, 1)])
def test_s3_requests_are_retried_after_server_errors_and_throttling(s3_location, status, failures):
    # Real botocore backoff (jittered sleeps of up to 1 s, then 2 s): keep the failure counts small.
    with FlakyProxy(s3_location.endpoint_url, failures=failures, status=status) as proxy:
        store = open_storage(s3_location.model_copy(update={"endpoint_url": proxy.url}))
        store.put_bytes("retried/key", b"payload")
        assert len(proxy.failed) == failures and proxy.failed[0].startswith("PUT ")
        proxy.failures_left = 1
        assert store.get_bytes("retried/key") == b"payload"
        assert len(proxy.failed) == failures + 1 and proxy.failed[-1].startswith("GET ")


def test_s3_gives_up_after_max_attempts(s3_location):
    from botocore.exceptions import ClientError

    with FlakyProxy(s3_location.endpoint_url, failures=100, status=500) as proxy:
        store = open_storage(s3_location.model_copy(update={"endpoint_url": proxy.url}), max_attempts=2)
        with pytest.raises(ClientError):
            store.put_bytes("never/key", b"payload")
        assert len(proxy.failed) == 2


# --------------------------------------------------------------------------------------------------
# Commit rule


def test_commit_lists_every_file_with_size_and_sha256_and_excludes_itself(storage_location):
    store = open_storage(storage_location)
    store.put_bytes("iter-001/label/train.jsonl", b"line\n")
    store.put_bytes("iter-001/label/nested/stats.json", b"{}")
    manifest = commit(store, "iter-001/label")
    assert [(f.path, f.size, f.sha256) for f in manifest.files] == [
        ("nested/stats.json", 2, hashlib.sha256(b"{}").hexdigest()),
        ("train.jsonl", 5, hashlib.sha256(b"line\n").hexdigest()),
    ]
    stored = json.loads(store.get_bytes(f"iter-001/label/{MANIFEST_NAME}"))
    assert stored["apiVersion"] == "rzero.dev/manifest-v1" and len(stored["files"]) == 2
    again = commit(store, "iter-001/label")  # re-commit does not list the old manifest
    assert [f.path for f in again.files] == ["nested/stats.json", "train.jsonl"]
    assert again.digest() == manifest.digest()


def test_s3_commit_hashes_objects_written_by_other_tools(s3_location):
    bucket = s3_location.uri.split("/")[2]
    raw_s3_client(s3_location).put_object(Bucket=bucket, Key="runs/ext/file.txt", Body=b"external")
    manifest = commit(open_storage(s3_location), "ext")
    assert manifest.files[0].sha256 == hashlib.sha256(b"external").hexdigest()


def test_files_without_a_manifest_are_not_committed(storage_location, tmp_path):
    store = open_storage(storage_location)
    store.put_bytes("iter-001/generate/questions.jsonl", b"{}\n")
    assert not is_committed(store, "iter-001/generate")
    assert read_manifest(store, "iter-001/generate") is None
    with pytest.raises(NotCommittedError, match="not committed"):
        download_committed(store, "iter-001/generate", tmp_path / "dl")


def test_an_unparsable_manifest_means_not_committed(storage_location):
    store = open_storage(storage_location)
    store.put_bytes(f"out/{MANIFEST_NAME}", b'{"files": "trunc')
    assert read_manifest(store, "out") is None and not is_committed(store, "out")


def test_download_committed_verifies_and_reuses_the_local_cache(storage_location, tmp_path):
    store = open_storage(storage_location)
    store.put_bytes("out/model/w.bin", b"weights")
    store.put_bytes("out/summary.json", b"{}")
    commit(store, "out")
    local = tmp_path / "cache"
    manifest = download_committed(store, "out", local)
    assert (local / "model" / "w.bin").read_bytes() == b"weights"
    assert not (local / MANIFEST_NAME).exists()
    assert manifest.total_bytes == len(b"weights") + 2

    fetched: list[str] = []
    original = store.get_file
    store.get_file = lambda key, path: (fetched.append(key), original(key, path))  # observe, still real
    (local / "summary.json").write_bytes(b"XX")  # same size, wrong content: fetched again
    download_committed(store, "out", local)
    assert fetched == ["out/summary.json"]
    assert (local / "summary.json").read_bytes() == b"{}"


def test_download_committed_detects_a_tampered_file(storage_location, tmp_path):
    store = open_storage(storage_location)
    store.put_bytes("out/model/w.bin", b"weights")
    commit(store, "out")
    if storage_location.uri.startswith("s3://"):
        bucket = storage_location.uri.split("/")[2]
        raw_s3_client(storage_location).put_object(Bucket=bucket, Key="runs/out/model/w.bin", Body=b"tampered")
    else:
        (store.root / "out" / "model" / "w.bin").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="w.bin does not match its manifest"):
        download_committed(store, "out", tmp_path / "dl")
    assert not (tmp_path / "dl" / "model" / "w.bin").exists()


def test_delete_prefix_removes_the_manifest_first(local_location, monkeypatch):
    store = open_storage(local_location)
    store.put_bytes("out/a", b"x")
    commit(store, "out")
    deleted: list[list[str]] = []
    original = store._delete_keys
    monkeypatch.setattr(store, "_delete_keys", lambda keys: (deleted.append(list(keys)), original(keys)))
    store.delete_prefix("out")
    assert deleted[0] == [f"out/{MANIFEST_NAME}"]
    assert not is_committed(store, "out")
