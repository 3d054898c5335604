"""The exact arithmetic oracle: right answers to arithmetic questions, and no answer to anything else."""

import time

import pytest

from rzero_worker.oracles import ArithmeticOracle
from rzero_worker.oracles.arithmetic import MAX_CHARACTERS, solve


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 23 + 45 * 2?", "113"),
        ("Compute (3 - 7) / 4.", "-1"),
        ("Calculate 7 / 4", "7/4"),
        ("Evaluate: 2^10 - 24", "1000"),
        ("What is 12 × 3 ÷ 9?", "4"),
        ("Find the value of \\frac{3}{4} + 0.25", "1"),
        ("what's -5 + 2 * (3 - 1)", "-1"),
        ("0.1 + 0.2", "3/10"),  # exact: no binary floating point
        ("What is $6 \\times 7$?", "42"),
        ("Simplify 2 ** -2", "1/4"),
    ],
)
def test_arithmetic_questions_get_their_exact_answer(question, answer):
    assert solve(question) == answer


@pytest.mark.parametrize(
    "question",
    [
        "What is x + 3 if x = 2?",  # a variable
        "Tom has 3 apples and buys 4 more. How many apples does he have?",  # words it cannot parse
        "What is 3 apples + 4?",
        "What is 9^9^9^9?",  # a huge power: refused before it is computed
        "What is 2^100000?",
        "What is 10 ** 999?",
        "What is 5 / (3 - 3)?",  # division by zero
        "What is 0^-1?",
        "What is 2^0.5?",  # not exact
        "What is __import__('os').system('true')?",  # never evaluated: not arithmetic text
        "What is (1+2)[0]?",
        "What is 7 % 3?",  # an operator the oracle does not read
        "What is 3 + ?",  # unparsable
        "What is " + "(" * 150 + "1" + ")" * 150 + "?",  # too deep / too long
        "9" * 300,  # a number beyond the bounds
        "",
    ],
)
def test_questions_the_oracle_cannot_read_get_no_answer(question):
    assert solve(question) is None


def test_every_question_is_answered_within_a_small_time_bound():
    hostile = ["What is " + "9^" * 30 + "9?", "What is " + "*".join(["99999999"] * 24) + "?",
               "What is " + "+".join(["1"] * 99) + "?", "(" * (MAX_CHARACTERS // 2) + ")" * (MAX_CHARACTERS // 2)]
    started = time.monotonic()
    answers = ArithmeticOracle().answer(hostile * 25)
    assert time.monotonic() - started < 5.0  # 100 hostile questions
    assert answers[:4] == [None, None, None, None]


def test_the_oracle_answers_in_order_and_has_a_name():
    oracle = ArithmeticOracle()
    assert oracle.name == "arithmetic"
    assert oracle.answer(["1 + 1", "a word", "2 * 3"]) == ["2", None, "6"]
