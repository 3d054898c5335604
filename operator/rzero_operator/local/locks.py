"""Locks of a local run: one `rzero run` per run, one worker per output, workers that die with `rzero run`.

- The run lock: `rzero run` holds an flock on `<state dir>/run.lock` for its whole life, before it reads
  or creates the state, so two `rzero run` of the same run can never make two run ids or run a phase
  twice. The file holds the holder's pid, which a refused second `rzero run` names.
- Output locks: before a worker starts, the executor flocks `<work dir>/locks/<output>.lock` and hands
  the open file to the worker (`pass_fds`). An flock belongs to the open file, so it stays held while the
  worker lives, even if `rzero run` died first; a rerun that finds it held refuses to start a second
  worker on that output.
- On Linux, workers started by `rzero run` also die with it: the worker asks for SIGKILL on its parent's
  death (PR_SET_PDEATHSIG, see rzero_worker.cli), given the parent pid in RZERO_PARENT_PID.

The kernel releases flocks when their last holder dies, however it dies: no stale lock files to clean.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockBusy(Exception):
    """Another live process holds the lock; `holder` is the pid it wrote (or '?')."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by pid {holder}")
        self.path, self.holder = path, holder


class FileLock:
    """An exclusive, non-blocking flock on `path` (created if needed) that records its holder's pid."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self, holder_pid: int | None = None) -> "FileLock":
        """Take the lock or raise LockBusy; write `holder_pid`, when given, into the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(self.path, read_holder(self.path)) from None
        self.fd = fd
        if holder_pid is not None:
            self.record_holder(holder_pid)
        return self

    def record_holder(self, pid: int) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing our copy; a worker that inherited it keeps it locked
            self.fd = None


def read_holder(path: Path) -> str:
    try:
        return Path(path).read_text().strip() or "?"
    except OSError:
        return "?"


def is_held(path: Path) -> str | None:
    """The holder's pid when a live process holds the lock at `path`, else None (the lock is left free)."""
    if not Path(path).exists():
        return None
    try:
        FileLock(path).acquire().release()
    except LockBusy as busy:
        return busy.holder
    return None
