"""Benchmarks for the evaluate phase: JSONL files and a built-in arithmetic set that needs no download.

A benchmark is a list of `BenchmarkItem(id, question, gold)`; `gold` is the reference answer as a string
that math-verify compares with the model's last `\\boxed{}`. The accuracy is reported with a 95% Wilson
score interval, which stays inside [0, 1] and behaves well for small n and accuracies near 0 or 1 (the
normal approximation does neither).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .task import BenchmarkSpec, StorageLocation

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class BenchmarkItem:
    id: str
    question: str
    gold: str


class BenchmarkError(ValueError):
    """A benchmark file or item that cannot be used; the message names the benchmark and the field."""


# --------------------------------------------------------------------------------------------------
# Loading


def load_benchmark(spec: BenchmarkSpec, storage: StorageLocation | None = None) -> list[BenchmarkItem]:
    """The items of one benchmark spec, the first `spec.limit` of them when a limit is set."""
    if spec.kind == "arithmetic":
        items = arithmetic_benchmark(spec.size, spec.seed)
    else:
        text = read_text(spec.path, storage)
        items = parse_jsonl_benchmark(spec, text)
    return items[: spec.limit] if spec.limit else items


def parse_jsonl_benchmark(spec: BenchmarkSpec, text: str) -> list[BenchmarkItem]:
    """Items from JSONL text using the spec's field names and answer format."""
    items = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"benchmark {spec.name!r} ({spec.path}) line {line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{where}: not valid JSON ({exc.msg})") from None
        for field in (spec.question_field, spec.answer_field):
            if field not in row:
                raise BenchmarkError(f"{where}: missing field {field!r} (set questionField/answerField)")
        gold = parse_gold(str(row[spec.answer_field]), spec.answer_format)
        if gold is None:
            raise BenchmarkError(f"{where}: field {spec.answer_field!r} has no {spec.answer_format} answer")
        item_id = str(row.get("id", f"{spec.name}-{len(items):05d}"))
        items.append(BenchmarkItem(id=item_id, question=str(row[spec.question_field]), gold=gold))
    return items


def parse_gold(raw: str, answer_format: str) -> str | None:
    """The gold answer from a dataset field: GSM8K's text after '####', a last \\boxed{}, or the value."""
    if answer_format == "gsm8k":
        if "####" not in raw:
            return None
        # GSM8K writes thousands with commas ("1,000"); math-verify would read that as a tuple.
        return raw.rsplit("####", 1)[1].strip().replace(",", "") or None
    if answer_format == "boxed":
        from .grading import extract_boxed

        return extract_boxed(raw)
    return raw.strip() or None


def read_text(path: str, storage: StorageLocation | None) -> str:
    """A benchmark file's text from a local path or s3://bucket/key (endpoint and region from the run's
    storage location; credentials from the standard AWS chain, as for all storage)."""
    if not path.startswith("s3://"):
        local = Path(path).expanduser()
        if not local.is_file():
            raise BenchmarkError(f"benchmark path {path!r}: no such file")
        return local.read_text(encoding="utf-8")
    from .storage import open_storage

    bucket, _, key = path[len("s3://") :].partition("/")
    location = StorageLocation(
        uri=f"s3://{bucket}",
        endpoint_url=storage.endpoint_url if storage else None,
        region=storage.region if storage else None,
    )
    try:
        return open_storage(location).get_bytes(key).decode("utf-8")
    except FileNotFoundError:
        raise BenchmarkError(f"benchmark path {path!r}: no such object") from None


# --------------------------------------------------------------------------------------------------
# The built-in arithmetic benchmark: seeded, exact answers, no download


def arithmetic_benchmark(size: int, seed: int) -> list[BenchmarkItem]:
    """`size` procedurally generated problems; the same seed gives the same problems."""
    rng = random.Random(seed)
    templates: list[Callable[[random.Random], tuple[str, str]]] = [
        _multi_step_integer,
        _fraction_sum,
        _shopping_word_problem,
        _sharing_word_problem,
    ]
    items = []
    for index in range(size):
        question, gold = templates[index % len(templates)](rng)
        items.append(BenchmarkItem(id=f"arithmetic-{seed}-{index:05d}", question=question, gold=gold))
    return items


def _multi_step_integer(rng: random.Random) -> tuple[str, str]:
    a, b, c, d = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 12), rng.randint(1, 500)
    return f"Compute ({a} + {b}) \\times {c} - {d}.", str((a + b) * c - d)


def _fraction_sum(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(1, 9), rng.randint(2, 12)
    c, d = rng.randint(1, 9), rng.randint(2, 12)
    total = Fraction(a, b) + Fraction(c, d)
    gold = str(total.numerator) if total.denominator == 1 else f"\\frac{{{total.numerator}}}{{{total.denominator}}}"
    return f"Compute \\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}} and write the result in lowest terms.", gold


def _shopping_word_problem(rng: random.Random) -> tuple[str, str]:
    start, bags, per_bag = rng.randint(5, 60), rng.randint(2, 9), rng.randint(3, 15)
    given = rng.randint(2, start)
    question = (
        f"Sam has {start} apples. He buys {bags} bags with {per_bag} apples in each bag, "
        f"then gives {given} apples to a friend. How many apples does Sam have now?"
    )
    return question, str(start + bags * per_bag - given)


def _sharing_word_problem(rng: random.Random) -> tuple[str, str]:
    people, each, left = rng.randint(2, 12), rng.randint(3, 25), rng.randint(0, 9)
    cost = rng.randint(2, 9)
    question = (
        f"A baker shares cookies among {people} children so that each gets {each} cookies, "
        f"and {left} cookies are left over. Each cookie costs {cost} dollars to make. "
        f"How many dollars did all the cookies cost to make?"
    )
    return question, str((people * each + left) * cost)


# --------------------------------------------------------------------------------------------------
# Scoring


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `correct` successes out of `n` (95% by default); (0, 1) when n=0."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half_width), min(1.0, centre + half_width))
