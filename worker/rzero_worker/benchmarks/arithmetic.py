"""The built-in arithmetic benchmark: seeded, exact answers, no download (the local demo's benchmark)."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Callable

from .items import BenchmarkItem


def arithmetic_benchmark(size: int, seed: int, difficulty: str = "standard") -> list[BenchmarkItem]:
    """`size` procedurally generated problems; the same seed gives the same problems. "easy": the format
    warm-up's problems (warmup_data), drawn from their own seed stream."""
    if difficulty == "easy":
        return _easy_benchmark(size, seed)
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


def _easy_benchmark(size: int, seed: int) -> list[BenchmarkItem]:
    from ..warmup_data import draw_problem

    rng = random.Random(f"arithmetic-easy/{seed}")  # never the warm-up's own stream (seeded by an int)
    return [
        BenchmarkItem(id=f"arithmetic-easy-{seed}-{index:05d}", question=problem.question, gold=str(problem.answer))
        for index, problem in enumerate(draw_problem(rng, word_share=0.25) for _ in range(size))
    ]


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


