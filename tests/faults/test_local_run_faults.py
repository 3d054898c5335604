"""Local runs under faults: two `rzero run` at once, `rzero run` killed, orphaned workers, a worker killed
by the OOM killer, and full or read-only disks under the state file, the report and a worker's output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rzero_operator.local.executor import LocalExecutor, load_run
from rzero_operator.local.layout import LocalLayout
from rzero_operator.local.locks import FileLock
from rzero_operator.local.progress import RunProgress
from rzero_worker.storage import LocalStorage, read_manifest
from support.disk_faults import SKIP_REASON, namespaces_available, run_on_full_disk, run_read_only
from support.local_runs import tiny_manifest, write_manifest

RZERO = [sys.executable, "-m", "rzero_operator.cli"]
needs_namespaces = pytest.mark.skipif(not namespaces_available(), reason=SKIP_REASON)


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def worker_pid(runs: Path, output: str = "iter-000--evaluate") -> int | None:
    """The pid a live worker wrote into its output lock (the executor records it after the start)."""
    for lock in runs.glob(f"local/tiny/*/locks/{output}.lock"):
        text = lock.read_text().strip()
        if text.isdigit() and _alive(int(text)):
            return int(text)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(")")[-1].split()[0] == "Z")  # a zombie is dead


def start_run(path: Path, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([*RZERO, "run", str(path), "--no-progress", "--no-report"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------------------------------
# One rzero run per run; workers die with it; a rerun never races a live worker


@pytest.mark.fault("two rzero run of one run at once", outcome="refused")
def test_a_second_rzero_run_is_refused_naming_the_first_ones_pid(tmp_path, tiny_model_dir, fault_losses):
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    first = start_run(path, tmp_path)
    try:
        wait_for(lambda: worker_pid(tmp_path / "runs"), 120, "the first run's worker")
        second = subprocess.run([*RZERO, "run", str(path), "--no-progress"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 75
        assert last_line(second.stderr) == (
            f"rzero run: run 'tiny' is already running here (pid {first.pid}, lock "
            f"{tmp_path / 'runs' / 'local' / 'tiny' / 'run.lock'}); wait for it or stop it (kill {first.pid})")
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    run_roots = [p for p in (tmp_path / "runs" / "local" / "tiny").iterdir() if p.is_dir()]
    fault_losses.add(len(run_roots) - 1, "extra run roots")


@pytest.mark.fault("rzero run killed while a worker runs", outcome="recovered")
def test_killing_rzero_run_kills_its_worker_and_a_rerun_starts_a_fresh_one(tmp_path, tiny_model_dir):
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    first = start_run(path, tmp_path)
    orphan = wait_for(lambda: worker_pid(tmp_path / "runs"), 120, "the first run's worker")
    first.kill()  # SIGKILL: no clean-up in rzero run at all
    first.wait()
    wait_for(lambda: not _alive(orphan), 5, f"worker {orphan} to die with rzero run")
    rerun = start_run(path, tmp_path)
    try:
        fresh = wait_for(lambda: worker_pid(tmp_path / "runs"), 120, "the rerun's worker")
        assert fresh != orphan
    finally:
        rerun.send_signal(signal.SIGINT)
        assert rerun.wait(timeout=60) == 130


@pytest.mark.fault("rerun while an earlier worker still runs", outcome="refused")
def test_a_rerun_refuses_to_start_a_second_worker_on_an_output_a_live_worker_owns(tmp_path, tiny_model_dir):
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    executor = executor_for(path)
    executor.step()  # the evaluation of iteration 0 is recorded as started; rzero run then "died"
    lock = executor.work_dir / "locks" / "iter-000--evaluate.lock"
    # A worker of that attempt outlived its rzero run (no parent-death signal: another OS, an older
    # version): it holds the output lock it was handed.
    holder = FileLock(lock).acquire()
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(holder.fd,))
    holder.record_holder(orphan.pid)
    holder.release()
    try:
        rerun = subprocess.run([*RZERO, "run", str(path), "--no-progress"], cwd=tmp_path, capture_output=True,
                               text=True, timeout=60)
        assert rerun.returncode == 75
        assert f"a worker started earlier (pid {orphan.pid}) is still running on iter-000/evaluate" in rerun.stderr
        assert not list(executor.work_dir.glob("logs/*.log")), "no worker was started"
    finally:
        orphan.kill()
        orphan.wait()


def executor_for(path: Path) -> LocalExecutor:
    run = load_run(path)
    return LocalExecutor(run, LocalLayout.resolve(run.metadata.name, run.spec.storage.uri), RunProgress("tiny", 6, enabled=False))


@pytest.mark.fault("worker killed by the OOM killer (exit 137)", outcome="failed cleanly")
def test_a_worker_killed_with_sigkill_is_reported_as_exit_137_and_retried(tmp_path, tiny_model_dir):
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    executor = executor_for(path)
    executor.step()
    attempt = threading.Thread(target=executor.run_attempt)
    attempt.start()
    victim = wait_for(lambda: worker_pid(tmp_path / "runs"), 120, "the worker")
    os.kill(victim, signal.SIGKILL)  # what the kernel's OOM killer does
    attempt.join(timeout=60)
    assert executor.state.attempt.exit_codes == [137]
    observed = executor.observe()
    assert observed.state == "failed" and observed.exit_code == 137
    assert "evaluate was killed by SIGKILL (exit code 137: out of memory? (the OOM killer sends SIGKILL))" in observed.message
    decision = executor.step()
    assert decision.start is None and executor.status.current.retry_at is not None  # retried after a backoff
    assert "exit code 137" in executor.status.message


# --------------------------------------------------------------------------------------------------
# Full and read-only disks


def saved_state(tmp_path: Path, tiny_model_dir) -> tuple[Path, Path, bytes]:
    """A run that has saved its state once (the evaluation started): (manifest, state file, its bytes)."""
    path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
    executor_for(path).step()
    state_file = tmp_path / "runs" / "local" / "tiny" / "state.json"
    return path, state_file, state_file.read_bytes()


def assert_one_line(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert all(fragment in last_line(result.stderr) for fragment in fragments), result.stderr[-2000:]


@needs_namespaces
@pytest.mark.fault("disk full under the run state", outcome="failed cleanly")
@pytest.mark.parametrize("start", ["fresh", "resume"])
def test_rzero_run_on_a_full_disk_stops_with_one_line_and_keeps_the_state(tmp_path, tiny_model_dir, start, fault_losses):
    if start == "fresh":
        path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
        state_file, before = tmp_path / "runs" / "local" / "tiny" / "state.json", None
    else:
        path, state_file, before = saved_state(tmp_path, tiny_model_dir)
    result = run_on_full_disk(tmp_path / "runs", [*RZERO, "run", str(path), "--no-progress"], cwd=tmp_path, timeout=120)
    assert_one_line(result, 74, "rzero run: cannot write", "No space left on device (disk full)", "run again")
    after = state_file.read_bytes() if state_file.exists() else None
    assert after == before
    if after is not None:
        json.loads(after)
    leftovers = [p.name for p in state_file.parent.iterdir() if p.name.startswith(".rzero-tmp-")] if state_file.parent.exists() else []
    fault_losses.add(len(leftovers), "temporary files left beside the state")


@needs_namespaces
@pytest.mark.fault("read-only disk under the run state", outcome="failed cleanly")
@pytest.mark.parametrize("start", ["fresh", "resume"])
def test_rzero_run_on_a_read_only_disk_stops_with_one_line(tmp_path, tiny_model_dir, start):
    if start == "fresh":
        path = write_manifest(tmp_path, tiny_manifest(str(tiny_model_dir), tmp_path / "runs"))
        (tmp_path / "runs").mkdir()
        before = None
    else:
        path, state_file, before = saved_state(tmp_path, tiny_model_dir)
    result = run_read_only(tmp_path / "runs", [*RZERO, "run", str(path), "--no-progress"], cwd=tmp_path, timeout=120)
    assert_one_line(result, 74, "rzero run: cannot write", "Read-only file system (read-only or not permitted)")
    if before is not None:
        assert state_file.read_bytes() == before


@needs_namespaces
@pytest.mark.fault("disk full or read-only under the report", outcome="failed cleanly")
@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_rzero_report_on_a_full_or_read_only_disk_stops_with_one_line(tmp_path, tiny_model_dir, disk):
    path, _, _ = saved_state(tmp_path, tiny_model_dir)
    command = [*RZERO, "report", str(path)]
    if disk == "full":
        result = run_on_full_disk(tmp_path / "runs", command, cwd=tmp_path, timeout=120)
        expected = "No space left on device (disk full)"
    else:
        result = run_read_only(tmp_path / "runs", command, cwd=tmp_path, timeout=120)
        expected = "Read-only file system"
    assert_one_line(result, 74, "rzero report: cannot write", expected)


def worker_command(storage: Path) -> list[str]:
    task = {"phase": "generate", "run": "demo", "iteration": 1, "storage": {"uri": str(storage)},
            "output": "iter-001/generate/shard-00000-of-00001", "challenger": {"artifact": "iter-001/challenger"}}
    return [*RZERO, "worker", "generate", "--task-json", json.dumps(task)]


@needs_namespaces
@pytest.mark.fault("worker on a read-only or full output root", outcome="failed cleanly")
@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_a_worker_on_an_unwritable_output_root_fails_before_the_phase(tmp_path, monkeypatch, disk):
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("RZERO_CACHE_DIR", str(tmp_path / "cache"))
    started = time.monotonic()
    if disk == "read-only":
        result = run_read_only(root, worker_command(root), timeout=120)
        assert_one_line(result, 2, "configuration error: storage", "is not writable: Read-only file system")
    else:
        result = run_on_full_disk(root, worker_command(root), timeout=120)
        assert_one_line(result, 1, "StorageError: no space left for storage", "No space left on device")
    assert time.monotonic() - started < 30
    assert "loading" not in result.stderr.lower()  # the phase (model load, generation) never began
    assert read_manifest(LocalStorage(root), "iter-001/generate/shard-00000-of-00001") is None


@needs_namespaces
@pytest.mark.fault("worker on a read-only or full output root", outcome="failed cleanly")
def test_a_worker_whose_cache_disk_is_full_fails_before_the_phase(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("RZERO_CACHE_DIR", str(cache))
    result = run_on_full_disk(cache, worker_command(tmp_path / "runs"), timeout=120)
    assert_one_line(result, 1, "no space left for", "RZERO_CACHE_DIR")
    assert read_manifest(LocalStorage(tmp_path / "runs"), "iter-001/generate/shard-00000-of-00001") is None
