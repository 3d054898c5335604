"""The local executor: observe -> decide -> save -> act, resuming from its state file and committed outputs.

The first tests drive single steps (no worker runs); the end-to-end tests run the real worker on the tiny
random model from tests/support/tiny_models.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rzero_operator.local.executor import LocalExecutor, load_run, run_local
from rzero_operator.local.layout import LocalLayout
from rzero_operator.local.progress import RunProgress
from rzero_operator.local.state import load_state
from rzero_worker.storage import LocalStorage, commit, read_manifest
from support.local_runs import tiny_manifest, write_manifest


def executor_for(path: Path) -> LocalExecutor:
    run = load_run(path)
    layout = LocalLayout.resolve(run.metadata.name, run.spec.storage.uri)
    return LocalExecutor(run, layout, RunProgress("tiny", 6, enabled=False))


# --------------------------------------------------------------------------------------------------
# Single steps: no worker runs


def test_the_first_step_records_the_base_evaluation_and_a_uid_that_later_runs_reuse(tmp_path):
    path = write_manifest(tmp_path, tiny_manifest("/models/none", tmp_path / "runs"))
    first = executor_for(path)
    decision = first.step()
    assert decision.start is not None and (decision.start.iteration, decision.start.phase) == (0, "evaluate")
    state = load_state(first.layout.state_file)
    assert state.status["current"]["phase"] == "evaluate" and state.attempt.phase == "evaluate"
    assert state.attempt.tasks[0]["output"] == "iter-000/evaluate/shard-00000-of-00001"
    assert state.run_root == f"{tmp_path / 'runs'}/local/tiny/{state.uid}"
    assert executor_for(path).state.uid == state.uid


def _commit_fake_output(executor: LocalExecutor, key: str, metrics: dict) -> None:
    storage = LocalStorage(Path(executor.state.run_root))
    summary = {"apiVersion": "rzero.dev/summary-v1", "phase": "evaluate", "iteration": 0, "output": key,
               "seconds": 1.0, "metrics": metrics}
    storage.put_bytes(f"{key}/summary.json", json.dumps(summary).encode())
    commit(storage, key)


def test_a_committed_output_counts_as_succeeded_even_when_the_executor_died_before_recording_it(tmp_path):
    path = write_manifest(tmp_path, tiny_manifest("/models/none", tmp_path / "runs"))
    crashed = executor_for(path)
    crashed.step()  # status says: evaluate of iteration 0 is running; then the executor "dies"
    scores = {"arithmetic": {"accuracy": 0.5, "ci95": [0.1, 0.9], "n": 2}}
    _commit_fake_output(crashed, "iter-000/evaluate/shard-00000-of-00001", {"scores": scores, "mean_accuracy": 0.5})

    resumed = executor_for(path)
    assert resumed.observe().state == "succeeded"
    decision = resumed.step()
    assert (decision.start.iteration, decision.start.phase) == (1, "challenger")
    history = resumed.state.status["iterationHistory"]
    assert history[0]["phases"]["evaluate"]["state"] == "Succeeded"
    assert history[0]["scores"] == {"arithmetic": 0.5}


def test_an_attempt_with_no_exit_code_and_no_committed_output_is_started_again_as_the_same_attempt(tmp_path):
    path = write_manifest(tmp_path, tiny_manifest("/models/none", tmp_path / "runs"))
    executor_for(path).step()
    resumed = executor_for(path)
    assert resumed.observe().state == "absent"
    decision = resumed.step()
    assert (decision.start.phase, decision.start.attempt) == ("evaluate", 1)
    assert any(reason == "PhaseRestarted" for _, reason, _ in decision.events)


def test_with_gpus_each_phase_runs_as_the_ranks_a_pod_with_that_many_gpus_would(tmp_path):
    manifest = tiny_manifest("unused", tmp_path / "runs", device={"device": "auto"})
    manifest["spec"]["challenger"]["solverGpus"] = 1
    run = load_run(write_manifest(tmp_path, manifest))
    layout = LocalLayout.resolve(run.metadata.name, run.spec.storage.uri)
    executor = LocalExecutor(run, layout, RunProgress("tiny", 1, enabled=False), gpus=4)
    assert executor._rank_args("solver") == ["--nproc-per-node", "4"]
    assert executor._rank_args("challenger") == ["--nproc-per-node", "3"]  # one GPU serves the Solver
    assert executor._rank_args("generate") == ["--nproc-per-node", "4"]
    assert executor._rank_args("evaluate") == []
    assert executor_for(write_manifest(tmp_path, manifest))._rank_args("solver") == []  # default: one process


def test_editing_the_manifest_between_runs_bumps_the_local_generation(tmp_path):
    manifest = tiny_manifest("/models/none", tmp_path / "runs")
    path = write_manifest(tmp_path, manifest)
    executor_for(path).step()
    manifest["spec"]["generation"]["numQuestions"] = 8
    write_manifest(tmp_path, manifest)
    edited = executor_for(path)
    assert edited.state.generation == 2
    edited.step()
    assert edited.state.status["observedGeneration"] == 2


def qwen_manifest(tmp_path: Path, **spec) -> dict:
    return {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "qwen"},
            "spec": {"model": "Qwen/Qwen3-4B-Base", "storage": {"uri": str(tmp_path / "runs")}, **spec}}


def test_a_run_that_cannot_fit_is_refused_with_exit_2_in_the_words_of_rzero_validate(tmp_path, capsys):
    from rzero_operator.cli import main

    path = write_manifest(tmp_path, qwen_manifest(
        tmp_path, challenger={"grpo": {"cpuOffload": False, "rolloutGpuMemoryUtilization": 0.7}}))
    assert main(["validate", str(path)]) == 2
    validate_errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert run_local(path, progress=False) == 2
    run_errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert run_errors == validate_errors and "spec.challenger.grpo.rolloutGpuMemoryUtilization" in run_errors[0]
    assert not (tmp_path / "runs").exists()  # nothing started


def test_a_local_run_is_sized_for_its_gpus_and_warns_once_per_generation(tmp_path):
    path = write_manifest(tmp_path, qwen_manifest(tmp_path))
    run = load_run(path)
    layout = LocalLayout.resolve(run.metadata.name, run.spec.storage.uri)
    two = LocalExecutor(run, layout, RunProgress("qwen", 1, enabled=False), gpus=2)
    assert two.spec.challenger.grpo.cpu_offload is True  # 37 GiB of state per GPU on 2 ranks: offloaded
    assert LocalExecutor(run, layout, RunProgress("qwen", 1, enabled=False), gpus=8).spec.solver.grpo.cpu_offload is False
    warnings = [m for kind, reason, m in two.step().events if reason == "SizingWarning"]
    assert warnings == ["spec.resources.gpus: warning: 1 of the evaluate pod's 2 GPUs stay idle: evaluation runs one "
                        "engine on spec.device.tensorParallelSize 1 GPUs"]
    again = LocalExecutor(load_run(path), layout, RunProgress("qwen", 1, enabled=False), gpus=2)
    assert [reason for _, reason, _ in again.step().events if reason == "SizingWarning"] == []  # same generation


# --------------------------------------------------------------------------------------------------
# End to end: real worker subprocesses on the tiny random model


def test_a_run_goes_to_succeeded_with_its_history_filled(tmp_path, tiny_model_dir, capsys):
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    assert run_local(path, progress=False) == 0
    out = capsys.readouterr().out
    state = executor_for(path).state
    status = state.status
    assert status["phase"] == "Succeeded", status["message"]
    history = {entry["iteration"]: entry for entry in status["iterationHistory"]}
    assert set(history) == {0, 1}
    assert all(p["state"] == "Succeeded" for p in history[1]["phases"].values())
    assert set(history[1]["phases"]) == {"challenger", "generate", "label", "solver", "evaluate"}
    assert history[1]["questionsGenerated"] == 4 and "arithmetic" in history[1]["scores"]
    assert "run tiny: Succeeded" in out
    report = Path(state.run_root) / "report" / "report.md"
    assert report.exists() and "| 1 |" in report.read_text()
    # every phase left a TensorBoard run in its committed output (the tiny model's Solver may keep no question
    # to train on: tests/worker/test_tracking.py checks both roles' step curves)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = Path(state.run_root)
    runs = {str(p.parent.parent.relative_to(root)) for p in root.glob("iter-*/**/tensorboard/events.out.tfevents.*")}
    assert runs == {"iter-000/evaluate/shard-00000-of-00001", "iter-001/challenger", "iter-001/solver",
                    "iter-001/generate/shard-00000-of-00001", "iter-001/label/shard-00000-of-00001",
                    "iter-001/evaluate/shard-00000-of-00001"}
    events = EventAccumulator(str(root / "iter-001" / "challenger" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/reward")] == [1]  # one rollout step of one update


def test_a_killed_run_resumes_without_redoing_committed_phases(tmp_path, tiny_model_dir):
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    command = [sys.executable, "-m", "rzero_operator.cli", "run", str(path), "--no-progress", "--no-report"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "runs" / "local" / "tiny"
    deadline = time.monotonic() + 300
    try:
        while not list(runs.glob("*/iter-000/evaluate/shard-*/_MANIFEST.json")):
            assert first.poll() is None, "the executor ended before the first phase committed"
            assert time.monotonic() < deadline, "the first phase did not commit in time"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: executor and worker die together, no clean-up
        first.wait()
    [manifest_file] = runs.glob("*/iter-000/evaluate/shard-*/_MANIFEST.json")
    committed_at = manifest_file.read_bytes()

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    state = executor_for(path).state
    history = {entry["iteration"]: entry for entry in state.status["iterationHistory"]}
    # The resumed run went on from where the first one died (its own outcome is another test's business).
    assert history[0]["phases"]["evaluate"] == {**history[0]["phases"]["evaluate"], "state": "Succeeded", "attempts": 1}
    assert history[1]["phases"]["challenger"]["state"] == "Succeeded", second.stderr[-3000:]
    assert manifest_file.read_bytes() == committed_at  # the committed evaluation was not redone
    logs = sorted(p.name for p in (Path(state.run_root) / "logs").iterdir())
    assert [name for name in logs if "iter-000-evaluate" in name] == ["iter-000-evaluate-a1-shard-00000.log"]
    evaluate_log = (Path(state.run_root) / "logs" / "iter-000-evaluate-a1-shard-00000.log").read_text()
    assert evaluate_log.count("$ ") == 1, "iteration 0's evaluation ran twice"


def test_a_failing_phase_is_retried_then_fails_the_run_naming_the_phase(tmp_path, tiny_model_dir):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for item in Path(tiny_model_dir).iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated weights: a runtime (retryable) failure
    path = write_manifest(tmp_path, tiny_manifest(str(broken), tmp_path / "runs"))
    assert run_local(path, progress=False, write_report=False) == 1
    state = executor_for(path).state
    status = state.status
    assert status["phase"] == "Failed"
    assert "evaluate of iteration 0 failed after 2 attempt(s)" in status["message"]
    assert status["failedAttempts"] == 2
    logs = sorted(p.name for p in (Path(state.run_root) / "logs").iterdir())
    assert logs == ["iter-000-evaluate-a1-shard-00000.log", "iter-000-evaluate-a2-shard-00000.log"]
    assert read_manifest(LocalStorage(Path(state.run_root)), "iter-000/evaluate/shard-00000-of-00001") is None


def test_a_configuration_error_fails_the_run_at_once(tmp_path, tiny_model_dir):
    benchmarks = [{"name": "missing", "kind": "jsonl", "path": str(tmp_path / "no-such.jsonl")}]
    manifest = tiny_manifest(str(tiny_model_dir), tmp_path / "runs")
    manifest["spec"]["evaluation"]["benchmarks"] = benchmarks
    path = write_manifest(tmp_path, manifest)
    assert run_local(path, progress=False, write_report=False) == 1
    status = executor_for(path).state.status
    assert status["failedAttempts"] == 1
    assert "configuration error" in status["message"] and "no-such.jsonl" in status["message"]


def test_the_corpus_anchors_and_benchmark_paths_resolve_as_the_storage_uri_does(tmp_path, monkeypatch):
    from rzero_operator.api import RZeroRun
    from rzero_operator.local.executor import resolve_paths

    run = RZeroRun.model_validate({"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "d"},
                                   "spec": {"model": "m", "storage": {"uri": "./runs"},
                                            "corpus": {"uri": "../shared/data/docs.jsonl"},
                                            "anchors": {"uri": "anchors.jsonl"},
                                            "evaluation": {"benchmarks": [
                                                {"name": "mine", "path": "examples/q.jsonl"},
                                                {"name": "theirs", "path": "s3://bucket/q.jsonl"},
                                                {"name": "home", "path": "/abs/q.jsonl"},
                                                {"name": "arithmetic", "kind": "arithmetic"}]}}})
    resolve_paths(run, tmp_path / "repo")
    assert run.spec.corpus.uri == str((tmp_path / "shared" / "data" / "docs.jsonl").resolve())
    assert run.spec.anchors.uri == str((tmp_path / "repo" / "anchors.jsonl").resolve())
    assert [b.path for b in run.spec.evaluation.benchmarks] == [
        str((tmp_path / "repo" / "examples" / "q.jsonl").resolve()), "s3://bucket/q.jsonl", "/abs/q.jsonl", None]
    monkeypatch.chdir(tmp_path)
    run.spec.corpus.uri = "docs"
    resolve_paths(run, None)
    assert run.spec.corpus.uri == str(tmp_path.resolve() / "docs")
