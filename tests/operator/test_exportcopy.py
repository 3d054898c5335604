"""`rzero export`: one exported Solver copied to a directory or s3://, every file checked against the export's
manifest on the way."""

from __future__ import annotations

import pytest

from rzero_operator.exportcopy import copy_export, split_location
from rzero_worker.storage import IntegrityError, NotCommittedError, commit, open_storage
from rzero_worker.task import StorageLocation

FILES = {"best/config.json": b'{"model_type": "llama"}', "best/model.safetensors": b"weights" * 100,
         "best/README.md": b"# card", "last/config.json": b"{}", "last/model.safetensors": b"other"}


def committed_export(location: StorageLocation) -> str:
    store = open_storage(location)
    for key, data in FILES.items():
        store.put_bytes(f"iter-003/export/{key}", data)
    commit(store, "iter-003/export")
    return f"{location.uri}/iter-003/export"


def test_the_best_directory_is_copied_file_for_file_to_s3(storage_location, s3_location):
    root = committed_export(storage_location)
    destination = f"{s3_location.uri}/exported/qwen-best"

    count = copy_export(f"{root}/best", destination, endpoint=s3_location.endpoint_url, region=s3_location.region)

    target = open_storage(StorageLocation(uri=destination, endpoint_url=s3_location.endpoint_url))
    assert count == 3 and sorted(target.list("")) == ["README.md", "config.json", "model.safetensors"]
    assert target.get_bytes("model.safetensors") == FILES["best/model.safetensors"]


def test_a_file_that_does_not_match_the_manifest_stops_the_copy(local_location, tmp_path):
    root = committed_export(local_location)
    open_storage(local_location).put_bytes("iter-003/export/best/model.safetensors", b"tampered")
    with pytest.raises(IntegrityError, match="model.safetensors"):
        copy_export(f"{root}/best", str(tmp_path / "out"))


def test_only_committed_exports_are_copied(local_location, tmp_path):
    with pytest.raises(NotCommittedError):
        copy_export(f"{local_location.uri}/iter-003/export/last", str(tmp_path / "out"))
    with pytest.raises(ValueError, match="not an exported Solver"):
        split_location(f"{local_location.uri}/iter-003/solver")
