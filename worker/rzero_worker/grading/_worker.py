"""The grading worker process (started by `GradingPool` with the spawn context).

Protocol on its pipe: it sends "ready" once math-verify is imported and warm; then for each request
`(batch_id, [(a, b, directed), ...])` it answers `(batch_id, position, True | False | None, blamed answers)` per item, in
order, as soon as each is decided (or "skipped": one of its answers ran out of time before, in this
process; the longer answer of a timed-out pair is blamed, both when equally long). `None` asks it to exit. Streaming per item lets the parent know which
item is running, so a hang is blamed on exactly one item.

math-verify runs with its own timeouts disabled: this is the main thread, and one `setitimer` soft limit
per item covers parsing and both comparison orders together. `_SoftTimeout` derives from BaseException
so math-verify's `except Exception` handlers do not swallow it.

mathruler (`grade_answer`) gets one soft limit per direction, as the reference gives each call 10 s. Its
bare `except:` clauses would swallow any exception, so the timer keeps firing every 50 ms once it has
fired, and a direction during which it fired is a timeout whatever mathruler returned.
"""

from __future__ import annotations

import cmath
import logging
import signal
import zlib

from .extract import numeric_value

_PARSED_CACHE_LIMIT = 20_000
# Values further apart than this (relative) are different for math-verify too, which rounds to 6 decimals;
# constants closer than _SAME are equal for it.
_DIFFERENT = 1e-4
_SAME = 1e-12
SKIPPED = "skipped"  # answered for an item not tried because one of its answers hung before


def blame_longer(a: str, b: str) -> list[str]:
    """Who made a comparison run out of time when nobody knows: the longer answer (hang inputs are big),
    both when equally long."""
    return [a, b] if len(a) == len(b) else [max(a, b, key=len)]


def _point(name: str) -> float:
    """A fixed, name-dependent value in [1.3, 2.3) for a free symbol (the same in every answer)."""
    return 1.3 + (zlib.crc32(name.encode()) % 1000) / 1000


class _SoftTimeout(BaseException):
    pass


_fired = False  # has the soft timer fired since it was last armed?


def _on_alarm(signum, frame):
    global _fired
    _fired = True
    raise _SoftTimeout()


def _arm(seconds: float, repeat_s: float = 0.0) -> None:
    global _fired
    _fired = False
    signal.setitimer(signal.ITIMER_REAL, seconds, repeat_s)


def _limit_memory(extra_mb: int | None) -> None:
    """Cap the address space at what is mapped now plus extra_mb, so a memory bomb raises MemoryError."""
    if not extra_mb:
        return
    try:
        import resource

        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
        current = pages * resource.getpagesize()
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):
        pass  # not Linux: run without the cap


class _Grader:
    def __init__(self):
        import sympy
        from math_verify import parse, verify

        logging.getLogger("math_verify").setLevel(logging.ERROR)
        self._sympy = sympy
        self._parse, self._verify = parse, verify
        self._parsed: dict[str, list] = {}
        self._values: dict[str, complex | None] = {}
        self.poisoned: set[str] = set()
        self.preparing: str | None = None  # the answer being parsed/evaluated, if any
        self.decide("1/2", "0.5", False)  # warm up the LaTeX parser and sympy

    def parsed(self, answer: str) -> list:
        cached = self._parsed.get(answer)
        if cached is None:
            if len(self._parsed) >= _PARSED_CACHE_LIMIT:
                self._parsed.clear()
                self._values.clear()
            number = numeric_value(answer) if "." not in answer else None
            if number is not None:  # integers and fractions need no LaTeX parser (the slowest part of parse);
                # decimals do: math-verify reads them as floats and rounds them when comparing
                cached = [self._sympy.Rational(number.numerator, number.denominator), answer]
            else:
                cached = self._parse("\\boxed{" + answer + "}", parsing_timeout=None)
            self._parsed[answer] = cached
        return cached

    def value(self, answer: str) -> tuple[complex, bool] | None:
        """(numeric value, is a constant) of an expression, its symbols set to fixed points; None for
        anything else (sets, relations, tuples, percentages, undefined functions, non-finite values)."""
        if answer not in self._values:
            self._values[answer] = None
            parsed = self.parsed(answer)
            expr = parsed[0] if parsed else None
            if "%" not in answer and isinstance(expr, self._sympy.Expr):
                points = {symbol: _point(symbol.name) for symbol in expr.free_symbols}
                try:
                    number = complex(expr.evalf(20, subs=points))
                except (TypeError, ValueError, ArithmeticError, AttributeError):
                    number = None
                if number is not None and cmath.isfinite(number):
                    self._values[answer] = (number, not points)
        return self._values[answer]

    def numeric_verdict(self, a: str, b: str) -> bool | None:
        """False when the values differ far beyond math-verify's rounding (6 decimals): for expressions
        with symbols, two functions that differ at one point are different. True when two constants agree
        to 12 digits. None: leave it to math-verify."""
        value_a, value_b = self.value(a), self.value(b)
        if value_a is None or value_b is None:
            return None
        gap = abs(value_a[0] - value_b[0])
        scale = max(1.0, abs(value_a[0]), abs(value_b[0]))
        if gap > _DIFFERENT * scale:
            return False
        if value_a[1] and value_b[1] and gap <= _SAME * scale:
            return True
        return None

    def decide(self, a: str, b: str, directed: bool) -> bool:
        # Per-answer work first, remembering whose it is: a timeout there is that answer's fault.
        for answer in (a, b):
            self.preparing = answer
            self.value(answer)
        self.preparing = None
        gold, target = self.parsed(a), self.parsed(b)
        if not gold or not target:
            return False
        verdict = self.numeric_verdict(a, b)
        if verdict is not None:
            return verdict
        if self._verify(gold, target, timeout_seconds=None):
            return True
        return not directed and bool(self._verify(target, gold, timeout_seconds=None))


class _RulerGrader:
    """mathruler 0.1.0's `grade_answer(given, ground_truth)`, each direction under its own soft limit."""

    per_direction = True

    def __init__(self, soft_timeout_s: float):
        from mathruler.grader import grade_answer

        self._grade = grade_answer
        self.soft_timeout_s = soft_timeout_s
        self.poisoned: set[str] = set()
        self.preparing: str | None = None
        self._grade("1/2", "0.5")  # warm up pylatexenc and sympy

    def _one(self, given: str, truth: str) -> bool:
        _arm(self.soft_timeout_s, 0.05)  # keeps firing: mathruler's bare `except:` swallows the first
        verdict = bool(self._grade(given, truth))
        if _fired:
            raise _SoftTimeout()
        signal.setitimer(signal.ITIMER_REAL, 0)
        return verdict

    def decide(self, a: str, b: str, directed: bool) -> bool:
        if directed:  # a is the gold answer: the reference's reward calls grade_answer(answer, ground_truth)
            return self._one(b, a)
        return self._one(a, b) or self._one(b, a)


def _decide_with_limit(grader, item, soft_timeout_s: float) -> tuple[bool | str | None, list[str]]:
    """(verdict, answers blamed for running out of time)."""
    a, b, _ = item
    if a in grader.poisoned or b in grader.poisoned:
        return SKIPPED, [answer for answer in (a, b) if answer in grader.poisoned]
    grader.preparing = None
    if not getattr(grader, "per_direction", False):
        _arm(soft_timeout_s)
    try:
        return grader.decide(*item), []
    except (_SoftTimeout, MemoryError, RecursionError):
        if len(grader.poisoned) >= _PARSED_CACHE_LIMIT:
            grader.poisoned.clear()
        blamed = [grader.preparing] if grader.preparing is not None else blame_longer(a, b)
        grader.poisoned.update(blamed)
        return None, blamed
    except Exception:
        return False, []  # math-verify could not compare them: not shown equivalent
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def serve(conn, soft_timeout_s: float, memory_limit_mb: int | None, checker: str = "math-verify") -> None:
    signal.signal(signal.SIGALRM, _on_alarm)
    grader = _RulerGrader(soft_timeout_s) if checker == "mathruler" else _Grader()
    _limit_memory(memory_limit_mb)
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if request is None:
            return
        batch_id, items = request
        for position, item in enumerate(items):
            try:
                value, blamed = _decide_with_limit(grader, item, soft_timeout_s)
            except _SoftTimeout:  # fired in the instant between the item's end and the timer's reset
                value, blamed = None, blame_longer(item[0], item[1])
            try:
                conn.send((batch_id, position, value, blamed))
            except (OSError, ValueError):
                return
