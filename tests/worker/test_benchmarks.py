"""Benchmarks: JSONL parsing (GSM8K '####', plain, boxed), the seeded arithmetic set, Wilson intervals."""

import json
import re
from fractions import Fraction

import pytest

from rzero_worker.benchmarks import (
    BenchmarkError,
    arithmetic_benchmark,
    load_benchmark,
    parse_gold,
    wilson_interval,
)
from rzero_worker.task import BenchmarkSpec


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_gsm8k_answer_is_the_text_after_the_last_hashes_without_thousands_commas(tmp_path):
    rows = [
        {"question": "How many eggs?", "answer": "She has 3 + 4 = <<3+4=7>>7 eggs.\n#### 7"},
        {"question": "How much money?", "answer": "It costs 1,200 dollars.\n#### 1,200"},
    ]
    spec = BenchmarkSpec(name="gsm8k", path=str(write_jsonl(tmp_path / "g.jsonl", rows)), answer_format="gsm8k")

    items = load_benchmark(spec)

    assert [(item.question, item.gold) for item in items] == [("How many eggs?", "7"), ("How much money?", "1200")]


def test_custom_fields_plain_answers_and_limit(tmp_path):
    rows = [{"id": f"q{i}", "problem": f"What is {i}+{i}?", "solution": f" {2 * i} "} for i in range(5)]
    spec = BenchmarkSpec(
        name="custom",
        path=str(write_jsonl(tmp_path / "c.jsonl", rows)),
        question_field="problem",
        answer_field="solution",
        limit=3,
    )

    items = load_benchmark(spec)

    assert [(item.id, item.question, item.gold) for item in items] == [
        ("q0", "What is 0+0?", "0"),
        ("q1", "What is 1+1?", "2"),
        ("q2", "What is 2+2?", "4"),
    ]


def test_boxed_answer_format_takes_the_last_box():
    assert parse_gold(r"first \boxed{1}, then \boxed{\frac{1}{2}}", "boxed") == r"\frac{1}{2}"


def test_a_missing_field_is_named_in_the_error(tmp_path):
    spec = BenchmarkSpec(name="bad", path=str(write_jsonl(tmp_path / "b.jsonl", [{"question": "q"}])))
    with pytest.raises(BenchmarkError, match=r"line 1: missing field 'answer'"):
        load_benchmark(spec)


def test_a_gsm8k_row_without_hashes_is_refused(tmp_path):
    rows = [{"question": "q", "answer": "no final answer here"}]
    spec = BenchmarkSpec(name="bad", path=str(write_jsonl(tmp_path / "b.jsonl", rows)), answer_format="gsm8k")
    with pytest.raises(BenchmarkError, match="'answer' has no gsm8k answer"):
        load_benchmark(spec)


def test_a_missing_file_is_a_clear_error(tmp_path):
    spec = BenchmarkSpec(name="gone", path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(BenchmarkError, match="no such file"):
        load_benchmark(spec)


def test_arithmetic_benchmark_is_determined_by_its_seed():
    assert arithmetic_benchmark(20, seed=3) == arithmetic_benchmark(20, seed=3)
    assert arithmetic_benchmark(20, seed=3) != arithmetic_benchmark(20, seed=4)
    assert len({item.id for item in arithmetic_benchmark(50, seed=0)}) == 50


def test_arithmetic_gold_answers_are_exact():
    """Recompute every answer from the numbers in the question text, independently of the generator."""
    for item in arithmetic_benchmark(40, seed=11):
        numbers = [int(n) for n in re.findall(r"\d+", item.question)]
        if item.question.startswith("Compute ("):
            a, b, c, d = numbers
            assert item.gold == str((a + b) * c - d)
        elif item.question.startswith("Compute \\frac"):
            a, b, c, d = numbers
            total = Fraction(a, b) + Fraction(c, d)
            expected = str(total) if total.denominator == 1 else rf"\frac{{{total.numerator}}}{{{total.denominator}}}"
            assert item.gold == expected
        elif item.question.startswith("Sam has"):
            start, bags, per_bag, given = numbers
            assert item.gold == str(start + bags * per_bag - given)
        else:
            people, each, left, cost = numbers
            assert item.gold == str((people * each + left) * cost)


def test_arithmetic_spec_honours_size_and_limit():
    spec = BenchmarkSpec(name="arith", kind="arithmetic", size=12, seed=5, limit=4)
    assert [item.id for item in load_benchmark(spec)] == [f"arithmetic-5-{i:05d}" for i in range(4)]


@pytest.mark.parametrize(
    ("correct", "n", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),
        (50, 100, (0.4038, 0.5962)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (0, 0, (0.0, 1.0)),
    ],
)
def test_wilson_interval_matches_the_textbook_values(correct, n, expected):
    low, high = wilson_interval(correct, n)
    assert (round(low, 4), round(high, 4)) == expected
