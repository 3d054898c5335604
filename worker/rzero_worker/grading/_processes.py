"""The worker processes of one `GradingPool`: started with spawn, fed contiguous chunks of items, read item by
item, killed and replaced when an item runs past the hard limit (grading/verify.py's notes). The pool decides
what is blamed and what is skipped; this module only runs items and reports who timed out."""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from . import _worker


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started_at: float
    ready: bool = False
    chunk: list[int] | None = None  # indices (into the dispatched item list) sent to it
    done: int = 0  # how many of the chunk have answered
    last_progress: float = 0.0


class Processes:
    """`count` grader processes. `serve_args`: the worker's (soft limit, memory limit, checker); `stats`: the
    pool's counters (checker_calls, timeouts, restarts, poisoned); `poison(answers)`: blame answers for a
    timeout; `skip(item)`: is the item left None without running (one of its answers is blamed)?"""

    def __init__(self, count: int, serve_args: tuple, timeout_s: float, start_timeout_s: float, stats, poison, skip):
        self.count, self.serve_args = count, serve_args
        self.timeout_s, self.start_timeout_s = timeout_s, start_timeout_s
        self.stats, self._poison, self._poisoned_item = stats, poison, skip
        self._context = multiprocessing.get_context("spawn")
        self._batch_id = 0
        self._pool: list[_Worker] = [self._start_worker() for _ in range(count)]

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._pool]

    def close(self) -> None:
        for worker in self._pool:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for worker in self._pool:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
            worker.conn.close()
        self._pool = []


    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker.serve,
            args=(child_conn, *self.serve_args),
            daemon=True,
            name="rzero-grader",
        )
        process.start()
        child_conn.close()
        return _Worker(process=process, conn=parent_conn, started_at=time.monotonic())

    def _replace(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5.0)
        worker.conn.close()
        self._pool[self._pool.index(worker)] = self._start_worker()
        self.stats.restarts += 1

    def run(self, items: list[tuple]) -> list:
        """Decide items on the workers; returns one result per item, in order."""
        self._batch_id += 1
        results: list = [None] * len(items)
        size = max(1, min(64, math.ceil(len(items) / (2 * self.count))))
        pending: deque[list[int]] = deque(
            list(range(start, min(start + size, len(items)))) for start in range(0, len(items), size)
        )
        for worker in list(self._pool):
            if not worker.process.is_alive():
                self._replace(worker)
        while True:
            self._assign(pending, items)
            busy = [worker for worker in self._pool if worker.chunk is not None or not worker.ready]
            if not pending and not any(worker.chunk is not None for worker in self._pool):
                return results
            ready = wait([worker.conn for worker in busy], timeout=self._wait_time(busy))
            for worker in [worker for worker in busy if worker.conn in ready]:
                self._receive(worker, items, results, pending)
            self._enforce_deadlines(items, pending)

    def _assign(self, pending: deque[list[int]], items: list[tuple]) -> None:
        for worker in list(self._pool):
            if not pending or not worker.ready or worker.chunk is not None:
                continue
            queued = pending.popleft()
            chunk = [index for index in queued if not self._poisoned_item(items[index])]
            self.stats.poisoned += len(queued) - len(chunk)  # left None: blamed for earlier hangs
            if not chunk:
                continue
            try:
                worker.conn.send((self._batch_id, [items[index] for index in chunk]))
            except (OSError, ValueError):  # died while idle: nothing of ours was running on it
                pending.appendleft(chunk)
                self._replace(worker)
                continue
            self.stats.checker_calls += len(chunk)
            worker.chunk, worker.done, worker.last_progress = chunk, 0, time.monotonic()

    def _wait_time(self, busy: list[_Worker]) -> float:
        now = time.monotonic()
        deadlines = [
            worker.last_progress + self.timeout_s if worker.ready else worker.started_at + self.start_timeout_s
            for worker in busy
        ]
        return max(0.0, min(deadlines) - now) + 0.01 if deadlines else 0.0

    def _receive(self, worker: _Worker, items, results, pending) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._fail(worker, items, pending, timed_out=False)
            return
        if message == "ready":
            worker.ready = True
            return
        batch_id, position, value, blamed = message
        if batch_id != self._batch_id or worker.chunk is None:
            return  # a late answer from an earlier call
        if value == _worker.SKIPPED:
            self.stats.poisoned += 1
            value = None
        elif value is None:
            self.stats.timeouts += 1  # the worker's soft timer fired
        results[worker.chunk[position]] = value
        self._poison(blamed)
        worker.done, worker.last_progress = position + 1, time.monotonic()
        if worker.done == len(worker.chunk):
            worker.chunk = None

    def _enforce_deadlines(self, items, pending) -> None:
        now = time.monotonic()
        for worker in list(self._pool):
            if not worker.ready and now - worker.started_at > self.start_timeout_s:
                raise RuntimeError(f"a grading worker did not start within {self.start_timeout_s:.0f}s")
            if worker.chunk is not None and now - worker.last_progress > self.timeout_s:
                self._fail(worker, items, pending, timed_out=True)

    def _fail(self, worker: _Worker, items, pending, timed_out: bool) -> None:
        """The worker hung or died: its current item is ungradable (None), the rest of its chunk goes back."""
        if not worker.ready:
            code = worker.process.exitcode
            raise RuntimeError(f"a grading worker exited during start-up (exit code {code}); see its stderr")
        if worker.chunk is not None:
            stuck = worker.chunk[worker.done]
            self._poison(_worker.blame_longer(items[stuck][0], items[stuck][1]))
            rest = worker.chunk[worker.done + 1 :]
            if rest:
                pending.appendleft(rest)
            if timed_out:
                self.stats.timeouts += 1
        self._replace(worker)
