"""The local stand-in for a Job: child processes with logs, exit codes, deadlines and clean stops."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rzero_operator.local.processes import ShardJob, last_line, run_shards, tail

# A fake worker with the worker's command line (PHASE --task FILE): the task file says what it does.
FAKE_WORKER = textwrap.dedent(
    """
    import json, sys, time, os
    phase, _, task_file = sys.argv[1:4]
    task = json.load(open(task_file))
    print(f"{phase} pid={os.getpid()} starting", flush=True)
    for i in range(task.get("lines", 0)):
        print(f"step {i}", flush=True)
    time.sleep(task.get("sleep", 0))
    print("done", flush=True)
    sys.exit(task.get("exit", 0))
    """
)


@pytest.fixture
def make_job(tmp_path: Path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)

    def make(name: str, **task) -> ShardJob:
        task_file = tmp_path / f"{name}.json"
        task_file.write_text(__import__("json").dumps(task))
        return ShardJob("label", task_file, tmp_path / "logs" / f"{name}.log", launcher=(sys.executable, str(script)))

    return make


def test_worker_command_is_an_argument_list_running_the_worker_module(tmp_path):
    job = ShardJob("generate", tmp_path / "t.json", tmp_path / "t.log")
    assert job.command() == [sys.executable, "-m", "rzero_worker", "generate", "--task", str(tmp_path / "t.json")]
    ranked = ShardJob("solver", tmp_path / "t.json", tmp_path / "t.log", args=("--nproc-per-node", "4"))
    assert ranked.command()[-2:] == ["--nproc-per-node", "4"]


def test_exit_codes_come_back_in_job_order_and_output_goes_to_the_log(make_job):
    jobs = [make_job("a", lines=3), make_job("b", exit=1), make_job("c", exit=2)]
    assert run_shards(jobs, max_parallel=2) == [0, 1, 2]
    log = jobs[0].log_file.read_text()
    assert log.startswith("$ ") and "fake_worker.py label --task" in log
    assert "step 2" in log and log.rstrip().endswith("done")


def test_tail_and_last_line_read_the_end_of_a_log(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "progress 10%\rprogress 50%\r")
    assert tail(log, 2) == "line 99\nprogress 50%"  # a redrawn progress bar is one line
    assert last_line(log) == "progress 50%"
    assert tail(tmp_path / "missing.log") == "" and last_line(tmp_path / "missing.log") == ""


def test_shards_run_at_most_max_parallel_at_once(make_job):
    jobs = [make_job(f"s{i}", sleep=0.6) for i in range(4)]
    seen: list[int] = []
    run_shards(jobs, max_parallel=2, on_poll=lambda running: seen.append(len(running)))
    assert max(seen) == 2


def test_a_shard_past_the_deadline_is_stopped_and_has_no_exit_code(make_job):
    jobs = [make_job("slow", sleep=30), make_job("never-started")]
    started = time.monotonic()
    codes = run_shards(jobs, deadline=1.0, stop_grace=2.0)
    assert codes == [None, None]
    assert time.monotonic() - started < 10


def test_an_interrupt_stops_the_running_children_before_it_propagates(make_job):
    job = make_job("long", sleep=60)
    pids: list[int] = []

    def interrupt_soon():
        time.sleep(1.5)
        pids.extend(int(line.split("pid=")[1].split()[0]) for line in job.log_file.read_text().splitlines() if "pid=" in line)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_soon, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_shards([job], stop_grace=5.0)
    assert pids, "the child never started"
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # the child is gone (and reaped)
