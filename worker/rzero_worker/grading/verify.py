r"""Equivalence of answer pairs with mathruler or math-verify, in worker processes with a hard per-item timeout.

Two checkers (`labeling.checker`; the pool is made for one):
- `mathruler` (the reference's: mathruler 0.1.0 `grade_answer`, the run's default): answers go to it as
  written (it normalises them itself). Undirected a ~ b when either order passes, as the reference's vote
  does; directed (gold a, prediction b) is `grade_answer(b, a)`, as its Solver reward. The worker gives each
  direction its own soft limit (`soft_timeout_s`, the reference's 10 s per comparison); a pair whose
  direction runs out of time is undecided (None), which a reference vote treats as the reference does: that
  pair is skipped. Parent-side shortcuts, all exact for mathruler: equal strings are equivalent, an empty
  answer is equivalent to nothing, two integers of at most 15 digits are equivalent iff equal in value.
- `math-verify`: the notes below.

Why processes: math-verify's own timeouts use `signal.alarm`, which only works on a process's main thread
and cannot interrupt work stuck inside C code (huge sympy integers such as
`\dfrac{5^{5^{5^{5^5}}}}{5^{5^{5^5}}}`). Each worker runs math-verify on its main thread with a soft
timer (`setitimer`, 80% of the limit, answers None without losing the process); the parent enforces the
hard limit: a worker that has not answered an item within `timeout_s` is killed, replaced, and the item
counts as ungradable (None). Workers are started with `spawn` (never fork after torch has threads) and
also get an address-space limit so a memory bomb fails inside the worker instead of the pod.

Speed comes from doing as little math-verify as possible, in the parent:
- equal normalised strings are equivalent; an empty answer is never equivalent to anything;
- plain numbers compare exactly (`0.5` ~ `1/2`; two different short integers differ);
- results are cached per normalised pair (both orders for the symmetric relation);
- an answer over MAX_GRADED_CHARS characters is never parsed (ungradable unless string-equal);
- an answer blamed for a timeout is "poisoned": its later pairs are None at once. The worker knows
  whose parsing/evaluation ran out of time; after a hard kill the longer answer of the pair is blamed;
- in the worker, plain numbers skip the LaTeX parser, and expressions evaluated numerically (symbols at
  fixed points) that differ by more than 1e-4 (relative) are not equivalent without calling math-verify;
  constants equal to 12 digits are equivalent;
- the rest is split in contiguous chunks (pairs of one question share answers, and each worker caches
  parsed answers) and streamed back item by item, so the parent always knows which item is running.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from . import _worker
from .extract import is_plain_integer, normalize_answer, numeric_value

CHECKERS = ("mathruler", "math-verify")
_SHORT_INTEGER = re.compile(r"-?[0-9]{1,15}")  # longer ones go through float() in mathruler and may round
Item = tuple[str, str, bool]  # (normalised a, normalised b, directed)
_CACHE_LIMIT = 200_000
# A normalised answer longer than this never goes to math-verify: parsing it costs seconds (a soft timeout
# each) and no real final answer is that long. It is ungradable (None) unless string-equal to the other.
MAX_GRADED_CHARS = 1000
# Normalising a long answer costs milliseconds and a vote normalises each answer once per pair: long ones
# are remembered (at most this many, so 50 KB answers cannot pile up).
_LONG_ANSWER = 256
_LONG_CACHE_LIMIT = 1000


def default_workers() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started_at: float
    ready: bool = False
    chunk: list[int] | None = None  # indices (into the dispatched item list) sent to it
    done: int = 0  # how many of the chunk have answered
    last_progress: float = 0.0


@dataclass
class PoolStats:
    """Counters since the pool started (how the work was decided)."""

    pairs: int = 0
    fast_path: int = 0
    cache_hits: int = 0
    poisoned: int = 0
    checker_calls: int = 0  # items sent to the worker processes
    timeouts: int = 0  # items that ran out of time (soft limit in the worker, or killed)
    restarts: int = 0
    ungradable: int = 0


class GradingPool:
    """Decides answer equivalence; use as a context manager (or call `close()`)."""

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = 5.0,
        memory_limit_mb: int | None = 2048,
        start_timeout_s: float = 120.0,
        soft_timeout_s: float | None = None,
        checker: str = "math-verify",
    ):
        """workers: processes (default: CPUs available); timeout_s: hard limit per item;
        memory_limit_mb: extra address space a worker may map; soft_timeout_s: the worker's own limit
        (math-verify: per item, default 80% of timeout_s; mathruler: per direction, default 40%), which
        answers None without costing a process restart; checker: "math-verify" or "mathruler"."""
        if checker not in CHECKERS:
            raise ValueError(f"checker must be one of {CHECKERS}, got {checker!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if soft_timeout_s is not None and soft_timeout_s <= 0:
            raise ValueError(f"soft_timeout_s must be > 0, got {soft_timeout_s}")
        self.checker = checker
        share = 0.8 if checker == "math-verify" else 0.4  # mathruler: two directions within the hard limit
        self.soft_timeout_s = soft_timeout_s if soft_timeout_s is not None else share * timeout_s
        self.workers = workers if workers and workers > 0 else default_workers()
        self.timeout_s = float(timeout_s)
        self.memory_limit_mb = memory_limit_mb
        self.start_timeout_s = start_timeout_s
        self.stats = PoolStats()
        self._context = multiprocessing.get_context("spawn")
        self._cache: dict[Item, bool | None] = {}
        self._poisoned: set[str] = set()  # answers blamed for a timeout: one is enough, they hang again
        self._long_normalized: dict[str, str] = {}
        self._batch_id = 0
        self._closed = False
        self._pool: list[_Worker] = [self._start_worker() for _ in range(self.workers)]

    # ---------------------------------------------------------------------------------------------
    # public API

    def equivalent(self, pairs: list[tuple[str | None, str | None]], directed: bool = False) -> list[bool | None]:
        """For each (a, b): True/False, or None when undecidable in time.

        Undirected (default): a ~ b if the checker accepts either order, as the reference code checks.
        Directed: `a` as gold and `b` as the prediction (evaluation, the Solver's reward).
        """
        if self._closed:
            raise RuntimeError("GradingPool is closed")
        results: list[bool | None] = [None] * len(pairs)
        todo: dict[Item, list[int]] = {}
        for index, (a, b) in enumerate(pairs):
            self.stats.pairs += 1
            item = self._item(a, b, directed)
            decided, value = self._decide_locally(item)
            if decided:
                results[index] = value
            else:
                todo.setdefault(item, []).append(index)
        if todo:
            items = list(todo)
            for item, value in zip(items, self._run(items)):
                self._remember(item, value)
                for index in todo[item]:
                    results[index] = value
        self.stats.ungradable += sum(1 for value in results if value is None)
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
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

    def worker_pids(self) -> list[int]:
        return [worker.process.pid for worker in self._pool]

    def __enter__(self) -> "GradingPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---------------------------------------------------------------------------------------------
    # decisions without math-verify

    def _normalize(self, answer: str | None) -> str:
        if self.checker == "mathruler":
            return answer or ""  # mathruler normalises itself: it sees answers as written
        if answer is None or len(answer) <= _LONG_ANSWER:
            return normalize_answer(answer)
        cached = self._long_normalized.get(answer)
        if cached is None:
            if len(self._long_normalized) >= _LONG_CACHE_LIMIT:
                self._long_normalized.clear()
            cached = self._long_normalized[answer] = normalize_answer(answer)
        return cached

    def _item(self, a: str | None, b: str | None, directed: bool) -> Item:
        na, nb = self._normalize(a), self._normalize(b)
        if not directed and nb < na:
            na, nb = nb, na  # one cache entry for both orders of a symmetric question
        return (na, nb, directed)

    def _decide_locally(self, item: Item) -> tuple[bool, bool | None]:
        a, b, _ = item
        if not a or not b:
            self.stats.fast_path += 1
            return True, False
        if a == b:
            self.stats.fast_path += 1
            return True, True
        if self.checker == "mathruler":
            if _SHORT_INTEGER.fullmatch(a) and _SHORT_INTEGER.fullmatch(b):  # mathruler compares their int()
                self.stats.fast_path += 1
                return True, int(a) == int(b)
            return self._decide_from_memory(item)
        value_a, value_b = numeric_value(a), numeric_value(b)
        if value_a is not None and value_b is not None:
            if value_a == value_b:
                self.stats.fast_path += 1
                return True, True
            if is_plain_integer(a) and is_plain_integer(b):
                self.stats.fast_path += 1
                return True, False
        return self._decide_from_memory(item)

    def _decide_from_memory(self, item: Item) -> tuple[bool, bool | None]:
        a, b, _ = item
        if item in self._cache:
            self.stats.cache_hits += 1
            return True, self._cache[item]
        if self._is_poisoned(a) or self._is_poisoned(b):
            self.stats.poisoned += 1
            return True, None
        return False, None

    def _remember(self, item: Item, value: bool | None) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[item] = value

    def _is_poisoned(self, answer: str) -> bool:
        return len(answer) > MAX_GRADED_CHARS or answer in self._poisoned

    def is_blamed(self, answer: str | None) -> bool:
        """Has this answer (normalised here) made a comparison run out of time? Such answers get None."""
        return self._is_poisoned(self._normalize(answer))

    def _poison(self, answers: list[str]) -> None:
        if len(self._poisoned) >= _CACHE_LIMIT:
            self._poisoned.clear()
        self._poisoned.update(answers)

    # ---------------------------------------------------------------------------------------------
    # the worker processes

    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker.serve,
            args=(child_conn, self.soft_timeout_s, self.memory_limit_mb, self.checker),
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

    def _run(self, items: list[Item]) -> list[bool | None]:
        """Decide items on the workers; returns one result per item, in order."""
        self._batch_id += 1
        results: list[bool | None] = [None] * len(items)
        size = max(1, min(64, math.ceil(len(items) / (2 * self.workers))))
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

    def _assign(self, pending: deque[list[int]], items: list[Item]) -> None:
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

    def _poisoned_item(self, item: Item) -> bool:
        return self._is_poisoned(item[0]) or self._is_poisoned(item[1])

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
