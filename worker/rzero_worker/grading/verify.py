r"""Equivalence of answer pairs with mathruler or math-verify, in worker processes with a hard per-item timeout.

Two checkers (`labeling.checker`; the pool is made for one):
- `mathruler` (the reference's: mathruler 0.1.0 `grade_answer`, the run's default): answers go to it as
  written (it normalises them itself). Undirected a ~ b when either order passes, as the reference's vote
  does; directed (gold a, prediction b) is `grade_answer(b, a)`, as its Solver reward. The worker gives each
  direction its own soft limit (`soft_timeout_s`, the reference's 10 s per comparison); a pair whose
  direction runs out of time is undecided (None), which a reference vote treats as the reference does: that
  pair is skipped. Decided in the parent, all exactly as mathruler decides: equal strings are equivalent, an
  empty answer is equivalent to nothing, two integers of at most 15 digits are equivalent iff equal in value;
  and every pair whose verdict follows from the two answers' normal forms (grading/ruler.py), which a worker
  computes once per answer (`prepare`, or on the way in `equivalent`): only the pairs that mathruler hands
  to sympy go to a worker whole.
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

import os
import re
from dataclasses import dataclass

from . import ruler
from ._processes import Processes
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
class PoolStats:
    """Counters since the pool started (how the work was decided)."""

    pairs: int = 0
    fast_path: int = 0
    by_forms: int = 0  # mathruler pairs decided from the two answers' normal forms
    forms: int = 0  # answers whose normal forms were asked of the workers
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
        self._cache: dict[Item, bool | None] = {}
        self._poisoned: set[str] = set()  # answers blamed for a timeout: one is enough, they hang again
        self._long_normalized: dict[str, str] = {}
        self._forms: dict[str, ruler.Form | bool] = {}  # mathruler's normal forms by answer (False: it raises)
        self._closed = False
        self._processes = Processes(
            self.workers, (self.soft_timeout_s, memory_limit_mb, checker), self.timeout_s, start_timeout_s,
            self.stats, self._poison, self._poisoned_item,
        )

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
            todo.setdefault(self._item(a, b, directed), []).append(index)
        todo = self._settle(todo, results)
        if todo and self.checker == "mathruler":
            self.prepare([answer for item in todo for answer in item[:2]])
            todo = self._settle(todo, results)
        if todo:
            items = list(todo)
            for item, value in zip(items, self._processes.run(items)):
                self._remember(item, value)
                for index in todo[item]:
                    results[index] = value
        self.stats.ungradable += sum(1 for value in results if value is None)
        return results

    def prepare(self, answers: list[str | None]) -> None:
        """mathruler: learn the normal forms of these answers, one worker call for all, so that their
        comparisons are decided here except where mathruler would call sympy (grading/ruler.py); an answer
        whose normalisation runs out of time is blamed. math-verify: nothing to do."""
        if self.checker != "mathruler":
            return
        wanted = list(dict.fromkeys(answer for answer in map(self._normalize, answers) if self._lacks_form(answer)))
        if wanted:
            self.stats.forms += len(wanted)
            if len(self._forms) + len(wanted) > _CACHE_LIMIT:
                self._forms.clear()
            for answer, form in zip(wanted, self._processes.run([(answer, None, None) for answer in wanted])):
                if form is not None:  # None: timed out, the answer is blamed
                    self._forms[answer] = form

    def decided_here(self, a: str | None, b: str | None) -> tuple[bool, bool | None]:
        """(True, a ~ b) when no worker is needed for it (the shortcuts, the forms, the cache, the blame);
        (False, None) otherwise. Counted as a pair only when decided."""
        decided, value = self._decide_locally(self._item(a, b, False))
        if decided:
            self.stats.pairs += 1
            self.stats.ungradable += value is None
        return decided, value

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._processes.close()

    def worker_pids(self) -> list[int]:
        return self._processes.pids()

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

    def _settle(self, todo: dict[Item, list[int]], results: list) -> dict[Item, list[int]]:
        """Fill in the items decided here; the rest."""
        rest = {}
        for item, indices in todo.items():
            decided, value = self._decide_locally(item)
            if not decided:
                rest[item] = indices
                continue
            for index in indices:
                results[index] = value
        return rest

    def _lacks_form(self, answer: str) -> bool:
        return bool(answer) and answer not in self._forms and not self._is_poisoned(answer) and \
            ruler.integer_form(answer) is None

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
            form_a, form_b = self._form(a), self._form(b)
            if form_a and form_b:
                verdict = ruler.directed(form_b, form_a) if item[2] else ruler.undirected(form_a, form_b)
                if verdict is not None:
                    self.stats.by_forms += 1
                    return True, verdict
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

    def _form(self, answer: str) -> ruler.Form | bool | None:
        return self._forms.get(answer) or ruler.integer_form(answer)

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

    def _is_poisoned(self, answer: str | None) -> bool:
        if answer is None:  # the b of a form request
            return False
        return len(answer) > MAX_GRADED_CHARS or answer in self._poisoned

    def is_blamed(self, answer: str | None) -> bool:
        """Has this answer (normalised here) made a comparison run out of time? Such answers get None."""
        return self._is_poisoned(self._normalize(answer))

    def _poison(self, answers: list[str]) -> None:
        if len(self._poisoned) >= _CACHE_LIMIT:
            self._poisoned.clear()
        self._poisoned.update(answers)

    def _poisoned_item(self, item: Item) -> bool:
        return self._is_poisoned(item[0]) or self._is_poisoned(item[1])
