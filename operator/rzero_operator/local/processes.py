"""Run a phase's worker tasks as child processes: the local stand-in for a Job.

Each shard runs exactly the command a Job runs, `python -m rzero_worker PHASE --task FILE`, as an argument
list (no shell). Its stdout and stderr go to a log file; a failed shard's last lines become the failure
message. Shards run a few at a time (`max_parallel`). On Ctrl-C (KeyboardInterrupt) or SIGTERM every child
is asked to stop (SIGTERM), given a grace period, then killed, and the interruption is re-raised so the
executor can save its state.

Each child holds its output's lock for as long as it lives (see locks.py) and, on Linux, dies with this
process (RZERO_PARENT_PID): killing `rzero run` never leaves a worker behind to race a rerun.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rzero_operator.local.locks import FileLock, LockBusy, is_held
from rzero_worker.cli import PARENT_PID_ENV

POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 15.0
TAIL_LINES = 20


WORKER_LAUNCHER = (sys.executable, "-m", "rzero_worker")


@dataclass(frozen=True)
class ShardJob:
    """One child process to run: the task file it reads and the log it writes."""

    phase: str
    task_file: Path
    log_file: Path
    launcher: tuple[str, ...] = WORKER_LAUNCHER  # the same worker CLI a Job runs
    lock_file: Path | None = None  # the output's lock, held by the child while it runs
    output: str = ""  # run-relative output key, for messages
    args: tuple[str, ...] = ()  # e.g. ("--nproc-per-node", "4"): run the phase as ranks, as on a GPU pod

    def command(self) -> list[str]:
        return [*self.launcher, self.phase, "--task", str(self.task_file), *self.args]


class OutputBusy(Exception):
    """A live worker (from an earlier `rzero run`) still owns a shard's output."""

    def __init__(self, job: ShardJob, holder: str):
        super().__init__(
            f"a worker started earlier (pid {holder}) is still running on {job.output or job.task_file}; "
            f"wait for it to finish or stop it (kill {holder}), then run again"
        )
        self.job, self.holder = job, holder


def check_outputs_free(jobs: list[ShardJob]) -> None:
    """Raise OutputBusy when a live process holds the lock of any job's output."""
    for job in jobs:
        holder = is_held(job.lock_file) if job.lock_file is not None else None
        if holder is not None:
            raise OutputBusy(job, holder)


def exit_status(returncode: int) -> int:
    """A shell's view of a child's end: killed by signal N -> 128 + N (SIGKILL, e.g. the OOM killer: 137),
    as a container runtime reports it."""
    return 128 - returncode if returncode < 0 else returncode


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log file ('' when there is none); a progress bar redrawn with carriage returns
    counts as one line showing its final state."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as handle:
            last = deque(handle, maxlen=lines)
    except FileNotFoundError:
        return ""
    shown = [next((part for part in reversed(line.rstrip("\n").split("\r")) if part), "") for line in last]
    return "\n".join(shown).rstrip()


def last_line(path: Path) -> str:
    """The log's last non-empty line, cheaply (reads only the end of the file)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            chunk = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    # tqdm inside the worker redraws with carriage returns: the newest state is after the last one.
    lines = [part.strip() for part in chunk.replace("\r", "\n").split("\n") if part.strip()]
    return lines[-1] if lines else ""


class _Child:
    """A started shard: its process, open log and output lock (ours to close once it has exited)."""

    def __init__(self, job: ShardJob, env: dict[str, str]):
        self.lock = FileLock(job.lock_file) if job.lock_file is not None else None
        if self.lock is not None:
            try:
                self.lock.acquire()
            except LockBusy as busy:
                raise OutputBusy(job, busy.holder) from None
        job.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(job.log_file, "ab")
        try:
            self.log.write(f"$ {' '.join(job.command())}\n".encode())
            self.log.flush()
            self.proc = subprocess.Popen(
                job.command(), stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                pass_fds=(self.lock.fd,) if self.lock is not None else (),
            )
        except BaseException:
            self.close()
            raise
        if self.lock is not None:
            self.lock.record_holder(self.proc.pid)

    def close(self) -> None:
        self.log.close()
        if self.lock is not None:
            self.lock.release()


def _stop_all(running: dict[int, _Child], grace: float) -> None:
    """SIGTERM every child, wait up to `grace` seconds, then SIGKILL the stragglers."""
    for child in running.values():
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + grace
    for child in running.values():
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
        child.close()


def run_shards(
    jobs: list[ShardJob],
    *,
    max_parallel: int = 1,
    env: dict[str, str] | None = None,
    on_poll: Callable[[list[ShardJob]], None] | None = None,
    deadline: float | None = None,
    stop_grace: float = STOP_GRACE_SECONDS,
) -> list[int | None]:
    """Run every job, at most `max_parallel` at once; return their exit codes in job order.

    `on_poll(running_jobs)` is called about twice a second while children run (progress display).
    After `deadline` seconds every child still running is stopped; it and every job not yet started get
    the exit code None.
    """
    env = dict(os.environ if env is None else env)
    env[PARENT_PID_ENV] = str(os.getpid())
    check_outputs_free(jobs)
    codes: list[int | None] = [None] * len(jobs)
    pending = deque(range(len(jobs)))
    running: dict[int, _Child] = {}
    started = time.monotonic()
    try:
        while pending or running:
            if deadline is not None and time.monotonic() - started > deadline:
                _stop_all(running, stop_grace)
                break
            while pending and len(running) < max(1, max_parallel):
                index = pending.popleft()
                running[index] = _Child(jobs[index], env)
            for index, child in list(running.items()):
                if child.proc.poll() is not None:
                    codes[index] = exit_status(child.proc.returncode)
                    child.close()
                    del running[index]
            if on_poll is not None:
                on_poll([jobs[index] for index in running])
            if running:
                time.sleep(POLL_SECONDS)
    except BaseException:
        _stop_all(running, stop_grace)
        raise
    return codes
