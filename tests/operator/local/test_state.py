"""The local state file and where a local run keeps things."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_operator.local.layout import LocalLayout, find_state_files
from rzero_operator.local.state import AttemptRecord, LocalState, load_state, save_state, state_path


def test_state_round_trips_with_its_attempt_record(tmp_path):
    path = state_path(tmp_path, "demo")
    attempt = AttemptRecord(1, "label", 2, [{"output": "iter-001/label/shard-00000-of-00001"}], [0], ["/x.log"])
    state = LocalState("demo", "uid-1", "/r/local/demo/uid-1", {"phase": "Running"}, 3, "abc", attempt)
    save_state(path, state)
    assert load_state(path) == state
    assert path == tmp_path / "local" / "demo" / "state.json"


def test_a_missing_state_file_means_a_new_run(tmp_path):
    assert load_state(tmp_path / "local" / "x" / "state.json") is None


def test_saving_leaves_no_temporary_files_and_replaces_the_old_state(tmp_path):
    path = state_path(tmp_path, "demo")
    save_state(path, LocalState("demo", "u", "/r", {"phase": "Pending"}))
    save_state(path, LocalState("demo", "u", "/r", {"phase": "Running"}))
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
    assert json.loads(path.read_text())["status"]["phase"] == "Running"


def test_a_corrupt_or_foreign_state_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="state.json"):
        load_state(path)
    path.write_text(json.dumps({"apiVersion": "something/else"}))
    with pytest.raises(ValueError, match="apiVersion"):
        load_state(path)


def test_relative_local_storage_resolves_against_root_and_keeps_state_beside_the_run_roots(tmp_path):
    layout = LocalLayout.resolve("demo", "./rzero-runs", root=tmp_path)
    base = (tmp_path / "rzero-runs").resolve()
    assert layout.storage_uri == str(base)
    assert layout.state_file == base / "local" / "demo" / "state.json"
    assert layout.run_root("u1") == f"{base}/local/demo/u1"
    assert layout.work_dir("u1") == base / "local" / "demo" / "u1"


def test_relative_storage_defaults_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert LocalLayout.resolve("demo", "runs").storage_uri == str(tmp_path.resolve() / "runs")
    assert LocalLayout.resolve("demo", "/abs/runs", root=tmp_path).storage_uri == "/abs/runs"


def test_s3_storage_keeps_state_and_logs_on_this_machine(tmp_path):
    layout = LocalLayout.resolve("demo", "s3://bucket/prefix/", root=tmp_path)
    assert layout.is_s3 and layout.run_root("u1") == "s3://bucket/prefix/local/demo/u1"
    assert layout.state_file == tmp_path.resolve() / "local" / "demo" / "state.json"
    assert layout.work_dir("u1") == tmp_path.resolve() / "local" / "demo" / "u1"


def test_state_files_of_every_run_under_a_root_are_found(tmp_path):
    for name in ("b", "a"):
        save_state(state_path(tmp_path, name), LocalState(name, "u", "/r"))
    assert [p.parent.name for p in find_state_files(tmp_path)] == ["a", "b"]
    assert find_state_files(Path(tmp_path / "nothing")) == []
